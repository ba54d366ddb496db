"""Archives for the compaction tests: several collector runs into the same day (so every
partition has .p2, .p3 ... parts), cold Parquet parts made from them, and a content checksum of
every typed view that ignores which file a row came from."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from mdcsql.archive import Archive
from mdcsql.catalog import Catalog
from mdcsql.catalog.views import VIEW_TYPES
from mdcsql.ingest.seal import manifest_path, utc_now_iso
from mdcsql.durable import atomic_write_json, read_json
from mdcsql.lifecycle import compaction_io as cio
from mdcsql.lifecycle.codecs import recompress_jsonl
from mdcsql.lifecycle.parquet import convert
from mdcsql.sources.sim import SimulatedMarket

START = 1_704_153_600 * 10**9          # 2024-01-02T00:00:00Z
SYMBOLS = ["AAPL", "MSFT"]


def collect_rounds(root: Path, rounds: int = 3, events: int = 1500, *, symbols=SYMBOLS, seed0: int = 1) -> None:
    """``rounds`` separate collector runs into the same day: each leaves its own sealed part."""
    if not (root / "_catalog" / "config.json").exists():
        Archive.init(root, config=None)
    for i in range(rounds):
        a = Archive.open(root)
        w = a.writer("sim")
        w.append_many(SimulatedMarket(list(symbols), seed=seed0 + i, start_ns=START, source="sim").take(events))
        a.close()


def data_files(root: Path) -> list[str]:
    """Every data file (no manifests, no tmp) under the tier directories, relative."""
    out = []
    for base in ("live", "historical", "warm", "cold"):
        for dirpath, _dirs, names in os.walk(root / base):
            for n in names:
                if not n.endswith((".manifest.json", ".tmp")):
                    out.append((Path(dirpath) / n).relative_to(root).as_posix())
    return sorted(out)


def tmp_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.lc.tmp"))


def content(root: Path) -> dict[str, tuple[int, str, int]]:
    """view -> (rows, sha256 of the sorted rows without the file column, duplicated rows)."""
    Archive.open(root).sync_catalog()
    out = {}
    with Catalog.open(root, read_only=True) as cat:
        for view in VIEW_TYPES:
            rows = cat.query(f"SELECT * EXCLUDE (file) FROM {view}").rows
            text = sorted(repr(r) for r in rows)
            out[view] = (len(rows), hashlib.sha256("\n".join(text).encode()).hexdigest(),
                         len(text) - len(set(text)))
    return out


def to_tier(root: Path, tier: str = "cold") -> list[str]:
    """Move every sealed hot file to ``tier`` keeping its part: warm as gzip-6 JSONL, cold as
    Parquet (a warm/cold partition with small parts, as late data leaves it). Returns the paths."""
    a = Archive.open(root)
    out = []
    for rel in data_files(root):
        if not rel.startswith("live/"):
            continue
        meta = a.layout.parse(rel)
        m = read_json(manifest_path(root / rel))
        if tier == "cold":
            new = a.layout.relpath(meta.key, codec="parquet", part=meta.part, tier="cold")
            dst = root / new
            dst.parent.mkdir(parents=True, exist_ok=True)
            res = convert([root / rel], dst.with_name(dst.name + ".tmp"), meta.key.type, compression="zstd-3")
            os.replace(res.path, dst)
            doc = cio.parquet_manifest([m], new, meta.key, meta.part, a.layout.partition, res, whole=True)
        else:
            new = a.layout.relpath(meta.key, codec="gzip", part=meta.part, tier="warm")
            dst = root / new
            dst.parent.mkdir(parents=True, exist_ok=True)
            res = recompress_jsonl(root / rel, dst.with_name(dst.name + ".tmp"), "gzip-6")
            os.replace(res.path, dst)
            doc = dict(m, path=new, codec="gzip", compression_level=6, sha256=res.sha256, size_bytes=res.size_bytes)
        doc["sealed_at"] = m["sealed_at"]
        atomic_write_json(manifest_path(dst), doc)
        os.unlink(manifest_path(root / rel))
        os.unlink(root / rel)
        out.append(new)
    a.sync_catalog()
    return out


def to_cold(root: Path) -> list[str]:
    return to_tier(root, "cold")


def now_iso() -> str:
    return utc_now_iso()
