-- export_pg_symbols: the symbols that have catalogued files of one event type ($type), for a
-- PostgreSQL export without an explicit symbol list (mdcsql/export/postgres.py).
SELECT DISTINCT symbol FROM files WHERE type = $type AND symbol IS NOT NULL ORDER BY symbol
