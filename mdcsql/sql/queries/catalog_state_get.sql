-- One catalog_state value. $key
SELECT value FROM catalog_state WHERE key = $key;
