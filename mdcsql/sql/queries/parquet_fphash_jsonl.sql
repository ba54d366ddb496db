-- Fast content fingerprint (algorithm "duckdb-hash:<major.minor>", see docs/lifecycle-parquet.md)
-- of JSONL files: row count and the sum, modulo 2^64, of DuckDB's hash() of each row's columns at
-- their view types ({{columns}}: JSON_COLUMNS; {{hash_args}}: every column in JSON_COLUMNS order,
-- lists cast to their canonical text so that NULL, [] and [NULL] differ).
SELECT count(*)::BIGINT AS n,
       (coalesce(sum(hash({{hash_args}})), 0)::HUGEINT % 18446744073709551616::HUGEINT)::VARCHAR AS fp
FROM read_json($files, format = 'newline_delimited', compression = $comp,
               columns = {{columns}}, hive_partitioning = false)
WHERE ($lo::BIGINT IS NULL OR ts >= $lo::BIGINT) AND ($hi::BIGINT IS NULL OR ts < $hi::BIGINT)
