-- OHLCV bars from trades (mdcsql.export.transforms.Ohlcv): one bar per symbol (and source when
-- $by_source) and bucket of $step nanoseconds, stamped at the bucket START. open/close are the
-- first/last trade by (ts, input order __row); prices stay DECIMAL (exact); empty buckets have no
-- bar. Input `transform_input`: ts (TIMESTAMP_NS), symbol, source, price, size, __row.
SELECT
    make_timestamp_ns(epoch_ns(ts) // $step * $step)  AS ts,
    symbol,
    CASE WHEN $by_source THEN source END                AS source,
    first(price ORDER BY ts, __row)                     AS open,
    max(price)                                          AS high,
    min(price)                                          AS low,
    last(price ORDER BY ts, __row)                      AS close,
    sum(size)                                           AS volume,
    count(*)                                            AS trades
FROM transform_input
GROUP BY symbol, CASE WHEN $by_source THEN source END, epoch_ns(ts) // $step * $step
ORDER BY symbol, source, ts;
