-- One row when the core tables exist (the catalog was created before).
SELECT 1 FROM duckdb_tables() WHERE table_name = 'files' AND schema_name = 'main';
