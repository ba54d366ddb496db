-- Deduplication (mdcsql.export.transforms.Dedup): the input row number (__row) of the first row of
-- each distinct key, in input order. `dedup_input` holds only the key columns (chosen in Python
-- from the table's own column names) and __row; NULLs compare equal, lists and structs work.
SELECT __keep
FROM (
    SELECT COLUMNS(* EXCLUDE (__row)), min(__row) AS __keep
    FROM dedup_input
    GROUP BY ALL
)
ORDER BY __keep;
