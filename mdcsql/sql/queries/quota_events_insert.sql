-- Insert the registered Arrow table `incoming_quota_events` (one row per record).
INSERT INTO quota_events BY NAME SELECT * FROM incoming_quota_events;
