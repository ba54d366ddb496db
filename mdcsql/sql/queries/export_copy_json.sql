-- export_copy_json: one selection (placeholder selection: export_select.sql, values bound) to
-- newline-delimited JSON $path; placeholder compression: none or gzip (allow-listed).
-- Returns the number of rows written.
COPY ({{selection}}) TO $path (FORMAT json, COMPRESSION {{compression}})
