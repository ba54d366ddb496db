-- 007_quotas: quota and integrity records, mirrored from the files that hold them (invariant 1):
-- _catalog/quota_events.jsonl (warnings, cleanup requests, refusals, deletions of the quota
-- enforcement, dynamic limit changes), _catalog/quota_limits.json (applied dynamic limits) and
-- _catalog/alerts.jsonl (integrity alerts: sequence gaps, stale streams).
-- Refreshed by mdcsql.lifecycle.quota_mirror on every full sync and rebuilt by a rebuild.

CREATE TABLE quota_events (
    seq          BIGINT NOT NULL,        -- record number in the file, from 1
    recorded_at  TIMESTAMP,              -- UTC
    kind         VARCHAR NOT NULL,       -- warn | cleanup_requested | refused | dropped | drop_skipped | over_limit | dynamic_limit
    origin       VARCHAR,                -- write | enforce | rebalance
    scope        VARCHAR,                -- e.g. PerSymbol.AAPL (default)
    enforcement  VARCHAR,
    dimension    VARCHAR,                -- MaxBytes | MaxFiles | MaxEventsPerDay
    limit_value  BIGINT,
    usage        BIGINT,
    day          VARCHAR,                -- the UTC day of a MaxEventsPerDay record
    path         VARCHAR,                -- the file a deletion removed (or kept)
    record       JSON NOT NULL           -- the whole record
);

CREATE TABLE quota_limits (
    scope        VARCHAR PRIMARY KEY,
    max_bytes    BIGINT NOT NULL,        -- the dynamic limit in effect
    configured   BIGINT,                 -- the configured MaxBytes it replaces
    reason       VARCHAR,
    as_of        VARCHAR,
    applied_at   VARCHAR
);

CREATE TABLE integrity_alerts (
    seq          BIGINT NOT NULL,
    recorded_at  TIMESTAMP,
    kind         VARCHAR NOT NULL,       -- sequence_gap | stale_data | ...
    source       VARCHAR,
    asset_class  VARCHAR,
    symbol       VARCHAR,
    type         VARCHAR,
    file         VARCHAR,
    record       JSON NOT NULL
);
