"""Typed Parquet for the cold and archive tiers: conversion, splitting, merging, fingerprints.

``convert`` reads JSONL (none/gzip/zstd) and/or Parquet sources of one event type, optionally
keeps a half-open ``[lo, hi)`` ns range of ``ts``, sorts by (symbol, ts, seq, input order), writes
one typed Parquet file, fsyncs it and then re-reads it: the row count and the content fingerprint
must equal the sources' (over the same range), else ``VerificationError`` and the file is removed.
The same call converts (JSONL → Parquet), consolidates (Parquet* → Parquet) and splits (one call
per range).

The layout (measured on real SPY ticks; docs/lifecycle-parquet.md has the figures):

- ``ts``/``recv_ts``: Parquet TIMESTAMP (UTC) in the coarsest unit that is exact for the whole
  column — ms, us or ns — DELTA_BINARY_PACKED. Millisecond feeds (Lean) shrink by 40% against ns;
  every reader (DuckDB ``epoch_ns``, pyarrow) gets the same nanoseconds back.
- decimals: the smallest exact DECIMAL per column and file: scale = the largest scale present
  (trailing zeros dropped), precision 9 (INT32), 18 (INT64) or 38; text beyond DECIMAL(38) stays
  text. Prices BYTE_STREAM_SPLIT, sizes and everything else dictionary-encoded.
- strings and lists dictionary-encoded, ids (trade_id, order_id) DELTA_BYTE_ARRAY; ``seq``
  delta-encoded; data pages v2, format 2.6,
  statistics, page index, ``sorting_columns`` and bloom filters on symbol/source/venue/ids, so
  DuckDB and pyarrow prune by symbol and ts.
- compact (the archive tier, zstd >= 19): one data page per column chunk, string dictionaries
  padded to byte-aligned index widths, raw-byte strings where smaller — same types and values for
  every reader, 7% smaller (SPY: 0.498x Lean's zip).

``fingerprint`` is order-independent and identical for a JSONL file and any Parquet conversion,
split or merge of its rows: count plus the sum mod 2^64 of DuckDB's ``hash()`` of each row at the
catalog views' types (``JSON_COLUMNS``; lists as their text). ``hash`` may change between DuckDB
versions, so the value is labelled ``FINGERPRINT_ALGO`` ("duckdb-hash:<major.minor>") and manifests
record it; the first algorithm (MD5 of each row's canonical JSON, ``LEGACY_FINGERPRINT_ALGO``) is
still computed for manifests that hold it. ``convert`` fingerprints the rows it read (the sources
are parsed once) and the written file as DuckDB reads it back.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mdcsql.catalog.views import JSON_COLUMNS
from mdcsql.errors import ConfigError, InputError, MdcsqlError
from mdcsql.lifecycle.codecs import (PARQUET_CODECS, CodecSpec, VerificationError, file_sha256, parse_codec,
                                     sniff_format)
from mdcsql.sql import load_sql

__all__ = ["ConversionResult", "convert", "fingerprint", "read_rows", "parquet_table", "VerificationError",
           "DEFAULT_ROW_GROUP_SIZE", "LAYOUT_VERSION", "combine_fingerprints", "COMPACT_FROM_ZSTD_LEVEL",
           "fingerprint_rows", "fingerprint_available", "FINGERPRINT_ALGO", "LEGACY_FINGERPRINT_ALGO"]

DEFAULT_ROW_GROUP_SIZE = 1 << 20
LAYOUT_VERSION = "1"
_U64 = 1 << 64
_DEC = "DECIMAL(38,18)"
#: decimal columns kept BYTE_STREAM_SPLIT (prices move in small steps); the rest are dictionary
_PRICE_COLUMNS = {"price", "bid_price", "ask_price", "open", "high", "low", "close"}
_DELTA_COLUMNS = {"ts", "recv_ts", "seq"}
_BLOOM_COLUMNS = ("symbol", "source", "venue", "trade_id", "order_id")
#: ids: DELTA_BYTE_ARRAY (prefix-shared), not a dictionary of a million entries (sim trade ids:
#: 2.4 -> 0.06 B/trade, written faster, read as fast)
_ID_COLUMNS = {"trade_id", "order_id"}
_NDV_SAMPLE = 4096
_TS_UNITS = (("ms", 1_000_000), ("us", 1_000), ("ns", 1))
_PRECISIONS = (9, 18, 38)
#: compact layout (archive): from this zstd level on, unless ``convert(compact=...)`` says otherwise
COMPACT_FROM_ZSTD_LEVEL = 19
#: dictionary index bit widths that zstd codes well (byte or nibble aligned); 3 -> 4, 5..7 -> 8
_ALIGNED_WIDTH = {3: 4, 5: 8, 6: 8, 7: 8}
#: padding a dictionary costs ~2 bytes per dummy entry; below this many values it does not pay
_PAD_MIN_VALUES = 1 << 14


@dataclass(frozen=True)
class ConversionResult:
    """What ``convert`` wrote and verified."""

    path: Path
    type: str
    rows: int
    fingerprint: str            # 16 hex digits, see ``fingerprint``
    sha256: str
    size_bytes: int
    first_ts: int | None
    last_ts: int | None
    first_seq: int | None       # smallest seq present (None if no row has one)
    last_seq: int | None        # largest seq present
    symbols: tuple[str, ...]
    seconds: float
    codec: str
    level: int | None
    row_groups: int
    column_types: dict[str, str] = field(default_factory=dict)
    fingerprint_algo: str = ""  # FINGERPRINT_ALGO: record it beside ``fingerprint`` (manifests)


# ---- source reading -------------------------------------------------------------------------------
def _check_type(type_: str) -> dict[str, str]:
    if type_ not in JSON_COLUMNS:
        raise ConfigError(f"unknown event type {type_!r}; expected one of {', '.join(JSON_COLUMNS)}")
    return JSON_COLUMNS[type_]


def _check_range(ts_range) -> tuple[int | None, int | None]:
    if ts_range is None:
        return None, None
    try:
        lo, hi = ts_range
    except (TypeError, ValueError):
        raise ConfigError(f"ts_range must be a (lo, hi) pair of int ns, got {ts_range!r}") from None
    for v in (lo, hi):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise ConfigError(f"ts_range bounds must be int nanoseconds or None, got {v!r}")
    if lo is not None and hi is not None and hi <= lo:
        raise ConfigError(f"ts_range [{lo}, {hi}) is empty: hi must be greater than lo")
    return lo, hi


def _group_sources(paths: Iterable) -> list[tuple[str, list[Path]]]:
    """Consecutive runs of (format, paths) in the given order: 'parquet', or a JSONL codec."""
    groups: list[tuple[str, list[Path]]] = []
    for p in paths:
        p = Path(p)
        if not p.is_file():
            raise InputError("source file does not exist", file=str(p))
        kind = sniff_format(p)
        if groups and groups[-1][0] == kind:
            groups[-1][1].append(p)
        else:
            groups.append((kind, [p]))
    if not groups:
        raise ConfigError("no source files given")
    return groups


def _struct(columns: dict[str, str]) -> str:
    return "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"


def _text_columns(type_: str) -> dict[str, str]:
    """JSON_COLUMNS with decimals read as text, so their exact scale is seen."""
    out = {"type": "VARCHAR"}
    for name, t in _check_type(type_).items():
        out[name] = t.replace(_DEC, "VARCHAR")
    return out


def _duck_error(exc: Exception, paths: Sequence[Path]) -> MdcsqlError:
    where = ", ".join(str(p) for p in paths[:3]) + (" ..." if len(paths) > 3 else "")
    return InputError(f"cannot read as {'JSONL' if paths else 'data'}: {str(exc).splitlines()[0]}", file=where)


def _read_jsonl(con, paths: list[Path], comp: str, type_: str, lo, hi) -> pa.Table:
    sql = load_sql("queries/parquet_read_jsonl.sql").replace("{{columns}}", _struct(_text_columns(type_)))
    params = {"files": [str(p) for p in paths], "comp": comp, "lo": lo, "hi": hi}
    tables = []
    for p in paths:          # one file per query: row order within and across files is kept
        params["files"] = [str(p)]
        try:
            t = con.sql(sql, params=params).to_arrow_table()
        except duckdb.Error as exc:
            raise _duck_error(exc, [p]) from None
        bad = pc.drop_null(pc.unique(t["type"]))
        if len(bad) and (len(bad) > 1 or bad[0].as_py() != type_):
            raise InputError(f"holds events of type {sorted(bad.to_pylist())}, expected only {type_}", file=str(p))
        tables.append(t.drop_columns(["type"]))
    return pa.concat_tables(tables)


def _to_text(arr: pa.ChunkedArray, view_type: str) -> pa.ChunkedArray:
    target = pa.list_(pa.list_(pa.string())) if view_type.endswith("[][]") else pa.string()
    return arr if arr.type == target else arr.cast(target)


def _read_parquet(paths: list[Path], type_: str, lo, hi) -> pa.Table:
    columns = _check_type(type_)
    tables = []
    for p in paths:
        try:
            t = pq.read_table(p)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"cannot read as Parquet: {exc}", file=str(p)) from None
        cols = {}
        for name, vt in columns.items():
            if name not in t.column_names:
                raise InputError(f"Parquet file lacks column {name!r} of {type_}", file=str(p))
            col = t[name]
            if name in ("ts", "recv_ts"):
                col = col.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()) if pa.types.is_timestamp(col.type) else col.cast(pa.int64())
            elif _DEC in vt:
                col = _to_text(col, vt)
            cols[name] = col
        t = pa.table(cols)
        if lo is not None or hi is not None:
            mask = pc.and_kleene(pc.greater_equal(t["ts"], lo) if lo is not None else pa.scalar(True),
                                 pc.less(t["ts"], hi) if hi is not None else pa.scalar(True))
            t = t.filter(mask)
        tables.append(t)
    return pa.concat_tables(tables)


def read_rows(src_paths: Iterable, type_: str, *, ts_range=None) -> pa.Table:
    """The sources' rows in input order with an ``_ord`` column: ts/recv_ts int64 ns, decimals as
    exact text, other columns at their view types (lists kept)."""
    lo, hi = _check_range(ts_range)
    _check_type(type_)
    con = duckdb.connect()
    try:
        parts = []
        for kind, paths in _group_sources(src_paths):
            if kind == "parquet":
                parts.append(_read_parquet(paths, type_, lo, hi))
            else:
                parts.append(_read_jsonl(con, paths, kind, type_, lo, hi))
    finally:
        con.close()
    schema = parts[0].schema
    table = pa.concat_tables([t.cast(schema) for t in parts])
    return table.append_column("_ord", pa.array(np.arange(table.num_rows, dtype=np.int64)))


# ---- typed layout ----------------------------------------------------------------------------------
def _decimal_type(text: pa.ChunkedArray) -> pa.DataType:
    """Smallest exact decimal type for decimal text (trailing fractional zeros ignored)."""
    values = pc.drop_null(text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text)
    if len(values) == 0:
        return pa.decimal128(9, 0)
    values = pc.unique(values)          # prices and sizes repeat: 1M trades, ~1k distinct texts
    has_dot = pc.match_substring(values, ".")
    trimmed = pc.ascii_rtrim(pc.ascii_rtrim(values, "0"), ".")
    values = pc.if_else(has_dot, trimmed, values)
    unsigned = pc.replace_substring_regex(values, "^-", "")
    length = pc.utf8_length(unsigned)
    dot = pc.find_substring(unsigned, ".")
    int_digits = pc.if_else(pc.less(dot, 0), length, dot)
    scale = pc.if_else(pc.less(dot, 0), 0, pc.subtract(pc.subtract(length, dot), 1))
    s = int(pc.max(scale).as_py() or 0)
    digits = int(pc.max(int_digits).as_py() or 1)
    for p in _PRECISIONS:
        if s <= p and digits + s <= p:
            return pa.decimal128(p, s)
    return pa.string()                  # beyond DECIMAL(38): keep the exact text


def _ts_column(ns: pa.ChunkedArray) -> pa.ChunkedArray:
    """int64 ns -> timestamp in the coarsest exact unit (ms, us or ns), UTC."""
    values = ns.fill_null(0).to_numpy()
    for unit, factor in _TS_UNITS:
        if factor == 1 or not (values % factor).any():
            scaled = pc.divide(ns, factor) if factor != 1 else ns
            return scaled.cast(pa.int64()).cast(pa.timestamp(unit, tz="UTC"))
    raise AssertionError("unreachable")


def _decimal_column(text: pa.ChunkedArray) -> pa.Array:
    """Decimal text -> its smallest exact type, parsing each distinct text once (a million
    trades hold about a thousand distinct prices)."""
    encoded = pc.dictionary_encode(text.combine_chunks())
    dt = _decimal_type(encoded.dictionary)
    return encoded.dictionary.cast(dt).take(encoded.indices)


def parquet_table(rows: pa.Table, type_: str) -> pa.Table:
    """``read_rows`` output -> the typed, sorted table that is written (no ``_ord``)."""
    columns = _check_type(type_)
    order = pc.sort_indices(rows, sort_keys=[(k, "ascending", "at_end") for k in ("symbol", "ts", "seq", "_ord")])
    if not np.array_equal(order.to_numpy(), np.arange(len(order))):
        rows = rows.take(order)         # sealed symbol-day files are mostly in order: no copy then
    out = {}
    for name, vt in columns.items():
        col = rows[name]
        if name in ("ts", "recv_ts"):
            col = _ts_column(col)
        elif vt.endswith("[][]"):
            leaf = pc.list_flatten(pc.list_flatten(col))
            dt = _decimal_type(leaf)
            col = col.cast(pa.list_(pa.list_(dt)))
        elif vt == _DEC:
            col = _decimal_column(col)
        out[name] = col
    table = pa.table(out)
    return table.replace_schema_metadata({"mdcsql.type": type_, "mdcsql.layout": LAYOUT_VERSION})


def _leaf_path(f: pa.Field) -> str:
    """Parquet column path of a list's leaf (``conditions.list.element``, ``bids.list.element.list.element``)."""
    path, t = f.name, f.type
    while pa.types.is_list(t):
        path, t = path + ".list.element", t.value_type
    return path


def _bloom_ndv(col: pa.ChunkedArray) -> int:
    """Distinct values to size a bloom filter for. Unique ids (all of a sample distinct) are
    sized by their count, not hashed (1M trade ids: 0.4 s); others are counted exactly."""
    present = len(col) - col.null_count
    sample = pc.drop_null(col.slice(0, _NDV_SAMPLE))
    if len(sample) >= _NDV_SAMPLE // 2 and pc.count_distinct(sample).as_py() == len(sample):
        return max(1, present)
    return max(1, pc.count_distinct(col).as_py())


def _writer_options(table: pa.Table, spec: CodecSpec, row_group_size: int, compact: bool = False) -> dict:
    dictionary, encoding, blooms = [], {}, {}
    for f in table.schema:
        t = f.type
        if f.name in _DELTA_COLUMNS:
            encoding[f.name] = "DELTA_BINARY_PACKED"
        elif f.name in _ID_COLUMNS and pa.types.is_string(t):
            encoding[f.name] = "DELTA_BYTE_ARRAY"
        elif f.name in _PRICE_COLUMNS and pa.types.is_decimal(t) and t.precision <= 18:
            encoding[f.name] = "BYTE_STREAM_SPLIT"
        elif pa.types.is_list(t):
            dictionary.append(_leaf_path(f))
        else:
            dictionary.append(f.name)
        if f.name in _BLOOM_COLUMNS and table[f.name].null_count < table.num_rows:
            blooms[f.name] = {"ndv": _bloom_ndv(table[f.name]), "fpp": 0.01}
    names = table.column_names
    sort = [pq.SortingColumn(names.index(c)) for c in ("symbol", "ts", "seq")]
    opts = dict(row_group_size=row_group_size, version="2.6", data_page_version="2.0",
                compression="NONE" if spec.codec == "none" else spec.codec.upper(),
                compression_level=spec.level, use_dictionary=dictionary, column_encoding=encoding,
                write_statistics=True, write_page_index=True, store_decimal_as_integer=True,
                store_schema=False, sorting_columns=sort, bloom_filter_options=blooms or None)
    if compact:
        # one data page per column chunk: pyarrow's default 20 000-row pages restart zstd's
        # window and tables every page (SPY: -29 kB of 485 kB); a page index of one page is useless
        opts.update(data_page_size=1 << 30, max_rows_per_page=max(1, min(row_group_size, 1 << 30)),
                    write_page_index=False)
    return opts


def _dummies(dictionary: pa.Array, count: int) -> pa.Array:
    """``count`` distinct strings that are not in ``dictionary`` (never referenced by any row)."""
    for prefix in ("\x00", "\x00\x00", "\x01\x00"):
        pad = pa.array([f"{prefix}{i:x}" for i in range(count)], dictionary.type)
        if not pc.any(pc.is_in(pad, value_set=dictionary)).as_py():
            return pad
    raise AssertionError("no free dummy dictionary values")    # needs three colliding prefixes


def _aligned_dictionary(arr: pa.Array) -> pa.Array:
    """A string array as a dictionary array whose index bit width is 4 or 8 instead of 3 or 5..7.

    pyarrow writes an Arrow dictionary of strings as it is (order and entries), and Parquet's
    RLE/bit-packed indices take ``ceil(log2(entries))`` bits; zstd codes byte- or nibble-aligned
    indices far better (SPY conditions, 22 values: 45.6 kB at 5 bits, 41.3 kB at 8). The extra
    entries are distinct dummies no row references: readers decode the same values, statistics
    are computed from the referenced entries only.
    """
    if arr.type not in (pa.string(), pa.large_string()) or len(arr) - arr.null_count < _PAD_MIN_VALUES:
        return arr
    encoded = pc.dictionary_encode(arr)
    n = len(encoded.dictionary)
    width = max(1, (n - 1).bit_length())
    target = _ALIGNED_WIDTH.get(width) if n > 2 else None
    if target is None:
        return arr
    pad = _dummies(encoded.dictionary, (1 << (target - 1)) + 1 - n)
    return pa.DictionaryArray.from_arrays(encoded.indices, pa.concat_arrays([encoded.dictionary, pad]))


def _align_column(arr: pa.Array) -> pa.Array:
    if pa.types.is_list(arr.type):
        values = arr.values
        leaf = _align_column(values)
        if leaf is values:
            return arr
        return pa.ListArray.from_arrays(arr.offsets, leaf, mask=arr.is_null() if arr.null_count else None)
    return _aligned_dictionary(arr)


def _compact_table(table: pa.Table, dictionary_columns: list[str]) -> pa.Table:
    """The dictionary-encoded string columns (and list leaves) with aligned dictionaries."""
    for name in table.column_names:
        f = table.schema.field(name)
        if name not in dictionary_columns and _leaf_path(f) not in dictionary_columns:
            continue
        col = table[name].combine_chunks()
        aligned = _align_column(col)
        if aligned is not col:
            table = table.set_column(table.schema.get_field_index(name), name, aligned)
    return table


def _chunk_bytes(column: pa.ChunkedArray | pa.Array, opts: dict, encoding: str | None) -> int:
    """Compressed size of one column written alone with ``opts`` (pages compress independently,
    so it is the size the column takes in the file)."""
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"c": column}), sink, compression=opts["compression"],
                   compression_level=opts["compression_level"], data_page_version="2.0",
                   data_page_size=opts["data_page_size"], max_rows_per_page=opts["max_rows_per_page"],
                   row_group_size=opts["row_group_size"], use_dictionary=encoding is None,
                   column_encoding={"c": encoding} if encoding else None, write_statistics=False,
                   store_schema=False)
    md = pq.read_metadata(pa.BufferReader(sink.getvalue()))
    return sum(md.row_group(i).column(0).total_compressed_size for i in range(md.num_row_groups))


def _pick_string_encodings(table: pa.Table, opts: dict) -> None:
    """Compact layout: a plain string column keeps its (aligned) dictionary or becomes
    DELTA_LENGTH_BYTE_ARRAY (lengths + the bytes back to back), whichever is smaller. Short codes
    win as raw bytes (SPY venue, 1 letter of 12: 77.9 kB vs 79.0 kB at 4-bit indices)."""
    for f in table.schema:
        if f.name not in opts["use_dictionary"] or not (pa.types.is_string(f.type) or pa.types.is_dictionary(f.type)):
            continue
        col = table[f.name]
        if len(col) - col.null_count < _PAD_MIN_VALUES:
            continue
        if not pa.types.is_dictionary(f.type) and pc.count_distinct(col).as_py() <= 2:
            continue                # one or two values (padded ones have more): RLE runs win
        if _chunk_bytes(col, opts, "DELTA_LENGTH_BYTE_ARRAY") < _chunk_bytes(col, opts, None):
            opts["use_dictionary"].remove(f.name)
            opts["column_encoding"][f.name] = "DELTA_LENGTH_BYTE_ARRAY"


def _write(table: pa.Table, dst: Path, spec: CodecSpec, row_group_size: int, compact: bool = False) -> None:
    opts = _writer_options(table, spec, row_group_size, compact)
    if compact:
        table = _compact_table(table, opts["use_dictionary"])
        _pick_string_encodings(table, opts)
    with open(dst, "wb") as f:
        pq.write_table(table, f, **opts)
        f.flush()
        os.fsync(f.fileno())


# ---- fingerprint ---------------------------------------------------------------------------------
#: the fast fingerprint: DuckDB's ``hash()`` of each row. DuckDB does not promise that ``hash`` is
#: stable across versions, so a recorded value is labelled with the major.minor that computed it
FINGERPRINT_ALGO = "duckdb-hash:" + ".".join(duckdb.__version__.split(".")[:2])
#: the first fingerprint (MD5 of each row's canonical JSON): stable forever, about 15x slower;
#: manifests without ``fingerprint_algo`` hold it
LEGACY_FINGERPRINT_ALGO = "md5-json"


def fingerprint_available(algo: str | None) -> bool:
    """Whether this process computes ``algo`` (a manifest's ``fingerprint_algo``; None = legacy)."""
    return (algo or LEGACY_FINGERPRINT_ALGO) in (FINGERPRINT_ALGO, LEGACY_FINGERPRINT_ALGO)


def _row_expr(columns: dict[str, str]) -> str:
    return "{" + ", ".join(f"'{k}': {k}" for k in columns) + "}"


def _hash_args(columns: dict[str, str]) -> str:
    # hash() of a list does not tell NULL, [] and [NULL] apart; the list's text does
    return ", ".join(f"CAST({k} AS VARCHAR)" if vt.endswith("[]") else k for k, vt in columns.items())


def _cast_select(columns: dict[str, str], *, ts_timestamp: bool) -> str:
    """Each column cast to its view type; ``ts_timestamp``: ts/recv_ts are TIMESTAMPs (Parquet)."""
    parts = []
    for name, vt in columns.items():
        expr = f"epoch_ns({name})" if ts_timestamp and name in ("ts", "recv_ts") else name
        parts.append(f"CAST({expr} AS {vt}) AS {name}")
    return ", ".join(parts)


def _fingerprint_sql(kind: str, columns: dict[str, str], algo: str) -> str:
    """The query for one source kind ('parquet', 'rows' or a JSONL codec) and algorithm."""
    fast = algo == FINGERPRINT_ALGO
    if kind == "parquet":
        sql = load_sql("queries/parquet_fphash_parquet.sql" if fast else "queries/parquet_fingerprint_parquet.sql")
        sql = sql.replace("{{select}}", _cast_select(columns, ts_timestamp=True))
    elif kind == "rows":
        sql = load_sql("queries/parquet_fphash_rows.sql").replace(
            "{{select}}", _cast_select(columns, ts_timestamp=False))
    else:
        sql = load_sql("queries/parquet_fphash_jsonl.sql" if fast else "queries/parquet_fingerprint_jsonl.sql")
        sql = sql.replace("{{columns}}", _struct(columns))
    return sql.replace("{{hash_args}}", _hash_args(columns)).replace("{{row}}", _row_expr(columns))


def combine_fingerprints(parts: Iterable[tuple[int, str]]) -> tuple[int, str]:
    """The fingerprint of the union of disjoint row sets (counts add, sums add mod 2^64)."""
    n, total = 0, 0
    for rows, fp in parts:
        n += rows
        total = (total + int(fp, 16)) % _U64
    return n, f"{total:016x}"


def fingerprint(paths: Iterable, type_: str, *, ts_range=None, algo: str | None = None) -> tuple[int, str]:
    """(rows, 16-hex-digit fingerprint) of the events in JSONL and/or Parquet files.

    Order-independent; a changed value, a dropped row or a duplicated row changes it. Equal for a
    JSONL file and its Parquet conversion, and for any split or merge of the same rows.
    ``algo``: ``FINGERPRINT_ALGO`` (default) or ``LEGACY_FINGERPRINT_ALGO``; another DuckDB
    version's hash cannot be recomputed here (``fingerprint_available``) -> ``ConfigError``.
    """
    columns = _check_type(type_)
    lo, hi = _check_range(ts_range)
    algo = algo or FINGERPRINT_ALGO
    if not fingerprint_available(algo):
        raise ConfigError(f"fingerprint algorithm {algo!r} is not available with DuckDB {duckdb.__version__} "
                          f"(this process computes {FINGERPRINT_ALGO} and {LEGACY_FINGERPRINT_ALGO})")
    con = duckdb.connect()
    parts = []
    try:
        for kind, group in _group_sources(paths):
            params = {"files": [str(p) for p in group], "lo": lo, "hi": hi}
            if kind != "parquet":
                params["comp"] = kind
            try:
                n, fp = con.execute(_fingerprint_sql(kind, columns, algo), params).fetchall()[0]
            except duckdb.Error as exc:
                raise _duck_error(exc, group) from None
            parts.append((int(n), f"{int(fp):016x}"))
    finally:
        con.close()
    return combine_fingerprints(parts)


def fingerprint_rows(rows: pa.Table, type_: str) -> tuple[int, str]:
    """``fingerprint`` (``FINGERPRINT_ALGO``) of a ``read_rows`` table, without re-reading files:
    DuckDB scans the Arrow table in place."""
    columns = _check_type(type_)
    con = duckdb.connect()
    try:
        con.register("mdcsql_rows", rows)
        n, fp = con.execute(_fingerprint_sql("rows", columns, FINGERPRINT_ALGO)).fetchall()[0]
    finally:
        con.close()
    return int(n), f"{int(fp):016x}"


# ---- conversion ----------------------------------------------------------------------------------
def _parquet_spec(compression, level) -> CodecSpec:
    if isinstance(compression, CodecSpec):
        spec = compression
    elif level is not None and "-" not in str(compression):
        spec = parse_codec(f"{compression}-{level}", for_format="parquet")
    else:
        spec = parse_codec(compression, for_format="parquet")
    if spec.codec not in PARQUET_CODECS:
        raise ConfigError(f"codec {spec.codec} is not a Parquet codec")
    return spec


def _is_compact(spec: CodecSpec, compact) -> bool:
    if compact is None:
        return spec.codec == "zstd" and (spec.level or 0) >= COMPACT_FROM_ZSTD_LEVEL
    if not isinstance(compact, bool):
        raise ConfigError(f"compact must be True, False or None, got {compact!r}")
    return compact


def _stat(arr: pa.ChunkedArray, fn) -> int | None:
    v = fn(arr).as_py()
    return None if v is None else int(v)


def convert(src_paths: Iterable, dst_tmp, type_: str, *, compression: str | CodecSpec = "zstd",
            level: int | None = None, row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
            ts_range=None, compact: bool | None = None) -> ConversionResult:
    """Write the events of ``src_paths`` (JSONL none/gzip/zstd and/or Parquet; type ``type_``),
    restricted to ``ts_range`` = (lo, hi) ns half-open (either bound None = open), to ``dst_tmp``
    as typed Parquet; fsync; verify rows and fingerprint by re-reading ``dst_tmp``.

    :param compression: codec or spec ("zstd", "zstd-19", "snappy", ...); ``level`` overrides.
    :param compact: the archive layout (one data page per column chunk, no page index, string
        dictionaries padded to byte-aligned index widths); default: zstd from level
        ``COMPACT_FROM_ZSTD_LEVEL`` (19, the archive tier's codec) on.
    :raises VerificationError: the written file differs from the sources; ``dst_tmp`` is removed.
    :raises InputError: a source cannot be read, holds another event type or lacks a column.
    """
    t0 = time.perf_counter()
    src_paths = [Path(p) for p in src_paths]
    dst_tmp = Path(dst_tmp)
    spec = _parquet_spec(compression, level)
    if isinstance(row_group_size, bool) or not isinstance(row_group_size, int) or row_group_size < 1:
        raise ConfigError(f"row_group_size must be a positive integer, got {row_group_size!r}")
    if dst_tmp.resolve() in {p.resolve() for p in src_paths}:
        raise ConfigError(f"{dst_tmp}: the destination is one of the sources")
    rows = read_rows(src_paths, type_, ts_range=ts_range)
    expected = fingerprint_rows(rows, type_)        # the sources as read, parsed once
    table = parquet_table(rows, type_)
    try:
        _write(table, dst_tmp, spec, row_group_size, _is_compact(spec, compact))
        got = fingerprint([dst_tmp], type_)          # the written file, re-read by DuckDB
        if got != expected or got[0] != rows.num_rows:
            raise VerificationError(
                f"{dst_tmp}: written Parquet does not match its sources: rows {got[0]} vs {expected[0]}, "
                f"fingerprint {got[1]} vs {expected[1]}")
        sha = file_sha256(dst_tmp)
        meta = pq.read_metadata(dst_tmp)
    except BaseException:
        dst_tmp.unlink(missing_ok=True)
        raise
    ts_ns, seq = rows["ts"], rows["seq"]
    return ConversionResult(
        path=dst_tmp, type=type_, rows=table.num_rows, fingerprint=got[1], sha256=sha,
        size_bytes=dst_tmp.stat().st_size, first_ts=_stat(ts_ns, pc.min), last_ts=_stat(ts_ns, pc.max),
        first_seq=_stat(seq, pc.min), last_seq=_stat(seq, pc.max),
        symbols=tuple(sorted(pc.unique(rows["symbol"]).drop_null().to_pylist())),
        seconds=time.perf_counter() - t0, codec=spec.codec, level=spec.level,
        row_groups=meta.num_row_groups, column_types={f.name: str(f.type) for f in table.schema},
        fingerprint_algo=FINGERPRINT_ALGO)
