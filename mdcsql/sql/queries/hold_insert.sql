-- Insert the registered Arrow table `incoming_holds` (one row per hold notice).
INSERT INTO legal_holds BY NAME SELECT * FROM incoming_holds;
