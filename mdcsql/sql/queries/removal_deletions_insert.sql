-- Insert the registered Arrow table `incoming_deletions` (one row per deleted file).
INSERT INTO deletions BY NAME SELECT * FROM incoming_deletions;
