-- export_macros: text renderings of exports to CSV and JSON (temporary: created on the export's
-- own connection, which may be read-only).
-- Exact decimal text without DECIMAL(38,18)'s padding: 187.140000000000000000 -> 187.14, 100.0… -> 100.
CREATE OR REPLACE TEMP MACRO export_dec(x) AS rtrim(rtrim(x::VARCHAR, '0'), '.');
-- ISO-8601 UTC with nanoseconds: 2024-01-02T14:30:00.123456789Z.
CREATE OR REPLACE TEMP MACRO export_ts(x) AS strftime(x, '%Y-%m-%dT%H:%M:%S.%nZ');
-- Order-book levels as [[price, size], ...] of decimal text (the archive's own JSON shape).
CREATE OR REPLACE TEMP MACRO export_levels(levels) AS [[export_dec(l.price), export_dec(l.size)] FOR l IN levels];
