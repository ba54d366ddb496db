-- Insert the registered Arrow table `incoming_alerts` (one row per alert).
INSERT INTO integrity_alerts BY NAME SELECT * FROM incoming_alerts;
