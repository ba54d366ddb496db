-- Insert or replace one session row (values from sessions/<id>/manifest.json).
INSERT OR REPLACE INTO sessions (
    session_id, name, type, state, created_at, started_at, ended_at, active_seconds, symbols, tags,
    categories, metadata, config, merged_from, file_count, total_events, size_bytes, raw_bytes,
    gaps_detected, sequence_errors, duplicates_dropped, quality_score, notes, updated_at, manifest_sha256
) VALUES (
    $session_id, $name, $type, $state, $created_at, $started_at, $ended_at, $active_seconds, $symbols, $tags,
    $categories, $metadata, $config, $merged_from, $file_count, $total_events, $size_bytes, $raw_bytes,
    $gaps_detected, $sequence_errors, $duplicates_dropped, $quality_score, $notes, $updated_at, $manifest_sha256
);
