"""Export formats: a registry every format module plugs into, and the generic formats.

A format is a :class:`FormatSpec` registered under its design name (``ExportFormat``):

    register_format("LeanZip", write, finish=None, count=None, compressions=("none",), ...)

- ``write(ctx, sel) -> list[Path]`` is called once per event type with the :class:`ExportContext`
  (catalog connection, request, the partial export directory) and the type's
  :class:`~mdcsql.export.selection.Selection` (its SQL and bound parameters, or Arrow batches via
  ``sel.reader(ctx.con)``); it writes under ``ctx.data_dir`` and returns the data files it wrote.
- ``finish(ctx, sels) -> list[Path]`` (optional) runs once after every type: DDL, loader scripts.
- ``count(files, event_type) -> {(symbol, 'YYYY-MM-DD'): events}`` (optional) reads written files
  back; ``mdcsql export verify`` uses it, and the export records it unless the writer tallied its
  batches (``ctx.tally(event_type, batch)``, cheaper). Without either the export records the
  archive's counts for the selection (the format cannot be read back).

Names are matched case-insensitively ignoring ``_``/``-``, so profiles' ``parquet_partitioned`` or
``lean_zip`` find ``ParquetPartitioned`` / ``LeanZip``. Format modules register themselves on
import: :func:`load_plugins` imports those of ``PLUGIN_MODULES`` that exist and every
``mdcsql.export.fmt_*`` (``resolve_format`` and the CLI call it).

Generic formats here (files under ``data/``, one per event type, named after its view):
JsonLines / JsonLinesCompressed (``trades.jsonl[.gz]``, DuckDB COPY), Csv / CsvCompressed
(``trades.csv[.gz]``, DuckDB COPY), Parquet (``trades.parquet``), ParquetPartitioned
(``trades/date=YYYY-MM-DD/symbol=X/part-0.parquet``), Arrow (``trades.arrow``, IPC file) and
FeatherV2 (``trades.feather``, lz4). Text formats carry ts as ISO-8601 UTC text with nanoseconds
and decimals as exact text; columnar ones ``timestamp[ns, tz=UTC]`` and ``decimal128(38, 18)``.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pyarrow as pa

from mdcsql.errors import MdcsqlError
from mdcsql.sql import load_sql

__all__ = ["FormatSpec", "ExportContext", "FORMATS", "register_format", "resolve_format", "get_format",
           "format_names", "load_plugins", "count_parquet", "count_csv", "count_json", "count_arrow"]

Counts = dict[tuple[str, str], int]


@dataclass
class ExportContext:
    """What a writer gets besides its selection. ``details`` feeds ``format_details`` of the
    metadata (a writer may add keys, e.g. ``partitioning``); ``notes`` are free text lines."""

    catalog: object
    con: object                      # the catalog's DuckDB connection (read-only), text macros created
    root: Path
    request: object                  # ExportRequest
    out_dir: Path                    # the partial export directory (renamed when complete)
    progress: Callable[[int], None] = lambda n: None
    details: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    loader_code: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)   # type -> {(symbol, day): events}, when a writer tallies

    def tally(self, event_type: str, batch: pa.RecordBatch) -> None:
        """Count a written batch per (symbol, UTC day): cheaper than reading the files back."""
        import pyarrow.compute as pc
        days = pc.divide(batch.column("ts").cast(pa.int64()), 86_400 * 10**9)
        grouped = pa.table({"symbol": batch.column("symbol"), "day": days}).group_by(["symbol", "day"]).aggregate(
            [([], "count_all")])
        out = self.counts.setdefault(event_type, {})
        for sym, day, n in zip(*(grouped.column(c).to_pylist() for c in ("symbol", "day", "count_all"))):
            key = (sym, _day_text(day))
            out[key] = out.get(key, 0) + n

    @property
    def data_dir(self) -> Path:
        d = self.out_dir / "data"
        d.mkdir(exist_ok=True)
        return d

    def compression(self, spec: "FormatSpec") -> str:
        """The request's compression for ``spec`` (its default when ``default``), or an error."""
        wanted = self.request.compression
        if wanted == "default":
            return spec.compressions[0]
        if wanted not in spec.compressions:
            raise MdcsqlError(f"format {spec.name} does not support compression {wanted!r}; "
                              f"allowed: {', '.join(spec.compressions)}")
        return wanted


def _day_text(days: int) -> str:
    from datetime import date, timedelta
    return (date(1970, 1, 1) + timedelta(days=days)).isoformat()


@dataclass(frozen=True)
class FormatSpec:
    """One registered export format; calling it calls ``write``."""

    name: str
    write: Callable
    finish: Callable | None = None
    count: Callable | None = None
    compressions: tuple[str, ...] = ("none",)     # the first is the default
    description: str = ""

    def __call__(self, ctx: ExportContext, sel) -> list[Path]:
        return self.write(ctx, sel)


FORMATS: dict[str, FormatSpec] = {}
_PLUGIN_PREFIX = "fmt_"
#: modules of mdcsql.export that register formats when imported (E2-E4 of issue 5)
PLUGIN_MODULES = ("lean", "postgres", "delta")


def _key(name: str) -> str:
    return re.sub(r"[_\-\s]", "", str(name)).lower()


def register_format(name: str, write: Callable, **kw) -> FormatSpec:
    """Register (or replace) format ``name``; returns its spec."""
    spec = FormatSpec(name, write, **kw)
    for existing in list(FORMATS):
        if _key(existing) == _key(name):
            del FORMATS[existing]
    FORMATS[name] = spec
    return spec


#: formats registered by this module itself (filled when the module has been imported)
_BUILTIN: set[str] = set()


def load_plugins() -> list[str]:
    """Import the format modules (each registers its formats); returns their names."""
    import mdcsql.export as pkg
    loaded = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith(_PLUGIN_PREFIX) or info.name in PLUGIN_MODULES:
            importlib.import_module(f"mdcsql.export.{info.name}")
            loaded.append(info.name)
    return loaded


def format_names() -> list[str]:
    """The generic formats in their order of definition, then the plug-ins' by name — the same
    on every machine, whichever plug-in happened to be imported first."""
    load_plugins()
    builtin = [n for n in FORMATS if n in _BUILTIN]
    return builtin + sorted(n for n in FORMATS if n not in _BUILTIN)


def resolve_format(name: str) -> str:
    """The registered name of ``name`` (case/underscore-insensitive), or an error listing all."""
    load_plugins()
    for registered in FORMATS:
        if _key(registered) == _key(name or ""):
            return registered
    raise MdcsqlError(f"unknown export format {name!r}; allowed: {', '.join(FORMATS)}")


def get_format(name: str) -> FormatSpec:
    return FORMATS[resolve_format(name)]


# ---------------------------------------------------------------- reading exports back (counts)
def _counting_connection():
    import duckdb
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def _count(sql_file: str, files: list[Path]) -> Counts:
    if not files:
        return {}
    con = _counting_connection()
    try:
        rows = con.execute(load_sql(sql_file), {"files": [str(f) for f in files]}).fetchall()
    finally:
        con.close()
    return {(s, d): int(n) for s, d, n in rows}


def count_parquet(files: list[Path], event_type: str | None = None) -> Counts:
    return _count("queries/export_count_parquet.sql", files)


def count_csv(files: list[Path], event_type: str | None = None) -> Counts:
    return _count("queries/export_count_csv.sql", files)


def count_json(files: list[Path], event_type: str | None = None) -> Counts:
    return _count("queries/export_count_json.sql", files)


def count_arrow(files: list[Path], event_type: str | None = None) -> Counts:
    out: Counts = {}
    con = _counting_connection()
    try:
        for f in files:
            with pa.memory_map(str(f)) as source:
                table = pa.ipc.open_file(source).read_all().select(["symbol", "ts"])
            con.register("export_arrow", table)
            for s, d, n in con.execute(load_sql("queries/export_count_arrow.sql")).fetchall():
                out[(s, d)] = out.get((s, d), 0) + int(n)
            con.unregister("export_arrow")
    finally:
        con.close()
    return out


# ---------------------------------------------------------------- generic writers
_SUFFIX = {"none": "", "gzip": ".gz"}


def _copy(ctx: ExportContext, sel, *, kind: str, spec: FormatSpec) -> list[Path]:
    comp = ctx.compression(spec)
    path = ctx.data_dir / f"{sel.view}.{'csv' if kind == 'csv' else 'jsonl'}{_SUFFIX[comp]}"
    sql = (load_sql(f"queries/export_copy_{kind}.sql").replace("{{selection}}", sel.sql(kind))
           .replace("{{compression}}", comp))
    rows = ctx.con.execute(sql, sel.params() | {"path": str(path)}).fetchall()
    ctx.progress(int(rows[0][0]) if rows and rows[0] else 0)
    return [path]


def _write_csv(ctx, sel):
    return _copy(ctx, sel, kind="csv", spec=FORMATS["Csv"])


def _write_csv_gz(ctx, sel):
    return _copy(ctx, sel, kind="csv", spec=FORMATS["CsvCompressed"])


def _write_json(ctx, sel):
    return _copy(ctx, sel, kind="json", spec=FORMATS["JsonLines"])


def _write_json_gz(ctx, sel):
    return _copy(ctx, sel, kind="json", spec=FORMATS["JsonLinesCompressed"])


def _row_group(ctx) -> int:
    value = ctx.request.options.get("row_group_size", 122_880)
    if not isinstance(value, int) or value < 1:
        raise MdcsqlError(f"option row_group_size must be a positive integer, got {value!r}")
    return value


def _write_parquet(ctx, sel):
    import pyarrow.parquet as pq
    comp = ctx.compression(FORMATS["Parquet"])
    rows = _row_group(ctx)
    path = ctx.data_dir / f"{sel.view}.parquet"
    reader = sel.reader(ctx.con, batch_rows=rows)
    with pq.ParquetWriter(path, reader.schema, compression=comp) as writer:
        for batch in reader:
            writer.write_batch(batch, row_group_size=rows)
            ctx.tally(sel.event_type, batch)
            ctx.progress(batch.num_rows)
    return [path]


PARTITION_KEYS = ("date", "symbol")


def _write_parquet_partitioned(ctx, sel):
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    comp = ctx.compression(FORMATS["ParquetPartitioned"])
    keys = ctx.request.options.get("partition_by", list(PARTITION_KEYS))
    if isinstance(keys, str):
        keys = [k.strip() for k in keys.split(",") if k.strip()]
    if not keys or any(k not in PARTITION_KEYS for k in keys) or len(set(keys)) != len(keys):
        raise MdcsqlError(f"option partition_by {keys!r}: give some of {', '.join(PARTITION_KEYS)}")
    ctx.details["partitioning"] = list(keys)
    rows = _row_group(ctx)
    reader = sel.reader(ctx.con, batch_rows=rows)
    schema = reader.schema.append(pa.field("date", pa.string()))

    def batches():
        for b in reader:
            ctx.tally(sel.event_type, b)
            ctx.progress(b.num_rows)
            day = pc.strftime(b.column("ts"), format="%Y-%m-%d")
            yield pa.RecordBatch.from_arrays([*b.columns, day], schema=schema)

    target = ctx.data_dir / sel.view
    part = ds.partitioning(pa.schema([schema.field(k) for k in keys]), flavor="hive")
    ds.write_dataset(pa.RecordBatchReader.from_batches(schema, batches()), target, format="parquet",
                     partitioning=part, basename_template="part-{i}.parquet",
                     file_options=ds.ParquetFileFormat().make_write_options(compression=comp),
                     max_rows_per_group=rows, min_rows_per_group=min(rows, 1 << 16),
                     max_partitions=1 << 20, existing_data_behavior="error")
    return sorted(p for p in target.rglob("*.parquet")) if target.exists() else []


def _ipc(ctx, sel, *, spec: FormatSpec, suffix: str) -> list[Path]:
    comp = ctx.compression(spec)
    path = ctx.data_dir / f"{sel.view}.{suffix}"
    reader = sel.reader(ctx.con)
    options = pa.ipc.IpcWriteOptions(compression=None if comp == "none" else comp)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, reader.schema, options=options) as writer:
        for batch in reader:
            writer.write_batch(batch)
            ctx.tally(sel.event_type, batch)
            ctx.progress(batch.num_rows)
    return [path]


def _write_arrow(ctx, sel):
    return _ipc(ctx, sel, spec=FORMATS["Arrow"], suffix="arrow")


def _write_feather(ctx, sel):
    return _ipc(ctx, sel, spec=FORMATS["FeatherV2"], suffix="feather")


register_format("JsonLines", _write_json, count=count_json, compressions=("none",),
                description="newline-delimited JSON, one file per type (ISO ts, decimal text)")
register_format("JsonLinesCompressed", _write_json_gz, count=count_json, compressions=("gzip",),
                description="JsonLines, gzip-compressed (.jsonl.gz)")
register_format("Parquet", _write_parquet, count=count_parquet,
                compressions=("snappy", "zstd", "gzip", "lz4", "brotli", "none"),
                description="one Parquet file per type (timestamp[ns, UTC], decimal(38,18))")
register_format("ParquetPartitioned", _write_parquet_partitioned, count=count_parquet,
                compressions=("snappy", "zstd", "gzip", "lz4", "brotli", "none"),
                description="hive-partitioned Parquet per type: date=YYYY-MM-DD/symbol=X/")
register_format("Arrow", _write_arrow, count=count_arrow, compressions=("none", "lz4", "zstd"),
                description="Arrow IPC file per type (.arrow)")
register_format("Csv", _write_csv, count=count_csv, compressions=("none",),
                description="CSV with a header per type (ISO ts, decimal text, lists as JSON)")
register_format("CsvCompressed", _write_csv_gz, count=count_csv, compressions=("gzip",),
                description="Csv, gzip-compressed (.csv.gz)")
register_format("FeatherV2", _write_feather, count=count_arrow, compressions=("lz4", "zstd", "none"),
                description="Feather v2 (Arrow IPC file, lz4) per type (.feather)")

_BUILTIN.update(FORMATS)     # everything registered above is generic; plug-ins come later
