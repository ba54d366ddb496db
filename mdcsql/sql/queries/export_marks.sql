-- export_marks: the latest ts per (symbol, source) of a selection (placeholder selection:
-- export_select.sql without watermarks), the watermarks an incremental run records.
SELECT symbol, source, epoch_ns(max(ts)) AS ts_ns
FROM ({{selection}}) AS s
GROUP BY ALL
ORDER BY symbol, source
