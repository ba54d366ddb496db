"""Export core (mdcsql.export, issue 5): every generic format round-trips exactly against the
catalog views, atomic publication (kill -9 of a real ``mdcsql export``), metadata in the design's
shape, verify catching a changed byte and a missing day, incremental runs, bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from conftest import PYTHON, python_env
from helpers_perpetual import mdcsql
from mdcsql.archive import Archive
from mdcsql.catalog import Catalog
from mdcsql.catalog.views import JSON_COLUMNS
from mdcsql.errors import MdcsqlError
from mdcsql.events import parse_ts
from mdcsql.export import history, metadata
from mdcsql.export.exporter import run_export
from mdcsql.export.formats import FORMATS, register_format
from mdcsql.export.request import TYPE_VIEWS, ExportRequest
from mdcsql.export.selection import column_kinds
from mdcsql.export.verify import verify_export

GENERIC = ("JsonLines", "JsonLinesCompressed", "Parquet", "ParquetPartitioned", "Arrow", "FeatherV2", "Csv",
           "CsvCompressed")
TYPES = ("Trade", "BboQuote", "L2Snapshot", "OrderFlow")
DAYS = ("2024-01-02", "2024-01-03", "2024-01-04")


def collect(root: Path, day: str, events: int, seed: int = 42) -> None:
    mdcsql("collect", root, "--source", "sim", "--symbols", "AAPL,MSFT", "--events", events, "--start", day,
           "--seed", seed)


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export") / "archive"
    collect(root, DAYS[0], 4000, seed=1)
    collect(root, DAYS[1], 2000, seed=2)
    return root


def request(fmt: str, dest: Path, **kw) -> ExportRequest:
    return ExportRequest.build(format=fmt, destination=dest, **kw)


# ---------------------------------------------------------------- reading back, normalised
def _norm(value, kind: str):
    """One value as plain Python: ns ints, Decimals, lists of (Decimal, Decimal) levels."""
    if value is None or value == "":
        return None
    if kind == "time":
        return value if isinstance(value, int) else parse_ts(value)
    if kind == "decimal":
        return Decimal(str(value))
    if kind == "levels":
        levels = json.loads(value) if isinstance(value, str) else value
        return [(Decimal(str(l["price"] if isinstance(l, dict) else l[0])),
                 Decimal(str(l["size"] if isinstance(l, dict) else l[1]))) for l in levels]
    if kind == "list":
        return json.loads(value) if isinstance(value, str) else list(value)
    if isinstance(value, str) and kind == "plain" and value.lstrip("-").isdigit():
        return int(value)
    return value


def _rows(records: list[dict], etype: str) -> list[tuple]:
    kinds = column_kinds(etype)
    out = []
    for r in records:
        out.append(tuple(_norm(r.get(c), kinds[c]) if kinds[c] != "plain" or c == "seq" else
                         (None if r.get(c) in (None, "") else str(r.get(c))) for c in kinds))
    return sorted(out, key=lambda t: (t[2], t[0], t[4] if t[4] is not None else -1))


def view_rows(root: Path, etype: str, where: str = "") -> list[tuple]:
    cols = list(JSON_COLUMNS[etype])
    sel = ", ".join(f"epoch_ns({c}) AS {c}" if c in ("ts", "recv_ts") else c for c in cols)
    with Catalog.open(root, read_only=True) as cat:
        res = cat.execute(f"SELECT {sel} FROM {TYPE_VIEWS[etype]} {where}")
    return _rows([dict(zip(res.columns, r)) for r in res.rows], etype)


def _arrow_records(table: pa.Table) -> list[dict]:
    for name in ("ts", "recv_ts"):
        if name in table.column_names:
            i = table.column_names.index(name)
            assert table.schema.field(name).type == pa.timestamp("ns", tz="UTC")
            table = table.set_column(i, name, table.column(name).cast(pa.int64()))
    return table.to_pylist()


def export_rows(path: Path, fmt: str, etype: str) -> list[tuple]:
    view = TYPE_VIEWS[etype]
    data = path / "data"
    if fmt in ("Parquet",):
        recs = _arrow_records(pq.read_table(data / f"{view}.parquet"))
    elif fmt == "ParquetPartitioned":
        table = ds.dataset(data / view, format="parquet", partitioning="hive").to_table()
        recs = _arrow_records(table.drop_columns(["date"]))
    elif fmt in ("Arrow", "FeatherV2"):
        with pa.memory_map(str(data / f"{view}.{'arrow' if fmt == 'Arrow' else 'feather'}")) as src:
            recs = _arrow_records(pa.ipc.open_file(src).read_all())
    elif fmt.startswith("JsonLines"):
        import gzip
        name = data / f"{view}.jsonl{'.gz' if fmt.endswith('Compressed') else ''}"
        opener = gzip.open if fmt.endswith("Compressed") else open
        with opener(name, "rt") as f:
            recs = [json.loads(line) for line in f]
    else:
        import csv
        import gzip
        name = data / f"{view}.csv{'.gz' if fmt.endswith('Compressed') else ''}"
        opener = gzip.open if fmt.endswith("Compressed") else open
        with opener(name, "rt", newline="") as f:
            recs = list(csv.DictReader(f))
    return _rows(recs, etype)


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("fmt", GENERIC)
def test_every_generic_format_round_trips_exactly(archive, tmp_path, fmt):
    res = run_export(archive, request(fmt, tmp_path / "out", types=",".join(TYPES)))
    assert res.path.parent == tmp_path / "out" and (res.path / metadata.METADATA_FILE).is_file()
    total = 0
    for etype in TYPES:
        expected = view_rows(archive, etype)
        assert expected, etype
        assert export_rows(res.path, fmt, etype) == expected, f"{fmt} {etype} differs from the view"
        total += len(expected)
    assert res.events == total
    check = verify_export(res.path)
    assert check.is_valid, check.issues
    assert check.expected_events == check.actual_events == total


def test_text_formats_keep_exact_decimal_text_and_ns_times(archive, tmp_path):
    res = run_export(archive, request("Csv", tmp_path, types="Trade", symbols="AAPL"))
    first = (res.path / "data" / "trades.csv").read_text().splitlines()[1].split(",")
    assert first[0].endswith("Z") and len(first[0].split(".")[1]) == 10        # 9 digits + Z
    assert "." not in first[6] or not first[6].endswith("0")                     # no DECIMAL(38,18) padding
    res = run_export(archive, request("Parquet", tmp_path, types="Trade"))
    schema = pq.read_schema(res.path / "data" / "trades.parquet")
    assert schema.field("price").type == pa.decimal128(38, 18)
    assert schema.field("ts").type == pa.timestamp("ns", tz="UTC")


def test_selection_filters_range_symbols_and_sources(archive, tmp_path):
    res = run_export(archive, request("Parquet", tmp_path, types="Trade", symbols="MSFT", start=DAYS[1], end=DAYS[1],
                                      sources="sim"))
    got = export_rows(res.path, "Parquet", "Trade")
    lo, hi = parse_ts(DAYS[1] + "T00:00:00Z"), parse_ts(DAYS[2] + "T00:00:00Z")
    assert got == [r for r in view_rows(archive, "Trade") if r[2] == "MSFT" and lo <= r[0] < hi]
    assert got and res.counts["Trade"] == {"MSFT": {DAYS[1]: len(got)}}
    # a timestamp --to is exclusive
    cut = got[10][0]
    iso = f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(cut // 10**9))}.{cut % 10**9:09d}Z"
    res = run_export(archive, request("Parquet", tmp_path, types="Trade", symbols="MSFT", start=DAYS[1], end=iso))
    assert export_rows(res.path, "Parquet", "Trade") == got[:10]


def test_dedupe_keeps_one_row_per_event(archive, tmp_path):
    root = tmp_path / "dup"
    shutil.copytree(archive, root)
    sealed = sorted((root / "live").glob("*/Trade/*.jsonl.gz"))[0]
    twin = root / "historical" / sealed.relative_to(root / "live")
    twin.parent.mkdir(parents=True)
    shutil.copy(sealed, twin)                                     # the same events a second time
    archive_ = Archive.open(root)
    archive_.rebuild_catalog()
    archive_.close()
    plain = run_export(root, request("Parquet", tmp_path / "o", types="Trade"))
    deduped = run_export(root, request("Parquet", tmp_path / "o", types="Trade", dedupe=True))
    rows = export_rows(deduped.path, "Parquet", "Trade")
    assert plain.events > deduped.events == len(view_rows(archive, "Trade"))
    assert rows == view_rows(archive, "Trade")


# ---------------------------------------------------------------- metadata
def test_metadata_has_the_designs_shape(archive, tmp_path):
    res = run_export(archive, request("ParquetPartitioned", tmp_path, types="Trade,BboQuote"))
    doc = json.loads((res.path / "export_metadata.json").read_text())
    meta = doc["export_metadata"]
    for key in ("export_id", "created_at", "source_archive_version", "data_coverage", "quality_summary",
                "format_details", "checksums", "loader_code"):
        assert key in meta, key
    cov = meta["data_coverage"]
    assert cov["symbols"] == ["AAPL", "MSFT"] and cov["event_types"] == ["Trade", "BboQuote"]
    assert cov["date_range"] == {"start": DAYS[0], "end": DAYS[1]}
    assert cov["total_events"] == res.events and cov["total_bytes"] == sum(
        (res.path / f["path"]).stat().st_size for f in meta["checksums"]["files"])
    assert set(meta["quality_summary"]) >= {"overall_score", "completeness", "gaps_filled", "outliers_present"}
    assert meta["format_details"]["partitioning"] == ["date", "symbol"]
    assert set(meta["format_details"]) >= {"format", "compression", "partitioning", "schema_version"}
    assert meta["checksums"]["manifest"].startswith("sha256:")
    for f in meta["checksums"]["files"]:
        assert metadata.sha256_file(res.path / f["path"]) == f["sha256"]
    assert set(meta["loader_code"]) == {"python", "r"} and "read_parquet" in meta["loader_code"]["python"]
    # sha256sum -c works on checksums.sha256
    proc = subprocess.run(["sha256sum", "-c", "--quiet", "checksums.sha256"], cwd=res.path, capture_output=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the loader code runs
    proc = subprocess.run([PYTHON, "-c", meta["loader_code"]["python"] + "\nassert len(trade) > 0"], cwd=res.path,
                          capture_output=True, text=True)
    if "No module named 'pandas'" not in proc.stderr:
        assert proc.returncode == 0, proc.stderr


# ---------------------------------------------------------------- verify
def test_verify_detects_a_changed_byte(archive, tmp_path):
    res = run_export(archive, request("Csv", tmp_path, types="Trade"))
    assert mdcsql("export", "verify", res.path).returncode == 0
    data = res.path / "data" / "trades.csv"
    raw = bytearray(data.read_bytes())
    raw[200] = ord("9") if raw[200] != ord("9") else ord("8")
    data.write_bytes(bytes(raw))
    proc = mdcsql("export", "verify", res.path, check=False)
    assert proc.returncode == 1
    assert "data/trades.csv: SHA-256 differs" in proc.stderr


def _rewrite(export: Path, rel: str, text: str) -> None:
    """Replace a file of an export and make its checksums agree (only completeness can tell)."""
    (export / rel).write_text(text)
    doc = json.loads((export / metadata.METADATA_FILE).read_text())
    for f in doc["export_metadata"]["checksums"]["files"]:
        if f["path"] == rel:
            f["sha256"], f["bytes"] = metadata.sha256_file(export / rel), (export / rel).stat().st_size
    metadata.write(export, doc)


def test_verify_detects_a_missing_day_and_symbol(archive, tmp_path):
    res = run_export(archive, request("Csv", tmp_path, types="Trade", start=DAYS[0], end=DAYS[1]))
    lines = (res.path / "data" / "trades.csv").read_text().splitlines()
    kept = [lines[0]] + [l for l in lines[1:] if not (l.startswith(DAYS[1]) and ",AAPL," in l)]
    _rewrite(res.path, "data/trades.csv", "\n".join(kept) + "\n")
    check = verify_export(res.path)
    assert not check.is_valid and check.missing_dates == [DAYS[1]]
    assert any(f"Trade AAPL {DAYS[1]}: expected" in i for i in check.issues)
    kept = [lines[0]] + [l for l in lines[1:] if ",MSFT," not in l]
    _rewrite(res.path, "data/trades.csv", "\n".join(kept) + "\n")
    proc = mdcsql("export", "verify", res.path, "--root", archive, check=False)
    assert proc.returncode == 1 and "missing symbol MSFT" in proc.stderr


# ---------------------------------------------------------------- atomicity
def test_a_failing_writer_leaves_no_export(archive, tmp_path):
    def broken(ctx, sel):
        (ctx.data_dir / "half.bin").write_bytes(b"x" * 1000)
        raise MdcsqlError("disk full (test)")
    register_format("BrokenTest", broken)
    try:
        with pytest.raises(MdcsqlError, match="disk full"):
            run_export(archive, request("BrokenTest", tmp_path / "o", types="Trade", name="b"))
    finally:
        FORMATS.pop("BrokenTest")
    assert list((tmp_path / "o").iterdir()) == []
    assert history.records(archive)[-1]["name"] != "b"


def test_kill9_mid_export_never_leaves_an_export_that_looks_complete(archive, tmp_path):
    dest = tmp_path / "dest"
    seen_partial = False
    for i, delay in enumerate((0.9, 1.3, 1.7, 2.2, 2.8)):
        proc = subprocess.Popen([PYTHON, "-m", "mdcsql", "export", str(archive), "--format", "ParquetPartitioned",
                                 "--dest", str(dest), "--name", f"k{i}"], env=python_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for d in dest.iterdir() if dest.exists() else []:
            if d.name.startswith("."):
                seen_partial = seen_partial or ".partial-" in d.name
                continue
            assert (d / metadata.METADATA_FILE).is_file(), f"{d.name} looks complete without its metadata"
            assert verify_export(d).is_valid
    # the next export to the same destination removes what the killed runs left
    res = run_export(archive, request("Csv", dest, types="Trade", name="after"))
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]
    assert verify_export(res.path).is_valid
    assert seen_partial or all((dest / f"k{i}").exists() for i in range(5))


# ---------------------------------------------------------------- incremental and history
def test_incremental_exports_only_new_data(archive, tmp_path):
    root = tmp_path / "inc"
    shutil.copytree(archive, root)
    dest = tmp_path / "out"
    first = run_export(root, request("Parquet", dest, types="Trade", incremental="daily"))
    assert first.events == len(view_rows(root, "Trade"))
    collect(root, DAYS[2], 1500, seed=3)
    second_proc = mdcsql("export", root, "--incremental", "daily", "--dest", dest, "--json")
    second = json.loads(second_proc.stdout)
    new = [r for r in view_rows(root, "Trade") if r[0] >= parse_ts(DAYS[2] + "T00:00:00Z")]
    assert second["format"] == "Parquet" and second["events"] == len(new) > 0
    assert export_rows(Path(second["path"]), "Parquet", "Trade") == new
    assert verify_export(second["path"]).is_valid
    third = run_export(root, request("Parquet", dest, types="Trade", incremental="daily"))
    assert third.events == 0
    recs = [r for r in history.records(root) if r.get("incremental") == "daily"]
    assert [r["events"] for r in recs] == [first.events, len(new), 0]
    assert recs[-1]["watermark"]["Trade"]["marks"]
    proc = mdcsql("export", "history", root, "--name", "daily", "--json")
    assert len(json.loads(proc.stdout)) == 3


def test_schedule_is_stored_with_its_next_run(archive, tmp_path):
    root = tmp_path / "s"
    shutil.copytree(archive, root)
    proc = mdcsql("export", root, "--format", "Parquet", "--dest", tmp_path / "o", "--incremental", "nightly",
                  "--schedule", "0 6 * * *")
    assert "next run" in proc.stdout and not (tmp_path / "o").exists()
    (entry,) = json.loads(mdcsql("export", "schedules", root, "--json").stdout)
    assert entry["name"] == "nightly" and entry["cron"] == "0 6 * * *" and entry["next_run"].endswith("06:00:00Z")
    bad = mdcsql("export", root, "--format", "Parquet", "--dest", tmp_path / "o", "--name", "x", "--schedule",
                 "61 * * *", check=False)
    assert bad.returncode == 1 and "not a cron expression" in bad.stderr


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("args, message", [
    (["--format", "Parket"], "unknown export format 'Parket'; allowed: JsonLines"),
    (["--format", "Csv", "--types", "Trade,Tick"], "unknown event type 'Tick'; allowed: Trade"),
    (["--format", "Csv", "--symbols", "AAPL,ZZZZ"], "unknown symbol 'ZZZZ'; the archive has: AAPL, MSFT"),
    (["--format", "Csv", "--source", "nope"], "unknown source 'nope'"),
    (["--format", "Csv", "--from", "2024-01-05", "--to", "2024-01-02"], "must be after --from"),
    (["--format", "Csv", "--from", "yesterday"], "--from: 'yesterday' is not a date"),
    (["--format", "Csv", "--compression", "zstd"], "does not support compression 'zstd'"),
    ([], "give --format"),
])
def test_bad_input_is_one_clear_line(archive, tmp_path, args, message):
    proc = mdcsql("export", archive, "--dest", tmp_path / "o", *args, check=False)
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_an_existing_export_name_is_never_overwritten(archive, tmp_path):
    run_export(archive, request("Csv", tmp_path, types="Trade", name="same"))
    with pytest.raises(MdcsqlError, match="already exists"):
        run_export(archive, request("Csv", tmp_path, types="Trade", name="same"))


def test_help_lists_every_registered_format():
    out = mdcsql("export", "--help").stdout
    for name in FORMATS:
        assert name in out
