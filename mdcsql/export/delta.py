"""ParquetDelta: a real Delta Lake table per event type, written and read with `deltalake`.

Delta Lake (protocol 1/2 as written by delta-rs) has no nanosecond timestamps: its `timestamp` is
microseconds, UTC. So every nanosecond time column `c` is stored twice: `c` as a Delta timestamp
(truncated to microseconds, for Spark/DuckDB/Polars filters) and `c_ns` as the exact int64
nanoseconds since the epoch. `read_delta()` puts the exact values back. Prices stay
decimal(38,18), exact.

Each write is one Delta commit: the log entry is written last and atomically, so a crash leaves
either the previous version or the new one, never a half export that reads as complete. The
first write goes to a temporary sibling folder renamed into place; an incremental run appends a
new version (`mode='append'`).

    write_delta(table, "out/trades", partition_by=["date"])   # version 0
    write_delta(more, "out/trades")                           # version 1 (appended)
    read_delta("out/trades")                                  # exact ns timestamps
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

from mdcsql.errors import InputError, MdcsqlError

__all__ = ["DeltaResult", "write_delta", "read_delta", "delta_schema", "NS_SUFFIX",
           "PARTITION_KEYS", "DELTA_COMPRESSIONS"]

NS_SUFFIX = "_ns"
#: partition keys a Delta export understands ('date' is derived: the UTC day of `ts`)
PARTITION_KEYS = ("date", "symbol", "source")
DELTA_COMPRESSIONS = {"snappy": "SNAPPY", "zstd": "ZSTD", "gzip": "GZIP", "lz4": "LZ4_RAW",
                      "brotli": "BROTLI", "none": "UNCOMPRESSED", "default": "SNAPPY"}


@dataclass(frozen=True)
class DeltaResult:
    path: str
    version: int
    rows: int
    files: list[str]          # data files added by this commit, relative to `path`


def _time_columns(schema: pa.Schema) -> list[str]:
    return [f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns"]


def delta_schema(schema: pa.Schema, partition_by: Iterable[str] = ()) -> pa.Schema:
    """The stored schema of `schema`: ns times as us UTC + `<c>_ns`, plus `date` if partitioned."""
    fields = []
    for f in schema:
        if pa.types.is_timestamp(f.type) and f.type.unit == "ns":
            fields += [pa.field(f.name, pa.timestamp("us", tz="UTC")),
                       pa.field(f.name + NS_SUFFIX, pa.int64())]
        else:
            fields.append(f)
    if "date" in partition_by and "date" not in schema.names:
        fields.append(pa.field("date", pa.string()))
    return pa.schema(fields)


def _convert(batch: pa.RecordBatch, target: pa.Schema, partition_by: tuple[str, ...]) -> pa.RecordBatch:
    arrays, names = [], []
    for f in batch.schema:
        col = batch.column(f.name)
        if pa.types.is_timestamp(f.type) and f.type.unit == "ns":
            # floor to the microsecond (not truncation toward zero, for times before 1970)
            micros = pc.floor_temporal(col, unit="microsecond").cast(pa.timestamp("us", tz=f.type.tz))
            arrays += [micros.cast(pa.timestamp("us", tz="UTC")), col.cast(pa.int64())]
            names += [f.name, f.name + NS_SUFFIX]
        else:
            arrays.append(col)
            names.append(f.name)
    if "date" in partition_by and "date" not in batch.schema.names:
        if "ts" not in batch.schema.names:
            raise InputError("ParquetDelta: partition_by 'date' needs a ts column")
        arrays.append(pc.strftime(batch.column("ts").cast(pa.timestamp("ns", tz="UTC")), format="%Y-%m-%d"))
        names.append("date")
    return pa.RecordBatch.from_arrays(arrays, names=names).cast(target)


def _reader(data, partition_by: tuple[str, ...], counter: list[int]) -> pa.RecordBatchReader:
    if isinstance(data, pa.Table):
        data = pa.RecordBatchReader.from_batches(data.schema, data.to_batches())
    elif not isinstance(data, pa.RecordBatchReader):
        raise InputError(f"ParquetDelta writes Arrow tables or batch readers, got {type(data).__name__}")
    target = delta_schema(data.schema, partition_by)

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in data:
            counter[0] += batch.num_rows
            yield _convert(batch, target, partition_by)

    return pa.RecordBatchReader.from_batches(target, batches())


def _is_delta(path: Path) -> bool:
    return (path / "_delta_log").is_dir()


def write_delta(data, path: str | os.PathLike, *, mode: str = "append",
                partition_by: Iterable[str] = (), compression: str = "snappy",
                name: str | None = None, description: str | None = None) -> DeltaResult:
    """Write `data` (Arrow table or RecordBatchReader) as one commit of the Delta table at `path`.

    :param mode: 'append' (a new version; creates the table if absent), 'overwrite' (a new
        version replacing the rows) or 'error' (fail if the table exists).
    :raises MdcsqlError: `path` exists and is not a Delta table, bad mode/partition/compression,
        or a schema that does not match the existing table.
    """
    from deltalake import DeltaTable, WriterProperties, write_deltalake
    from deltalake.exceptions import DeltaError

    if mode not in ("append", "overwrite", "error"):
        raise MdcsqlError(f"ParquetDelta: mode must be append, overwrite or error, got {mode!r}")
    parts = tuple(partition_by)
    bad = [p for p in parts if p not in PARTITION_KEYS]
    if bad:
        raise MdcsqlError(f"ParquetDelta: cannot partition by {', '.join(bad)}; allowed: "
                          f"{', '.join(PARTITION_KEYS)}")
    codec = DELTA_COMPRESSIONS.get(str(compression).lower())
    if codec is None:
        raise MdcsqlError(f"ParquetDelta: unknown compression {compression!r}; allowed: "
                          f"{', '.join(DELTA_COMPRESSIONS)}")
    path = Path(path)
    exists = _is_delta(path)
    if exists and mode == "error":
        raise MdcsqlError(f"{path}: a Delta table already exists there")
    if not exists and path.exists() and any(path.iterdir()):
        raise MdcsqlError(f"{path}: exists and is not a Delta table (no _delta_log); "
                          f"choose an empty or new destination")
    counter = [0]
    reader = _reader(data, parts, counter)
    target = path if exists else path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    before = set(DeltaTable(str(path)).file_uris()) if exists else set()
    props = WriterProperties(compression=codec)
    try:
        write_deltalake(str(target), reader, mode="overwrite" if mode == "overwrite" else "append",
                        partition_by=list(parts) or None, writer_properties=props,
                        name=name if not exists else None,
                        description=description if not exists else None)
    except (DeltaError, ValueError, pa.ArrowInvalid) as exc:
        if not exists:
            shutil.rmtree(target, ignore_errors=True)
        raise MdcsqlError(f"{path}: Delta write failed: {exc}") from None
    except BaseException:
        if not exists:
            shutil.rmtree(target, ignore_errors=True)
        raise
    if not exists:
        if path.exists():
            path.rmdir()   # empty (checked above)
        os.replace(target, path)
    table = DeltaTable(str(path))
    prefixes = (path.resolve().as_uri() + "/", str(path.resolve()) + os.sep)
    added = sorted(_relative(u, prefixes) for u in set(table.file_uris()) - before)
    return DeltaResult(str(path), table.version(), counter[0], added)


def _relative(uri: str, prefixes: tuple[str, ...]) -> str:
    for prefix in prefixes:
        if uri.startswith(prefix):
            return uri[len(prefix):]
    return uri


def read_delta(path: str | os.PathLike, version: int | None = None) -> pa.Table:
    """The table at `path` (or at `version`) with exact nanosecond times restored as
    `timestamp[ns, tz=UTC]` from their `<c>_ns` columns, and the derived `date` column dropped."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        dt = DeltaTable(str(path), version=version)
    except TableNotFoundError:
        raise MdcsqlError(f"{path}: not a Delta table") from None
    table = dt.to_pyarrow_table()
    names = table.column_names
    for name in list(names):
        exact = name + NS_SUFFIX
        if exact in names and pa.types.is_timestamp(table.schema.field(name).type):
            i = table.column_names.index(name)
            ns = table.column(exact).cast(pa.timestamp("ns", tz="UTC"))
            table = table.set_column(i, name, ns).drop_columns([exact])
    if "date" in table.column_names and "date" in dt.metadata().partition_columns:
        table = table.drop_columns(["date"])
    return table
