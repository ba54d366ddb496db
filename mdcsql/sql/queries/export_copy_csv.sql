-- export_copy_csv: one selection (placeholder selection: export_select.sql, values bound) to a
-- CSV file $path with a header line; placeholder compression: none or gzip (allow-listed).
-- Returns the number of rows written.
COPY ({{selection}}) TO $path (FORMAT csv, HEADER true, COMPRESSION {{compression}})
