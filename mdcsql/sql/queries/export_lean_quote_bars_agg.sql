-- Lean quote bars of one symbol aggregated from its quote ticks (BboQuotes that are not Lean
-- bar-end snapshots), stamped at the bar's local start, one CSV text per local day
-- (mdcsql/export/lean.py). Per side: first, highest, lowest and last price of the quotes that
-- carry that side, and the size of the last one. Needs export_lean_macros.sql.
-- Parameters: $symbol, $all_sources, $sources, $start, $end, $tz, $scaled, $bar_ns, $hm, $regular.
WITH rows AS (
    SELECT lean_lns(ts, $tz) AS l, ts, seq, source, bid_price, bid_size, ask_price, ask_size
    FROM bbo_quotes
    WHERE symbol = $symbol AND ($all_sources OR list_contains($sources, source))
      AND epoch_ns(ts) >= $start AND epoch_ns(ts) < $end
), bars AS (
    SELECT l - l % $bar_ns AS b,
           first(bid_price ORDER BY ts, seq, source) FILTER (WHERE bid_price IS NOT NULL) AS bo,
           max(bid_price) AS bh, min(bid_price) AS bl,
           last(bid_price ORDER BY ts, seq, source) FILTER (WHERE bid_price IS NOT NULL) AS bc,
           last(bid_size ORDER BY ts, seq, source) FILTER (WHERE bid_price IS NOT NULL) AS bs,
           first(ask_price ORDER BY ts, seq, source) FILTER (WHERE ask_price IS NOT NULL) AS ao,
           max(ask_price) AS ah, min(ask_price) AS al,
           last(ask_price ORDER BY ts, seq, source) FILTER (WHERE ask_price IS NOT NULL) AS ac,
           last(ask_size ORDER BY ts, seq, source) FILTER (WHERE ask_price IS NOT NULL) AS asz
    FROM rows
    WHERE lean_slot(seq, l) = 0 AND (NOT $regular OR lean_regular(l))
    GROUP BY b
)
SELECT lean_day(b) AS day, count(*) AS n,
       string_agg(concat_ws(',', lean_time(b, $hm), lean_side(bo, bh, bl, bc, bs, $scaled),
                            lean_side(ao, ah, al, ac, asz, $scaled)),
                  chr(10) ORDER BY b) AS csv
FROM bars
GROUP BY day
ORDER BY day;
