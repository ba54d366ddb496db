-- Lean quote bars of one symbol from the bar-end BboQuote snapshots a Lean quote-bar replay stored
-- (docs/sources-lean.md: one BboQuote per bar at its end, seq slot $slot), one CSV text per local
-- day (mdcsql/export/lean.py). The snapshot keeps the closing bid/ask and last sizes only, so each
-- side is written with open = high = low = close. Columns: time, bid O,H,L,C, last bid size, ask
-- O,H,L,C, last ask size; an absent side is five empty columns. Needs export_lean_macros.sql.
-- Parameters: $symbol, $all_sources, $sources, $start, $end, $tz, $scaled, $bar_ns, $hm, $slot.
WITH rows AS (
    SELECT lean_lns(ts, $tz) AS l, ts, seq, source, bid_price, bid_size, ask_price, ask_size
    FROM bbo_quotes
    WHERE symbol = $symbol AND ($all_sources OR list_contains($sources, source))
      AND epoch_ns(ts) - $bar_ns >= $start AND epoch_ns(ts) - $bar_ns < $end
), snaps AS (
    SELECT l - $bar_ns AS b, * FROM rows WHERE lean_slot(seq, l) = $slot
)
SELECT lean_day(b) AS day, count(*) AS n,
       string_agg(concat_ws(',', lean_time(b, $hm),
                            lean_side(bid_price, bid_price, bid_price, bid_price, bid_size, $scaled),
                            lean_side(ask_price, ask_price, ask_price, ask_price, ask_size, $scaled)),
                  chr(10) ORDER BY ts, seq, source) AS csv
FROM snaps
GROUP BY day
ORDER BY day;
