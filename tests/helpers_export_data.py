"""A small real archive for the export tests of profiles, transforms and Delta (helper E4)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pyarrow as pa

from conftest import PYTHON, python_env
from mdcsql.catalog import Catalog


def mdcsql(*args) -> subprocess.CompletedProcess:
    proc = subprocess.run([PYTHON, "-m", "mdcsql", *map(str, args)], capture_output=True, text=True,
                          env=python_env(), timeout=300)
    if proc.returncode != 0:
        raise AssertionError(f"mdcsql {' '.join(map(str, args))} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def sim_archive(root: Path, *, events: int = 1500, days=("2024-01-02", "2024-01-03"),
                symbols: str = "AAPL,MSFT") -> Path:
    """A real archive: the simulator's trades and quotes for `symbols` on each of `days`."""
    for i, day in enumerate(days):
        mdcsql("collect", root, "--source", "sim", "--symbols", symbols, "--events", events,
               "--seed", i + 1, "--start", day)
    return root


def view_table(root: Path, view: str) -> pa.Table:
    """Rows of a catalog view (minus `file`) as Arrow, ts/recv_ts typed timestamp[ns, UTC]."""
    assert view in ("trades", "bbo_quotes")  # identifier from an allow-list
    with Catalog.open(root, read_only=True) as cat:
        con = cat._connection()  # the read-only catalog connection; our own SQL
        table = con.sql(f"SELECT * EXCLUDE (file) FROM {view} ORDER BY symbol, ts, seq").to_arrow_table()
    fields = [f.with_type(pa.timestamp("ns", tz="UTC")) if pa.types.is_timestamp(f.type) else f
              for f in table.schema]
    return table.cast(pa.schema(fields))
