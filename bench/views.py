"""Catalog view vs DuckDB reading the same files directly.

Builds an archive of N trades in F sealed files (one symbol-day per file) through the real
write path, then times the same aggregate through the `trades` view and through a hand-written
`read_json` over the same files, in the same process.

Run:  .venv/bin/python bench/views.py [--events 10000000] [--files 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mdcsql.archive import Archive   # noqa: E402

DAY = 86_400 * 10**9
START = 1_704_067_200 * 10**9          # 2024-01-01T00:00:00Z

QUERY = ("SELECT symbol, count(*) AS n, sum(price::DOUBLE * size::DOUBLE) / sum(size::DOUBLE) AS vwap, min(ts) AS first, max(ts) AS last "
         "FROM {src} GROUP BY symbol ORDER BY symbol")


def build(root: Path, events: int, files: int) -> None:
    cfg = root.parent / "bench-views.json"
    cfg.write_text(json.dumps({"Storage": {"CompressionCodec": "zstd", "CompressionLevel": 3,
                                           "Sync": {"Mode": "batched", "MaxEvents": 200_000}}}))
    archive = Archive.init(root, config=cfg)
    w = archive.writer("bench")
    symbols = [f"S{i:03d}" for i in range(max(1, files // 10))]
    days = files // len(symbols)
    per_file = events // (len(symbols) * days)
    rng = np.random.default_rng(1)
    for d in range(days):
        for s in symbols:
            ts = START + d * DAY + np.sort(rng.integers(0, DAY, per_file))
            cents = 10_000 + np.cumsum(rng.integers(-2, 3, per_file))
            price = [f"{c // 100}.{c % 100:02d}" for c in cents.tolist()]
            w.append_table(pa.table({"symbol": [s] * per_file, "ts": ts, "seq": np.arange(d * per_file + 1, (d + 1) * per_file + 1),
                                     "price": price, "size": [str(x) for x in rng.integers(1, 500, per_file).tolist()],
                                     "side": ["buy"] * per_file}), type="Trade")
    archive.close()


def timed(con, sql: str, repeat: int) -> tuple[float, list]:
    best, rows = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = con.execute(sql).fetchall()
        best = min(best, time.perf_counter() - t0)
    return best, rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", help="build (or reuse) the archive at this path instead of a temp dir")
    args = ap.parse_args()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mdcsql-bench-views-")) / "a"
    try:
        t0 = time.perf_counter()
        if not (tmp / "_catalog" / "config.json").exists():
            build(tmp, args.events, args.files)
        build_s = time.perf_counter() - t0
        con = duckdb.connect(str(tmp / "_catalog" / "catalog.duckdb"), read_only=True)
        n_files = con.execute("SELECT count(*) FROM files WHERE type = 'Trade'").fetchall()[0][0]
        direct = ("read_json('{root}/live/*/Trade/*.jsonl.zst', format='newline_delimited', "
                  "columns={{ts: 'BIGINT', symbol: 'VARCHAR', price: 'DECIMAL(38,18)', size: 'DECIMAL(38,18)'}})"
                  ).format(root=tmp.resolve().as_posix())
        direct_sql = QUERY.format(src=f"(SELECT symbol, make_timestamp_ns(ts) AS ts, price, size FROM {direct})")
        view_s, view_rows = timed(con, QUERY.format(src="trades"), args.repeat)
        direct_s, direct_rows = timed(con, direct_sql, args.repeat)
        for a, b in zip(view_rows, direct_rows, strict=True):   # vwap is a float sum: order-dependent
            assert (a[0], a[1], a[3], a[4]) == (b[0], b[1], b[3], b[4]) and abs(a[2] - b[2]) < 1e-9 * abs(b[2]), \
                "the view and the direct read disagree"
        events = sum(r[1] for r in view_rows)
        print(json.dumps({
            "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                        "duckdb": duckdb.__version__, "platform": platform.platform()},
            "events": events, "files": n_files, "build_seconds": build_s,
            "view_seconds": view_s, "direct_seconds": direct_s, "ratio_view_to_direct": view_s / direct_s,
            "view_events_per_s": events / view_s,
        }, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(tmp.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
