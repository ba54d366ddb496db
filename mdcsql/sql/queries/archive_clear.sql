-- Forget the mirrored archive catalog (re-read from _archive/<reason>/manifest.json).
DELETE FROM archive_entries;
DELETE FROM archive_retention_changes;
