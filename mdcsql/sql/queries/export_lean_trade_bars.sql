-- Lean trade bars of one symbol from the archive's stored bars of one interval, one CSV text per
-- local day (mdcsql/export/lean.py). Columns: time (ms, or 'yyyyMMdd HH:mm' with $hm), open, high,
-- low, close, volume. Needs export_lean_macros.sql.
-- Parameters: $symbol, $all_sources, $sources, $start, $end, $tz, $scaled, $interval, $hm.
WITH rows AS (
    SELECT lean_lns(ts, $tz) AS l, ts, seq, source, open, high, low, close, volume
    FROM historical_bars
    WHERE symbol = $symbol AND interval = $interval AND ($all_sources OR list_contains($sources, source))
      AND epoch_ns(ts) >= $start AND epoch_ns(ts) < $end
)
SELECT lean_day(l) AS day, count(*) AS n,
       string_agg(concat_ws(',', lean_time(l, $hm), lean_px(open, $scaled), lean_px(high, $scaled),
                            lean_px(low, $scaled), lean_px(close, $scaled), lean_num(coalesce(volume, 0))),
                  chr(10) ORDER BY ts, seq, source) AS csv
FROM rows
GROUP BY day
ORDER BY day;
