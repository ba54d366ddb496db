-- Insert the registered Arrow table `incoming_archive_entries` (one row per archive entry).
INSERT INTO archive_entries BY NAME SELECT * FROM incoming_archive_entries;
