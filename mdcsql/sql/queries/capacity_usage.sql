-- Capacity (mdcsql.lifecycle.capacity): usage as of $as_of and what each UTC day since $since
-- (a midnight) added, overall and by tier, source, asset class, symbol and event type, in one
-- GROUPING SETS pass over `files`.
--
-- A file counts when its clock is on/before $as_of. The clock is its arrival (created_at, else
-- sealed_at, else the data file's mtime for an open hot file) or, with $basis = 'period', the start
-- of its data period (its arrival when it has none).
--
-- Rows: `daily` false → the group's totals (files, bytes, events, first/last clock);
--       `daily` true  → what the group added on `day`; day NULL gathers files before $since
--                       (the caller skips those rows). Days without files have no row.
WITH f AS (
    SELECT tier, source, asset_class, symbol, type,
           coalesce(size_bytes, 0)  AS bytes,
           event_count,
           CASE WHEN $basis = 'period'
                THEN coalesce(period_start, created_at, sealed_at, make_timestamp(mtime_ns // 1000))
                ELSE coalesce(created_at, sealed_at, make_timestamp(mtime_ns // 1000))
           END                      AS clock
    FROM files
), c AS (
    SELECT *, CASE WHEN clock >= $since THEN date_trunc('day', clock) END AS d
    FROM f
    WHERE clock <= $as_of
)
SELECT
    CASE
        WHEN grouping(tier) = 0 THEN 'tier'
        WHEN grouping(source) = 0 THEN 'source'
        WHEN grouping(asset_class) = 0 THEN 'asset_class'
        WHEN grouping(symbol) = 0 THEN 'symbol'
        WHEN grouping(type) = 0 THEN 'type'
        ELSE 'total'
    END                                             AS dimension,
    coalesce(tier, source, asset_class, symbol, type, '') AS key,
    grouping(d) = 0                                 AS daily,
    d                                               AS day,
    count(*)                                        AS files,
    coalesce(sum(bytes), 0)                         AS bytes,
    coalesce(sum(event_count), 0)                   AS events,
    count(*) FILTER (WHERE event_count IS NULL)     AS uncounted_files,
    min(clock)                                        AS first_at,
    max(clock)                                        AS last_at
FROM c
GROUP BY GROUPING SETS ((), (tier), (source), (asset_class), (symbol), (type),
                        (d), (tier, d), (source, d), (asset_class, d), (symbol, d), (type, d))
ORDER BY dimension, key, daily, day;
