-- Record one event JSON schema. $version, $event_type ('*' = the whole document), $json
INSERT OR REPLACE INTO schemas (version, event_type, json) VALUES ($version, $event_type, $json);
