-- 004_lifecycle: lineage of every lifecycle transition (migrate, compact, split, consolidate).
-- Mirrored from _catalog/lineage.jsonl (one record per transition, appended and fsync'd before
-- the transition deletes its inputs); each output's manifest carries the same record.
CREATE TABLE lineage (
    seq            BIGINT NOT NULL,         -- record number in the log (1 = first)
    transition_id  VARCHAR NOT NULL,
    operation      VARCHAR NOT NULL,        -- migrate | compact | split | consolidate | convert
    input_path     VARCHAR,
    input_sha256   VARCHAR,
    input_events   BIGINT,
    output_path    VARCHAR,
    output_sha256  VARCHAR,
    output_events  BIGINT,
    parameters     JSON,
    recorded_at    TIMESTAMP NOT NULL      -- UTC (the transition's time)
);
