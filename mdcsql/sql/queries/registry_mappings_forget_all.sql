-- Forget every mapping (before re-importing them from _catalog/symbols.json).
DELETE FROM symbol_mappings;
