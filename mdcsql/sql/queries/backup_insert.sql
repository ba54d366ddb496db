-- One backup of _catalog/backups.jsonl.
INSERT INTO backups (target, backup_id, created_at, finished_at, parent, file_count, total_bytes, new_objects,
                     new_bytes, skipped, problems, schedule, manifest_sha256, state, pruned_at)
VALUES ($target, $backup_id, $created_at, $finished_at, $parent, $file_count, $total_bytes, $new_objects,
        $new_bytes, $skipped, $problems, $schedule, $manifest_sha256, $state, $pruned_at);
