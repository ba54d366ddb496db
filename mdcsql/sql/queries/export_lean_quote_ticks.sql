-- Lean quote ticks of one symbol, one CSV text per local trading day (mdcsql/export/lean.py).
-- Columns: ms, bid price, bid size, ask price, ask size, exchange, condition, suspicious. A side
-- without a price is written 0,0 (Lean's one-sided AlgoSeek rows). BboQuote has no condition or
-- suspicious flag: $condition is written as the condition and 0 as suspicious. Bar-end snapshots of
-- a Lean quote-bar replay (lean_slot > 0) are not ticks and are left out. Needs export_lean_macros.sql.
-- Parameters: $symbol, $all_sources, $sources, $start, $end, $tz, $scaled, $full, $condition (exchange,
-- condition and suspicious only with $full: crypto quote ticks are time, bid, bid size, ask, ask size).
WITH rows AS (
    SELECT lean_lns(ts, $tz) AS l, ts, seq, source, bid_price, bid_size, ask_price, ask_size, venue
    FROM bbo_quotes
    WHERE symbol = $symbol AND ($all_sources OR list_contains($sources, source))
      AND epoch_ns(ts) >= $start AND epoch_ns(ts) < $end
)
SELECT lean_day(l) AS day, count(*) AS n,
       string_agg(concat_ws(',', lean_ms(l),
                            CASE WHEN bid_price IS NULL THEN '0,0'
                                 ELSE lean_px(bid_price, $scaled) || ',' || lean_num(coalesce(bid_size, 0)) END,
                            CASE WHEN ask_price IS NULL THEN '0,0'
                                 ELSE lean_px(ask_price, $scaled) || ',' || lean_num(coalesce(ask_size, 0)) END,
                            CASE WHEN $full THEN coalesce(venue, '') END,
                            CASE WHEN $full THEN $condition END, CASE WHEN $full THEN '0' END),
                  chr(10) ORDER BY ts, seq, source) AS csv
FROM rows
WHERE lean_slot(seq, l) = 0
GROUP BY day
ORDER BY day;
