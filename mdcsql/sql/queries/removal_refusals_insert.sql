-- Insert the registered Arrow table `incoming_refusals` (one row per refused path and reason).
INSERT INTO refusals BY NAME SELECT * FROM incoming_refusals;
