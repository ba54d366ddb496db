#!/bin/sh
# Load this export into PostgreSQL: ./load.sh [psql connection options], e.g.
#   ./load.sh -h localhost -p 5432 -U me -d marketdata
# (or PGHOST/PGPORT/PGUSER/PGDATABASE). Stops at the first error; the data loads in one
# transaction, so a failed load leaves no partial rows.
set -eu
cd "$(dirname "$0")"
exec psql -X -q -v ON_ERROR_STOP=1 -f load.sql "$@"
