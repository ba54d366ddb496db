-- Describe an archive JSONL file (any codec) that has no sidecar manifest. $file: absolute path.
SELECT count(*)                                  AS event_count,
       min(ts)                                   AS first_ts,
       max(ts)                                   AS last_ts,
       list(DISTINCT symbol ORDER BY symbol)     AS symbols,
       list(DISTINCT type ORDER BY type)         AS types
FROM read_json($file, format = 'newline_delimited',
               columns = {ts: 'BIGINT', symbol: 'VARCHAR', type: 'VARCHAR'});
