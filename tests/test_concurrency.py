"""Invariant 4: a running collector and `mdcsql sql` in other processes work side by side."""

from __future__ import annotations

import json
import subprocess
import time

from archive_contents import stored_events
from conftest import PYTHON, python_env


def test_queries_run_while_a_collector_writes(tmp_path):
    root = tmp_path / "data"
    subprocess.run([PYTHON, "-m", "mdcsql", "init", str(root)], check=True, env=python_env(), capture_output=True)
    collector = subprocess.Popen(
        [PYTHON, "-m", "mdcsql", "collect", str(root), "--symbols", "AAPL,MSFT", "--duration", "8s",
         "--rate", "3000", "--start", "2024-01-15T14:30", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=python_env())
    counts = []
    deadline = time.monotonic() + 60
    while collector.poll() is None and time.monotonic() < deadline:
        q = subprocess.run([PYTHON, "-m", "mdcsql", "sql", str(root),
                            "SELECT count(*) AS n FROM trades", "--format", "json"],
                           capture_output=True, text=True, env=python_env(), timeout=60)
        assert q.returncode == 0, q.stderr
        counts.append(json.loads(q.stdout)[0]["n"])
    out, err = collector.communicate(timeout=60)
    assert collector.returncode == 0, err
    assert len(counts) >= 2, "the collector finished before any query ran"
    assert any(c > 0 for c in counts), f"hot data never became visible while collecting: {counts}"
    assert counts == sorted(counts), f"counts went backwards: {counts}"
    final = subprocess.run([PYTHON, "-m", "mdcsql", "sql", str(root), "SELECT count(*) AS n FROM trades",
                            "--format", "json"], capture_output=True, text=True, env=python_env(), check=True)
    expected = sum(1 for e in stored_events(root) if e["type"] == "Trade")
    assert json.loads(final.stdout)[0]["n"] == expected and expected > counts[0]
    assert json.loads(out)["events"] > 0
