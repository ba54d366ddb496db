-- Forget the mirrored deletions (re-read from _catalog/deletions.jsonl).
DELETE FROM deletions;
