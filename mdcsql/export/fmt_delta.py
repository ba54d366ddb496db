"""ParquetDelta in the format registry: one Delta Lake table per event type, `data/<view>/`.

A plain export writes version 0. An incremental export (`--incremental NAME`) starts from the
previous run's table: its immutable files (Parquet parts and log commits) are hard-linked (copied
where links are impossible) into the new export, and this run's rows are appended as the next
version, so the new export holds the whole history (`DeltaTable(path, version=n)`) while the
previous export stays untouched. The files listed for the export (checksums, read-back counts)
are those this run added: its Parquet parts and its log commit.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from mdcsql.errors import MdcsqlError
from mdcsql.export.delta import DELTA_COMPRESSIONS, PARTITION_KEYS, write_delta
from mdcsql.export.formats import ExportContext, register_format

__all__ = ["write_parquet_delta", "count_delta"]

_COMPRESSIONS = ("snappy", "zstd", "gzip", "lz4", "brotli", "none")
assert set(_COMPRESSIONS) <= set(DELTA_COMPRESSIONS)


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link (else copy) every file of the previous table: Delta files are never rewritten."""
    for dirpath, _, names in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for name in names:
            if name.endswith(".tmp") or name.startswith("."):
                continue
            try:
                os.link(Path(dirpath) / name, dst / rel / name)
            except OSError:
                shutil.copy2(Path(dirpath) / name, dst / rel / name)


def _previous_table(ctx: ExportContext, view: str) -> Path | None:
    name = getattr(ctx.request, "incremental", None)
    if not name:
        return None
    from mdcsql.export import history
    record = history.last_run(ctx.root, name)
    if not record or record.get("format") != "ParquetDelta":
        return None
    table = Path(record["path"]) / "data" / view
    return table if (table / "_delta_log").is_dir() else None


def _partition_by(ctx: ExportContext) -> list[str]:
    keys = ctx.request.options.get("partition_by", [])
    if isinstance(keys, str):
        keys = [k.strip() for k in keys.split(",") if k.strip()]
    if any(k not in PARTITION_KEYS for k in keys) or len(set(keys)) != len(keys):
        raise MdcsqlError(f"option partition_by {keys!r}: give some of {', '.join(PARTITION_KEYS)}")
    return list(keys)


def write_parquet_delta(ctx: ExportContext, sel) -> list[Path]:
    """Write (or, incrementally, append to a linked copy of) `data/<view>/` as a Delta table."""
    target = ctx.data_dir / sel.view
    previous = _previous_table(ctx, sel.view)
    if previous is not None:
        _link_tree(previous, target)
        ctx.notes.append(f"{sel.event_type}: appended to the Delta table of the previous run "
                         f"({previous}) as a new version")
    parts = _partition_by(ctx)
    if parts:
        ctx.details["partitioning"] = parts
    reader = sel.reader(ctx.con)

    def counted():
        for batch in reader:
            ctx.progress(batch.num_rows)
            yield batch

    result = write_delta(pa.RecordBatchReader.from_batches(reader.schema, counted()), target,
                         mode="append", partition_by=parts,
                         compression=ctx.compression(FORMAT), name=sel.view,
                         description=f"mdcsql export of {sel.event_type} events")
    ctx.details.setdefault("delta_versions", {})[sel.view] = result.version
    log = target / "_delta_log" / f"{result.version:020d}.json"
    return [log] + [target / f for f in result.files]


def count_delta(files: list[Path], event_type: str | None = None) -> dict[tuple[str, str], int]:
    """Events per (symbol, UTC day) in the Parquet parts listed (this run's commit)."""
    import pyarrow.parquet as pq
    out: dict[tuple[str, str], int] = {}
    for f in files:
        if f.suffix != ".parquet":
            continue
        t = pq.read_table(f, columns=["symbol", "ts_ns"], partitioning=None) \
            if "symbol=" not in str(f) else _with_partition(f)
        day = pc.strftime(t.column("ts_ns").cast(pa.timestamp("ns", tz="UTC")), format="%Y-%m-%d")
        g = pa.table({"symbol": t.column("symbol"), "day": day}).group_by(["symbol", "day"]) \
            .aggregate([([], "count_all")])
        for s, d, n in zip(*(g.column(c).to_pylist() for c in ("symbol", "day", "count_all"))):
            out[(s, d)] = out.get((s, d), 0) + n
    return out


def _with_partition(f: Path) -> pa.Table:
    """A part of a table partitioned by symbol: the symbol is in the folder name."""
    import pyarrow.parquet as pq
    from urllib.parse import unquote
    symbol = unquote(next(p.split("=", 1)[1] for p in f.parts if p.startswith("symbol=")))
    t = pq.read_table(f, columns=["ts_ns"], partitioning=None)
    return t.append_column("symbol", pa.array([symbol] * t.num_rows, pa.string()))


FORMAT = register_format(
    "ParquetDelta", write_parquet_delta, count=count_delta, compressions=_COMPRESSIONS,
    description="a Delta Lake table per type (data/<view>/, deltalake); ns times exact in <c>_ns; "
                "incremental runs append a version")
