-- SHA-256 of the backup log as last mirrored.
SELECT log_sha256 FROM backup_log_state;
