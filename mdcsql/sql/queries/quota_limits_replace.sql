-- Replace the mirrored dynamic limits with the registered Arrow table `incoming_quota_limits`
-- (the whole of _catalog/quota_limits.json).
DELETE FROM quota_limits;
INSERT INTO quota_limits BY NAME SELECT * FROM incoming_quota_limits;
