-- Symbols of one asset class that have files of the given event types (mdcsql/export/lean.py:
-- the default symbol list of a Lean export). Parameters: $asset_class, $types.
SELECT DISTINCT symbol
FROM files
WHERE asset_class = $asset_class AND list_contains($types, type)
ORDER BY symbol;
