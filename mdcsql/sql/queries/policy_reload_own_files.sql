-- A running collector's own files as the catalog knows them, so that a policy reload can take
-- them out of a fresh usage snapshot and count them itself (the catalog may be behind the open
-- hot files). $paths: VARCHAR[] of data-file paths. Columns as quota_candidates.sql.
SELECT path, source, asset_class, symbol, type, coalesce(size_bytes, 0) AS size_bytes,
       coalesce(event_count, 0) AS event_count,
       CAST(utc_day(first_ts) - DATE '1970-01-01' AS BIGINT) AS day
FROM files
WHERE list_contains($paths, path);
