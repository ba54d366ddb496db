-- Lean trade bars of one symbol aggregated from its trades (OHLCV, stamped at the bar's local
-- start; open/close by archive order ts, seq, source), one CSV text per local day
-- (mdcsql/export/lean.py). $bar_ns is the bar length in local wall-clock ns (a day for daily);
-- with $regular only trades of 09:30-16:00 local count (US equity hour and daily bars).
-- Needs export_lean_macros.sql.
-- Parameters: $symbol, $all_sources, $sources, $start, $end, $tz, $scaled, $bar_ns, $hm, $regular.
WITH rows AS (
    SELECT lean_lns(ts, $tz) AS l, ts, seq, source, price, size
    FROM trades
    WHERE symbol = $symbol AND ($all_sources OR list_contains($sources, source))
      AND epoch_ns(ts) >= $start AND epoch_ns(ts) < $end
), bars AS (
    SELECT l - l % $bar_ns AS b,
           first(price ORDER BY ts, seq, source) AS o, max(price) AS h, min(price) AS lo,
           last(price ORDER BY ts, seq, source) AS c, sum(size) AS v
    FROM rows
    WHERE NOT $regular OR lean_regular(l)
    GROUP BY b
)
SELECT lean_day(b) AS day, count(*) AS n,
       string_agg(concat_ws(',', lean_time(b, $hm), lean_px(o, $scaled), lean_px(h, $scaled),
                            lean_px(lo, $scaled), lean_px(c, $scaled), lean_num(v)),
                  chr(10) ORDER BY b) AS csv
FROM bars
GROUP BY day
ORDER BY day;
