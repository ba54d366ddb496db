-- 005_perpetual: legal holds, removals (deletions and refused attempts), the archive catalog.
-- All derived from the tree (invariant 1), restored by `mdcsql catalog rebuild`:
--   legal_holds       <- _archive/legal_holds/<hold>/hold_notice.json      (mdcsql.lifecycle.holds)
--   deletions         <- _catalog/deletions.jsonl                          (mdcsql.lifecycle.removal)
--   refusals          <- _catalog/refusals.jsonl                           (mdcsql.lifecycle.guard)
--   archive_entries   <- _archive/<reason>/manifest.json                   (mdcsql.lifecycle.archive_catalog)
--   archive_retention_changes <- the same manifests' retention history

CREATE TABLE legal_holds (
    hold_id         VARCHAR PRIMARY KEY,
    reason          VARCHAR NOT NULL,
    paths           VARCHAR[],             -- path prefixes or globs, relative to the archive root
    symbols         VARCHAR[],
    type            VARCHAR,               -- event type
    source          VARCHAR,
    date_from       DATE,                  -- inclusive, UTC days
    date_to         DATE,                  -- inclusive
    created_at      TIMESTAMP NOT NULL,    -- UTC
    created_by      VARCHAR,
    released_at     TIMESTAMP,             -- NULL while the hold is active
    released_by     VARCHAR,
    release_reason  VARCHAR,
    active          BOOLEAN NOT NULL,
    notice_path     VARCHAR NOT NULL
);

CREATE TABLE deletions (
    seq              BIGINT PRIMARY KEY,   -- record number in _catalog/deletions.jsonl
    recorded_at      TIMESTAMP NOT NULL,   -- UTC
    action           VARCHAR NOT NULL,     -- retention | quota | compaction | migration | manual | ...
    reason           VARCHAR NOT NULL,
    actor            VARCHAR,
    path             VARCHAR NOT NULL,
    tier             VARCHAR,
    symbol           VARCHAR,
    type             VARCHAR,
    source           VARCHAR,
    size_bytes       BIGINT,
    event_count      BIGINT,
    sha256           VARCHAR,
    approved_by      VARCHAR[],
    override_by      VARCHAR,
    override_reason  VARCHAR
);

CREATE TABLE refusals (
    seq              BIGINT NOT NULL,      -- record number in _catalog/refusals.jsonl
    recorded_at      TIMESTAMP NOT NULL,   -- UTC
    action           VARCHAR NOT NULL,
    actor            VARCHAR,
    path             VARCHAR NOT NULL,
    kind             VARCHAR NOT NULL,     -- hold | worm | approvers | signature
    hold_id          VARCHAR,
    retention_until  TIMESTAMP,
    detail           VARCHAR NOT NULL
);

CREATE TABLE archive_entries (
    id               VARCHAR PRIMARY KEY,  -- uuid-v4
    path             VARCHAR NOT NULL,
    type             VARCHAR,
    symbols          VARCHAR[],
    date_start       DATE,
    date_end         DATE,
    event_count      BIGINT,
    size_bytes       BIGINT,
    checksum         VARCHAR,              -- 'sha256:<hex>'
    created_at       TIMESTAMP,            -- UTC
    archive_reason   VARCHAR NOT NULL,
    retention_until  TIMESTAMP,            -- NULL: kept indefinitely
    immutable        BOOLEAN NOT NULL,
    schema_version   INTEGER,
    locked_at        TIMESTAMP,            -- when the WORM lock engaged (read-only on disk)
    worm_mode        VARCHAR,              -- governance | compliance (at lock time)
    manifest_path    VARCHAR NOT NULL,     -- _archive/<reason>/manifest.json
    signed           BOOLEAN NOT NULL
);

CREATE TABLE archive_retention_changes (
    entry_id         VARCHAR NOT NULL,
    path             VARCHAR NOT NULL,
    changed_at       TIMESTAMP NOT NULL,   -- UTC
    changed_by       VARCHAR NOT NULL,
    old_until        TIMESTAMP,
    new_until        TIMESTAMP,
    kind             VARCHAR NOT NULL,     -- extend | shorten
    override_reason  VARCHAR
);
