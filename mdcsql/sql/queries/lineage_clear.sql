-- Forget the mirrored lineage (a rebuild re-reads _catalog/lineage.jsonl from the start).
DELETE FROM lineage;
