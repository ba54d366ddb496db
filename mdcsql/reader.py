"""The fast read path: ``Reader(root).read(type, symbol, start, end)`` -> a ``pyarrow.Table``.

The catalog views (``trades``, …) read every file of a type through globs, which suits SQL over a
whole archive but costs tens of milliseconds of setup and scanning for one symbol-day. A
``Reader`` instead

- keeps a **snapshot of the catalog's ``files`` index in memory** (a dict keyed by (type, symbol),
  each list sorted by start time), taken with a short read-only open of the catalog and refreshed
  when the catalog file changes (two ``stat`` calls per read tell). It never keeps the catalog
  open, so a collector's read-write syncs are not blocked (DESIGN.md invariant 4); if the catalog
  is locked at a refresh, the previous snapshot serves and the refresh is retried on the next read;
- **prunes to the exact files** by (type, symbol, source) and time: a sealed file by its
  ``first_ts``/``last_ts``, an open one by its period;
- inside a Parquet file (cold and archive tiers) reads only the **row groups whose ``ts``
  statistics overlap** the range, with the file's footer parsed once and cached, and cuts the
  edges by binary search on the sorted ``ts`` column (no filter pass, no copy);
- reads JSONL tiers (hot, warm) with an in-memory DuckDB connection opened once, with the same
  projection and leniency as the views (``mdcsql/sql/queries/reader_jsonl.sql``);
- returns rows sorted by (ts, seq, source) with the **column types of the catalog view** of that
  type (``TIMESTAMP_NS`` -> ``timestamp[ns]``, ``DECIMAL(38,18)`` -> ``decimal128(38, 18)``, …), so
  ``read("Trade", "AAPL", a, b)`` equals ``SELECT * EXCLUDE (file) FROM trades WHERE symbol =
  'AAPL' AND ts >= a AND ts < b`` row for row.

Paths are the catalog's logical paths under the root: a tier configured with its own directory is
mounted into the tree as a symbolic link (``mdcsql.lifecycle.tiers``), so no path mapping is needed.

What it sees is what the catalog lists: a file appears once a sync has recorded it (the
collector's background syncer does so after each new hot file and seal; ``mdcsql catalog sync``
by hand). A file that vanished since the snapshot (moved by a tier migration) triggers one
refresh and a retry.
"""

from __future__ import annotations

import bisect
import datetime as _dt
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mdcsql.catalog import Catalog
from mdcsql.catalog.views import JSON_COLUMNS, SENTINEL, VIEW_TYPES
from mdcsql.errors import ArchiveLockedError, InputError, NotFoundError
from mdcsql.events import parse_ts
from mdcsql.layout import CATALOG_DIR, period_end
from mdcsql.reader_parquet import NS_PER_UNIT, ParquetMeta, analyse, read_groups
from mdcsql.sql import load_sql

__all__ = ["Reader"]

_CATALOG_FILE = "catalog.duckdb"
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_TYPE_OF_VIEW = dict(VIEW_TYPES)
_VIEW_OF_TYPE = {t: v for v, t in VIEW_TYPES.items()}
_VIEW_HEAD = re.compile(r"CREATE\s+OR\s+REPLACE\s+VIEW\s+\w+\s+AS\s+(SELECT\b.*?)\s+FROM\s+\{\{events\}\}",
                        re.S | re.I)
_SORT_KEYS = [("ts", "ascending", "at_end"), ("seq", "ascending", "at_end"), ("source", "ascending", "at_end")]


@dataclass(frozen=True, slots=True)
class _File:
    """One data file of the snapshot, with the time span its rows can lie in (inclusive)."""

    path: str           # logical, relative to the archive root (files.path)
    abspath: str
    source: str
    lo: int
    hi: int
    parquet: bool
    lenient: bool       # uncompressed JSONL: may be open and end in a torn line
    version: tuple      # (size, mtime) from the catalog: keys the Parquet footer cache


def _event_type(type_: str) -> str:
    if type_ in _VIEW_OF_TYPE:
        return type_
    if type_ in _TYPE_OF_VIEW:
        return _TYPE_OF_VIEW[type_]
    raise InputError(f"unknown event type {type_!r}; expected one of {sorted(_VIEW_OF_TYPE)} "
                     f"(or a view name: {sorted(_TYPE_OF_VIEW)})", field="type")


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _bound(value, field: str, default: int) -> int:
    """A range bound as int UTC ns: int ns, ISO-8601 text, a bare date (midnight UTC), a datetime."""
    if value is None:
        return default
    if isinstance(value, str) and _DATE.fullmatch(value):
        value += "T00:00:00Z"
    elif isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        value = _dt.datetime(value.year, value.month, value.day)
    return parse_ts(value, field)


def _span(row: dict) -> tuple[int, int]:
    """Inclusive [lo, hi] of the ts a file's rows can have, from what the catalog knows."""
    first, last = row["first_ts_ns"], row["last_ts_ns"]
    if row["state"] != "open" and first is not None and last is not None:
        return first, last                      # sealed: the manifest's exact range
    start = row["period_start_ns"]
    if start is not None and row["partition"]:
        try:
            end = period_end(start, row["partition"])
        except ValueError:
            end = None
        if end is not None:
            return start, end - 1
    return _I64_MIN, _I64_MAX                   # unknown: always read it


def _catalog_signature(db: Path) -> tuple:
    sig = []
    for p in (db, db.with_name(db.name + ".wal")):
        try:
            st = os.stat(p)
            sig.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except FileNotFoundError:
            sig.append(None)
    return tuple(sig)


class Reader:
    """Read events of one (type, symbol) between two times across every tier. Open once, reuse.

    ``Reader(root, timeout=10.0)``; thread-safe (each read of JSONL files uses its own DuckDB
    cursor; the snapshot and footer cache are swapped atomically).

    :raises NotFoundError: ``root`` has no catalog (``mdcsql catalog rebuild ROOT`` makes one).
    """

    def __init__(self, root, *, timeout: float = 10.0) -> None:
        self.root = Path(root).resolve()
        self.timeout = timeout
        self._db = self.root / CATALOG_DIR / _CATALOG_FILE
        if not self._db.exists():
            raise NotFoundError(f"no catalog at {self._db}; create it with: mdcsql catalog rebuild {self.root}")
        self._sentinel = str(self.root / SENTINEL)
        self._duck = duckdb.connect()           # in memory: reads the JSONL files, never the catalog
        #: converts Parquet columns side by side (numpy and Arrow kernels release the GIL)
        self._pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="mdcsql-reader")
        self._lock = threading.Lock()
        self._index: dict[tuple[str, str], tuple[list[int], list[_File]]] = {}
        self._signature: tuple | None = None
        self._footers: dict[str, ParquetMeta] = {}
        self._schemas: dict[str, pa.Schema] = {}
        self._sql: dict[str, str] = {}
        #: True while the last refresh found the catalog locked and an older snapshot is in use
        self.stale = False
        self.refresh(force=True)

    def close(self) -> None:
        """Release the in-memory DuckDB connection and the worker threads."""
        self._pool.shutdown(wait=False)
        self._duck.close()

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ the files snapshot
    def refresh(self, *, force: bool = False) -> bool:
        """Reload the files index if the catalog changed (or ``force``); True if reloaded.

        With a snapshot already in memory a locked catalog is not an error: the old snapshot
        keeps serving (``stale`` is set) and the next read tries again.
        """
        signature = _catalog_signature(self._db)
        if not force and signature == self._signature:
            return False
        with self._lock:
            if not force and signature == self._signature:
                return False
            first = self._signature is None
            try:
                with Catalog.open(self.root, read_only=True,
                                  timeout=self.timeout if first else min(self.timeout, 0.05)) as cat:
                    rows = cat.execute(load_sql("queries/reader_files.sql")).dicts()
            except ArchiveLockedError:
                if first:
                    raise
                self.stale = True
                return False
            self._index = self._build_index(rows)
            self._signature = signature
            self.stale = False
            live = {f.path for _, files in self._index.values() for f in files if f.parquet}
            self._footers = {p: m for p, m in self._footers.items() if p in live}
            return True

    def _build_index(self, rows: list[dict]) -> dict:
        groups: dict[tuple[str, str], list[_File]] = {}
        for r in rows:
            lo, hi = _span(r)
            parquet = r["format"] == "parquet" or r["path"].endswith(".parquet")
            f = _File(path=r["path"], abspath=str(self.root / r["path"]), source=r["source"], lo=lo, hi=hi,
                      parquet=parquet, lenient=not parquet and r["codec"] == "none",
                      version=(r["size_bytes"], r["mtime_ns"]))
            groups.setdefault((r["type"], r["symbol"]), []).append(f)
        index = {}
        for key, files in groups.items():
            files.sort(key=lambda f: (f.lo, f.path))
            index[key] = ([f.lo for f in files], files)
        return index

    def plan(self, type_: str, symbol: str, start=None, end=None, *, source=None) -> list[dict]:
        """What a :meth:`read` with the same arguments would open: ``[{"path", "format",
        "row_groups"}]`` — for a Parquet file the indexes of the row groups it would read (of
        ``"of"`` in all), None for JSONL (read whole, filtered while parsing)."""
        type_ = _event_type(type_)
        lo, hi = _bound(start, "start", _I64_MIN), _bound(end, "end", _I64_MAX)
        self.refresh()
        out = []
        for f in self._select(type_, symbol, lo, hi, _sources(source)):
            if f.parquet:
                meta = self._footer(f)
                out.append({"path": f.path, "format": "parquet", "row_groups": meta.groups(lo, hi),
                            "of": len(meta.rg_lo)})
            else:
                out.append({"path": f.path, "format": "jsonl", "row_groups": None, "of": None})
        return out

    def _select(self, type_: str, symbol: str, lo: int, hi: int, sources) -> list[_File]:
        """Files of (type, symbol) whose span meets [lo, hi) (hi exclusive)."""
        entry = self._index.get((type_, symbol))
        if entry is None or hi <= lo:
            return []
        starts, files = entry
        upto = bisect.bisect_left(starts, hi)           # files starting at or after hi cannot hold rows
        return [f for f in files[:upto] if f.hi >= lo and (sources is None or f.source in sources)]

    # ------------------------------------------------------------------ schemas
    def schema(self, type_: str) -> pa.Schema:
        """The Arrow schema :meth:`read` returns for ``type_`` (the view's columns, without ``file``)."""
        type_ = _event_type(type_)
        schema = self._schemas.get(type_)
        if schema is None:
            schema = self._read_jsonl(type_, "", [], _I64_MIN, _I64_MAX).schema
            self._schemas[type_] = schema
        return schema

    def _jsonl_sql(self, type_: str) -> str:
        sql = self._sql.get(type_)
        if sql is None:
            view = load_sql(f"views/{_VIEW_OF_TYPE[type_]}.sql")
            m = _VIEW_HEAD.search(view)
            if m is None:
                raise RuntimeError(f"views/{_VIEW_OF_TYPE[type_]}.sql has no 'SELECT … FROM {{{{events}}}}'")
            sql = load_sql("queries/reader_jsonl.sql").replace("{{projection}}", m.group(1))
            self._sql[type_] = sql
        return sql

    # ------------------------------------------------------------------ reading
    def read(self, type_: str, symbol: str, start=None, end=None, *, columns=None,
             source=None) -> pa.Table:
        """Events of ``type_`` (``"Trade"`` or ``"trades"``) for ``symbol`` with ``start <= ts < end``.

        :param start, end: int UTC nanoseconds, ISO-8601 text or datetime (naive = UTC); None = open.
        :param columns: a subset of :meth:`schema`'s names, in the order wanted (default: all).
        :param source: one source id or several; default every source.
        :returns: a table sorted by (ts, seq, source), typed as the catalog view; an unknown symbol
            or an empty range gives an empty table of the same schema.
        :raises InputError: unknown type or column, unparseable time, ``end`` before ``start``.
        """
        type_ = _event_type(type_)
        if not isinstance(symbol, str) or not symbol:
            raise InputError(f"symbol must be a non-empty string, not {symbol!r}", field="symbol")
        lo, hi = _bound(start, "start", _I64_MIN), _bound(end, "end", _I64_MAX)
        if hi < lo:
            raise InputError(f"end {end!r} is before start {start!r}", field="end")
        schema = self.schema(type_)
        names = _columns(schema, columns)
        sources = _sources(source)
        self.refresh()
        for attempt in (1, 2):
            files = self._select(type_, symbol, lo, hi, sources)
            try:
                table = self._read_files(type_, symbol, files, lo, hi, schema, names)
                break
            except FileNotFoundError:               # moved since the snapshot (a tier migration)
                if attempt == 2 or not self.refresh(force=True):
                    raise
        return table

    def _read_files(self, type_, symbol, files, lo, hi, schema, names) -> pa.Table:
        parts = []
        jsonl = [f for f in files if not f.parquet]
        single = len(files) == 1 and not jsonl and self._footer(files[0]).sorted_ts_seq
        # the sort keys are read unless one sorted file answers alone (a symbol-day's usual case)
        need = names if single else list(dict.fromkeys([*names, "ts", "seq", "source"]))
        if jsonl:
            for f in jsonl:
                if not os.path.exists(f.abspath):
                    raise FileNotFoundError(f.abspath)
            parts.append(self._read_jsonl(type_, symbol, jsonl, lo, hi).select(need))
        known_sorted = not jsonl
        for f in files:
            if f.parquet:
                part, in_order = self._read_parquet(f, lo, hi, schema, need)
                if part.num_rows:
                    parts.append(part)
                    known_sorted = known_sorted and in_order
        if not parts:
            return schema.empty_table().select(names)
        table = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
        if not (len(parts) == 1 and known_sorted) and not _is_sorted(table):
            table = table.take(pc.sort_indices(table, sort_keys=_SORT_KEYS))
        return table.select(names)

    def _read_jsonl(self, type_: str, symbol: str, files: list[_File], lo: int, hi: int) -> pa.Table:
        params = {
            "lenient": [self._sentinel, *(f.abspath for f in files if f.lenient)],
            "strict": [self._sentinel, *(f.abspath for f in files if not f.lenient)],
            "columns": JSON_COLUMNS[type_], "symbol": symbol, "lo": lo, "hi": hi,
        }
        cursor = self._duck.cursor()
        try:
            return cursor.sql(self._jsonl_sql(type_), params=params).to_arrow_table()
        finally:
            cursor.close()

    def _footer(self, f: _File) -> ParquetMeta:
        meta = self._footers.get(f.path)
        if meta is None or meta.version != f.version:
            meta = analyse(f.abspath, f.version)
            self._footers[f.path] = meta
        return meta

    def _read_parquet(self, f: _File, lo: int, hi: int, schema: pa.Schema, need: list[str]):
        """(table, sorted) of one Parquet file's rows in [lo, hi); sorted: known (ts, seq) order."""
        meta = self._footer(f)
        groups = meta.groups(lo, hi)
        if not groups:
            return schema.empty_table().select(need), True
        return read_groups(f.abspath, meta, groups, need, schema, lo, hi, _cut, self._pool), meta.sorted_ts_seq


def _sources(source) -> frozenset | None:
    if source is None:
        return None
    items = [source] if isinstance(source, str) else list(source)
    if not items or not all(isinstance(s, str) and s for s in items):
        raise InputError(f"source must be a source id or a list of them, not {source!r}", field="source")
    return frozenset(items)


def _columns(schema: pa.Schema, columns) -> list[str]:
    if columns is None:
        return list(schema.names)
    items = [columns] if isinstance(columns, str) else list(columns)
    unknown = [c for c in items if c not in schema.names]
    if unknown or not items:
        raise InputError(f"unknown column(s) {unknown or items!r}; expected some of {schema.names}",
                         field="columns")
    return list(dict.fromkeys(items))


def _ts_numpy(table: pa.Table) -> np.ndarray:
    """The ts column as int64 UTC nanoseconds (whatever its stored unit)."""
    col = table.column("ts")
    col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if not pa.types.is_timestamp(col.type):
        return col.cast(pa.int64()).to_numpy(zero_copy_only=False)
    values = col.view(pa.int64()).to_numpy(zero_copy_only=False)
    factor = NS_PER_UNIT[col.type.unit]
    return values * factor if factor != 1 else values


def _cut(table: pa.Table, lo: int, hi: int, *, whole: bool) -> pa.Table:
    """Rows with lo <= ts < hi: a zero-copy slice when ts is sorted, a filter otherwise."""
    if whole or table.num_rows == 0:
        return table
    ts = _ts_numpy(table)
    if ts.size > 1 and not bool(np.all(ts[1:] >= ts[:-1])):
        return table.filter((ts >= lo) & (ts < hi))
    a, b = np.searchsorted(ts, lo, "left"), np.searchsorted(ts, hi, "left")
    return table.slice(int(a), int(b - a))


def _is_sorted(table: pa.Table) -> bool:
    """True if rows are already in (ts, seq, source) order (the usual case: one sorted file)."""
    if table.num_rows < 2:
        return True
    ts = _ts_numpy(table)
    dts = ts[1:] - ts[:-1]
    if bool(np.all(dts > 0)):
        return True
    if bool(np.any(dts < 0)):
        return False
    seq = table.column("seq")
    if seq.null_count:
        return False
    seq = seq.to_numpy()
    dseq = seq[1:] - seq[:-1]
    return bool(np.all((dts > 0) | (dseq > 0)))
