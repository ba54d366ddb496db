-- Load an mdcsql PostgreSQL export ({{format}}, {{rows}} rows of {{tables}}).
-- Run from this directory (\copy reads paths relative to psql's working directory):
--   cd EXPORT_DIR && psql -X -v ON_ERROR_STOP=1 -f load.sql    (or ./load.sh)
\set ON_ERROR_STOP on
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
\echo mdcsql export: loading {{rows}} rows into {{tables}}
BEGIN;
{{steps}}
COMMIT;
{{after}}
\echo mdcsql export: done
