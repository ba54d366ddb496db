-- Files, events and bytes: totals and by tier, source, type and state (one GROUPING SETS pass).
-- `events` sums the known counts; `uncounted_files` are files whose count is not known yet
-- (open hot files, unless synced with deep=True).
SELECT
    CASE
        WHEN grouping(tier) = 0 THEN 'tier'
        WHEN grouping(source) = 0 THEN 'source'
        WHEN grouping(type) = 0 THEN 'type'
        WHEN grouping(state) = 0 THEN 'state'
        ELSE 'totals'
    END                                             AS dimension,
    coalesce(tier, source, type, state)             AS key,
    count(*)                                        AS files,
    coalesce(sum(event_count), 0)                   AS events,
    coalesce(sum(size_bytes), 0)                    AS size_bytes,
    coalesce(sum(raw_bytes), 0)                     AS raw_bytes,
    count(*) FILTER (WHERE event_count IS NULL)     AS uncounted_files
FROM files
GROUP BY GROUPING SETS ((), (tier), (source), (type), (state))
ORDER BY dimension, key;
