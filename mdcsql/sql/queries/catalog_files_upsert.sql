-- Insert or replace file rows from the registered Arrow table `catalog_incoming` (same columns).
INSERT OR REPLACE INTO files (
    path, tier, root, state, format, codec, compression_level, symbol, type, source, asset_class,
    partition, period, period_start, part, size_bytes, raw_bytes, sha256, raw_sha256, event_count,
    first_seq, last_seq, first_ts, last_ts, gap_count, gaps, duplicates_dropped, ts_clock,
    created_at, sealed_at, schema_version, session_id, mtime_ns, manifest_mtime_ns, indexed_at
)
SELECT
    path, tier, root, state, format, codec, compression_level, symbol, type, source, asset_class,
    partition, period, period_start, part, size_bytes, raw_bytes, sha256, raw_sha256, event_count,
    first_seq, last_seq, first_ts, last_ts, gap_count, gaps, duplicates_dropped, ts_clock,
    created_at, sealed_at, schema_version, session_id, mtime_ns, manifest_mtime_ns, indexed_at
FROM catalog_incoming;
