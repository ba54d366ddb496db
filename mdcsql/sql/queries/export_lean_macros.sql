-- Temporary macros of the Lean export (mdcsql/export/lean.py), created on the export's own
-- connection (TEMP: they work on a read-only catalog and never change it).
-- lean_lns(t, tz): local wall-clock nanoseconds since 1970-01-01 in time zone tz ("as if the wall
--   clock were UTC"), from epoch_ns so that nanoseconds are never rounded (DuckDB's cast of a
--   TIMESTAMP_NS to TIMESTAMP rounds to microseconds); the UTC offset is that of the whole second.
-- lean_day(l) / lean_ms(l): local day number / milliseconds since local midnight (Lean's tick,
--   second and minute time column).
-- lean_hm(l): 'yyyyMMdd HH:mm' (Lean's hour and daily time column).
-- lean_num(x): exact decimal text without trailing zeros ('7424.910000000000000000' -> '7424.91').
-- lean_px(x, scaled): equity deci-cents (x * 10000 rounded half away from zero) or lean_num(x).
-- lean_slot(seq, l): the Lean replay's seq slot (docs/sources-lean.md: days*10^10 + slot*10^9 +
--   row; 0 tick, 1 second, 2 minute, 3 hour, 4 daily) when seq follows that rule for the local
--   day of the event (the day itself or up to two days before, for bar-end snapshots), else 0.
CREATE OR REPLACE TEMP MACRO lean_lns(t, tz) AS
    epoch_ns(t) + 1000 * (epoch_us(timezone(tz, timezone('UTC', CAST(date_trunc('second', t) AS TIMESTAMP))))
                          - epoch_us(CAST(date_trunc('second', t) AS TIMESTAMP)));
CREATE OR REPLACE TEMP MACRO lean_day(l) AS l // 86400000000000;
CREATE OR REPLACE TEMP MACRO lean_ms(l) AS (l % 86400000000000) // 1000000;
CREATE OR REPLACE TEMP MACRO lean_hm(l) AS strftime(make_timestamp(l // 1000), '%Y%m%d %H:%M');
CREATE OR REPLACE TEMP MACRO lean_num(x) AS
    CASE WHEN contains(CAST(x AS VARCHAR), '.') THEN rtrim(rtrim(CAST(x AS VARCHAR), '0'), '.')
         ELSE CAST(x AS VARCHAR) END;
CREATE OR REPLACE TEMP MACRO lean_px(x, scaled) AS
    CASE WHEN scaled THEN CAST(CAST(round(x * 10000) AS BIGINT) AS VARCHAR) ELSE lean_num(x) END;
CREATE OR REPLACE TEMP MACRO lean_slot(seq, l) AS
    CASE WHEN seq IS NOT NULL AND seq // 10000000000 BETWEEN lean_day(l) - 2 AND lean_day(l)
         THEN CAST((seq // 1000000000) % 10 AS INTEGER) ELSE 0 END;
-- lean_time(l, hm): the time column, 'yyyyMMdd HH:mm' when hm else milliseconds since midnight.
CREATE OR REPLACE TEMP MACRO lean_time(l, hm) AS
    CASE WHEN hm THEN lean_hm(l) ELSE CAST(lean_ms(l) AS VARCHAR) END;
-- lean_side(o, h, lo, c, size, scaled): one side of a quote bar, five empty columns when absent.
CREATE OR REPLACE TEMP MACRO lean_side(o, h, lo, c, size, scaled) AS
    CASE WHEN c IS NULL THEN ',,,,'
         ELSE concat_ws(',', lean_px(o, scaled), lean_px(h, scaled), lean_px(lo, scaled), lean_px(c, scaled),
                        lean_num(coalesce(size, 0))) END;
-- lean_regular(l): inside US equity regular hours 09:30-16:00 local (hour and daily aggregation).
CREATE OR REPLACE TEMP MACRO lean_regular(l) AS lean_ms(l) >= 34200000 AND lean_ms(l) < 57600000;
