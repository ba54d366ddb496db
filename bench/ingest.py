"""Durable ingest throughput: per-event API and batch (Arrow) API, beside a no-fsync upper bound.

Each measurement runs in its own process, so its peak memory (ru_maxrss) is its own.

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
import subprocess
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
POOL = 200_000                  # distinct trades generated up front; reused with shifted seqs


def _trades(n: int, seed: int = 1) -> list[dict]:
    market = SimulatedMarket(["AAPL", "MSFT", "SPY", "GOOGL"], seed=seed, start_ns=START, events_per_second=5_000)
    out = []
    while len(out) < n:
        out.extend(e for e in market.take(10_000) if e["type"] == "Trade")
    return out[:n]


def _archive(tmp: Path, name: str) -> Archive:
    cfg = tmp / f"{name}.json"
    cfg.write_text(json.dumps({"Storage": {"Sync": {"Mode": "batched", "IntervalMs": 5, "MaxEvents": 10_000}}}))
    return Archive.init(tmp / name, config=cfg)


def _hot_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "live").rglob("*.jsonl"))


def run_upper(tmp: Path, n: int) -> dict:
    """The same JSON lines, already encoded, written to one file with no fsync."""
    pool = [ev.encode(t) for t in _trades(POOL)]
    t0 = time.perf_counter()
    with open(tmp / "upper.jsonl", "wb") as f:
        for i in range(0, n, 10_000):
            f.write(b"".join(pool[j % POOL] for j in range(i, min(i + 10_000, n))))
    dt = time.perf_counter() - t0
    return {"events": n, "events_per_s": n / dt, "bytes_per_event": os.path.getsize(tmp / "upper.jsonl") / n,
            "seconds": dt}


def run_per_event(tmp: Path, n: int) -> dict:
    """`Writer.append(dict)` per event: validation, dedupe, group commit included."""
    pool = _trades(POOL)
    last_seq = max(t["seq"] for t in pool)
    events = [dict(pool[i % POOL], seq=pool[i % POOL]["seq"] + (i // POOL) * last_seq) for i in range(n)]
    archive = _archive(tmp, "per_event")
    w = archive.writer("sim")
    t0 = time.perf_counter()
    for e in events:
        w.append(e)
    ack = w.flush()
    dt = time.perf_counter() - t0
    hot = _hot_bytes(tmp / "per_event")
    archive.close(seal=False)
    return {"events": ack.events, "events_per_s": ack.events / dt, "bytes_per_event": hot / ack.events,
            "wal_bytes_per_event": ack.lsn / ack.events, "seconds": dt}


def run_batch(tmp: Path, n: int, batch: int = 100_000) -> dict:
    """`Writer.append_table(arrow)` in batches; peak memory of this process included."""
    market = SimulatedMarket(["AAPL", "MSFT", "SPY", "GOOGL"], seed=1, start_ns=START, events_per_second=5_000)
    chunks, rows = [], 0
    while rows < POOL:                 # built in small pieces: the peak memory is the ingest's own
        trades = [e for e in market.take(10_000) if e["type"] == "Trade"]
        chunks.append(pa.table({k: [t[k] for t in trades] for k in trades[0]}))
        rows += len(trades)
    base = pa.concat_tables(chunks).slice(0, POOL).combine_chunks()
    del chunks, trades
    last_seq = pc.max(base.column("seq")).as_py()
    rss_before = _rss_mb()
    archive = _archive(tmp, "batch")
    w = archive.writer("sim")
    done = 0
    t0 = time.perf_counter()
    while done < n:
        start, rounds = done % POOL, done // POOL
        chunk = base.slice(start, min(batch, n - done, POOL - start))
        chunk = chunk.set_column(chunk.schema.get_field_index("seq"), "seq",
                                 pc.add(chunk.column("seq"), rounds * last_seq))
        w.append_table(chunk, type="Trade")
        done += chunk.num_rows
    ack = w.flush()
    dt = time.perf_counter() - t0
    hot = _hot_bytes(tmp / "batch")
    archive.close(seal=False)
    return {"events": ack.events, "events_per_s": ack.events / dt, "bytes_per_event": hot / ack.events,
            "wal_bytes_per_event": ack.lsn / ack.events, "seconds": dt,
            "rss_before_mb": rss_before, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


MODES = {"upper": run_upper, "per-event": run_per_event, "batch": run_batch}


def _child(mode: str, n: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--mode", mode, "--n", str(n)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000, help="events for the per-event run")
    ap.add_argument("--batch-events", type=int, default=10_000_000, help="events for the batch run")
    ap.add_argument("--mode", choices=sorted(MODES), help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mode:
        tmp = Path(tempfile.mkdtemp(prefix="mdcsql-bench-"))
        try:
            print(json.dumps(MODES[args.mode](tmp, args.n)))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    upper = _child("upper", args.batch_events)
    per_event = _child("per-event", args.events)
    batch = _child("batch", args.batch_events)
    print(json.dumps({
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(), "platform": platform.platform()},
        "upper_bound_no_fsync": upper, "per_event_api": per_event, "batch_api": batch,
        "ratios": {"per_event_vs_upper": per_event["events_per_s"] / upper["events_per_s"],
                   "batch_vs_upper": batch["events_per_s"] / upper["events_per_s"]},
    }, indent=2))


if __name__ == "__main__":
    main()
