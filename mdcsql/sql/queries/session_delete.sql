-- Forget one session row (its folder is gone from the tree); its files go with session_files_clear.sql.
DELETE FROM sessions WHERE session_id = $session_id;
