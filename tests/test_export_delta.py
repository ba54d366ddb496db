"""ParquetDelta: a real Delta Lake table (read back with `deltalake`) equal to the view rows, and
an incremental export that appends a new Delta version while the previous export stays intact."""

from __future__ import annotations

import hashlib
import subprocess

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from conftest import PYTHON, python_env
from helpers_export_data import sim_archive, view_table
from mdcsql.errors import MdcsqlError
from mdcsql.export.delta import read_delta, write_delta
from mdcsql.export.exporter import run_export
from mdcsql.export.formats import resolve_format
from mdcsql.export.request import ExportRequest

KEYS = [("symbol", "ascending"), ("ts", "ascending"), ("seq", "ascending")]


def _sorted(t: pa.Table) -> pa.Table:
    return t.sort_by(KEYS)


def _delta_rows(path) -> pa.Table:
    """What deltalake itself reads, with ts/recv_ts taken from their exact <c>_ns columns."""
    raw = DeltaTable(str(path)).to_pyarrow_table()
    assert raw.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    out = raw
    for c in ("ts", "recv_ts"):
        exact = raw.column(c + "_ns").cast(pa.timestamp("ns", tz="UTC"))
        # the Delta timestamp is the exact time floored to the microsecond
        assert raw.column(c).cast(pa.int64()).to_pylist() == \
            [v // 1000 for v in raw.column(c + "_ns").to_pylist()]
        out = out.set_column(out.column_names.index(c), c, exact).drop_columns([c + "_ns"])
    return out.drop_columns([c for c in ("date",) if c in out.column_names])


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return sim_archive(tmp_path_factory.mktemp("delta") / "archive", days=("2024-01-02",))


def test_delta_table_equals_the_view_rows_exactly(archive, tmp_path):
    rows = view_table(archive, "trades")
    result = write_delta(rows, tmp_path / "trades", partition_by=["date", "symbol"])
    assert (result.version, result.rows) == (0, rows.num_rows) and result.files
    assert all((tmp_path / "trades" / f).is_file() for f in result.files)
    got = _sorted(_delta_rows(tmp_path / "trades")).select(rows.column_names)
    assert got.equals(_sorted(rows))                           # decimals and ns exact
    assert _sorted(read_delta(tmp_path / "trades")).select(rows.column_names).equals(_sorted(rows))


def test_export_then_incremental_export_appends_a_delta_version(tmp_path):
    root = sim_archive(tmp_path / "archive", days=("2024-01-02",))
    assert resolve_format("parquet_delta") == "ParquetDelta"

    def export():
        req = ExportRequest.build(format="ParquetDelta", destination=tmp_path / "out", types="Trade",
                                  incremental="nightly")
        return run_export(root, req)

    first = export()
    table0 = first.path / "data" / "trades"
    assert DeltaTable(str(table0)).version() == 0
    assert _sorted(_delta_rows(table0)).equals(_sorted(view_table(root, "trades")))
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in first.path.rglob("*") if p.is_file()}

    sim_archive(root, days=("2024-01-03",))                   # new data, then the next run
    second = export()
    table1 = second.path / "data" / "trades"
    dt = DeltaTable(str(table1))
    assert dt.version() == 1
    everything = view_table(root, "trades")
    assert _sorted(_delta_rows(table1)).equals(_sorted(everything))
    old = DeltaTable(str(table1), version=0).to_pyarrow_table()
    assert old.num_rows == first.events and second.events == everything.num_rows - first.events
    assert any("appended to the Delta table of the previous run" in n for n in second.notes)
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in first.path.rglob("*") if p.is_file()}
    assert after == before                                     # the previous export is untouched

    verify = subprocess.run([PYTHON, "-m", "mdcsql", "export", "verify", str(second.path)],
                            capture_output=True, text=True, env=python_env(), timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_bad_destinations_and_options_fail_clearly(archive, tmp_path):
    rows = view_table(archive, "trades").slice(0, 10)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("not a table")
    with pytest.raises(MdcsqlError, match="is not a Delta table"):
        write_delta(rows, tmp_path / "busy")
    with pytest.raises(MdcsqlError, match="cannot partition by venue"):
        write_delta(rows, tmp_path / "t", partition_by=["venue"])
    with pytest.raises(MdcsqlError, match="unknown compression"):
        write_delta(rows, tmp_path / "t", compression="zip")
    write_delta(rows, tmp_path / "t")
    with pytest.raises(MdcsqlError, match="already exists"):
        write_delta(rows, tmp_path / "t", mode="error")
    with pytest.raises(MdcsqlError, match="Delta write failed"):
        write_delta(rows.drop_columns(["price"]), tmp_path / "t")   # schema differs from the table
    assert DeltaTable(str(tmp_path / "t")).version() == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".t.tmp")]
    with pytest.raises(MdcsqlError, match="not a Delta table"):
        read_delta(tmp_path / "busy")
