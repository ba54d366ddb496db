-- Remember the SHA-256 of the backup log just mirrored (the table was emptied before).
INSERT INTO backup_log_state (log_sha256) VALUES ($sha);
