-- The archive catalog as mirrored; $reason NULL for every reason.
SELECT id, path, archive_reason, type, symbols, date_start, date_end, event_count, size_bytes,
       checksum, created_at, retention_until, immutable, locked_at, worm_mode, signed
FROM archive_entries
WHERE $reason IS NULL OR archive_reason = $reason
ORDER BY path;
