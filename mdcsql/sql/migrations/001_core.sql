-- 001_core: the catalog's core tables.
-- Everything here is derived from the archive tree (invariant 1) except the registries
-- (`symbols`, `sources`), which are also exported to _catalog/*.json by every change and
-- re-imported from there when the catalog is recreated.

-- One row per data file under a tier root. `path` is relative to the archive root (POSIX).
CREATE TABLE files (
    path               VARCHAR PRIMARY KEY,
    tier               VARCHAR NOT NULL,      -- 'hot' for live/ and historical/ (warm/cold/archive later)
    root               VARCHAR NOT NULL,      -- tier root directory: 'live' | 'historical'
    state              VARCHAR NOT NULL,      -- 'open' (hot, no manifest) | 'sealed' | 'orphan'
    format             VARCHAR NOT NULL,      -- 'jsonl'
    codec              VARCHAR NOT NULL,      -- 'none' | 'gzip' | 'zstd'
    compression_level  INTEGER,
    symbol             VARCHAR NOT NULL,
    type               VARCHAR NOT NULL,      -- event type: Trade, BboQuote, ...
    source             VARCHAR NOT NULL,
    asset_class        VARCHAR NOT NULL,
    partition          VARCHAR,               -- date partition: None | Daily | Hourly | Monthly
    period             VARCHAR,               -- period label, e.g. 2024-01-15 (NULL for partition None)
    period_start       TIMESTAMP,             -- UTC start of the period
    part               INTEGER NOT NULL,
    size_bytes         BIGINT,                -- stored bytes (from the file itself)
    raw_bytes          BIGINT,                -- uncompressed JSONL bytes
    sha256             VARCHAR,               -- of the stored bytes (sealed files)
    raw_sha256         VARCHAR,               -- of the uncompressed JSONL (sealed files)
    event_count        BIGINT,
    first_seq          BIGINT,
    last_seq           BIGINT,
    first_ts           TIMESTAMP_NS,
    last_ts            TIMESTAMP_NS,
    gap_count          BIGINT,
    gaps               JSON,                  -- [[first_missing_seq, last_missing_seq], ...]
    duplicates_dropped BIGINT,
    ts_clock           VARCHAR,               -- which clock partitioned the file: 'event' | 'receive'
    created_at         TIMESTAMP,             -- UTC
    sealed_at          TIMESTAMP,             -- UTC
    schema_version     INTEGER,
    session_id         VARCHAR,
    mtime_ns           BIGINT,                -- data file mtime when indexed (change detection)
    manifest_mtime_ns  BIGINT,                -- its manifest's mtime (NULL: no manifest)
    indexed_at         TIMESTAMP              -- UTC; the only column a rebuild does not reproduce
);

-- Symbol registry (design: "Symbol Naming Standardization").
CREATE TABLE symbols (
    symbol       VARCHAR PRIMARY KEY,
    canonical    VARCHAR,
    aliases      VARCHAR[],
    asset_class  VARCHAR,
    exchange     VARCHAR,
    currency     VARCHAR,
    isin         VARCHAR,
    figi         VARCHAR,
    sedol        VARCHAR
);

-- Source registry (design: "Source Registry").
CREATE TABLE sources (
    id              VARCHAR PRIMARY KEY,
    name            VARCHAR,
    type            VARCHAR,                  -- 'live' | 'historical'
    priority        INTEGER,
    asset_classes   VARCHAR[],
    data_types      VARCHAR[],
    latency_ms      DOUBLE,
    reliability     DOUBLE,
    cost_per_event  DOUBLE,
    enabled         BOOLEAN
);

-- Event JSON schemas by version and event type ('*' = the whole document of that version).
CREATE TABLE schemas (
    version     INTEGER NOT NULL,
    event_type  VARCHAR NOT NULL,
    json        JSON NOT NULL,
    PRIMARY KEY (version, event_type)
);

-- Small key/value state of the catalog itself (e.g. the fingerprint of the generated views).
CREATE TABLE catalog_state (
    key    VARCHAR PRIMARY KEY,
    value  JSON
);
