"""Symbol and source registries on real archives: date-ranged aliases, Lean map files, the SQL
macro, resolution at ingest, the unknown-symbol policy, disabled sources, rebuild from the JSON copies.
The CLI runs as a real process for a few commands; effects are checked through the library."""

from __future__ import annotations

import json
import random
import re
import subprocess
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from archive_contents import data_files, stored_events
from conftest import PYTHON, REPO, python_env
from mdcsql.archive import Archive
from mdcsql.catalog import Catalog
from mdcsql.errors import ConfigError, InputError, NotFoundError
from mdcsql.registry import (DAY_NS, Mapping, SourceDisabledError, SymbolRegistry, WriteGate, open_registries,
                             parse_lean_map_file)

D = date.fromisoformat


def ns(text: str) -> int:
    """UTC nanoseconds of 'YYYY-MM-DD[THH:MM:SS[.fffffffff]]'."""
    day, _, rest = text.partition("T")
    whole, _, frac = (rest or "00:00:00").partition(".")
    dt = datetime.fromisoformat(f"{day}T{whole}").replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * 10**9 + int((frac or "0").ljust(9, "0"))


def trade(symbol: str, ts: int, seq: int, source: str = "alpaca") -> dict:
    return {"type": "Trade", "symbol": symbol, "source": source, "ts": ts, "seq": seq, "price": "10.5",
            "size": "1", "side": "buy"}


def mdcsql(*args, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([PYTHON, "-m", "mdcsql", *map(str, args)], capture_output=True, text=True,
                          env=python_env(), timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"mdcsql {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def sql(root: Path, text: str) -> list[tuple]:
    """A plain read-only DuckDB connection on the catalog, as an analyst would open it."""
    con = duckdb.connect(str(root / "_catalog" / "catalog.duckdb"), read_only=True)
    try:
        return con.sql(text).fetchall()
    finally:
        con.close()


@pytest.fixture
def archive(archive_root) -> Archive:
    return Archive.init(archive_root)


def meta_map_file(path: Path) -> Path:
    """A Lean map file of a renamed ticker (fb until 2022-06-08, meta since), in Lean's format."""
    path.write_text("20120518,fb,Q\n20220608,fb,Q\n20501231,meta,Q\n")
    return path


# ------------------------------------------------------------------------------- date-ranged aliases

def test_a_mapping_applies_from_its_first_day_up_to_but_excluding_its_end(archive):
    with open_registries(archive.root, write=True) as reg:
        reg.symbols.add_mapping("FB", "META", "2012-05-18", "2022-06-09", note="rename")
        assert reg.symbols.mappings() == [Mapping("FB", "META", D("2012-05-18"), D("2022-06-09"), None, "rename")]
    symbols = SymbolRegistry.load_exported(archive.root)           # the write path's copy: the JSON export
    cases = {"2012-05-17T23:59:59.999999999": "FB", "2012-05-18T00:00:00": "META",
             "2022-06-08T23:59:59.999999999": "META", "2022-06-09T00:00:00": "FB", "1969-12-31T23:59:59.5": "FB"}
    for when, expected in cases.items():
        assert symbols.resolve("FB", ns(when)) == expected, when
        assert sql(archive.root, f"SELECT resolve_symbol('FB', TIMESTAMP_NS '{when.replace('T', ' ')}')") == \
            [(expected,)], when
    assert symbols.resolve_on("FB", "2022-06-08") == "META" and symbols.resolve_on("FB", D("2022-06-09")) == "FB"
    assert symbols.resolve("AAPL", ns("2020-01-01")) == "AAPL"                   # no alias: itself
    assert sql(archive.root, "SELECT resolve_symbol('FB', DATE '2022-06-09'), resolve_symbol('FB', "
                             "TIMESTAMPTZ '2022-06-09 01:00:00+02'), utc_day(TIMESTAMP_NS '2022-06-08 23:59:59.999999999')") \
        == [("FB", "META", D("2022-06-08"))]


def test_overlapping_ranges_are_refused_adjacent_ones_and_other_scopes_are_not(archive):
    with open_registries(archive.root, write=True) as reg:
        s = reg.symbols
        s.add_mapping("FB", "META", "2012-05-18", "2022-06-09")
        for start, end in [("2022-06-08", None), ("2000-01-01", "2012-05-19"), ("2015-01-01", "2016-01-01"),
                           (None, None)]:
            with pytest.raises(ConfigError, match=r"overlaps the registered FB -> META \[2012-05-18, 2022-06-09\)"):
                s.add_mapping("FB", "OTHER", start, end)
        s.add_mapping("FB", "FBX", "2000-01-01", "2012-05-18")            # ends the day the next starts
        s.add_mapping("FB", "FB2", "2022-06-09")                          # starts the day the other ends
        s.add_mapping("FB", "META", "2012-05-18", "2022-06-09", note="again")   # identical: nothing changes
        s.add_mapping("FB", "VENDOR_FB", "2015-01-01", "2016-01-01", source="polygon")   # another scope
        with pytest.raises(ConfigError, match="valid_to 2020-01-01 must be after valid_from"):
            s.add_mapping("X", "Y", "2020-01-01", "2020-01-01")
        with pytest.raises(ConfigError, match="YYYY-MM-DD"):
            s.add_mapping("X", "Y", "20200101")
        with pytest.raises(ConfigError, match="overlaps"):               # one transaction: all or nothing
            s.add_mappings([{"alias": "Q", "canonical": "R"}, {"alias": "FB", "canonical": "Z", "valid_from": "2013-01-01"}])
        assert s.mappings("Q") == []
        assert [(m.canonical, m.valid_from, m.source) for m in s.mappings("FB")] == [
            ("FBX", D("2000-01-01"), None), ("META", D("2012-05-18"), None), ("FB2", D("2022-06-09"), None),
            ("VENDOR_FB", D("2015-01-01"), "polygon")]
        day = ns("2015-06-01")
        assert s.resolve("FB", day) == "META" and s.resolve("FB", day, "polygon") == "VENDOR_FB"
        assert s.resolve("FB", ns("2011-01-01")) == "FBX" and s.resolve("FB", ns("2030-01-01")) == "FB2"
        removed = s.remove_mapping("FB", "2022-06-09")
        assert [m.canonical for m in removed] == ["FB2"] and s.resolve("FB", ns("2030-01-01")) == "FB"
        with pytest.raises(NotFoundError, match="no mapping of 'FB' starts on 2022-06-09"):
            s.remove_mapping("FB", "2022-06-09")
    assert sql(archive.root, "SELECT resolve_symbol('FB', DATE '2015-06-01'), "
                             "resolve_symbol('FB', DATE '2015-06-01', for_source := 'polygon')") == [("META", "VENDOR_FB")]


def test_python_resolution_and_the_sql_macro_agree(archive):
    rng = random.Random(42)
    with open_registries(archive.root, write=True) as reg:
        reg.symbols.add("BRK.B", aliases=["BRK-B", "BRK/B"])            # undated aliases of the symbols table
        reg.symbols.add("GOOGL", canonical="GOOG")                        # a key whose canonical differs
        reg.symbols.add_mapping("BRK-B", "BRKB_2019", "2019-01-01", "2020-01-01")   # dated mapping wins
        reg.symbols.add_mapping("A", "B", "2020-03-01", "2020-03-05", source="s1")
        reg.symbols.add_mapping("A", "C", "2020-03-03")
        reg.symbols.add_mapping("A", "D", None, "2020-03-03")
    symbols = SymbolRegistry.load_exported(archive.root)
    grid = [(sym, ns("2018-12-30") + rng.randrange(0, 500) * DAY_NS // 3 + rng.choice([0, DAY_NS - 1]), src)
            for sym in ("BRK-B", "BRK/B", "GOOGL", "A", "B", "ZZZ") for src in (None, "s1", "s2") for _ in range(25)]
    con = duckdb.connect(str(archive.root / "_catalog" / "catalog.duckdb"), read_only=True)
    try:
        con.execute("CREATE TEMP TABLE probe (sym VARCHAR, ts BIGINT, src VARCHAR)")
        con.executemany("INSERT INTO probe VALUES (?, ?, ?)", grid)
        from_sql = con.sql("SELECT resolve_symbol(sym, make_timestamp_ns(ts), for_source := src) FROM probe "
                           "ORDER BY rowid").fetchall()
    finally:
        con.close()
    assert [r[0] for r in from_sql] == [symbols.resolve(*g) for g in grid]
    assert symbols.resolve("BRK/B", ns("2019-06-01")) == "BRK.B" and symbols.resolve("BRK-B", ns("2019-06-01")) == "BRKB_2019"
    assert symbols.resolve("GOOGL", ns("2024-01-01")) == "GOOG"


# ------------------------------------------------------------------------------- Lean map files

def test_lean_map_file_of_spy_gives_one_open_ended_identity_range(archive, shared_data):
    path = shared_data / "lean" / "equity" / "usa" / "map_files" / "spy.csv"
    assert parse_lean_map_file(path) == [{"alias": "SPY", "canonical": "SPY", "valid_from": D("1998-01-02"),
                                          "valid_to": None, "source": None,
                                          "note": "Lean map file spy.csv lines 1-2 (exchange P)"}]
    with open_registries(archive.root, write=True) as reg:
        added = reg.symbols.import_lean_map_file(path)
        again = reg.symbols.import_lean_map_file(path)                   # idempotent
        assert added == again == reg.symbols.mappings()
        assert reg.symbols.is_known("SPY") and not reg.symbols.rewrites
    assert WriteGate(archive.root).resolve_symbol is None               # identity only: nothing per event


def test_lean_map_file_of_a_renamed_ticker(archive, tmp_path):
    path = meta_map_file(tmp_path / "meta.csv")
    with open_registries(archive.root, write=True) as reg:
        added = reg.symbols.import_lean_map_file(path)
    assert [(m.alias, m.canonical, m.valid_from, m.valid_to) for m in added] == [
        ("FB", "META", D("2012-05-18"), D("2022-06-09")), ("META", "META", D("2022-06-09"), None)]
    symbols = SymbolRegistry.load_exported(archive.root)
    assert [symbols.resolve_on("FB", d) for d in ("2012-05-17", "2012-05-18", "2022-06-08", "2022-06-09")] == \
        ["FB", "META", "META", "FB"]
    # a delisted ticker (no 20501231 sentinel) ends the day after its last row; --symbol names the canonical
    delisted = tmp_path / "oih.1.csv"
    delisted.write_text("20010101,oih\n20050505,oih2\n")
    assert [(m["alias"], m["canonical"], m["valid_from"], m["valid_to"])
            for m in parse_lean_map_file(delisted, symbol="OIH.1")] == [
        ("OIH", "OIH.1", D("2001-01-01"), D("2001-01-02")), ("OIH2", "OIH.1", D("2001-01-02"), D("2005-05-06"))]
    bad = tmp_path / "bad.csv"
    bad.write_text("20010101,x\n2001-01-02,y\n")
    with pytest.raises(InputError, match=r"bad.csv:2: date must be yyyyMMdd.*\(field 'date'\)"):
        parse_lean_map_file(bad)


# ------------------------------------------------------------------------------- ingest

def test_aliases_are_resolved_at_ingest_on_every_write_path(archive, tmp_path):
    with open_registries(archive.root, write=True) as reg:
        reg.symbols.import_lean_map_file(meta_map_file(tmp_path / "meta.csv"))
        reg.symbols.add("AAPL", aliases=["AAPL.O"])
    old, new = ns("2020-01-15T14:30:00"), ns("2023-01-16T14:30:00")
    w = archive.writer("alpaca")
    assert archive.ingestor().resolve_symbol is not None
    w.append(trade("FB", old, 1))                                     # per event
    w.append_many([trade("FB", old + 1, 2), trade("AAPL.O", old, 1)])
    w.append_table(pa.table({"symbol": ["FB", "FB", "META"], "ts": [old + 2, new, new + 1], "seq": [3, 4, 5],
                             "price": ["1", "2", "3"], "size": ["1", "1", "1"]}), type="Trade")
    w.append(trade("FB", new + 2, 6))                                 # after the rename: FB is kept as is
    archive.close()
    stored = sorted((e["symbol"], e["seq"]) for e in stored_events(archive.root))
    assert stored == [("AAPL", 1), ("FB", 4), ("FB", 6), ("META", 1), ("META", 2), ("META", 3), ("META", 5)]
    assert {p.relative_to(archive.root).parts[1] for p in data_files(archive.root)} == {"AAPL", "FB", "META"}
    assert sql(archive.root, "SELECT symbol, count(*) FROM trades GROUP BY ALL ORDER BY ALL") == \
        [("AAPL", 1), ("FB", 2), ("META", 4)]
    assert sql(archive.root, "SELECT DISTINCT symbol FROM files ORDER BY 1") == [("AAPL",), ("FB",), ("META",)]


def test_query_time_resolution_of_events_stored_before_the_mapping(archive):
    w = archive.writer("alpaca")
    w.append(trade("FB", ns("2020-01-15T14:30:00"), 1))
    w.append(trade("FB", ns("2023-01-16T14:30:00"), 2))
    archive.close()
    assert archive.ingestor().resolve_symbol is None                  # no alias: no per-event hook at all
    archive.close()
    mdcsql("symbols", "alias", archive.root, "FB", "META", "--from", "2012-05-18", "--to", "2022-06-09")
    rows = json.loads(mdcsql("sql", archive.root, "SELECT seq, symbol, resolve_symbol(symbol, ts) AS canonical "
                             "FROM trades ORDER BY seq", "--format", "json").stdout)
    assert rows == [{"seq": 1, "symbol": "FB", "canonical": "META"}, {"seq": 2, "symbol": "FB", "canonical": "FB"}]
    assert mdcsql("symbols", "resolve", archive.root, "FB", "--date", "2020-01-15").stdout.strip() == "META"


# ------------------------------------------------------------------------------- unknown-symbol policy

def test_accept_registers_new_symbols_off_the_hot_path(archive):
    w = archive.writer("alpaca", asset_class="crypto")
    for i in range(1, 50):
        w.append(trade("BTC-USD", ns("2024-01-15") + i, i))
    w.append_table(pa.table({"symbol": ["ETH-USD"], "ts": [ns("2024-01-15")], "seq": [1], "price": ["1"],
                             "size": ["1"]}), type="Trade")
    archive.close()
    with open_registries(archive.root) as reg:
        assert {s["symbol"]: s["asset_class"] for s in reg.symbols.symbols()} == {"BTC-USD": "crypto", "ETH-USD": "crypto"}
        assert reg.symbols.unknown_symbol_policy == "accept"
    exported = json.loads((archive.root / "_catalog" / "symbols.json").read_text())
    assert exported["symbols"]["BTC-USD"]["canonical"] == "BTC-USD"


def test_reject_refuses_the_event_naming_the_field(archive, tmp_path):
    with open_registries(archive.root, write=True) as reg:
        reg.symbols.add("AAPL")
        reg.symbols.set_unknown_symbol_policy("reject")
    w = archive.writer("alpaca")
    w.append(trade("AAPL", ns("2024-01-15"), 1))
    with pytest.raises(InputError, match=r"unknown symbol 'MSFT'.*mdcsql symbols add .* MSFT") as err:
        w.append(trade("MSFT", ns("2024-01-15"), 1))
    assert err.value.field == "symbol"
    with pytest.raises(InputError) as err:
        w.append_many([trade("AAPL", ns("2024-01-15"), 2), trade("MSFT", ns("2024-01-15"), 1),
                       trade("AAPL", ns("2024-01-15"), 3)])
    assert (err.value.field, err.value.index) == ("symbol", 1)          # AAPL 2 appended, AAPL 3 not
    with pytest.raises(InputError) as err:
        w.append_table(pa.table({"symbol": ["AAPL", "TSLA"], "ts": [ns("2024-01-15") + 1] * 2, "seq": [4, 1],
                                 "price": ["1", "1"], "size": ["1", "1"]}), type="Trade")
    assert (err.value.field, err.value.line) == ("symbol", 2)            # table row 2
    archive.close()
    assert sorted(e["symbol"] for e in stored_events(archive.root)) == ["AAPL", "AAPL", "AAPL"]
    bad = tmp_path / "in.jsonl"
    bad.write_text(json.dumps({**trade("NVDA", ns("2024-01-16"), 1)}) + "\n")
    proc = mdcsql("ingest", archive.root, bad, check=False)
    assert proc.returncode == 1
    assert re.search(r"^error: unknown symbol 'NVDA' from source 'alpaca' is rejected .*\(field 'symbol'\)$",
                     proc.stderr, re.M), proc.stderr
    assert "NVDA" not in {e["symbol"] for e in stored_events(archive.root)}


def test_quarantine_keeps_the_event_out_of_the_archive_with_a_record(archive):
    mdcsql("symbols", "policy", archive.root, "quarantine")
    with open_registries(archive.root, write=True) as reg:
        reg.symbols.add("AAPL")
    w = archive.writer("alpaca")
    w.append(trade("AAPL", ns("2024-01-15"), 1))
    w.append(trade("ZZZZ", ns("2024-01-15"), 1))
    w.append_table(pa.table({"symbol": ["ZZZZ", "ZZZZ"], "ts": [ns("2024-01-15") + 1] * 2, "seq": [2, 3],
                             "price": ["1", "1"], "size": ["1", "1"]}), type="Trade")
    ack = w.flush()
    assert ack.events == 1
    quarantined = archive.ingestor().quarantined
    archive.close()
    assert [(q["symbol"], q["field"], q["events"]) for q in quarantined] == [("ZZZZ", "symbol", 1), ("ZZZZ", "symbol", 2)]
    assert "unknown-symbol policy: quarantine" in quarantined[0]["reason"]
    for q in quarantined:
        record = json.loads((archive.root / q["data_file"].replace(".bin", ".json")).read_text())
        assert record["symbol"] == "ZZZZ"
        lines = (archive.root / q["data_file"]).read_bytes().splitlines()
        assert len(lines) == q["events"] and all(json.loads(x)["symbol"] == "ZZZZ" for x in lines)
    assert [e["symbol"] for e in stored_events(archive.root)] == ["AAPL"]
    assert sql(archive.root, "SELECT count(*) FROM trades WHERE symbol = 'ZZZZ'") == [(0,)]
    with open_registries(archive.root) as reg:
        assert not reg.symbols.is_known("ZZZZ")


# ------------------------------------------------------------------------------- sources

def test_a_disabled_source_cannot_write(archive, tmp_path):
    mdcsql("sources", "add", archive.root, "polygon", "--name", "Polygon.io", "--type", "live", "--priority", "3",
           "--asset-class", "equity", "--asset-class", "crypto", "--disabled")
    shown = json.loads(mdcsql("sources", "show", archive.root, "polygon", "--json").stdout)
    assert shown == {"id": "polygon", "name": "Polygon.io", "type": "live", "priority": 3,
                     "asset_classes": ["equity", "crypto"], "data_types": None, "latency_ms": None,
                     "reliability": None, "cost_per_event": None, "enabled": False}
    message = f"source polygon is disabled in the registry; enable it with: mdcsql sources enable {archive.root} polygon"
    with pytest.raises(SourceDisabledError) as err:
        archive.writer("polygon")
    assert str(err.value) == message
    w = archive.writer("alpaca")                                      # other sources write as before
    w.append(trade("AAPL", ns("2024-01-15"), 1))
    with pytest.raises(SourceDisabledError):                          # and its events, whatever the writer
        w.append(trade("AAPL", ns("2024-01-15"), 1, source="polygon"))
    archive.close()
    data = tmp_path / "polygon.jsonl"
    data.write_text(json.dumps({k: v for k, v in trade("AAPL", ns("2024-01-16"), 7).items() if k != "source"}) + "\n")
    proc = mdcsql("ingest", archive.root, data, "--source", "polygon", check=False)
    assert proc.returncode == 1 and proc.stderr.strip() == f"error: {message}"
    assert {e["source"] for e in stored_events(archive.root)} == {"alpaca"}
    mdcsql("sources", "enable", archive.root, "polygon")
    mdcsql("ingest", archive.root, data, "--source", "polygon")
    assert {e["source"] for e in stored_events(archive.root)} == {"alpaca", "polygon"}
    with pytest.raises(NotFoundError, match="not registered; register it with: mdcsql sources add"):
        with open_registries(archive.root, write=True) as reg:
            reg.sources.disable("nope")


def test_sources_update_keeps_the_fields_not_given(archive):
    with open_registries(archive.root, write=True) as reg:
        reg.sources.register("alpaca", name="Alpaca Markets", type="live", priority=1, asset_classes=["equity"],
                             data_types=["Trade", "BboQuote", "L2Snapshot"], latency_ms=10, reliability=0.999,
                             cost_per_event=0.0001)
        reg.sources.register("alpaca", priority=2)
        reg.sources.disable("alpaca")
        assert reg.sources.get("alpaca") == {
            "id": "alpaca", "name": "Alpaca Markets", "type": "live", "priority": 2, "asset_classes": ["equity"],
            "data_types": ["Trade", "BboQuote", "L2Snapshot"], "latency_ms": 10.0, "reliability": 0.999,
            "cost_per_event": 0.0001, "enabled": False}
    doc = json.loads((archive.root / "_catalog" / "sources.json").read_text())
    assert doc["sources"]["alpaca"]["enabled"] is False and doc["sources"]["alpaca"]["priority"] == 2


# ------------------------------------------------------------------------------- invariant 1

def test_rebuild_after_deleting_the_catalog_restores_both_registries(archive, tmp_path):
    mdcsql("symbols", "add", archive.root, "AAPL", "--alias", "AAPL.O", "--alias", "US0378331005",
           "--asset-class", "equity", "--exchange", "NASDAQ", "--currency", "USD", "--isin", "US0378331005",
           "--figi", "BBG000B9XRY4", "--sedol", "2046251")
    mdcsql("symbols", "import-lean-map", archive.root, meta_map_file(tmp_path / "meta.csv"))
    mdcsql("symbols", "alias", archive.root, "XBT", "BTC-USD", "--from", "2020-01-01", "--source", "bitmex",
           "--note", "BitMEX ticker")
    mdcsql("symbols", "policy", archive.root, "quarantine")
    mdcsql("sources", "add", archive.root, "ib", "--name", "Interactive Brokers", "--type", "live", "--priority", "2",
           "--asset-class", "equity", "--data-type", "Trade", "--latency-ms", "5", "--reliability", "0.9999")
    mdcsql("sources", "disable", archive.root, "ib")
    w = archive.writer("alpaca")
    w.append(trade("AAPL.O", ns("2024-01-15"), 1))
    archive.close()

    def snapshot():
        with open_registries(archive.root) as reg:
            return (reg.symbols.symbols(), reg.symbols.mappings(), reg.symbols.unknown_symbol_policy,
                    reg.sources.list(), sql(archive.root, "SELECT * FROM symbol_aliases ORDER BY ALL"))

    before = snapshot()
    exports = {name: (archive.root / "_catalog" / name).read_bytes() for name in ("symbols.json", "sources.json")}
    assert before[2] == "quarantine" and len(before[1]) == 3 and len(before[3]) == 2
    (archive.root / "_catalog" / "catalog.duckdb").unlink()
    mdcsql("catalog", "rebuild", archive.root)
    assert snapshot() == before
    assert {name: (archive.root / "_catalog" / name).read_bytes() for name in exports} == exports
    assert json.loads(mdcsql("symbols", "list", archive.root, "--mappings", "--json").stdout) == \
        [m.to_dict() for m in before[1]]
    assert sql(archive.root, "SELECT symbol FROM trades") == [("AAPL",)]


def test_a_catalog_opened_with_older_macros_gets_the_current_ones(archive):
    with Catalog.open(archive.root) as cat:
        cat.execute("CREATE OR REPLACE MACRO resolve_symbol(sym, ts) AS 'stale'")
        cat.execute("DELETE FROM catalog_state WHERE key = 'macros'")
    Catalog.open(archive.root).close()
    assert sql(archive.root, "SELECT resolve_symbol('X', DATE '2020-01-01')") == [("X",)]


# ------------------------------------------------------------------------------- docs

def test_the_documented_example_gives_the_documented_result(archive, tmp_path):
    doc = (REPO / "docs" / "registries.md").read_text()
    block = re.search(r"<!-- tested example -->\n```sh\n(.*?)```\n\n```sql\n(.*?)```\n\n```text\n(.*?)```", doc, re.S)
    commands, query, expected = block.groups()
    for line in commands.strip().splitlines():
        args = line.split()
        assert args[:1] == ["mdcsql"] and args[3] == "./data", line
        mdcsql(*args[1:3], archive.root, *args[4:])
    rows = sql(archive.root, query)
    header, *lines = [l.split("|") for l in expected.strip().splitlines() if not set(l) <= set("|-+ ")]
    assert [tuple(str(v) for v in r) for r in rows] == [tuple(c.strip() for c in l if c.strip()) for l in lines]
