-- Remove the mirrored file list of one session (before inserting its current one).
DELETE FROM session_files WHERE session_id = $session_id;
