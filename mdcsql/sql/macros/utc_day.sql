-- utc_day(t): the UTC calendar day of a DATE, TIMESTAMP, TIMESTAMP_NS or TIMESTAMPTZ value.
-- Computed from epoch_ns with integer floor division because DuckDB's CAST(TIMESTAMP_NS AS DATE)
-- rounds to microseconds first: 23:59:59.999999999 would otherwise fall on the next day.
-- Example: SELECT utc_day(TIMESTAMP_NS '2022-06-08 23:59:59.999999999');  -- 2022-06-08
CREATE OR REPLACE MACRO utc_day(t) AS
    DATE '1970-01-01' + CAST((epoch_ns(t) - (((epoch_ns(t) % 86400000000000) + 86400000000000)
                                             % 86400000000000)) // 86400000000000 AS INTEGER);
