"""Registers the PostgreSQL formats in the export registry (mdcsql.export.formats):

- ``PostgresCopy``: COPY text files + DDL + psql loader (the TimescaleDB profile's format: its
  ``include_hypertable``/``chunk_interval``/``compression_policy`` options add the guarded
  hypertable script);
- ``SqlInsert``: the same export with multi-row INSERT statements instead of COPY files.

The writing itself is mdcsql.export.postgres.PostgresWriter: one data file per event type
(``data/<view>/0001.copy``), then the scripts in ``finish``.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from mdcsql.export.formats import register_format
from mdcsql.export.postgres import MODES, PgOptions, PostgresWriter
from mdcsql.sql import load_sql

_ATTR = "_mdcsql_pg_writer"


def _writer(ctx, mode: str) -> PostgresWriter:
    writer = getattr(ctx, _ATTR, None)
    if writer is None:
        known = PgOptions.__dataclass_fields__
        options = PgOptions.from_mapping({k: v for k, v in (ctx.request.options or {}).items() if k in known})
        writer = PostgresWriter(ctx.out_dir, mode=mode, options=options)
        setattr(ctx, _ATTR, writer)
        ctx.details.update(postgres_mode=mode, timescaledb=options.include_hypertable,
                           chunk_interval=options.chunk_interval if options.include_hypertable else None,
                           compression_policy=options.compression_policy and options.include_hypertable)
    return writer


def _write(ctx, sel, *, mode: str) -> list[Path]:
    writer = _writer(ctx, mode)
    before = {f for t in writer.tables() for f in t}
    reader = sel.reader(ctx.con)
    writer.declare(sel.event_type, reader.schema)
    n = writer.add(sel.event_type, reader)
    ctx.progress(n)
    return [ctx.out_dir / f for t in writer.tables() for f in t if f not in before]


def _finish(ctx, sels, *, mode: str) -> list[Path]:
    writer = _writer(ctx, mode)             # (new when no type was selected: an empty, loadable export)
    try:
        files = writer.finish(scripts_only=True)
    finally:
        writer.close()
        delattr(ctx, _ATTR)
    ctx.loader_code["psql"] = "cd EXPORT_DIR && ./load.sh -d DBNAME    # or: psql -d DBNAME -f load.sql"
    return [ctx.out_dir / f for f in files]


def count_copy(files: list[Path], event_type: str | None = None) -> dict[tuple[str, str], int]:
    """Events per (symbol, UTC day) of PostgresCopy data files, read back as written (for the
    export's recorded counts and ``mdcsql export verify``)."""
    files = [f for f in files if str(f).endswith(".copy")]
    if not files:
        return {}
    con = duckdb.connect()
    try:
        rows = con.execute(load_sql("queries/export_pg_count_copy.sql"), {"files": [str(f) for f in files]}).fetchall()
    finally:
        con.close()
    return {(s, d): int(n) for s, d, n in rows}


def _write_copy(ctx, sel):
    return _write(ctx, sel, mode="copy")


def _write_insert(ctx, sel):
    return _write(ctx, sel, mode="insert")


def _finish_copy(ctx, sels):
    return _finish(ctx, sels, mode="copy")


def _finish_insert(ctx, sels):
    return _finish(ctx, sels, mode="insert")


register_format(MODES["copy"], _write_copy, finish=_finish_copy, count=count_copy, compressions=("none",),
                description="PostgreSQL: COPY text files per type, DDL, indexes, psql loader "
                            "(TimescaleDB profile: guarded hypertables)")
register_format(MODES["insert"], _write_insert, finish=_finish_insert, compressions=("none",),
                description="PostgreSQL: multi-row INSERT statements per type, DDL, indexes, psql loader")
