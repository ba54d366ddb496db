"""Durable ingest throughput: per-event API and batch (Arrow) API, against a no-fsync upper bound.

Run:  .venv/bin/python bench/ingest.py [--events N] [--batch-events N]
Prints one JSON document; docs/benchmarks.md records the figures with the command and machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mdcsql import events as ev                      # noqa: E402
from mdcsql.archive import Archive                     # noqa: E402
from mdcsql.sources.sim import SimulatedMarket         # noqa: E402

START = 1_705_312_800 * 10**9   # 2024-01-15T10:00:00Z


def _trades(n: int, seed: int = 1) -> list[dict]:
    market = SimulatedMarket(["AAPL", "MSFT", "SPY", "GOOGL"], seed=seed, start_ns=START, events_per_second=5_000)
    out = []
    while len(out) < n:
        out.extend(e for e in market.take(10_000) if e["type"] == "Trade")
    return out[:n]


def _archive(tmp: Path, name: str) -> Archive:
    cfg = tmp / f"{name}.json"
    cfg.write_text(json.dumps({"Storage": {"Sync": {"Mode": "batched", "IntervalMs": 5, "MaxEvents": 50_000}}}))
    return Archive.init(tmp / name, config=cfg)


def bench_upper_bound(tmp: Path, lines: list[bytes]) -> dict:
    t0 = time.perf_counter()
    with open(tmp / "upper.jsonl", "wb") as f:
        for i in range(0, len(lines), 10_000):
            f.write(b"".join(lines[i:i + 10_000]))
    dt = time.perf_counter() - t0
    size = os.path.getsize(tmp / "upper.jsonl")
    return {"events_per_s": len(lines) / dt, "bytes_per_event": size / len(lines), "seconds": dt}


def bench_per_event(tmp: Path, trades: list[dict]) -> dict:
    archive = _archive(tmp, "per_event")
    w = archive.writer("sim")
    t0 = time.perf_counter()
    for t in trades:
        w.append(t)
    ack = w.flush()
    dt = time.perf_counter() - t0
    hot = sum(p.stat().st_size for p in (tmp / "per_event" / "live").rglob("*.jsonl"))
    archive.close(seal=False)
    return {"events_per_s": ack.events / dt, "bytes_per_event": hot / ack.events, "seconds": dt,
            "wal_bytes_per_event": ack.lsn / ack.events}


def bench_batch(tmp: Path, trades: list[dict], batch_events: int, batch_size: int = 100_000) -> dict:
    cols = {k: [t[k] for t in trades] for k in trades[0]}
    base = pa.table(cols)
    archive = _archive(tmp, "batch")
    w = archive.writer("sim")
    done = 0
    t0 = time.perf_counter()
    while done < batch_events:
        n = min(batch_size, batch_events - done)
        chunk = base.slice(done % base.num_rows, n) if done % base.num_rows + n <= base.num_rows else base.slice(0, n)
        # shift each stream's seq so repeated slices are new events, not duplicates
        rounds = done // base.num_rows
        chunk = chunk.set_column(chunk.schema.get_field_index("seq"), "seq",
                                 pc.add(chunk.column("seq"), rounds * base.num_rows))
        w.append_table(chunk, type="Trade")
        done += chunk.num_rows
    ack = w.flush()
    dt = time.perf_counter() - t0
    hot = sum(p.stat().st_size for p in (tmp / "batch" / "live").rglob("*.jsonl"))
    archive.close(seal=False)
    return {"events_per_s": ack.events / dt, "bytes_per_event": hot / ack.events, "seconds": dt,
            "events": ack.events, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=500_000, help="events for the per-event run")
    ap.add_argument("--batch-events", type=int, default=2_000_000, help="events for the batch run")
    args = ap.parse_args()
    trades = _trades(min(args.events, 1_000_000))
    tmp = Path(tempfile.mkdtemp(prefix="mdcsql-bench-"))
    try:
        lines = [ev.encode(t) for t in trades]
        upper = bench_upper_bound(tmp, lines)
        per_event = bench_per_event(tmp, trades[:args.events])
        batch = bench_batch(tmp, trades, args.batch_events)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(), "platform": platform.platform()},
        "upper_bound_no_fsync": upper, "per_event_api": per_event, "batch_api": batch,
        "ratios": {"per_event_vs_upper": per_event["events_per_s"] / upper["events_per_s"],
                   "batch_vs_upper": batch["events_per_s"] / upper["events_per_s"]},
    }, indent=2))


if __name__ == "__main__":
    main()
