-- Registered sources, by priority then id.
SELECT id, name, type, priority, asset_classes, data_types, latency_ms, reliability, cost_per_event, enabled
FROM sources
ORDER BY priority NULLS LAST, id;
