-- Table macros defined in the catalog (trusted: created by migrations); user SQL may call them.
SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'table_macro' AND NOT internal;
