-- Insert the registered Arrow table `incoming_archive_changes` (retention history of the entries).
INSERT INTO archive_retention_changes BY NAME SELECT * FROM incoming_archive_changes;
