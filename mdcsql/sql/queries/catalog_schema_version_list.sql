-- Applied migrations, oldest first.
SELECT version, name, applied_at FROM schema_version ORDER BY version;
