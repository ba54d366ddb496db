"""The `mdcsql` command, run as a real process: exit codes, messages, and effects checked through the library."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest

from archive_contents import data_files, stored_events
from conftest import PYTHON, python_env
from mdcsql.archive import Archive


def mdcsql(*args, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([PYTHON, "-m", "mdcsql", *map(str, args)], capture_output=True, text=True,
                          env=python_env(), timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"mdcsql {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}")
    return proc


GOOD = [
    {"type": "Trade", "symbol": "AAPL", "source": "alpaca", "ts": "2024-01-15T14:30:00.000000001Z", "seq": 1,
     "price": "187.10", "size": 100, "side": "buy"},
    {"type": "Trade", "symbol": "AAPL", "source": "alpaca", "ts": "2024-01-15T14:30:00.5Z", "seq": 2,
     "price": 187.125, "size": "50", "side": "sell"},
    {"type": "BboQuote", "symbol": "MSFT", "source": "alpaca", "ts": 1705329000000000000, "seq": 1,
     "bid_price": "375.01", "bid_size": 200, "ask_price": "375.03", "ask_size": 100},
]


def write_jsonl(path: Path, records, *, gz: bool = False) -> Path:
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_init_collect_stats_verify_sql(tmp_path):
    root = tmp_path / "data"
    out = mdcsql("init", root, "--profile", "Archival").stdout
    assert "profile Archival" in out and "zstd" in out
    mdcsql("collect", root, "--source", "sim", "--symbols", "AAPL,MSFT,SPY", "--events", 5000, "--seed", 7,
           "--start", "2024-01-15")
    stats = json.loads(mdcsql("catalog", "stats", root, "--json").stdout)
    assert stats["totals"]["events"] == 5000
    verify = json.loads(mdcsql("verify", root, "--json").stdout)
    assert verify["ok"] and verify["events_checked"] == 5000
    rows = json.loads(mdcsql("sql", root, "SELECT symbol, count(*) AS n FROM trades GROUP BY symbol ORDER BY symbol",
                             "--format", "json").stdout)
    assert [r["symbol"] for r in rows] == ["AAPL", "MSFT", "SPY"]
    assert sum(r["n"] for r in rows) == sum(1 for e in stored_events(root) if e["type"] == "Trade")
    csv_out = mdcsql("sql", root, "SELECT min(ts) AS first FROM bbo_quotes", "--format", "csv").stdout
    assert csv_out.splitlines()[1].startswith("2024-01-15 00:00:")
    assert all(p.name.endswith(".jsonl.zst") for p in data_files(root))
    sources = json.loads(mdcsql("sql", root, "SELECT id, type, enabled FROM sources", "--format", "json").stdout)
    assert sources == [{"id": "sim", "type": "live", "enabled": True}]
    assert json.loads((root / "_catalog" / "sources.json").read_text())["sources"]["sim"]["type"] == "live"
    manifest = json.loads((root / "_catalog" / "manifest.json").read_text())["catalog"]
    assert sum(e["event_count"] for e in manifest["entries"]) == 5000
    assert (root / "_catalog" / "schemas" / "v1.json").exists()


def test_collect_is_deterministic_for_a_seed_and_start(tmp_path):
    for name in ("a", "b"):
        mdcsql("collect", tmp_path / name, "--symbols", "AAPL,BRK/B", "--events", 3000, "--seed", 11,
               "--start", "2024-03-01T14:30")
    files_a = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in data_files(tmp_path / "a")}
    files_b = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in data_files(tmp_path / "b")}
    assert files_a == files_b and len(files_a) >= 4


def test_ingest_canonical_and_gzip_then_rebuild_gives_the_same_catalog(tmp_path):
    root = tmp_path / "data"
    mdcsql("init", root)
    f1 = write_jsonl(tmp_path / "a.jsonl", GOOD[:2])
    f2 = write_jsonl(tmp_path / "b.jsonl.gz", GOOD[2:], gz=True)
    out = mdcsql("ingest", root, f1, f2, "--source", "alpaca").stdout
    assert "ingested 3 events from 2 file(s)" in out
    mdcsql("seal", root)
    query = "SELECT symbol, source, seq, price::VARCHAR AS p, ts::VARCHAR AS t FROM trades ORDER BY seq"
    before = mdcsql("sql", root, query, "--format", "json").stdout
    rows = json.loads(before)
    assert [r["p"] for r in rows] == ["187.100000000000000000", "187.125000000000000000"]
    assert rows[0]["t"] == "2024-01-15 14:30:00.000000001"
    files_before = mdcsql("sql", root, "SELECT * EXCLUDE (indexed_at) FROM files ORDER BY path", "--format", "json").stdout
    (root / "_catalog" / "catalog.duckdb").unlink()
    assert "rebuilt catalog: 2 file(s) indexed" in mdcsql("catalog", "rebuild", root).stdout
    assert mdcsql("sql", root, query, "--format", "json").stdout == before
    assert mdcsql("sql", root, "SELECT * EXCLUDE (indexed_at) FROM files ORDER BY path",
                  "--format", "json").stdout == files_before


BAD_CASES = [
    ("malformed", b'{"type": "Trade", "symbol": "AAPL"\n', None),
    ("missing_field", json.dumps({k: v for k, v in GOOD[0].items() if k != "price"}).encode() + b"\n", "price"),
    ("non_numeric_price", json.dumps({**GOOD[0], "price": "abc"}).encode() + b"\n", "price"),
    ("negative_size", json.dumps({**GOOD[0], "size": -5}).encode() + b"\n", "size"),
    ("invalid_utf8", b'{"type": "Trade", "symbol": "\xff\xfe", "price": "1"}\n', None),
    ("unknown_type", json.dumps({**GOOD[0], "type": "Tradez"}).encode() + b"\n", "type"),
]


@pytest.mark.parametrize("name,bad_line,field", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input_is_reported_quarantined_and_loses_nothing(tmp_path, name, bad_line, field):
    root = tmp_path / "data"
    mdcsql("init", root)
    mdcsql("ingest", root, write_jsonl(tmp_path / "good.jsonl", GOOD), "--source", "alpaca")
    before = sorted((e["symbol"], e["type"], e["seq"]) for e in stored_events(root))
    bad = tmp_path / f"{name}.jsonl"
    good_line = json.dumps({**GOOD[0], "seq": 9}).encode() + b"\n"
    bad.write_bytes(good_line + bad_line)
    proc = mdcsql("ingest", root, bad, "--source", "alpaca", check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    first_error = [l for l in proc.stderr.splitlines() if l.startswith("error:")][0]
    assert f"{bad}:2:" in first_error
    if field:
        assert f"'{field}'" in first_error
    after = sorted((e["symbol"], e["type"], e["seq"]) for e in stored_events(root))
    assert after == sorted(before + [("AAPL", "Trade", 9)])          # good lines kept, nothing lost
    records = [json.loads(p.read_text()) for p in (root / "_quarantine").glob("*.json")]
    assert len(records) == 1 and records[0]["lines"][0]["line"] == 2
    assert (root / records[0]["data_file"]).read_bytes() == bad_line


def test_truncated_gzip_is_an_error_with_the_line_it_broke_at(tmp_path):
    root = tmp_path / "data"
    mdcsql("init", root)
    many = [{**GOOD[0], "seq": i} for i in range(1, 2001)]
    full = write_jsonl(tmp_path / "full.jsonl.gz", many, gz=True).read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(full[: len(full) // 2])
    proc = mdcsql("ingest", root, cut, check=False)
    assert proc.returncode == 1 and "truncated gzip" in proc.stderr and "Traceback" not in proc.stderr
    stored = len(stored_events(root))
    assert 0 < stored < 2000


def test_verify_catches_a_changed_byte(tmp_path):
    root = tmp_path / "data"
    mdcsql("collect", root, "--events", 2000, "--seed", 1, "--start", "2024-01-15")
    assert mdcsql("verify", root).returncode == 0
    victim = sorted(p for p in data_files(root))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    proc = mdcsql("verify", root, "--json", check=False)
    assert proc.returncode == 1
    problems = json.loads(proc.stdout)["problems"]
    assert any(p["problem"] == "checksum" and p["path"] == victim.relative_to(root).as_posix() for p in problems)


def test_user_errors_exit_1_with_one_line_and_no_traceback(tmp_path):
    proc = mdcsql("sql", tmp_path, "SELECT 1", check=False)
    assert proc.returncode == 1 and "not an mdcsql archive" in proc.stderr and "Traceback" not in proc.stderr
    root = tmp_path / "data"
    mdcsql("init", root)
    proc = mdcsql("sql", root, "DROP TABLE files", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"Storage": {"NamingConvention": "BySymbl"}}))
    proc = mdcsql("init", tmp_path / "other", "--config", cfg, check=False)
    assert proc.returncode == 1 and "NamingConvention" in proc.stderr and "BySymbol" in proc.stderr


def test_recover_reports_a_clean_archive(tmp_path):
    root = tmp_path / "data"
    mdcsql("collect", root, "--events", 500, "--start", "2024-01-15")
    report = json.loads(mdcsql("recover", root, "--json").stdout)
    assert report["clean"] and report["durable_events"] == 500
    assert Archive.open(root).recover().clean


def test_ingest_the_csharp_collectors_jsonl_zst(tmp_path):
    """Users catalog their old C# collector archives without migrating them."""
    import zstandard
    from test_events import CSHARP
    root = tmp_path / "data"
    mdcsql("init", root)
    src = tmp_path / "AAPL_Trade_2024-01-15.jsonl.zst"
    src.write_bytes(zstandard.ZstdCompressor().compress(b"\n".join(raw for raw, _ in CSHARP) + b"\n"))
    out = mdcsql("ingest", root, src, "--json").stdout
    assert json.loads(out)["events_written"] == len(CSHARP)
    stored = sorted(json.dumps(e, separators=(",", ":")).encode() + b"\n" for e in stored_events(root))
    assert stored == sorted(expected for _, expected in CSHARP)
    rows = json.loads(mdcsql("sql", root, "SELECT source, close::VARCHAR AS c FROM historical_bars ORDER BY seq",
                             "--format", "json").stdout)
    assert rows == [{"source": "stooq", "c": "185.920000000000000000"}] * 2


def test_a_plain_duckdb_connection_reads_the_views(tmp_path):
    """docs/catalog.md: analysts open the catalog with DuckDB alone, no mdcsql import needed."""
    import subprocess as sp
    import sys
    root = tmp_path / "data"
    mdcsql("collect", root, "--events", 3000, "--seed", 3, "--start", "2024-01-15", "--symbols", "AAPL,MSFT")
    code = ("import duckdb, sys\n"
            "con = duckdb.connect(sys.argv[1], read_only=True)\n"
            "print(con.sql(\"SELECT count(*) FROM trades WHERE symbol = 'AAPL'\").fetchall()[0][0])\n")
    proc = sp.run([sys.executable, "-c", code, str(root / "_catalog" / "catalog.duckdb")],
                  capture_output=True, text=True, check=True)
    expected = sum(1 for e in stored_events(root) if e["type"] == "Trade" and e["symbol"] == "AAPL")
    assert int(proc.stdout) == expected > 0


def test_ctrl_c_stops_collect_cleanly(tmp_path):
    """SIGINT (Ctrl-C): everything collected so far is committed, sealed, catalogued; exit 0."""
    import signal
    import time
    root = tmp_path / "data"
    proc = subprocess.Popen([PYTHON, "-m", "mdcsql", "collect", str(root), "--duration", "60s", "--rate", "2000",
                             "--start", "2024-01-15", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=python_env())
    deadline = time.monotonic() + 60
    while not list((root / "live").rglob("*.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["interrupted"] and summary["events"] > 0
    assert not [p for p in data_files(root) if p.name.endswith(".jsonl")]        # all sealed
    assert len(stored_events(root)) == summary["events"] == summary["durable_events"]
    assert json.loads(mdcsql("verify", root, "--json").stdout)["ok"]


def test_sql_output_keeps_nanoseconds_and_exact_decimals(tmp_path):
    root = tmp_path / "data"
    mdcsql("init", root)
    mdcsql("ingest", root, write_jsonl(tmp_path / "a.jsonl", GOOD[:1]), "--source", "alpaca")
    rows = json.loads(mdcsql("sql", root, "SELECT ts, price FROM trades", "--format", "json").stdout)
    assert rows == [{"ts": "2024-01-15 14:30:00.000000001", "price": "187.100000000000000000"}]
    table = mdcsql("sql", root, "SELECT ts, price FROM trades").stdout
    assert "14:30:00.000000001" in table and "187.1 " in table


def test_collect_runs_in_a_session_with_a_report(tmp_path):
    root = tmp_path / "data"
    out = json.loads(mdcsql("collect", root, "--events", 2000, "--start", "2024-01-15", "--session", "morning run",
                            "--tag", "Q1-2024", "--json").stdout)
    sid = out["session"]
    sessions = json.loads(mdcsql("session", "list", root, "--tag", "Q1-2024", "--json").stdout)
    assert [s["session_id"] for s in sessions] == [sid] and sessions[0]["state"] == "Completed"
    report = json.loads((root / "sessions" / sid / "report.json").read_text())["session_report"]
    assert report["volume"]["total_events"] == 2000 == out["events"]
    assert report["files"]["all_verified"] is True


def test_collect_replays_a_lean_file(shared_data, tmp_path):
    root = tmp_path / "data"
    path = shared_data / "lean" / "equity" / "usa" / "minute" / "spy" / "20131007_trade.zip"
    out = json.loads(mdcsql("collect", root, "--source", "replay", "--path", path, "--json").stdout)
    assert out["events"] == 828 and not out["failed"]
    rows = json.loads(mdcsql("sql", root, "SELECT count(*) AS n, min(ts) AS first FROM historical_bars "
                                          "WHERE symbol = 'SPY'", "--format", "json").stdout)
    # the first bar is 14,400,000 ms after midnight New York time: 04:00 EDT = 08:00 UTC
    assert rows == [{"n": 828, "first": "2013-10-07 08:00:00.000000000"}]


def test_collect_several_views_of_the_simulated_market(tmp_path):
    root = tmp_path / "data"
    args = ["--views", "sim,sim-b,sim-c", "--symbols", "AAPL", "--events", 2000, "--start", "2024-01-15T14:30"]
    out = json.loads(mdcsql("collect", root, *args, "--json").stdout)
    # --events counts market events per view; sim-b and sim-c drop some on purpose
    assert sorted(out["sources"]) == ["sim", "sim-b", "sim-c"] and 5000 < out["events"] <= 6000
    mdcsql("collect", tmp_path / "again", *args)
    again = {p.relative_to(tmp_path / "again"): p.read_bytes() for p in data_files(tmp_path / "again")}
    assert {p.relative_to(root): p.read_bytes() for p in data_files(root)} == again             # deterministic
    rows = json.loads(mdcsql("sql", root, "SELECT source, count(*) AS n FROM events GROUP BY source ORDER BY source",
                             "--format", "json").stdout)
    assert [r["source"] for r in rows] == ["sim", "sim-b", "sim-c"] and all(r["n"] > 0 for r in rows)
