-- Lean trade ticks of one symbol, one CSV text per local trading day (mdcsql/export/lean.py).
-- Columns: ms since local midnight, price (deci-cents for equities), quantity, exchange, sale
-- condition (the first hexadecimal condition, else empty), suspicious (1 when the conditions
-- hold 'suspicious'); the last three only with $full (equities;
-- crypto ticks are time, price, quantity). Rows in archive order (ts, seq, source). Needs export_lean_macros.sql.
-- Parameters: $symbol, $all_sources, $sources, $start, $end (UTC ns, [start, end)), $tz, $scaled, $full.
WITH rows AS (
    SELECT lean_lns(ts, $tz) AS l, ts, seq, source, price, size, venue,
           list_filter(coalesce(conditions, []), lambda c: regexp_full_match(c, '[0-9A-Fa-f]+')) AS hex,
           list_contains(coalesce(conditions, []), 'suspicious') AS suspicious
    FROM trades
    WHERE symbol = $symbol AND ($all_sources OR list_contains($sources, source))
      AND epoch_ns(ts) >= $start AND epoch_ns(ts) < $end
)
SELECT lean_day(l) AS day, count(*) AS n,
       string_agg(concat_ws(',', lean_ms(l), lean_px(price, $scaled), lean_num(size),
                            CASE WHEN $full THEN coalesce(venue, '') END,
                            CASE WHEN $full THEN coalesce(hex[1], '') END,
                            CASE WHEN $full THEN CASE WHEN suspicious THEN '1' ELSE '0' END END),
                  chr(10) ORDER BY ts, seq, source) AS csv
FROM rows
GROUP BY day
ORDER BY day;
