-- Quote bars from BBO quotes (mdcsql.export.transforms.Ohlcv with kind='quote'): per symbol (and
-- source when $by_source) and bucket of $step nanoseconds, stamped at the bucket START: bid and ask
-- open/high/low/close and the last bid/ask size (QuantConnect Lean's quote bar columns). Quotes
-- with a NULL side do not count for that side. Input `transform_input`: ts, symbol, source,
-- bid_price, bid_size, ask_price, ask_size, __row.
SELECT
    make_timestamp_ns(epoch_ns(ts) // $step * $step)                          AS ts,
    symbol,
    CASE WHEN $by_source THEN source END                                        AS source,
    first(bid_price ORDER BY ts, __row) FILTER (WHERE bid_price IS NOT NULL)    AS bid_open,
    max(bid_price)                                                              AS bid_high,
    min(bid_price)                                                              AS bid_low,
    last(bid_price ORDER BY ts, __row) FILTER (WHERE bid_price IS NOT NULL)     AS bid_close,
    last(bid_size ORDER BY ts, __row) FILTER (WHERE bid_price IS NOT NULL)      AS last_bid_size,
    first(ask_price ORDER BY ts, __row) FILTER (WHERE ask_price IS NOT NULL)    AS ask_open,
    max(ask_price)                                                              AS ask_high,
    min(ask_price)                                                              AS ask_low,
    last(ask_price ORDER BY ts, __row) FILTER (WHERE ask_price IS NOT NULL)     AS ask_close,
    last(ask_size ORDER BY ts, __row) FILTER (WHERE ask_price IS NOT NULL)      AS last_ask_size,
    count(*)                                                                    AS quotes
FROM transform_input
GROUP BY symbol, CASE WHEN $by_source THEN source END, epoch_ns(ts) // $step * $step
ORDER BY symbol, source, ts;
