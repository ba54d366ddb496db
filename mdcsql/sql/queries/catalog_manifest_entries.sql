-- The entries of _catalog/manifest.json (the design's "Data Catalog"), one per file.
SELECT
    path, type, symbol, source, codec, state, event_count, size_bytes, sha256,
    created_at, schema_version,
    coalesce(CAST(first_ts AS DATE), CAST(period_start AS DATE)) AS start_date,
    coalesce(CAST(last_ts AS DATE), CAST(period_start AS DATE))  AS end_date
FROM files
ORDER BY path;
