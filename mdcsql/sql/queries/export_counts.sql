-- export_counts: events per (symbol, UTC day) of a selection (placeholder selection:
-- export_select.sql with its bound values), the export's expected counts.
SELECT symbol, strftime(ts, '%Y-%m-%d') AS day, count(*) AS events
FROM ({{selection}}) AS s
GROUP BY ALL
ORDER BY symbol, day
