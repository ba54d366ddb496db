-- Event statistics of open hot files (sync deep=True). $files: absolute paths.
-- A torn last line (a writer is appending) reads as an all-NULL row and is not counted.
SELECT
    filename,
    count(*)  AS event_count,
    min(seq)  AS first_seq,
    max(seq)  AS last_seq,
    min(ts)   AS first_ts,
    max(ts)   AS last_ts
FROM read_json($files, format = 'newline_delimited', columns = {ts: 'BIGINT', seq: 'BIGINT'},
               filename = true, hive_partitioning = false, ignore_errors = true)
WHERE ts IS NOT NULL
GROUP BY filename;
