-- Sealed files that DropOldest / SoftLimit cleanup may delete, oldest data first (the caller
-- keeps only the scope's files and skips Critical event types). $as_of as in quota_usage.sql.
SELECT path, source, asset_class, symbol, type, size_bytes, coalesce(event_count, 0) AS event_count,
       CAST(utc_day(first_ts) - DATE '1970-01-01' AS BIGINT) AS day
FROM files
WHERE state = 'sealed'
  AND ($as_of IS NULL
       OR coalesce(CAST(first_ts AS TIMESTAMP), period_start, created_at) < $as_of)
ORDER BY coalesce(period_start, CAST(first_ts AS TIMESTAMP), created_at), path;
