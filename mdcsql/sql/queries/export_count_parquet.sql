-- export_count_parquet: events per (symbol, UTC day) of exported Parquet files $files (read back
-- to verify an export; the connection's TimeZone is UTC). Hive partition columns (date=…/symbol=…)
-- come from the paths.
SELECT symbol, strftime(ts, '%Y-%m-%d') AS day, count(*) AS events
FROM read_parquet($files::VARCHAR[], hive_partitioning = true)
GROUP BY ALL ORDER BY symbol, day
