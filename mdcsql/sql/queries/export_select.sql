-- export_select: the rows of one event type for an export (mdcsql/export/selection.py).
-- Placeholders (double braces): view = a typed view and columns = its column list, both from
-- allow-lists; since / since_filter = empty or export_since_join.sql / export_since_filter.sql
-- (incremental exports); dedupe = empty or export_dedupe.sql. Every value is a bound parameter:
-- $symbols / $sources (VARCHAR[] or NULL = all), $start_ns / $end_ns (BIGINT UTC ns or NULL;
-- start inclusive, end exclusive). Ordered by (symbol, ts, seq).
SELECT {{columns}}
FROM {{view}} AS v
{{since}}
WHERE ($symbols::VARCHAR[] IS NULL OR list_contains($symbols::VARCHAR[], v.symbol))
  AND ($sources::VARCHAR[] IS NULL OR list_contains($sources::VARCHAR[], v.source))
  AND ($start_ns::BIGINT IS NULL OR v.ts >= make_timestamp_ns($start_ns::BIGINT))
  AND ($end_ns::BIGINT IS NULL OR v.ts < make_timestamp_ns($end_ns::BIGINT))
  {{since_filter}}
{{dedupe}}
ORDER BY v.symbol, v.ts, v.seq
