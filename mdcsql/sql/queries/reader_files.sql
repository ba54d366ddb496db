-- reader_files: the files index the fast read path (mdcsql.reader.Reader) keeps in memory.
-- Times as integer UTC nanoseconds (Python's datetime would drop the nanoseconds).
SELECT
    path,
    type,
    symbol,
    source,
    tier,
    format,
    codec,
    state,
    partition,
    epoch_ns(period_start)  AS period_start_ns,
    epoch_ns(first_ts)      AS first_ts_ns,
    epoch_ns(last_ts)       AS last_ts_ns,
    size_bytes,
    mtime_ns
FROM files
ORDER BY type, symbol, first_ts_ns NULLS FIRST, path;
