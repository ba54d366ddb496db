-- The file list of one session: one row per distinct path of the bound list.
INSERT INTO session_files (session_id, path)
SELECT DISTINCT $session_id, p FROM unnest($paths::VARCHAR[]) AS t(p);
