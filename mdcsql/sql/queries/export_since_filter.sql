-- export_since_filter: only rows after the previous watermark of their (symbol, source) and up to
-- this run's (rows arriving meanwhile go to the next run).
AND (m.prev_ns IS NULL OR v.ts > make_timestamp_ns(m.prev_ns))
AND v.ts <= make_timestamp_ns(m.new_ns)
