-- Register or replace one source.
INSERT OR REPLACE INTO sources
    (id, name, type, priority, asset_classes, data_types, latency_ms, reliability, cost_per_event, enabled)
VALUES
    ($id, $name, $type, $priority, $asset_classes, $data_types, $latency_ms, $reliability, $cost_per_event, $enabled);
