-- Forget the mirrored quota events (re-read from _catalog/quota_events.jsonl).
DELETE FROM quota_events;
