-- Mappings of the same alias and source scope whose [valid_from, valid_to) overlaps the given one.
-- $alias, $source (NULL = every source), $valid_from, $valid_to (NULL = open-ended)
SELECT alias, canonical, valid_from, valid_to, source, note
FROM symbol_mappings
WHERE alias = $alias
  AND source IS NOT DISTINCT FROM CAST($source AS VARCHAR)
  AND (valid_to IS NULL OR valid_to > CAST($valid_from AS DATE))
  AND (CAST($valid_to AS DATE) IS NULL OR valid_from < CAST($valid_to AS DATE))
ORDER BY valid_from;
