-- 006_backups: backups made of this archive (design: "Backup Policy"; docs/backup.md).
-- Derived from the tree (invariant 1): every row mirrors lines of _catalog/backups.jsonl, the log
-- `mdcsql backup run` appends to after writing a backup's manifest on its target
-- (mdcsql.lifecycle.backup.refresh; `mdcsql catalog rebuild` restores it).

-- One row per backup ever made, pruned ones kept with state 'pruned'.
CREATE TABLE backups (
    target           VARCHAR NOT NULL,      -- the target directory (absolute path)
    backup_id        VARCHAR NOT NULL,      -- e.g. 20240102T000000Z-1a2b3c; manifest TARGET/backups/<id>.json
    created_at       TIMESTAMP,             -- UTC, start of the run
    finished_at      TIMESTAMP,             -- UTC, when its manifest was written
    parent           VARCHAR,               -- the backup it is incremental to (previous on that target)
    file_count       BIGINT,
    total_bytes      BIGINT,                -- bytes of all files it holds
    new_objects      BIGINT,                -- contents copied by this run (the rest were in the store)
    new_bytes        BIGINT,
    skipped          BIGINT,                -- files left out (open hot files, links, vanished)
    problems         BIGINT,                -- files whose bytes differed from their sealed manifest
    schedule         VARCHAR,               -- Storage.Backup.Schedule in force (cron)
    manifest_sha256  VARCHAR,               -- of TARGET/backups/<id>.json as written
    state            VARCHAR NOT NULL,      -- kept | pruned (by RetentionBackups)
    pruned_at        TIMESTAMP,
    PRIMARY KEY (target, backup_id)
);

-- SHA-256 of _catalog/backups.jsonl when last mirrored (change detection; one row).
CREATE TABLE backup_log_state (
    log_sha256 VARCHAR NOT NULL
);
