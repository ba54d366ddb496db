"""Export profiles (files in exports/profiles, the design's keys and defaults) and the
PythonPandas loader files: load.py run in a child Python, explore.ipynb executed cell by cell,
load.R checked (and run when Rscript exists)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from conftest import PYTHON, REPO, python_env
from helpers_export_data import sim_archive, view_table
from mdcsql.errors import ConfigError, NotFoundError
from mdcsql.export.exporter import run_export
from mdcsql.export.formats import resolve_format
from mdcsql.export.loaders import write_loaders
from mdcsql.export.profiles import BUILTIN_PROFILES, list_profiles, load_profile, profile_from_dict
from mdcsql.export.request import ExportRequest

DESIGN = REPO.parent / "shared" / "spec" / "storage-design.md"
#: the design's "Analysis-Ready Export Profiles" block, as written there
EXPECTED = {
    "PythonPandas": {"format": "parquet", "options": {
        "engine": "pyarrow", "compression": "snappy", "timestamp_as": "datetime64[ns]",
        "include_index": False, "partition_by": ["date"], "row_group_size": 100000},
        "post_export": {"generate_loader_script": True, "generate_requirements": True,
                        "include_sample_notebook": True}},
    "QuantConnectLean": {"format": "lean_zip", "options": {
        "resolution": "tick", "market": "usa", "security_type": "equity",
        "data_type": ["trade", "quote"], "include_auxiliary": True}},
    "TimescaleDB": {"format": "postgres_copy", "options": {
        "include_ddl": True, "include_hypertable": True, "chunk_interval": "1 day",
        "compression_policy": True, "include_indexes": True}},
    "Research": {"format": "parquet_partitioned", "options": {
        "partition_by": ["symbol", "date"], "include_statistics": True, "include_metadata": True,
        "generate_catalog": True}},
}


def test_profile_files_are_the_designs_verbatim():
    files = {name: json.loads((REPO / "exports" / "profiles" / f"{name}.json").read_text())
             for name in BUILTIN_PROFILES}
    assert files == EXPECTED
    if DESIGN.is_file():   # and the design itself still says so
        text = DESIGN.read_text(encoding="utf-8")
        block = re.search(r"### 3\. Analysis-Ready Export Profiles\s+```json\n(.*?)```", text, re.S)
        assert json.loads(block.group(1))["ExportProfiles"] == files


def test_builtin_profiles_load_with_design_values_and_known_formats():
    for name, doc in EXPECTED.items():
        p = load_profile(name)
        effective = p.to_dict()
        for key, value in doc["options"].items():
            assert effective["options"][key] == value, (name, key)
        assert p.export_format == {"PythonPandas": "Parquet", "QuantConnectLean": "LeanZip",
                                   "TimescaleDB": "PostgresCopy", "Research": "ParquetPartitioned"}[name]
        if p.export_format != "LeanZip":   # LeanZip is registered by the Lean module (its own tests)
            assert resolve_format(p.format) == p.export_format
    assert load_profile("PythonPandas").post_export.include_sample_notebook is True
    assert [i.name for i in list_profiles()] == sorted(BUILTIN_PROFILES, key=str.lower)


def test_user_profiles_in_the_archive_extend_and_shadow(tmp_path):
    folder = tmp_path / "_catalog" / "export_profiles"
    folder.mkdir(parents=True)
    (folder / "Bars.json").write_text(json.dumps({
        "extends": "PythonPandas", "description": "one-minute bars",
        "options": {"compression": "zstd", "partition_by": []},
        "transforms": ["dedup", {"step": "ohlcv", "interval": "1min"}]}))
    (folder / "Research.json").write_text(json.dumps({"format": "csv", "options": {"header": True}}))
    (folder / "Broken.json").write_text(json.dumps({"format": "parquet", "options": {"compresion": "zstd"}}))
    bars = load_profile("Bars", tmp_path)
    assert bars.format == "parquet" and bars.options.compression == "zstd"
    assert bars.options.row_group_size == 100000 and bars.options.partition_by == []
    assert bars.post_export.generate_loader_script is True
    assert bars.pipeline().specs() == [{"step": "dedup", "keys": "all"},
                                       {"step": "ohlcv", "interval": "1min"}]
    assert load_profile("Research", tmp_path).format == "csv"      # the archive's own wins
    assert load_profile("Research").format == "parquet_partitioned"
    listed = {i.name: i for i in list_profiles(tmp_path)}
    assert listed["Bars"].origin == "archive" and listed["Research"].origin == "archive"
    assert listed["Broken"].format == "?" and "Did you mean 'compression'" in listed["Broken"].description


@pytest.mark.parametrize("doc, message", [
    ({"format": "parquet", "options": {"compresion": "zstd"}},
     r"options\.compresion: unknown key for format parquet.*Did you mean 'compression'"),
    ({"format": "parket"}, r"format: invalid value \(got \"parket\"\).*Did you mean 'parquet'"),
    ({"format": "lean_zip", "options": {"resolution": "minutes"}}, "Did you mean 'minute'"),
    ({"format": "lean_zip", "options": {"include_hypertable": True}}, "unknown key for format lean_zip"),
    ({"format": "postgres_copy", "options": {"chunk_interval": "1 dai"}}, "PostgreSQL interval"),
    ({"format": "parquet", "options": {"row_group_size": "100000"}}, "row_group_size: invalid value"),
    ({"format": "parquet", "optionz": {}}, "Did you mean 'options'"),
    ({"options": {}}, "format: required key missing"),
    ({"format": "parquet", "transforms": ["ohlcv:1x"]}, "transforms: invalid interval"),
])
def test_bad_profiles_fail_with_the_key_and_a_suggestion(doc, message):
    with pytest.raises(ConfigError, match=message):
        profile_from_dict("X", doc)


def test_unknown_names_and_cycles(tmp_path):
    with pytest.raises(NotFoundError, match="Did you mean 'PythonPandas'"):
        load_profile("pythonpandas")
    with pytest.raises(ConfigError, match="invalid profile name"):
        load_profile("../etc/passwd")
    folder = tmp_path / "_catalog" / "export_profiles"
    folder.mkdir(parents=True)
    (folder / "A.json").write_text(json.dumps({"extends": "B"}))
    (folder / "B.json").write_text(json.dumps({"extends": "A"}))
    with pytest.raises(ConfigError, match="cycle"):
        load_profile("A", tmp_path)


def test_cli_lists_and_shows_profiles():
    def run(*args):
        return subprocess.run([PYTHON, "-m", "mdcsql", "export", "profiles", *args],
                              capture_output=True, text=True, env=python_env(), timeout=60)
    listed = run()
    assert listed.returncode == 0 and "QuantConnectLean  lean_zip" in listed.stdout
    shown = run("--show", "TimescaleDB")
    assert json.loads(shown.stdout)["options"]["chunk_interval"] == "1 day"
    bad = run("--show", "Timescale")
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0
    assert "Did you mean 'TimescaleDB'" in bad.stderr


# -- PythonPandas loader files --------------------------------------------------------------------

@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return sim_archive(tmp_path_factory.mktemp("pp") / "archive")


def _export(archive, dest, fmt="Parquet", **options):
    profile = load_profile("PythonPandas")
    opts = profile.options.model_dump() | options
    req = ExportRequest.build(format=fmt, destination=dest, types="Trade,BboQuote", options=opts)
    result = run_export(archive, req)
    write_loaders(result.path)
    return result.path


CHECK = textwrap.dedent("""
    import json, sys
    from decimal import Decimal
    import pandas as pd
    sys.path.insert(0, ".")
    from load import datasets, load
    expected = json.load(open(sys.argv[1]))
    assert datasets() == ["bbo_quotes", "trades"], datasets()
    df = load("trades")
    assert len(df) == expected["rows"], (len(df), expected["rows"])
    assert str(df["ts"].dtype) == "datetime64[ns, UTC]", df["ts"].dtype
    assert df["price"].dtype == object and all(isinstance(p, Decimal) for p in df["price"])
    got = sorted(zip(df["symbol"], df["ts"].astype("int64"), df["seq"], map(str, df["price"]), map(str, df["size"])))
    want = sorted(tuple(r) for r in expected["keys"])
    assert got == want, (got[:3], want[:3])
    fast = load("trades", prices="float")
    assert str(fast["price"].dtype) == "float64"
    assert abs(fast["price"].sum() - float(sum(Decimal(p) for p in expected["prices"]))) < 1e-6
    assert len(load("bbo_quotes")) == expected["quotes"]
    print("loader ok", len(df))
""")


def _expected(archive) -> dict:
    trades = view_table(archive, "trades")
    ts = trades.column("ts").cast("int64").to_pylist()
    keys = [[r["symbol"], t, r["seq"], str(r["price"]), str(r["size"])]
            for r, t in zip(trades.to_pylist(), ts)]
    return {"rows": trades.num_rows, "keys": keys, "prices": [k[3] for k in keys],
            "quotes": view_table(archive, "bbo_quotes").num_rows}


@pytest.mark.parametrize("fmt", ["Parquet", "ParquetPartitioned", "Csv", "JsonLinesCompressed", "ParquetDelta"])
def test_generated_python_loader_gives_exact_frames(archive, tmp_path, fmt):
    pytest.importorskip("pandas", reason="pandas is in the test extra (pip install -e .[test])")
    out = _export(archive, tmp_path / "out", fmt)
    assert {"load.py", "load.R", "requirements.txt", "explore.ipynb"} <= {p.name for p in out.iterdir()}
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps(_expected(archive)))
    proc = subprocess.run([PYTHON, "-c", CHECK, str(expected)], cwd=out, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    script = subprocess.run([PYTHON, "load.py"], cwd=out, capture_output=True, text=True, timeout=120)
    assert script.returncode == 0 and "== trades:" in script.stdout, script.stderr


def test_sample_notebook_is_valid_and_runs(archive, tmp_path):
    pytest.importorskip("pandas", reason="pandas is in the test extra (pip install -e .[test])")
    out = _export(archive, tmp_path / "out")
    nb = json.loads((out / "explore.ipynb").read_text())
    assert nb["nbformat"] == 4 and nb["nbformat_minor"] >= 4 and nb["metadata"]["kernelspec"]["language"] == "python"
    for cell in nb["cells"]:
        assert cell["cell_type"] in ("markdown", "code") and isinstance(cell["source"], list) and "id" in cell
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    try:
        import nbformat
        nbformat.validate(nbformat.reads(json.dumps(nb), as_version=4))
    except ImportError:
        pass
    code = [("".join(c["source"])) for c in nb["cells"] if c["cell_type"] == "code"]
    runner = ("import json, sys\nns = {}\nfor i, src in enumerate(json.load(open(sys.argv[1]))):\n"
              "    exec(compile(src, f'cell{i}', 'exec'), ns)\n"
              "assert len(ns['df']) > 0 and ns['bars'] is not None and len(ns['bars']) > 0\nprint('notebook ok')\n")
    cells = tmp_path / "cells.json"
    cells.write_text(json.dumps(code))
    proc = subprocess.run([PYTHON, "-c", runner, str(cells)], cwd=out, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "notebook ok" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("fmt", ["Parquet", "Csv"])
def test_r_loader(archive, tmp_path, fmt):
    out = _export(archive, tmp_path / "out", fmt)
    text = (out / "load.R").read_text()
    suffix = "parquet" if fmt == "Parquet" else "csv"
    assert f'trades = list(path = "data/trades.{suffix}", format = "{suffix}"' in text
    assert 'time = c("ts", "recv_ts")' in text and '"price"' in text
    assert "read.csv(path" in text and "library(arrow)" in text and "open_dataset(" in text
    assert text.count("{{") == 0
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed: load.R checked by content only")
    proc = subprocess.run(["Rscript", "load.R"], cwd=out, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "== trades:" in proc.stdout, proc.stderr


def test_cli_export_with_the_python_pandas_profile_writes_the_loader_files(archive, tmp_path):
    """The profile's post_export reaches the export core: no separate call writes the loaders."""
    dest = tmp_path / "out"
    proc = subprocess.run([PYTHON, "-m", "mdcsql", "export", str(archive), "--profile", "PythonPandas",
                           "--types", "Trade", "--dest", str(dest)], capture_output=True, text=True,
                          env=python_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    done = [p for p in dest.rglob("load.py")]
    assert len(done) == 1, list(dest.rglob("*"))[:20]
    out = done[0].parent
    assert {"load.py", "load.R", "requirements.txt", "explore.ipynb"} <= {p.name for p in out.iterdir()}
    meta = json.loads(next(out.glob("*metadata*.json")).read_text())
    assert "load.py" in json.dumps(meta) or "from load import" in json.dumps(meta)
    verify = subprocess.run([PYTHON, "-m", "mdcsql", "export", "verify", str(out), "--root", str(archive)],
                            capture_output=True, text=True, env=python_env(), timeout=300)
    assert verify.returncode == 0, verify.stdout + verify.stderr
