-- Add one mapping (overlaps are checked before, by mdcsql.registry).
INSERT INTO symbol_mappings (alias, canonical, valid_from, valid_to, source, note)
VALUES ($alias, $canonical, $valid_from, $valid_to, $source, $note);
