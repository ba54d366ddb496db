-- What sync compares with the tree: each row's change signature, its state and whether its
-- event statistics are known.
SELECT path, size_bytes, mtime_ns, manifest_mtime_ns, state, event_count IS NOT NULL AS has_stats
FROM files;
