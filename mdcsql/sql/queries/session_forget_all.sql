-- Forget every session (a catalog rebuild re-reads them all from sessions/*/manifest.json).
DELETE FROM session_files;
DELETE FROM sessions;
