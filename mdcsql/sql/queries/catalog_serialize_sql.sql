-- DuckDB's own parse tree of a SELECT statement, as JSON (used to vet user SQL). $sql
SELECT json_serialize_sql($sql);
