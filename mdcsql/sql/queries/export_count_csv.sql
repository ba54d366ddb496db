-- export_count_csv: events per (symbol, UTC day) of exported CSV files $files (ts is ISO-8601 text).
SELECT symbol, left(ts, 10) AS day, count(*) AS events
FROM read_csv($files::VARCHAR[], header = true, all_varchar = true)
GROUP BY ALL ORDER BY symbol, day
