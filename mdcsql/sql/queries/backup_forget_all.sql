-- Forget the mirrored backup log (it is re-read in full from _catalog/backups.jsonl).
DELETE FROM backups;
DELETE FROM backup_log_state;
