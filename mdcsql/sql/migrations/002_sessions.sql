-- 002_sessions: collection sessions (design: "Collection Session Management").
-- Derived from the tree (invariant 1): each row mirrors sessions/<session_id>/manifest.json, and
-- `mdcsql catalog rebuild` restores both tables from those files (mdcsql.sessions.mirror).

-- One row per session.
CREATE TABLE sessions (
    session_id       VARCHAR PRIMARY KEY,
    name             VARCHAR NOT NULL,
    type             VARCHAR NOT NULL,      -- Daily | Weekly | Monthly | Custom | Continuous
    state            VARCHAR NOT NULL,      -- Scheduled | Active | Paused | Completed | Failed | Cancelled
    created_at       TIMESTAMP NOT NULL,    -- UTC
    started_at       TIMESTAMP,             -- UTC, first time Active
    ended_at         TIMESTAMP,             -- UTC, when it reached a final state
    active_seconds   DOUBLE,                -- time spent Active (pauses excluded), as last recorded
    symbols          VARCHAR[],             -- the symbols it was meant to collect
    tags             VARCHAR[],
    categories       VARCHAR[],
    metadata         JSON,                  -- custom key/value metadata
    config           JSON,
    merged_from      VARCHAR[],             -- a merged session: the sessions whose files it unites
    file_count       BIGINT,
    total_events     BIGINT,
    size_bytes       BIGINT,                -- stored (compressed) bytes of its files
    raw_bytes        BIGINT,                -- uncompressed JSONL bytes of its files
    gaps_detected    BIGINT,
    sequence_errors  BIGINT,
    duplicates_dropped BIGINT,
    quality_score    DOUBLE,
    notes            VARCHAR,
    updated_at       TIMESTAMP,             -- UTC, last change of its manifest
    manifest_sha256  VARCHAR                -- of manifest.json when mirrored (change detection)
);

-- The files of each session (a merged session lists the union of its sources' files).
CREATE TABLE session_files (
    session_id  VARCHAR NOT NULL,
    path        VARCHAR NOT NULL,          -- relative to the archive root, as in files.path
    PRIMARY KEY (session_id, path)
);
