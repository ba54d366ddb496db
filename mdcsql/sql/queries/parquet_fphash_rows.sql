-- The fast fingerprint of parquet_fphash_jsonl.sql over rows already in memory: the Arrow table
-- of mdcsql.lifecycle.parquet.read_rows, registered zero-copy as mdcsql_rows (ts/recv_ts int64 ns,
-- decimals as exact text; {{select}} casts each column to its view type). The sources are parsed
-- once: convert fingerprints what it read, not the files a second time.
SELECT count(*)::BIGINT AS n,
       (coalesce(sum(hash({{hash_args}})), 0)::HUGEINT % 18446744073709551616::HUGEINT)::VARCHAR AS fp
FROM (SELECT {{select}} FROM mdcsql_rows) AS e
