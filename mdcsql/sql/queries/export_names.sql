-- export_names: what an export request may name — symbols, sources and types of the catalogued
-- files plus the registries (mdcsql/export/request.py checks requests against these).
SELECT 'symbol' AS kind, symbol AS name FROM files WHERE symbol IS NOT NULL
UNION SELECT 'symbol', symbol FROM symbols
UNION SELECT 'source', source FROM files WHERE source IS NOT NULL
UNION SELECT 'source', id FROM sources
UNION SELECT 'type', type FROM files WHERE type IS NOT NULL
