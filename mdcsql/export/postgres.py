"""PostgreSQL exports: the design's PostgresCopy and SqlInsert formats and the TimescaleDB profile.

An export directory loads into a real server as written (``./load.sh [psql options]``):

    schema.sql         CREATE TABLE IF NOT EXISTS per exported event type (exports/postgres/table.sql
                       with the type's columns from exports/postgres/columns/)
    timescaledb.sql    (TimescaleDB profile) guarded create_hypertable + compression policy
    indexes.sql        (symbol, ts) per table
    data/<table>/NNNN_<symbol>.copy   COPY text format  (PostgresCopy), or
    data/<table>/NNNN_<symbol>.sql    multi-row INSERTs (SqlInsert)
    load.sql, load.sh  psql script: schema, hypertables, data (one transaction), indexes, ANALYZE

Types: ``timestamptz`` for ts/recv_ts floored to the microsecond (PostgreSQL's resolution) plus
``ts_ns``/``recv_ts_ns`` bigint holding the exact nanoseconds; ``numeric`` for prices and sizes
(exact, as archived); ``bigint`` seq; ``text[]`` conditions; ``jsonb`` L2 book sides.

The rows are rendered by DuckDB in an in-memory connection (macros in
``sql/queries/export_pg_macros.sql``): each value becomes PostgreSQL's text for its type and is
then escaped for COPY text format or quoted as an SQL literal; Python only names allow-listed
columns and moves files. Everything is written under a temporary sibling directory and renamed
to ``dest`` at the end, so a directory named ``dest`` is always a complete export.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import duckdb
import pyarrow as pa

from mdcsql.catalog.views import VIEW_TYPES, sql_literal
from mdcsql.errors import InputError, MdcsqlError
from mdcsql.sql import load_sql

__all__ = ["export_postgres", "PostgresWriter", "PgOptions", "TEMPLATES", "MODES"]

#: loader templates and DDL (the repository's exports/postgres/)
TEMPLATES = Path(__file__).resolve().parents[2] / "exports" / "postgres"
#: mode -> the design's ExportFormat name
MODES = {"copy": "PostgresCopy", "insert": "SqlInsert"}
_VIEW_OF_TYPE = {t: v for v, t in VIEW_TYPES.items()}
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
_INTERVAL = re.compile(r"^[1-9][0-9]{0,5} (microsecond|millisecond|second|minute|hour|day|week|month|year)s?$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_NUMERIC_KINDS = ("num", "int", "ns")           # rendered unquoted in INSERTs


@dataclass(frozen=True)
class PgOptions:
    """The profile's postgres options (exports/profiles/TimescaleDB.json keys) plus two of ours.

    ``compress_after``: age of chunks the compression policy compresses; ``insert_batch``: rows per
    multi-row INSERT statement (SqlInsert).
    """

    include_ddl: bool = True
    include_hypertable: bool = False
    chunk_interval: str = "1 day"
    compression_policy: bool = False
    include_indexes: bool = True
    compress_after: str = "7 days"
    insert_batch: int = 1000

    @classmethod
    def from_mapping(cls, options: dict | None, *, timescale: bool = False) -> "PgOptions":
        opts = dict(options or {})
        if timescale:
            opts.setdefault("include_hypertable", True)
            opts.setdefault("compression_policy", True)
        unknown = sorted(set(opts) - set(cls.__dataclass_fields__))
        if unknown:
            raise InputError(f"unknown PostgreSQL export option(s) {', '.join(unknown)}; "
                             f"allowed: {', '.join(cls.__dataclass_fields__)}", field=unknown[0])
        self = cls(**opts)
        for name in ("chunk_interval", "compress_after"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _INTERVAL.match(value.strip().lower()):
                raise InputError(f"{name} {value!r} is not a PostgreSQL interval such as '1 day', "
                                 "'6 hours' or '1 week'", field=name)
        if not isinstance(self.insert_batch, int) or not 1 <= self.insert_batch <= 100_000:
            raise InputError(f"insert_batch {self.insert_batch!r} must be an integer from 1 to 100000",
                             field="insert_batch")
        return self


@dataclass(frozen=True)
class _Column:
    name: str           # PostgreSQL column
    expr: str           # DuckDB expression rendering its text (NULL for NULL)
    kind: str


def _columns(schema: pa.Schema) -> list[_Column]:
    """PostgreSQL columns of an event table, from the Arrow schema the reader returns."""
    out = []
    for f in schema:
        if f.name == "file":
            continue
        if not _IDENT.match(f.name):
            raise MdcsqlError(f"column name {f.name!r} is not a plain identifier")
        q, t = f'"{f.name}"', f.type
        if pa.types.is_timestamp(t):
            out += [_Column(f.name, f"pg_ts({q})", "ts"), _Column(f"{f.name}_ns", f"pg_ns({q})", "ns")]
        elif pa.types.is_decimal(t):
            out.append(_Column(f.name, f"pg_num({q})", "num"))
        elif pa.types.is_integer(t):
            out.append(_Column(f.name, f"pg_int({q})", "int"))
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            out.append(_Column(f.name, f"pg_text({q})", "text"))
        elif pa.types.is_list(t) and (pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)):
            out.append(_Column(f.name, f"pg_text_array({q})", "text_array"))
        elif pa.types.is_list(t) and pa.types.is_struct(t.value_type):
            out.append(_Column(f.name, f"pg_book({q})", "book"))
        else:
            raise MdcsqlError(f"column {f.name!r} of type {t} has no PostgreSQL mapping")
    return out


def _line_expr(table: str, cols: list[_Column], mode: str, batch: int) -> str:
    """DuckDB expression of one output line (identifiers from the allow-list only)."""
    if mode == "copy":
        return "concat_ws(chr(9), " + ", ".join(f"pg_copy({c.expr}, {sql_literal(c.name)})" for c in cols) + ")"
    values = ", ".join(f"coalesce({c.expr}, 'NULL')" if c.kind in _NUMERIC_KINDS
                       else f"pg_lit({c.expr}, {sql_literal(c.name)})" for c in cols)
    head = f'INSERT INTO {table} ({", ".join(_quote(c.name) for c in cols)}) VALUES'
    return (f"CASE WHEN export_rn % {batch} = 1 OR {batch} = 1 THEN {sql_literal(head)} || chr(10) ELSE '' END"
            f" || '(' || concat_ws(', ', {values}) || ')'"
            f" || CASE WHEN export_rn % {batch} = 0 OR export_rn = export_n THEN ';' ELSE ',' END")


def _naive_utc(rows):
    """Zone-aware timestamps (``timestamp[ns, tz=UTC]``) as plain ``timestamp[ns]`` of the same
    instants: DuckDB reads zoned Arrow timestamps as microsecond TIMESTAMPTZ, dropping the ns."""
    schema = rows.schema
    if not any(pa.types.is_timestamp(f.type) and f.type.tz for f in schema):
        return rows
    naive = pa.schema([f.with_type(pa.timestamp(f.type.unit)) if pa.types.is_timestamp(f.type) and f.type.tz
                       else f for f in schema])
    if isinstance(rows, pa.Table):
        return rows.cast(naive)
    return pa.RecordBatchReader.from_batches(naive, (b.cast(naive) for b in rows))


def _quote(ident: str) -> str:
    return f'"{ident}"'


def _template(name: str, **values: str) -> str:
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


@dataclass
class _TableOut:
    table: str
    columns: list[_Column]
    files: list[str] = field(default_factory=list)       # relative to the export directory
    rows: int = 0


class PostgresWriter:
    """Writes one PostgreSQL export into ``workdir`` (a fresh directory the caller renames).

    ``add(type, symbol, table)`` once per chunk of rows (an Arrow table or record batch reader of
    the reader's schema), then ``finish()`` for the DDL and loader scripts. Used by
    :func:`export_postgres` and by the format registry.
    """

    def __init__(self, workdir, *, mode: str = "copy", options: PgOptions | None = None) -> None:
        if mode not in MODES:
            raise InputError(f"unknown PostgreSQL export mode {mode!r}; expected one of {', '.join(MODES)}",
                             field="mode")
        self.workdir = Path(workdir)
        self.mode = mode
        self.options = options or PgOptions()
        self._tables: dict[str, _TableOut] = {}
        self._con = duckdb.connect()
        self._con.execute(load_sql("queries/export_pg_macros.sql"))
        self._lines_sql = load_sql("queries/export_pg_lines.sql")

    def close(self) -> None:
        self._con.close()

    def declare(self, type_: str, schema: pa.Schema) -> str:
        """Include ``type_``'s table (DDL, indexes) even if no rows follow; returns the table name."""
        table = _VIEW_OF_TYPE.get(type_, type_)
        if table not in VIEW_TYPES:
            raise InputError(f"unknown event type {type_!r}; expected one of {', '.join(_VIEW_OF_TYPE)}",
                             field="type")
        if table not in self._tables:
            self._tables[table] = _TableOut(table, _columns(schema))
        return table

    def add(self, type_: str, rows, *, name: str | None = None) -> int:
        """Write one chunk of rows of ``type_`` (an Arrow table or record batch reader of the
        reader's schema) to a new data file, ``data/<table>/NNNN_<name>.<ext>`` (``name``: e.g. the
        symbol; none: ``data/<table>/NNNN.<ext>``); returns the row count (no file for no rows)."""
        rows = _naive_utc(rows)
        table = self.declare(type_, rows.schema)
        out = self._tables[table]
        if isinstance(rows, pa.Table) and rows.num_rows == 0:
            return 0
        ext = "copy" if self.mode == "copy" else "sql"
        label = f"_{_UNSAFE.sub('_', name)[:60]}" if name else ""
        rel = f"data/{table}/{len(out.files) + 1:04d}{label}.{ext}"
        path = self.workdir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        line = _line_expr(table, out.columns, self.mode, self.options.insert_batch)
        sql = self._lines_sql.replace("{{line}}", line).replace("{{path}}", sql_literal(str(path)))
        self._con.register("export_rows", rows)
        try:
            result = self._con.execute(sql).fetchall()
        except duckdb.Error as exc:
            raise MdcsqlError(f"PostgreSQL export of {table} ({name or 'all symbols'}): {str(exc).strip()}") from None
        finally:
            self._con.unregister("export_rows")
        count = int(result[0][0]) if result and result[0] else 0
        if count == 0:
            path.unlink(missing_ok=True)
            return 0
        out.files.append(rel)
        out.rows += count
        return count

    def tables(self) -> list[list[str]]:
        """The data files written so far, per table (relative paths)."""
        return [list(t.files) for t in self._tables.values()]

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self._tables.values())

    def finish(self, *, scripts_only: bool = False) -> list[str]:
        """Write schema/indexes/timescaledb/load scripts; returns every file written (relative),
        or only the scripts."""
        opts, tables = self.options, list(self._tables.values())
        written: list[str] = []

        def put(rel: str, text: str, *, executable: bool = False) -> None:
            p = self.workdir / rel
            p.write_text(text, encoding="utf-8")
            if executable:
                p.chmod(0o755)
            written.append(rel)

        steps, after = [], []
        if opts.include_ddl:
            put("schema.sql", "\n".join(_template("table.sql", table=t.table,
                                                   columns=_template(f"columns/{t.table}.sql").rstrip("\n"))
                                         for t in tables))
            steps.append("\\ir schema.sql")
        if opts.include_hypertable:
            put("timescaledb.sql", "\n".join(_template(
                "timescaledb.sql", table=t.table, chunk_interval=opts.chunk_interval.strip().lower(),
                compress_after=opts.compress_after.strip().lower(),
                compress="true" if opts.compression_policy else "false") for t in tables))
            steps.append("\\ir timescaledb.sql")
        for t in tables:
            cols = ", ".join(_quote(c.name) for c in t.columns)
            for rel in t.files:
                if self.mode == "copy":
                    steps.append(f"\\copy {t.table} ({cols}) FROM '{rel}' WITH (FORMAT text, ENCODING 'UTF8')")
                else:
                    steps.append(f"\\ir {rel}")
        if opts.include_indexes:
            put("indexes.sql", "".join(_template("indexes.sql", table=t.table) for t in tables))
            steps.append("\\ir indexes.sql")
        after += [f"ANALYZE {t.table};" for t in tables]
        names = ", ".join(t.table for t in tables) or "no table"
        put("load.sql", _template("load.sql", format=MODES[self.mode], rows=str(self.rows), tables=names,
                                  steps="\n".join(steps), after="\n".join(after)))
        put("load.sh", _template("load.sh"), executable=True)
        return written if scripts_only else [f for t in tables for f in t.files] + written


def _symbols(root: Path, type_: str) -> list[str]:
    from mdcsql.catalog import Catalog
    with Catalog.open(root, read_only=True) as cat:
        return [r[0] for r in cat.execute(load_sql("queries/export_pg_symbols.sql"), {"type": type_}).rows]


def _types(types) -> list[str]:
    if types is None:
        return list(_VIEW_OF_TYPE)
    out = []
    for t in ([types] if isinstance(types, str) else types):
        name = VIEW_TYPES.get(t, t)
        if name not in _VIEW_OF_TYPE:
            raise InputError(f"unknown event type {t!r}; expected one of {', '.join(_VIEW_OF_TYPE)} "
                             f"(or a view name)", field="types")
        if name not in out:
            out.append(name)
    return out


def prepare_dest(dest) -> tuple[Path, Path]:
    """(final, temporary) directories: ``dest`` must not exist or be empty; the temporary sibling
    is renamed onto it once the export is complete."""
    dest = Path(dest).resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise MdcsqlError(f"export destination {dest} already exists and is not an empty directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = dest.parent / f".{dest.name}.partial-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    return dest, work


def publish(work: Path, dest: Path) -> None:
    """Make the finished export visible under its final name in one rename (after an fsync)."""
    for dirpath, _, files in os.walk(work):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    if dest.exists():
        dest.rmdir()                    # empty (checked by prepare_dest)
    os.rename(work, dest)
    fd = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def export_postgres(archive_root, *, symbols: Iterable[str] | None = None, types=None, start=None, end=None,
                    dest, mode: str = "copy", timescale: bool = False, options: dict | None = None,
                    progress: Callable[[int], None] | None = None) -> list[Path]:
    """Export an archive's events for PostgreSQL (``mode="copy"``: PostgresCopy, ``"insert"``:
    SqlInsert; ``timescale=True``: the TimescaleDB profile's hypertables and compression policy).

    :param symbols: symbols to export (default: every symbol that has files of the type).
    :param types: event types or view names (default: all six; tables only for types with rows).
    :param start, end: ``start <= ts < end``: int UTC ns, ISO-8601 text, date or datetime.
    :param options: :class:`PgOptions` keys (the profile's postgres options).
    :returns: the files written, under ``dest``.
    :raises InputError: bad mode, type or option; :raises MdcsqlError: ``dest`` not empty.
    """
    from mdcsql.reader import Reader
    root = Path(archive_root)
    if mode not in MODES:
        raise InputError(f"unknown PostgreSQL export mode {mode!r}; expected one of {', '.join(MODES)}",
                         field="mode")
    wanted = _types(types)
    opts = PgOptions.from_mapping(options, timescale=timescale)
    chosen = None if symbols is None else [symbols] if isinstance(symbols, str) else list(symbols)
    final, work = prepare_dest(dest)
    writer = PostgresWriter(work, mode=mode, options=opts)
    try:
        with Reader(root) as reader:
            for type_ in wanted:
                if types is not None:
                    writer.declare(type_, reader.schema(type_))
                for symbol in (chosen if chosen is not None else _symbols(root, type_)):
                    n = writer.add(type_, reader.read(type_, symbol, start, end), name=symbol)
                    if progress and n:
                        progress(n)
        files = writer.finish()
        publish(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        writer.close()
    return [final / f for f in files]
