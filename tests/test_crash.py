"""Crash safety tested by crashing: kill -9 a real collector at random instants, then recover.

Invariant 2: every acknowledged event survives exactly once; nothing unacknowledged is
invented; a torn tail is quarantined, never silently dropped.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from archive_contents import data_files, events_in, stream_keys
from conftest import PYTHON, REPO, python_env
from mdcsql.archive import Archive
from mdcsql.sources.sim import SimulatedMarket
from collector_proc import SYMBOLS

DAY_NS = 86_400 * 10**9
START = 1_705_276_800 * 10**9        # 2024-01-15T00:00:00Z
EVENTS_PER_RUN = 60_000


def _run_and_kill(root: Path, source: str, seed: int, start_ns: int, delay: float) -> int:
    """Start a collector, kill -9 it `delay` s after it is up; return the last acknowledged count."""
    proc = subprocess.Popen([PYTHON, str(REPO / "tests" / "collector_proc.py"), str(root), source, str(seed),
                             str(start_ns), str(EVENTS_PER_RUN)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=python_env(), text=True)
    lines: list[str] = []
    started = threading.Event()

    def reader():
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith("START"):
                started.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    assert started.wait(60), f"collector did not start: {proc.stderr.read() if proc.poll() is not None else ''}"
    base = int(lines[0].split()[1])
    time.sleep(delay)
    acked_snapshot = list(lines)        # only what we saw before the kill counts as acknowledged
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    t.join(5)
    acks = [int(l.split()[1]) for l in acked_snapshot if l.startswith("ACK")]
    return (max(acks) if acks else base) - base


def _generated_keys(source: str, seed: int, start_ns: int, n: int) -> list[tuple]:
    market = SimulatedMarket(SYMBOLS, seed=seed, start_ns=start_ns, source=source, events_per_second=0.05)
    return [(e["source"], e["symbol"], e["type"], e["seq"]) for e in market.take(n)]


def _crash_loop(tmp_path: Path, kills: int, rng: random.Random) -> None:
    root = tmp_path / "arch"
    Archive.init(root, config=None)
    before: dict[str, tuple] = {}          # every file of earlier runs -> (size, mtime): must not change
    total = 0
    for i in range(kills):
        source = f"sim{i}"
        delay = rng.uniform(0.0, 1.2)
        acked = _run_and_kill(root, source, seed=i, start_ns=START + i * 30 * DAY_NS, delay=delay)
        report = Archive.open(root).recover()             # recovery after the crash
        files = data_files(root)
        mine = [p for p in files if f"~{source}~" in p.name]
        keys = stream_keys(e for p in mine for e in events_in(p))
        dups = {k: c for k, c in keys.items() if c > 1}
        assert not dups, f"kill {i}: duplicated events after recovery: {list(dups)[:5]}"
        assert len(keys) >= acked, f"kill {i} at {delay:.2f}s: {acked} acknowledged, only {len(keys)} stored"
        expected = _generated_keys(source, i, START + i * 30 * DAY_NS, len(keys))
        assert set(keys) == set(expected), f"kill {i}: stored events are not exactly the first {len(keys)} generated"
        now = {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in files}
        assert {k: now.get(k) for k in before} == before, f"kill {i}: files of earlier runs changed"
        before = now
        # the WAL's durable count and the tree agree: every durable event is in a file, once
        total += len(keys)
        assert report.durable_events == total


def test_kill9_at_random_instants_recovers_exactly_once(tmp_path):
    _crash_loop(tmp_path, kills=20, rng=random.Random(20240115))


@pytest.mark.slow
def test_kill9_many_more_times(tmp_path):
    _crash_loop(tmp_path, kills=60, rng=random.Random(7))
