-- Date-ranged symbol mappings, by alias, source scope (every-source first) and start.
SELECT alias, canonical, valid_from, valid_to, source, note
FROM symbol_mappings
ORDER BY alias, source NULLS FIRST, valid_from;
