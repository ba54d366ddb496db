-- Describe an archive Parquet file that has no sidecar manifest. $file: absolute path.
-- Columns ts (BIGINT ns or a TIMESTAMP; converted in Python), symbol and type.
SELECT count(*)                                  AS event_count,
       min(ts)                                   AS first_ts,
       max(ts)                                   AS last_ts,
       list(DISTINCT symbol ORDER BY symbol)     AS symbols,
       list(DISTINCT type ORDER BY type)         AS types
FROM read_parquet($file);
