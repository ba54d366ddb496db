-- Recorded deletions, newest first; $limit rows.
SELECT seq, recorded_at, action, reason, actor, path, tier, symbol, type, source, size_bytes, event_count,
       approved_by, override_by, override_reason
FROM deletions
ORDER BY seq DESC
LIMIT $limit;
