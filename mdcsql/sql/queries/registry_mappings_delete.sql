-- Remove the mappings of one alias and source scope starting on $valid_from; returns them.
DELETE FROM symbol_mappings
WHERE alias = $alias AND source IS NOT DISTINCT FROM CAST($source AS VARCHAR)
  AND valid_from = CAST($valid_from AS DATE)
RETURNING alias, canonical, valid_from, valid_to, source, note;
