-- Register a symbol first seen at ingest (unknown-symbol policy `accept`), unless already known.
INSERT INTO symbols (symbol, canonical, asset_class) VALUES ($symbol, $symbol, $asset_class)
ON CONFLICT DO NOTHING;
