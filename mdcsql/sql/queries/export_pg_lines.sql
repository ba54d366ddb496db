-- Writes one data file of the PostgreSQL export: one line per row of the registered Arrow table
-- `export_rows`, in (ts, seq, source) order (export_rn; export_n is the row count, for closing
-- the last multi-row INSERT). {{line}} is the row's text, built from the pg_* macros of
-- export_pg_macros.sql over allow-listed column names; {{path}} is the target file.
-- QUOTE '' and ESCAPE '': the line is written verbatim (its escaping is already done).
COPY (
    SELECT {{line}} AS line
    FROM (SELECT *,
                 row_number() OVER (ORDER BY ts, seq NULLS LAST, source) AS export_rn,
                 count(*) OVER () AS export_n
          FROM export_rows)
    ORDER BY export_rn
) TO {{path}} (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '|');
