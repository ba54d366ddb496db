-- Enable or disable one registered source; returns its id (no row: not registered). $id, $enabled
UPDATE sources SET enabled = $enabled WHERE id = $id RETURNING id;
