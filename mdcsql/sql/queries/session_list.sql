-- Sessions filtered by state, tags (all of them), category and time, newest first. Every filter is a bound
-- value and NULL means "any". A session's span is [started_at (or created_at), ended_at (or
-- $now; created_at when never started)]; it matches when the span overlaps [$since, $until).
SELECT session_id, name, type, state, created_at, started_at, ended_at, active_seconds, symbols,
       tags, categories, metadata, merged_from, file_count, total_events, size_bytes, raw_bytes,
       gaps_detected, sequence_errors, duplicates_dropped, quality_score
FROM sessions
WHERE ($state IS NULL OR state = $state)
  AND ($tags IS NULL OR list_has_all(tags, $tags::VARCHAR[]))
  AND ($category IS NULL OR list_contains(categories, $category))
  AND ($until IS NULL OR coalesce(started_at, created_at) < $until)
  AND ($since IS NULL OR coalesce(ended_at, CASE WHEN started_at IS NULL THEN created_at ELSE $now END) >= $since)
ORDER BY coalesce(started_at, created_at) DESC, session_id;
