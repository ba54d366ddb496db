-- Forget the mirrored integrity alerts (re-read from _catalog/alerts.jsonl).
DELETE FROM integrity_alerts;
