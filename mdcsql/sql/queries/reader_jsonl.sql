-- reader_jsonl: the events of a list of JSONL files (any codec) between two times, with the
-- projection and column types of the catalog view of their type (mdcsql.reader.Reader).
-- The projection placeholder is the SELECT list of views/<view>.sql (trusted text shipped with mdcsql); every
-- value is a bound parameter: $lenient / $strict are lists of absolute file paths (each list
-- begins with the catalog's empty sentinel file so that it is never empty), $columns the JSON keys
-- and their DuckDB types, $symbol the symbol, $lo / $hi the half-open range [lo, hi) of ts in
-- integer UTC nanoseconds.
-- As in the views: uncompressed files (hot, possibly being appended to) are read leniently and a
-- torn last line, read as an all-NULL row, is dropped; compressed (sealed) files are read strictly.
SELECT * EXCLUDE (file) FROM (
    {{projection}}
    FROM (
        SELECT * FROM (
            SELECT * EXCLUDE (filename), filename AS file
            FROM read_json($lenient, format = 'newline_delimited', columns = $columns,
                           filename = true, hive_partitioning = false, allow_empty = true,
                           ignore_errors = true)
            WHERE ts IS NOT NULL
            UNION ALL
            SELECT * EXCLUDE (filename), filename AS file
            FROM read_json($strict, format = 'newline_delimited', columns = $columns,
                           filename = true, hive_partitioning = false, allow_empty = true)
        )
        WHERE symbol = $symbol AND ts >= $lo AND ts < $hi
    ) AS e
);
