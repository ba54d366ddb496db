-- Newest event time (epoch ns) per stream (source, asset class, symbol, type), for the
-- stale-data check of the integrity policy. $as_of (TIMESTAMP or NULL): only data before it.
SELECT source, asset_class, symbol, type, max(epoch_ns(last_ts)) AS last_ns
FROM files
WHERE last_ts IS NOT NULL
  AND ($as_of IS NULL OR CAST(first_ts AS TIMESTAMP) < $as_of)
GROUP BY ALL
ORDER BY source, asset_class, symbol, type;
