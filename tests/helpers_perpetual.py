"""Helpers for the perpetual-data tests (holds, WORM, removal): real archives, real files.

Archives are created with ``Archive.init`` and filled through the real write path; archive-tier
files are real Parquet files written with pyarrow under ``_archive/<reason>/...`` (the tier
contract's path scheme), registered with ``archive_catalog.add_entry`` as the tier migration does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from conftest import PYTHON, python_env
from helpers_catalog import catalog_events
from mdcsql.archive import Archive
from mdcsql.catalog import Catalog

DAY_NS = 86_400 * 1_000_000_000
JAN_15 = 1_705_276_800 * 1_000_000_000          # 2024-01-15T00:00:00Z
KEY_ENV = "MDCSQL_TEST_HMAC"


def make_archive(tmp_path: Path, storage: dict | None = None, name: str = "archive") -> Path:
    """An initialised archive with the given ``Storage`` settings (JSON config file)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / f"{name}-config.json"
    cfg.write_text(json.dumps({"Storage": storage or {}}))
    root = tmp_path / name
    Archive.init(root, config=cfg)
    return root


def fill(root: Path, plan: list[tuple[str, str, int, str]]) -> list[dict]:
    """Write events through the real write path and seal them. ``plan``: (symbol, type, day offset
    from 2024-01-15, source). Returns the catalog's files rows, by path."""
    archive = Archive.open(root)
    with archive:
        writers = {}
        for i, (symbol, type_, day, source) in enumerate(plan):
            w = writers.setdefault(source, archive.writer(source))
            w.append_many(catalog_events(type_, 3, symbol=symbol, source=source, start_seq=1 + 10 * i,
                                         ts0=JAN_15 + day * DAY_NS + 3_600_000_000_000))
    archive.sync_catalog()
    return files_rows(root)


def filled_archive(base: Path, plan: list[tuple[str, str, int, str]]) -> tuple[Path, list[dict]]:
    """A fresh archive under ``base`` filled by ``plan`` (see :func:`fill`): (root, files rows)."""
    root = make_archive(base)
    return root, fill(root, plan)


def clone(template: Path, tmp_path: Path) -> Path:
    """A private copy of a module's template archive (filling one takes seconds)."""
    dst = tmp_path / "archive"
    shutil.copytree(template, dst, symlinks=True)
    return dst


def files_rows(root: Path) -> list[dict]:
    with Catalog.open(root) as cat:
        return cat.execute("SELECT path, tier, symbol, type, source, first_ts, last_ts, sha256, size_bytes, "
                           "event_count FROM files ORDER BY path").dicts()


def archive_file(root: Path, *, reason: str = "regulatory", symbol: str = "AAPL", label: str = "2024-01",
                 n: int = 50, sidecar: bool = False) -> str:
    """A real Parquet file of ``n`` trades under ``_archive/<reason>/live/Trade/<symbol>/...``."""
    rel = f"_archive/{reason}/live/Trade/{symbol}/{label}~sim~equity.parquet"
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    ts = [JAN_15 + i * 60_000_000_000 for i in range(n)]
    table = pa.table({"ts": pa.array(ts, pa.int64()), "symbol": [symbol] * n, "type": ["Trade"] * n,
                      "price": [f"{185 + i}.25" for i in range(n)], "seq": list(range(1, n + 1))})
    pq.write_table(table, path, compression="zstd")
    if sidecar:
        manifest = {"path": rel, "symbol": symbol, "type": "Trade", "source": "sim", "event_count": n,
                    "first_ts": ts[0], "last_ts": ts[-1]}
        path.with_name(path.name + ".manifest.json").write_text(json.dumps(manifest))
    return rel


def table_rows(root: Path, table: str, order: str) -> list[tuple]:
    """Every row of one of our tables (``table`` and ``order`` are test constants, not input)."""
    with Catalog.open(root) as cat:
        return cat.execute(f"SELECT * FROM {table} ORDER BY {order}").rows


def mdcsql(*args, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a child process."""
    proc = subprocess.run([PYTHON, "-m", "mdcsql", *map(str, args)], capture_output=True, text=True,
                          env={**python_env(), **(env or {})}, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"mdcsql {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def journal(root: Path, name: str) -> list[dict]:
    path = root / "_catalog" / f"{name}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def writable(path: Path) -> bool:
    return bool(os.stat(path).st_mode & 0o222)
