-- Content fingerprint of JSONL files (see docs/lifecycle-parquet.md): row count and the sum,
-- modulo 2^64, of the low 64 bits of the MD5 of each row's canonical JSON ({{row}}: every
-- column of JSON_COLUMNS at its view type, ts/recv_ts as BIGINT ns, decimals as DECIMAL(38,18)).
SELECT count(*)::BIGINT AS n,
       (coalesce(sum(md5_number_lower(to_json({{row}}))), 0)::HUGEINT % 18446744073709551616::HUGEINT)::VARCHAR AS fp
FROM read_json($files, format = 'newline_delimited', compression = $comp,
               columns = {{columns}}, hive_partitioning = false)
WHERE ($lo::BIGINT IS NULL OR ts >= $lo::BIGINT) AND ($hi::BIGINT IS NULL OR ts < $hi::BIGINT)
