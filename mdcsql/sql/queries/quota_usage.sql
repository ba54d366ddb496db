-- Quota usage per scope (design: "Hierarchical Quota System"), in one GROUPING SETS pass over
-- `files` (every tier and state): files, stored bytes and events of each scope, and per UTC day
-- of the data (MaxEventsPerDay). level: global | source | asset_class | symbol | type; name: ''
-- for global; by_day rows carry `day` (days since 1970-01-01), the others day NULL.
-- A file counts on the UTC day of its first event: exact for Daily and Hourly partitions, an
-- approximation for Monthly / None. Open hot files count their events once those are counted.
-- $as_of (TIMESTAMP or NULL): only files whose data starts before it (reproducible runs).
-- $day (BIGINT or NULL): only that day's by_day rows. $since (TIMESTAMP or NULL): window_bytes
-- sums the files with data at or after it (dynamic quotas' activity); last_ns = newest event.
WITH f AS (
    SELECT source, asset_class, symbol, type, size_bytes, event_count,
           CASE WHEN first_ts IS NOT NULL
                THEN CAST(utc_day(first_ts) - DATE '1970-01-01' AS BIGINT) END   AS day,
           CAST(coalesce(last_ts, first_ts) AS TIMESTAMP)                         AS last_at,
           epoch_ns(coalesce(last_ts, first_ts))                                  AS last_ns
    FROM files
    WHERE $as_of IS NULL
       OR coalesce(CAST(first_ts AS TIMESTAMP), period_start, created_at) < $as_of
), g AS (
    SELECT
        CASE
            WHEN grouping(source) = 0 THEN 'source'
            WHEN grouping(asset_class) = 0 THEN 'asset_class'
            WHEN grouping(symbol) = 0 THEN 'symbol'
            WHEN grouping(type) = 0 THEN 'type'
            ELSE 'global'
        END                                                             AS level,
        coalesce(source, asset_class, symbol, type, '')                 AS name,
        grouping(day) = 0                                               AS by_day,
        day,
        count(*)                                                        AS files,
        coalesce(sum(size_bytes), 0)                                    AS bytes,
        coalesce(sum(event_count), 0)                                   AS events,
        coalesce(sum(size_bytes) FILTER (WHERE last_at >= $since), 0)   AS window_bytes,
        max(last_ns)                                                    AS last_ns
    FROM f
    GROUP BY GROUPING SETS ((), (source), (asset_class), (symbol), (type),
                            (day), (source, day), (asset_class, day), (symbol, day), (type, day))
)
SELECT level, name, by_day, day, files, bytes, events, window_bytes, last_ns
FROM g
WHERE NOT by_day OR (day IS NOT NULL AND ($day IS NULL OR day = $day));
