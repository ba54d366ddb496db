"""Replay and simulator throughput, beside the core's batch-ingest rate for the same events.

Each measurement runs in its own process.  "durable" rates stop the clock when the last event is
acknowledged by the group commit (what a collector waits for); "with seal" rates include closing
the archive (sealing = compressing every hot file, the manifests and the catalog sync).

Measurements:
  sim-generate     the simulator alone: Arrow blocks (the SimSource path) and dicts (`take`)
  sim-collect      collect(archive, [SimSource(limit=N)])
  sim-views        collect(archive, sim_sources(limit=N)): the three standard views at once
  sim-baseline     the same simulator tables, generated beforehand, through Writer.append_table
  trades-baseline  N simulator trades in 100k-row tables through Writer.append_table (issue 2's batch path)
  lean-read        mdcsql.sources.lean.read alone (the SPY tick trade file)
  lean-replay      collect(archive, [ReplaySource(file)])
  lean-baseline    the same Lean tables, read beforehand, through Writer.append_table

Run:  .venv/bin/python bench/replay.py [--sim-events N] [--lean FILE]
Prints one JSON document; docs/benchmarks.md records the figures with the command and machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mdcsql.archive import Archive                                     # noqa: E402
from mdcsql.collect import collect                                     # noqa: E402
from mdcsql.sources.sim import SimSource, SimulatedMarket, sim_sources  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
LEAN = REPO.parent / "shared" / "data" / "lean" / "equity" / "usa" / "tick" / "spy" / "20131008_trade.zip"
SYMBOLS = ["AAPL", "MSFT", "SPY", "GOOGL"]
START = 1_709_303_400 * 10**9        # 2024-03-01T14:30:00Z, the New York open
SEED = 1


def _collect(tmp: Path, sources) -> dict:
    archive = Archive.init(tmp / "archive", config=None)
    acks: list[tuple[float, int]] = []
    t0 = time.perf_counter()
    report = collect(archive, sources, on_ack=lambda ack: acks.append((time.perf_counter(), ack.events)))
    total = time.perf_counter() - t0
    durable = report["durable_events"]
    t_durable = next(t for t, n in acks if n >= durable) - t0
    return {"events": durable, "events_per_s_durable": durable / t_durable, "seconds_durable": t_durable,
            "events_per_s_with_seal": durable / total, "seconds_with_seal": total,
            "duplicates_dropped": report["duplicates_dropped"], "files_sealed": report["files_sealed"],
            "failed": report["failed"]}


def _append(tmp: Path, tables: list[pa.Table], source: str, root: str) -> dict:
    archive = Archive.init(tmp / "archive", config=None)
    w = archive.writer(source, root=root)
    t0 = time.perf_counter()
    for t in tables:
        w.append_table(t)
    ack = w.flush()
    dt = time.perf_counter() - t0
    archive.close(seal=False)
    return {"events": ack.events, "events_per_s_durable": ack.events / dt, "seconds_durable": dt}


def _sim_tables(n: int) -> list[pa.Table]:
    market = SimulatedMarket(SYMBOLS, seed=SEED, start_ns=START, limit=n)
    return [t for block in market.blocks() for _, t in block]


def run_sim_generate(tmp: Path, n: int) -> dict:
    market = SimulatedMarket(SYMBOLS, seed=SEED, start_ns=START, limit=n)
    t0 = time.perf_counter()
    rows = sum(t.num_rows for block in market.blocks() for _, t in block)
    arrow = time.perf_counter() - t0
    k = min(n, 300_000)
    market = SimulatedMarket(SYMBOLS, seed=SEED, start_ns=START, limit=k)
    t0 = time.perf_counter()
    dicts = len(market.take(k))
    dict_s = time.perf_counter() - t0
    return {"events": rows, "events_per_s_arrow": rows / arrow, "seconds_arrow": arrow,
            "dict_events": dicts, "events_per_s_dicts": dicts / dict_s}


def run_sim_collect(tmp: Path, n: int) -> dict:
    return _collect(tmp, [SimSource(SYMBOLS, seed=SEED, start_ns=START, limit=n)])


def run_sim_views(tmp: Path, n: int) -> dict:
    sources = sim_sources(SYMBOLS, seed=SEED, start_ns=START, limit=n)
    out = _collect(tmp, sources)
    out["views"] = {s.id: s.injected for s in sources}
    return out


def run_sim_baseline(tmp: Path, n: int) -> dict:
    return _append(tmp, _sim_tables(n), "sim", "live")


def run_trades_baseline(tmp: Path, n: int) -> dict:
    trades = [t for t in _sim_tables(5 * n) if t.column("type")[0].as_py() == "Trade"]
    table = pa.concat_tables(trades).slice(0, n).combine_chunks()
    chunks = [table.slice(i, 100_000) for i in range(0, table.num_rows, 100_000)]
    return _append(tmp, chunks, "sim", "live")


def _lean_tables(path: Path) -> list[pa.Table]:
    from mdcsql.sources import lean
    return [t for _, t in lean.read(path)]


def run_lean_read(tmp: Path, path: str) -> dict:
    t0 = time.perf_counter()
    rows = sum(t.num_rows for t in _lean_tables(Path(path)))
    dt = time.perf_counter() - t0
    return {"events": rows, "events_per_s": rows / dt, "seconds": dt}


def run_lean_replay(tmp: Path, path: str) -> dict:
    from mdcsql.sources.replay import ReplaySource
    return _collect(tmp, [ReplaySource(path)])


def run_lean_baseline(tmp: Path, path: str) -> dict:
    return _append(tmp, _lean_tables(Path(path)), "lean", "historical")


MODES = {"sim-generate": run_sim_generate, "sim-collect": run_sim_collect, "sim-views": run_sim_views,
         "sim-baseline": run_sim_baseline, "trades-baseline": run_trades_baseline, "lean-read": run_lean_read,
         "lean-replay": run_lean_replay, "lean-baseline": run_lean_baseline}


def _child(mode: str, arg) -> dict:
    out = subprocess.run([sys.executable, __file__, "--mode", mode, "--arg", str(arg)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sim-events", type=int, default=1_000_000, help="market events per simulator run")
    ap.add_argument("--lean", default=str(LEAN), help="the Lean tick trade zip to replay")
    ap.add_argument("--mode", choices=sorted(MODES), help=argparse.SUPPRESS)
    ap.add_argument("--arg", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mode:
        tmp = Path(tempfile.mkdtemp(prefix="mdcsql-bench-"))
        try:
            arg = args.arg if args.mode.startswith("lean") else int(args.arg)
            print(json.dumps(MODES[args.mode](tmp, arg)))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    n = args.sim_events
    out: dict = {"machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                             "platform": platform.platform(), "load_average_before": _load_average()}}
    out["sim_generate"] = _child("sim-generate", n)
    out["sim_collect"] = _child("sim-collect", n)
    out["sim_views"] = _child("sim-views", n)
    out["sim_baseline"] = _child("sim-baseline", n)
    ratios = {"sim_collect_vs_same_tables": out["sim_collect"]["events_per_s_durable"]
              / out["sim_baseline"]["events_per_s_durable"]}
    lean_available = Path(args.lean).exists()
    try:
        import mdcsql.sources.lean  # noqa: F401
    except ImportError:
        lean_available = False
    if lean_available:
        out["lean_read"] = _child("lean-read", args.lean)
        out["lean_replay"] = _child("lean-replay", args.lean)
        out["lean_baseline"] = _child("lean-baseline", args.lean)
        out["trades_baseline"] = _child("trades-baseline", out["lean_replay"]["events"])
        ratios.update(
            lean_replay_vs_same_tables=out["lean_replay"]["events_per_s_durable"]
            / out["lean_baseline"]["events_per_s_durable"],
            lean_replay_vs_trades_batch=out["lean_replay"]["events_per_s_durable"]
            / out["trades_baseline"]["events_per_s_durable"])
    else:
        out["lean"] = f"skipped: {args.lean} or mdcsql.sources.lean is absent"
        out["trades_baseline"] = _child("trades-baseline", n)
    ratios["sim_collect_vs_trades_batch"] = (out["sim_collect"]["events_per_s_durable"]
                                             / out["trades_baseline"]["events_per_s_durable"])
    out["ratios"] = ratios
    out["machine"]["load_average_after"] = _load_average()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
