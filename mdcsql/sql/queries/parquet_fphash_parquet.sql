-- The fast fingerprint of parquet_fphash_jsonl.sql over Parquet files: each column is cast to its
-- view type first ({{select}}: ts/recv_ts via epoch_ns, decimals to DECIMAL(38,18)), so a JSONL
-- file and its Parquet conversion (or any split/merge of the same rows) fingerprint equal.
SELECT count(*)::BIGINT AS n,
       (coalesce(sum(hash({{hash_args}})), 0)::HUGEINT % 18446744073709551616::HUGEINT)::VARCHAR AS fp
FROM (SELECT {{select}} FROM read_parquet($files, union_by_name = true)) AS e
WHERE ($lo::BIGINT IS NULL OR ts >= $lo::BIGINT) AND ($hi::BIGINT IS NULL OR ts < $hi::BIGINT)
