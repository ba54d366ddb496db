-- export_count_arrow: events per (symbol, UTC day) of an Arrow table registered as export_arrow
-- (Arrow IPC / Feather files read back; the connection's TimeZone is UTC).
SELECT symbol, strftime(ts, '%Y-%m-%d') AS day, count(*) AS events
FROM export_arrow
GROUP BY ALL ORDER BY symbol, day
