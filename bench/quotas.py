"""Cost of quotas and the integrity policy on the per-event write path.

The same per-event run as bench/ingest.py (`Writer.append(dict)`, durable group commit) with
(a) no quota and no integrity check (the hook is absent), (b) limits on every scope level —
Global, PerSource, PerAssetClass, PerSymbol.default, PerEventType, with MaxBytes and
MaxEventsPerDay, HardLimit, none of them reached — and (c) (b) plus EnforceMonotonicity and
MaxSequenceGap. Each run in its own process, the three interleaved `--rounds` times. The figure is
the CPU time of the appending thread per event (`time.thread_time`), which a loaded machine
disturbs far less than wall time (reported too, as `wall_us_per_event`).

Run:  .venv/bin/python bench/quotas.py [--events N] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import POOL, _trades                      # noqa: E402
from mdcsql.archive import Archive                     # noqa: E402

BIG = {"MaxBytes": 10**15, "MaxEventsPerDay": 10**12, "Enforcement": "HardLimit"}
CONFIGS = {
    "none": {},
    "quotas": {"Quotas": {"Global": BIG, "PerSource": {"sim": BIG}, "PerAssetClass": {"equity": BIG},
                          "PerSymbol": {"default": BIG}, "PerEventType": {"Trade": BIG}}},
}
CONFIGS["quotas+integrity"] = {**CONFIGS["quotas"],
                               "Integrity": {"EnforceMonotonicity": True, "MaxSequenceGap": 10**9}}


def run(mode: str, n: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="mdcsql-bench-quota-"))
    try:
        pool = _trades(POOL)
        pool.sort(key=lambda t: t["ts"])
        last_seq = max(t["seq"] for t in pool)
        span = pool[-1]["ts"] - pool[0]["ts"] + 1
        events = [dict(pool[i % POOL], seq=pool[i % POOL]["seq"] + (i // POOL) * last_seq,
                       ts=pool[i % POOL]["ts"] + (i // POOL) * span) for i in range(n)]
        cfg = tmp / "config.json"
        cfg.write_text(json.dumps({"Storage": {"Sync": {"Mode": "batched", "IntervalMs": 5, "MaxEvents": 10_000},
                                               **CONFIGS[mode]}}))
        archive = Archive.init(tmp / "a", config=cfg)
        w = archive.writer("sim")
        t0, c0 = time.perf_counter(), time.thread_time()
        for e in events:
            w.append(e)
        cpu = time.thread_time() - c0            # the appending thread's own CPU: robust to load
        ack = w.flush()
        dt = time.perf_counter() - t0
        archive.close(seal=False)
        return {"events": ack.events, "seconds": dt, "wall_us_per_event": dt / ack.events * 1e6,
                "us_per_event": cpu / ack.events * 1e6}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mode", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mode:
        print(json.dumps(run(args.mode, args.events)))
        return
    results: dict[str, list[float]] = {m: [] for m in CONFIGS}
    for _ in range(args.rounds):
        for mode in CONFIGS:
            out = subprocess.run([sys.executable, __file__, "--mode", mode, "--events", str(args.events)],
                                 capture_output=True, text=True, check=True)
            results[mode].append(json.loads(out.stdout)["us_per_event"])
    base = statistics.median(results["none"])
    print(json.dumps({
        "events": args.events, "rounds": args.rounds,
        "median_us_per_event": {m: round(statistics.median(v), 3) for m, v in results.items()},
        "overhead_us_per_event": {m: round(statistics.median(v) - base, 3) for m, v in results.items()},
        "runs_us_per_event": {m: [round(x, 3) for x in v] for m, v in results.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
