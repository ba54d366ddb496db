-- catalog_files_signatures.sql for some paths only. $paths: list of relative paths.
SELECT path, size_bytes, mtime_ns, manifest_mtime_ns, state, event_count IS NOT NULL AS has_stats
FROM files
WHERE path IN (SELECT unnest($paths::VARCHAR[]));
