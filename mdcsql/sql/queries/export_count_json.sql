-- export_count_json: events per (symbol, UTC day) of exported JSON-lines files $files.
SELECT symbol, left(ts, 10) AS day, count(*) AS events
FROM read_json($files::VARCHAR[], format = 'newline_delimited', columns = {'symbol': 'VARCHAR', 'ts': 'VARCHAR'})
GROUP BY ALL ORDER BY symbol, day
