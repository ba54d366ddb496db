-- Macros of the PostgreSQL export (mdcsql.export.postgres), created in its own in-memory DuckDB
-- connection (never in the catalog). Each pg_* value macro renders one column as the text
-- PostgreSQL reads for its type, or NULL; pg_copy / pg_lit then encode that text as a COPY text
-- field or as an SQL literal.

-- Exact decimal text without trailing fraction zeros: 187.100000000000000000 -> 187.1.
CREATE OR REPLACE MACRO pg_num(d) AS
    CASE WHEN d IS NULL THEN NULL
         WHEN contains(CAST(d AS VARCHAR), '.') THEN regexp_replace(CAST(d AS VARCHAR), '\.?0+$', '')
         ELSE CAST(d AS VARCHAR) END;

-- timestamptz text, floored to the microsecond (PostgreSQL's resolution; the *_ns column keeps
-- the exact nanoseconds). Floor, not round, so ts never moves to a later microsecond or day.
CREATE OR REPLACE MACRO pg_ts(t) AS
    strftime(make_timestamp((epoch_ns(t) - (((epoch_ns(t) % 1000) + 1000) % 1000)) // 1000),
             '%Y-%m-%d %H:%M:%S.%f') || '+00';

CREATE OR REPLACE MACRO pg_ns(t) AS CAST(epoch_ns(t) AS VARCHAR);

CREATE OR REPLACE MACRO pg_int(i) AS CAST(i AS VARCHAR);

CREATE OR REPLACE MACRO pg_text(s) AS s;

-- text[] literal: every element double-quoted with " and \ backslash-escaped; NULL elements as NULL.
CREATE OR REPLACE MACRO pg_text_array(l) AS
    CASE WHEN l IS NULL THEN NULL
         ELSE '{' || array_to_string(list_transform(l, lambda x:
                  CASE WHEN x IS NULL THEN 'NULL'
                       ELSE '"' || replace(replace(x, '\', '\\'), '"', '\"') || '"' END), ',') || '}' END;

-- jsonb text of an L2 side: [{"price":187.1,"size":300}, ...] in the order sent (best first);
-- numbers written exactly (jsonb keeps them as numeric).
CREATE OR REPLACE MACRO pg_book(l) AS
    CASE WHEN l IS NULL THEN NULL
         ELSE '[' || array_to_string(list_transform(l, lambda e:
                  CASE WHEN e IS NULL THEN 'null'
                       ELSE '{"price":' || coalesce(pg_num(e.price), 'null')
                            || ',"size":' || coalesce(pg_num(e.size), 'null') || '}' END), ',') || ']' END;

-- One field of PostgreSQL's COPY text format: \N for NULL; backslash, tab, newline and carriage
-- return escaped. PostgreSQL text cannot hold NUL, so a NUL is an error naming the column.
CREATE OR REPLACE MACRO pg_copy(v, col) AS
    CASE WHEN v IS NULL THEN '\N'
         WHEN contains(v, chr(0)) THEN error('column ' || col || ' holds a NUL character, which PostgreSQL text cannot store')
         ELSE replace(replace(replace(replace(v, '\', '\\'), chr(9), '\t'), chr(10), '\n'), chr(13), '\r') END;

-- An SQL literal (standard_conforming_strings = on): quotes doubled, everything else verbatim.
CREATE OR REPLACE MACRO pg_lit(v, col) AS
    CASE WHEN v IS NULL THEN 'NULL'
         WHEN contains(v, chr(0)) THEN error('column ' || col || ' holds a NUL character, which PostgreSQL text cannot store')
         ELSE '''' || replace(v, '''', '''''') || '''' END;
