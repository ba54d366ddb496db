-- Set one catalog_state value. $key, $value (JSON text)
INSERT OR REPLACE INTO catalog_state (key, value) VALUES ($key, $value);
