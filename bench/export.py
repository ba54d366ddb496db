"""Export throughput: our exporter vs a plain DuckDB ``COPY`` of the same rows, same run.

Builds an archive of N trades in F sealed files through the real write path (bench/views.py's
builder), then exports every trade to Parquet and to CSV with ``mdcsql.export`` (metadata,
read-back counts and SHA-256 included) and, on the same catalog, with a bare
``COPY (SELECT <view columns> FROM trades ORDER BY symbol, ts, seq) TO … (FORMAT …)``.
Each is run --repeat times, alternating (baseline, ours, baseline, ours …: the page cache and
the machine's other load treat both alike); the best time of each counts. Prints events/s and the
ratio (baseline seconds / ours; the target is >= 0.8).

Run:  .venv/bin/python bench/export.py [--events 10000000] [--files 100] [--repeat 2] [--keep DIR]
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from views import build  # noqa: E402

from mdcsql.catalog import Catalog  # noqa: E402
from mdcsql.catalog.views import JSON_COLUMNS  # noqa: E402
from mdcsql.export.exporter import run_export  # noqa: E402
from mdcsql.export.request import ExportRequest  # noqa: E402

COLUMNS = ", ".join(JSON_COLUMNS["Trade"])
BASELINE = {"parquet": f"COPY (SELECT {COLUMNS} FROM trades ORDER BY symbol, ts, seq) TO $path (FORMAT parquet)",
            "csv": f"COPY (SELECT {COLUMNS} FROM trades ORDER BY symbol, ts, seq) TO $path (FORMAT csv, HEADER true)"}


def baseline(root: Path, kind: str, out: Path) -> tuple[float, int]:
    path = out / f"baseline.{kind}"
    t0 = time.perf_counter()
    with Catalog.open(root, read_only=True) as cat:
        n = cat.execute(BASELINE[kind], {"path": str(path)}).rows[0][0]
    return time.perf_counter() - t0, int(n)


def ours(root: Path, fmt: str, out: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    res = run_export(root, ExportRequest.build(format=fmt, destination=out, types="Trade"))
    return time.perf_counter() - t0, res.events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="Build the archive here (reused when it exists).")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    root = args.keep or work / "archive"
    if not (root / "_catalog").exists():
        t0 = time.perf_counter()
        build(root, args.events, args.files)
        print(f"built {args.events:,} trades in {args.files} files in {time.perf_counter() - t0:.1f} s", flush=True)
    results = {}
    try:
        for kind, fmt in (("parquet", "Parquet"), ("csv", "Csv")):
            b_s = o_s = float("inf")
            for i in range(args.repeat):
                out = work / f"{kind}{i}"
                out.mkdir()
                b, b_n = baseline(root, kind, out)
                o, o_n = ours(root, fmt, out)
                b_s, o_s = min(b_s, b), min(o_s, o)
            assert b_n == o_n, (b_n, o_n)
            results[fmt] = {"events": o_n, "ours_s": round(o_s, 2), "copy_s": round(b_s, 2),
                            "ours_eps": round(o_n / o_s), "copy_eps": round(b_n / b_s), "ratio": round(b_s / o_s, 3),
                            "ours_bytes": sum(f.stat().st_size for f in out.rglob("*") if f.is_file() and "baseline" not in f.name),
                            "copy_bytes": (out / f"baseline.{kind}").stat().st_size}
            print(f"{fmt:8s} ours {o_s:7.2f} s {o_n / o_s:12,.0f} ev/s | DuckDB COPY {b_s:7.2f} s "
                  f"{b_n / b_s:12,.0f} ev/s | ratio {b_s / o_s:.3f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"machine": f"{platform.machine()} {os.cpu_count()} cpu", "events": args.events,
                      "files": args.files, "results": results}, indent=2))


if __name__ == "__main__":
    main()
