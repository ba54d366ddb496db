-- What the catalog last mirrored of each session: its manifest's SHA-256.
SELECT session_id, manifest_sha256 FROM sessions;
