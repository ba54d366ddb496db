-- Forget the mirrored refusals (re-read from _catalog/refusals.jsonl).
DELETE FROM refusals;
