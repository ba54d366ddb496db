-- Rows of JSONL files for the Parquet engine (mdcsql.lifecycle.parquet), in file order.
-- {{columns}}: the read_json columns struct (from JSON_COLUMNS, an allow-list).
-- $files: list of paths, all with the codec $comp; $lo/$hi: half-open ns range or NULL.
SELECT *
FROM read_json($files, format = 'newline_delimited', compression = $comp,
               columns = {{columns}}, hive_partitioning = false)
WHERE ($lo::BIGINT IS NULL OR ts >= $lo::BIGINT) AND ($hi::BIGINT IS NULL OR ts < $hi::BIGINT)
