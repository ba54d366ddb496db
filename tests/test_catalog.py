"""The catalog: migrations, sync / rebuild from the tree, views, user SQL, concurrency.

Real DuckDB files over real trees (JSONL, gzip, zstd, manifests with real sha256); no mocks.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from helpers_catalog import BASE_TS, PERIOD, catalog_events, catalog_jsonl, catalog_write_file
from mdcsql.catalog import Catalog, Result
from mdcsql.catalog.migrations import apply_migrations, available_migrations
from mdcsql.catalog.views import VIEW_TYPES
from mdcsql.errors import ArchiveLockedError, MdcsqlError, NotFoundError
from mdcsql.layout import EVENT_TYPES, Layout
from mdcsql.sql import list_sql, load_sql

REPO = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
LAYOUT = Layout("BySymbol", "Daily")
VOLATILE = {"indexed_at"}          # the only column a rebuild does not reproduce


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(TESTS), env.get("PYTHONPATH", "")])
    return env


def file_rows(cat: Catalog) -> list[dict]:
    rows = cat.execute("SELECT * FROM files ORDER BY path").dicts()
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows]


def view_rows(cat: Catalog, view: str) -> list[tuple]:
    return cat.execute(f"SELECT * FROM {view} ORDER BY file, seq, ts").rows


def mixed_tree(root: Path, layout: Layout = LAYOUT) -> dict[str, str]:
    """One file per event type, across codecs, tier roots and states; returns type -> relpath."""
    out = {}
    codecs = {"Trade": "gzip", "BboQuote": "zstd", "L2Snapshot": "none", "OrderFlow": "gzip",
              "HistoricalBar": "zstd", "Heartbeat": "none"}
    for t, codec in codecs.items():
        tier_root = "historical" if t == "HistoricalBar" else "live"
        out[t] = catalog_write_file(root, layout, catalog_events(t, 3), codec=codec, tier_root=tier_root)
    return out


@pytest.fixture
def root(tmp_path) -> Path:
    r = tmp_path / "archive"
    r.mkdir()
    return r


# ------------------------------------------------------------------------------- sql + migrations

def test_sql_loader_and_every_migration_applies_to_a_fresh_duckdb(root):
    assert [m.relpath for m in available_migrations()] == list_sql("migrations")
    assert "CREATE TABLE files" in load_sql("migrations/001_core.sql")
    with pytest.raises(ValueError):
        load_sql("../pyproject.toml")
    with Catalog.open(root) as cat:
        tables = {r[0] for r in cat.execute("SELECT table_name FROM duckdb_tables()").rows}
        assert {"files", "symbols", "sources", "schemas", "schema_version", "catalog_state"} <= tables
        views = {r[0] for r in cat.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").rows}
        assert set(VIEW_TYPES) | {"events"} <= views


def test_migrations_are_idempotent(root):
    with Catalog.open(root) as cat:
        first = cat.execute("SELECT version, name FROM schema_version").rows
        assert apply_migrations(cat) == []
    with Catalog.open(root) as cat:
        assert cat.execute("SELECT version, name FROM schema_version").rows == first
        assert first == [(m.version, m.name) for m in available_migrations()]


# ------------------------------------------------------------------------------- sync

def test_sync_adds_updates_and_removes(root):
    hot = catalog_write_file(root, LAYOUT, catalog_events("Trade", 2, symbol="MSFT"), codec="none")
    sealed = catalog_write_file(root, LAYOUT, catalog_events("Trade", 3), codec="gzip")
    with Catalog.open(root) as cat:
        r = cat.sync(LAYOUT)
        assert (r.added, r.updated, r.removed, r.unknown, r.problems) == (2, 0, 0, [], [])
        assert r.views_changed
        r = cat.sync(LAYOUT)
        assert (r.added, r.updated, r.removed, r.unchanged, r.views_changed) == (0, 0, 0, 2, False)

        rows = {row["path"]: row for row in cat.execute("SELECT * FROM files").dicts()}
        assert rows[hot]["state"] == "open" and rows[hot]["event_count"] is None
        s = rows[sealed]
        manifest = json.loads((root / (sealed + ".manifest.json")).read_text())
        assert s["state"] == "sealed" and s["tier"] == "hot" and s["root"] == "live"
        for k in ("sha256", "raw_sha256", "event_count", "first_seq", "last_seq", "size_bytes",
                  "raw_bytes", "compression_level", "gap_count", "session_id", "part", "codec"):
            assert s[k] == manifest[k], k
        assert cat.execute("SELECT epoch_ns(first_ts), epoch_ns(last_ts), period_start::VARCHAR, "
                           "sealed_at::VARCHAR FROM files WHERE path = ?", [sealed]).first() == \
            (manifest["first_ts"], manifest["last_ts"], "2024-01-15 00:00:00", "2024-01-16 00:00:05")

        with open(root / hot, "ab") as f:                       # the collector appends
            f.write(catalog_jsonl(catalog_events("Trade", 1, symbol="MSFT", start_seq=3)))
        r = cat.sync(LAYOUT)
        assert (r.added, r.updated, r.removed) == (0, 1, 0)

        # seal the hot file: compressed copy + manifest, then the hot file goes
        events = catalog_events("Trade", 2, symbol="MSFT") + catalog_events("Trade", 1, symbol="MSFT", start_seq=3)
        new = catalog_write_file(root, LAYOUT, events, codec="zstd")
        (root / hot).unlink()
        r = cat.sync(LAYOUT)
        assert (r.added, r.updated, r.removed, r.views_changed) == (1, 0, 1, False)   # views list every kind
        assert cat.execute("SELECT state, event_count FROM files WHERE path = ?", [new]).first() == ("sealed", 3)

        (root / sealed).unlink()
        (root / (sealed + ".manifest.json")).unlink()
        r = cat.sync(LAYOUT)
        assert (r.added, r.updated, r.removed) == (0, 0, 1)
        assert [p for (p,) in cat.execute("SELECT path FROM files").rows] == [new]


def test_sync_reports_unknown_paths_and_problems_without_crashing(root):
    good = catalog_write_file(root, LAYOUT, catalog_events("Trade", 2), codec="gzip")
    (root / "live" / "AAPL" / "notes.txt").write_text("hello")
    (root / "live" / "AAPL" / "Trade" / "2024-01-15~sim~equity.jsonl.gz.tmp").write_bytes(b"partial")
    bad = catalog_write_file(root, LAYOUT, catalog_events("Trade", 2, symbol="IBM"), codec="gzip")
    (root / (bad + ".manifest.json")).write_text("{not json")
    orphan = catalog_write_file(root, LAYOUT, catalog_events("Trade", 2, symbol="ORCL"), codec="zstd")
    (root / (orphan + ".manifest.json")).unlink()
    stray = root / "live" / "GONE" / "Trade" / "2024-01-15~sim~equity.jsonl.gz.manifest.json"
    stray.parent.mkdir(parents=True)
    stray.write_text("{}")
    (root / "_quarantine").mkdir()
    (root / "_quarantine" / "x.jsonl").write_text("junk")
    with Catalog.open(root) as cat:
        r = cat.sync(LAYOUT)
        assert r.unknown == ["live/AAPL/notes.txt"]
        kinds = {path: why for path, why in r.problems}
        assert kinds[bad + ".manifest.json"].startswith("unreadable manifest")
        assert kinds[orphan] == "compressed data file without a manifest"
        assert kinds["live/GONE/Trade/2024-01-15~sim~equity.jsonl.gz.manifest.json"] == "manifest without its data file"
        states = dict(cat.execute("SELECT path, state FROM files").rows)
        assert states == {good: "sealed", bad: "orphan", orphan: "orphan"}
        # orphans are still data: the views read them
        assert cat.execute("SELECT count(*) FROM trades").first() == (6,)


def test_manifest_disagreeing_with_its_path_is_reported(root):
    rel = catalog_write_file(root, LAYOUT, catalog_events("Trade", 2), codec="gzip")
    mpath = root / (rel + ".manifest.json")
    m = json.loads(mpath.read_text())
    m.update(symbol="MSFT", size_bytes=1, event_count="2")
    mpath.write_text(json.dumps(m))
    with Catalog.open(root) as cat:
        r = cat.sync(LAYOUT)
        whys = [why for path, why in r.problems if path == rel]
        assert any("symbol 'MSFT'" in w for w in whys)
        assert any("manifest says 1" in w for w in whys)
        assert any("'event_count' is not an integer" in w for w in whys)
        row = cat.execute("SELECT symbol, size_bytes, event_count FROM files").first()
        assert row == ("AAPL", (root / rel).stat().st_size, None)


def test_deep_sync_counts_open_files_and_skips_a_torn_tail(root):
    rel = catalog_write_file(root, LAYOUT, catalog_events("Trade", 4), codec="none",
                             torn_tail=b'{"type":"Trade","symbol":"AAPL","sou')
    with Catalog.open(root) as cat:
        cat.sync(LAYOUT)
        assert cat.execute("SELECT event_count FROM files").first() == (None,)
        r = cat.sync(LAYOUT, deep=True)
        assert r.updated == 1
        assert cat.execute("SELECT event_count, first_seq, last_seq, epoch_ns(first_ts) FROM files "
                           "WHERE path = ?", [rel]).first() == (4, 1, 4, BASE_TS)
        assert cat.stats()["totals"]["events"] == 4


# ------------------------------------------------------------------------------- rebuild (invariant 1)

def test_rebuild_after_deleting_the_catalog_gives_the_same_rows_and_view_results(root):
    mixed_tree(root)
    catalog_write_file(root, LAYOUT, catalog_events("Trade", 5, symbol="BRK/B", start_seq=10),
                       codec="none", torn_tail=b'{"type":"Tr')
    with Catalog.open(root) as cat:
        cat.register_source("sim", name="Simulator", type="live", priority=1,
                            asset_classes=["equity"], data_types=list(EVENT_TYPES))
        cat.register_symbol("BRK/B", canonical="BRK.B", aliases=["BRK-B"], exchange="NYSE")
        cat.sync(LAYOUT)
        # an incremental history: more files, then one disappears
        extra = catalog_write_file(root, LAYOUT, catalog_events("Trade", 2, symbol="TSLA"), codec="zstd")
        gone = catalog_write_file(root, LAYOUT, catalog_events("Heartbeat", 1, symbol="TSLA"), codec="gzip")
        cat.sync(LAYOUT)
        (root / gone).unlink()
        (root / (gone + ".manifest.json")).unlink()
        cat.sync(LAYOUT)
        before_rows = file_rows(cat)
        before_views = {v: view_rows(cat, v) for v in [*VIEW_TYPES, "events"]}
        before_registries = (cat.sources(), cat.symbols())
        before_manifest = json.loads((root / "_catalog" / "manifest.json").read_text())
        assert extra in {r["path"] for r in before_rows}
    for name in ("catalog.duckdb", "catalog.duckdb.wal"):
        (root / "_catalog" / name).unlink(missing_ok=True)
    with Catalog.open(root) as cat:
        r = cat.rebuild(LAYOUT)
        assert r.added == len(before_rows) and r.removed == 0
        assert file_rows(cat) == before_rows
        assert {v: view_rows(cat, v) for v in [*VIEW_TYPES, "events"]} == before_views
        assert (cat.sources(), cat.symbols()) == before_registries
        after_manifest = json.loads((root / "_catalog" / "manifest.json").read_text())
        assert after_manifest["catalog"]["entries"] == before_manifest["catalog"]["entries"]
        # rebuilding an existing catalog is the same again
        cat.rebuild(LAYOUT)
        assert file_rows(cat) == before_rows


# ------------------------------------------------------------------------------- views

def test_each_view_returns_exact_decimals_and_nanosecond_times(root):
    files = mixed_tree(root)
    with Catalog.open(root) as cat:
        cat.sync(LAYOUT)
        t = cat.execute("SELECT epoch_ns(ts), epoch_ns(recv_ts), symbol, source, seq, price, size, "
                        "side, trade_id, venue, conditions, file FROM trades ORDER BY seq").rows
        assert t[0] == (BASE_TS, None, "AAPL", "sim", 1, Decimal("185.123456789012345678"),
                        Decimal("100.5"), "sell", "t1", "XNAS", [], files["Trade"])
        assert t[1][:2] == (BASE_TS + 1_000_001, BASE_TS + 1_000_001 + 7)
        assert t[1][10] == ["@", "F"]
        q = cat.execute("SELECT bid_price, ask_price, ask_size, bid_size FROM bbo_quotes ORDER BY seq").first()
        assert q == (Decimal("185.123456789012345678"), Decimal("185.123456789012345679"),
                     Decimal("0.000000000000000001"), Decimal("300"))
        b, a = cat.execute("SELECT bids, asks FROM l2_snapshots ORDER BY seq").first()
        assert b == [{"price": Decimal("185.123456789012345678"), "size": Decimal("10")},
                     {"price": Decimal("184.5"), "size": Decimal("20.25")}]
        assert a == [{"price": Decimal("186.000000000000000001"), "size": Decimal("5")}]
        assert cat.execute("SELECT order_id, action, side, price, size FROM order_flow ORDER BY seq").first() == \
            ("o0", "add", "buy", Decimal("185.123456789012345678"), Decimal("7"))
        assert cat.execute('SELECT open, high, low, close, volume, "interval", file FROM historical_bars '
                           "ORDER BY seq").first() == \
            (Decimal("185.123456789012345678"), Decimal("190.25"), Decimal("180.0000001"),
             Decimal("189.99"), Decimal("123456789.5"), "1m", files["HistoricalBar"])
        assert cat.execute("SELECT status, count(*) FROM heartbeats GROUP BY ALL").rows == [("ok", 3)]
        assert cat.execute("SELECT type, count(*) FROM events GROUP BY ALL ORDER BY ALL").rows == \
            sorted((t, 3) for t in EVENT_TYPES)
        types = dict(cat.execute("SELECT column_name, data_type FROM information_schema.columns "
                                 "WHERE table_name = 'trades'").rows)
        assert types["ts"] == "TIMESTAMP_NS" and types["price"] == "DECIMAL(38,18)"
        # the view's file column joins the files table
        assert cat.execute("SELECT count(*) FROM trades JOIN files ON trades.file = files.path").first() == (3,)


def test_a_type_without_files_has_an_empty_view_with_the_right_columns(root):
    catalog_write_file(root, LAYOUT, catalog_events("Trade", 2), codec="gzip")
    with Catalog.open(root) as cat:
        cat.sync(LAYOUT)
        for view in ("heartbeats", "l2_snapshots", "historical_bars"):
            res = cat.execute(f"SELECT * FROM {view}")
            assert res.rows == [] and res.columns[:5] == ["ts", "recv_ts", "symbol", "source", "seq"]
            assert res.columns[-1] == "file"
        cols = dict(cat.execute("DESCRIBE l2_snapshots").rows[i][:2] for i in range(8))
        assert cols["bids"] == "STRUCT(price DECIMAL(38,18), size DECIMAL(38,18))[]"
        assert cat.execute("SELECT count(*) FROM events").first() == (2,)


def test_a_new_file_of_an_existing_combination_is_visible_without_sync(root):
    catalog_write_file(root, LAYOUT, catalog_events("Trade", 2), codec="gzip")
    catalog_write_file(root, LAYOUT, catalog_events("Trade", 2, symbol="MSFT"), codec="none")
    with Catalog.open(root) as cat:
        cat.sync(LAYOUT)
    catalog_write_file(root, LAYOUT, catalog_events("Trade", 3, symbol="NVDA"), codec="gzip")
    catalog_write_file(root, LAYOUT, catalog_events("Trade", 4, symbol="AMD"), codec="none")
    with Catalog.open(root, read_only=True) as cat:
        got = dict(cat.query("SELECT symbol, count(*) FROM trades GROUP BY ALL").rows)
        assert got == {"AAPL": 2, "MSFT": 2, "NVDA": 3, "AMD": 4}


def test_a_torn_line_of_a_hot_file_is_ignored_and_appends_show_up(root):
    rel = catalog_write_file(root, LAYOUT, catalog_events("Trade", 3), codec="none",
                             torn_tail=b'{"type":"Trade","symbol":"AAPL","source":"sim","ts":17053')
    with Catalog.open(root) as cat:
        cat.sync(LAYOUT)
        assert cat.execute("SELECT count(*), count(ts), max(seq) FROM trades").first() == (3, 3, 3)
        # the writer finishes the line and appends another: visible at once, no sync
        with open(root / rel, "ab") as f:
            f.write(b'29000123456789,"recv_ts":null,"seq":4,"price":"1.5","size":"1","side":"buy",'
                    b'"trade_id":"t4","venue":"X","conditions":[]}\n')
        assert cat.execute("SELECT count(*), max(seq) FROM trades").first() == (4, 4)


def test_sealed_files_are_read_strictly(root):
    rel = catalog_write_file(root, LAYOUT, catalog_events("Trade", 3), codec="gzip")
    with Catalog.open(root) as cat:
        cat.sync(LAYOUT)
        (root / rel).write_bytes(gzip.compress(catalog_jsonl(catalog_events("Trade", 1)) + b'{"torn'))
        with pytest.raises(duckdb.Error):
            cat.execute("SELECT count(*) FROM trades")


def test_a_new_kind_of_file_is_visible_before_the_next_sync(root):
    hot = catalog_write_file(root, LAYOUT, catalog_events("Trade", 2), codec="none")
    with Catalog.open(root) as cat:
        cat.sync(LAYOUT)
    # sealed by the collector (first .jsonl.gz of its kind), hot file removed, catalog not yet synced
    catalog_write_file(root, LAYOUT, catalog_events("Trade", 2), codec="gzip")
    (root / hot).unlink()
    catalog_write_file(root, LAYOUT, catalog_events("BboQuote", 3), codec="zstd", tier_root="historical")
    with Catalog.open(root, read_only=True) as cat:
        assert cat.query("SELECT count(*) FROM trades").rows == [(2,)]
        assert cat.query("SELECT count(*) FROM bbo_quotes").rows == [(3,)]
    with Catalog.open(root) as cat:
        assert not cat.sync(LAYOUT).views_changed
        assert cat.execute("SELECT count(*) FROM trades").first() == (2,)


@pytest.mark.parametrize("layout", [
    Layout("Hierarchical", "Hourly"),
    Layout("Flat", "None"),
    Layout("Canonical", "Monthly", file_name_metadata=True, file_prefix="md"),
], ids=repr)
def test_views_and_rebuild_work_for_other_layouts(tmp_path, layout):
    root = tmp_path / "quote's archive"          # a quote in the root: literals are escaped
    period = {"Hourly": "2024-01-15_14", "None": "", "Monthly": "2024-01"}[layout.partition]
    catalog_write_file(root, layout, catalog_events("Trade", 3, symbol="ES=F"), codec="gzip", period=period)
    catalog_write_file(root, layout, catalog_events("Trade", 2, symbol="^GSPC"), codec="none", period=period)
    catalog_write_file(root, layout, catalog_events("BboQuote", 2, symbol="EUR/USD"), codec="zstd",
                       period=period, tier_root="historical", part=2)
    with Catalog.open(root) as cat:
        r = cat.sync(layout)
        assert (r.added, r.unknown, r.problems) == (3, [], [])
        assert dict(cat.execute("SELECT symbol, count(*) FROM trades GROUP BY ALL").rows) == {"ES=F": 3, "^GSPC": 2}
        assert cat.execute("SELECT count(*) FROM bbo_quotes").first() == (2,)
        assert cat.execute("SELECT DISTINCT part FROM files WHERE type = 'BboQuote'").rows == [(2,)]
        before = file_rows(cat)
    (root / "_catalog" / "catalog.duckdb").unlink()
    with Catalog.open(root) as cat:
        cat.rebuild(layout)
        assert file_rows(cat) == before


# ------------------------------------------------------------------------------- user SQL (invariant 5)

@pytest.mark.parametrize("sql, reason", [
    ("COPY files TO 'x.csv'", "COPY statements are not allowed"),
    ("ATTACH 'other.duckdb'", "ATTACH statements are not allowed"),
    ("INSTALL httpfs", "not allowed"),
    ("LOAD httpfs", "not allowed"),
    ("SET threads = 1", "SET statements are not allowed"),
    ("PRAGMA version", "PRAGMA statements are not allowed"),
    ("CALL pragma_version()", "CALL statements are not allowed"),
    ("CREATE TABLE t AS SELECT 1", "CREATE statements are not allowed"),
    ("INSERT INTO symbols (symbol) VALUES ('X')", "INSERT statements are not allowed"),
    ("DELETE FROM files", "DELETE statements are not allowed"),
    ("DROP VIEW trades", "DROP statements are not allowed"),
    ("SELECT 1; SELECT 2", "exactly one statement"),
    ("SELECT * FROM read_json('/etc/hostname')", "read_json() is not allowed"),
    ("SELECT * FROM read_csv_auto('/etc/passwd')", "read_csv_auto() is not allowed"),
    ("SELECT * FROM read_parquet('x.parquet')", "read_parquet() is not allowed"),
    ("SELECT * FROM read_text('/etc/hostname')", "read_text() is not allowed"),
    ("SELECT * FROM glob('/**')", "glob() is not allowed"),
    ("SELECT * FROM query('SELECT 1')", "query() is not allowed"),
    ("SELECT count(*) FROM trades WHERE symbol IN (SELECT content FROM read_text('/etc/x'))",
     "read_text() is not allowed"),
    ("WITH x AS (FROM read_blob('/etc/hostname')) SELECT * FROM x", "read_blob() is not allowed"),
    ("SELECT * FROM '/etc/passwd'", "looks like a file path"),
    ('SELECT * FROM "data.csv"', "looks like a file path"),
    ("EXPLAIN COPY files TO 'x.csv'", "EXPLAIN is allowed only"),
    ("EXPLAIN SELECT * FROM read_csv('x')", "read_csv() is not allowed"),
    ("SELECT * FROM checkpoint()", "checkpoint() is not allowed"),
    ("SUMMARIZE SELECT * FROM glob('*')", "glob() is not allowed"),
    ("", "empty SQL"),
])
def test_user_sql_rejects_writes_and_file_access(root, sql, reason):
    catalog_write_file(root, LAYOUT, catalog_events("Trade", 2), codec="gzip")
    with Catalog.open(root) as cat:
        cat.sync(LAYOUT)
    with Catalog.open(root, read_only=True) as cat:
        with pytest.raises(MdcsqlError, match="query rejected") as exc:
            cat.query(sql)
        assert reason in str(exc.value)


def test_user_sql_allows_read_only_queries_and_locks_the_connection_down(root):
    catalog_write_file(root, LAYOUT, catalog_events("Trade", 5), codec="gzip")
    with Catalog.open(root) as cat:
        cat.sync(LAYOUT)
        with pytest.raises(MdcsqlError, match="read_only=True"):
            cat.query("SELECT 1")
    with Catalog.open(root, read_only=True) as cat:
        assert cat.query("SELECT count(*) FROM trades WHERE price > ?", [Decimal("186")]).rows == [(4,)]
        assert cat.query("WITH t AS (FROM trades) SELECT max(seq) FROM t").rows == [(5,)]
        assert cat.query("DESCRIBE trades").rows[0][:2] == ("ts", "TIMESTAMP_NS")
        assert cat.query("SUMMARIZE trades").columns[0] == "column_name"
        assert cat.query("SHOW TABLES").rows
        assert cat.query("EXPLAIN SELECT * FROM trades").rows
        assert cat.query("SELECT * FROM range(3)").rows == [(0,), (1,), (2,)]
        assert cat.query("SELECT count(*) FROM duckdb_tables()").rows
        assert cat.query("SELECT count(*) FROM files JOIN trades ON trades.file = files.path").rows == [(5,)]
        res = cat.query("SELECT * FROM range(10)", max_rows=4)
        assert (len(res.rows), res.truncated) == (4, True)
        res = cat.query("SELECT * FROM range(4)", max_rows=4)
        assert (len(res.rows), res.truncated) == (4, False)
        with pytest.raises(MdcsqlError, match="query failed"):
            cat.query("SELECT * FROM no_such_table")
        with pytest.raises(MdcsqlError, match="syntax error"):
            cat.query("SELEC 1")
        for max_rows in (None, 10):
            started = time.monotonic()
            with pytest.raises(MdcsqlError, match="time limit"):
                cat.query("SELECT count(*) FROM range(10000000000) a, range(10) b", time_limit=0.2,
                          max_rows=max_rows)
            assert time.monotonic() - started < 10
        # the second layer: even our own execute() cannot reach files outside the archive now
        with pytest.raises(duckdb.Error, match="disabled by configuration"):
            cat.execute("SELECT * FROM read_text('/etc/hostname')")
        with pytest.raises(duckdb.Error, match="locked"):
            cat.execute("SET enable_external_access = true")
        assert cat.query("SELECT count(*) FROM trades").rows == [(5,)]


def test_result_helpers(root):
    with Catalog.open(root) as cat:
        res = cat.execute("SELECT 1 AS a, 'x' AS b UNION ALL SELECT 2, 'y' ORDER BY a")
        assert isinstance(res, Result)
        assert res.columns == ["a", "b"] and res.first() == (1, "x")
        assert res.dicts() == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
        assert cat.execute("SELECT 1 WHERE false").first() is None
        assert cat.execute("CREATE TEMP TABLE t (x INT)").rows == []


# ------------------------------------------------------------------------------- stats, registries, exports

def test_stats_by_tier_source_type_and_state(root):
    mixed_tree(root)
    with Catalog.open(root) as cat:
        cat.sync(LAYOUT)
        s = cat.stats()
    assert s["totals"]["files"] == 6
    assert s["totals"]["events"] == 12 and s["totals"]["uncounted_files"] == 2    # 2 open files
    assert {r["state"]: r["files"] for r in s["by_state"]} == {"open": 2, "sealed": 4}
    assert {r["type"]: r["files"] for r in s["by_type"]} == dict.fromkeys(EVENT_TYPES, 1)
    assert s["by_tier"] == [{"tier": "hot", **{k: s["totals"][k] for k in s["totals"]}}]
    assert s["totals"]["size_bytes"] == sum(p.stat().st_size for p in (root / "live").rglob("*.jsonl*")
                                            if not p.name.endswith(".json")) + \
        sum(p.stat().st_size for p in (root / "historical").rglob("*.jsonl*") if not p.name.endswith(".json"))


def test_exports_have_the_designs_shapes(root):
    files = mixed_tree(root)
    with Catalog.open(root) as cat:
        cat.register_source("alpaca", name="Alpaca Markets", type="live", priority=1,
                            asset_classes=["equity"], data_types=["Trade", "BboQuote"],
                            latency_ms=10, reliability=0.999, cost_per_event=0.0001)
        cat.sync(LAYOUT)
        with pytest.raises(MdcsqlError, match="reliability"):
            cat.register_source("bad", reliability=2)
    cat_dir = root / "_catalog"
    doc = json.loads((cat_dir / "manifest.json").read_text())["catalog"]
    assert doc["version"] == "1.0" and doc["generated_at"].endswith("Z")
    entries = {e["path"]: e for e in doc["entries"]}
    assert set(entries) == set(files.values())
    trade = entries[files["Trade"]]
    manifest = json.loads((root / (files["Trade"] + ".manifest.json")).read_text())
    assert trade["checksum"] == "sha256:" + manifest["sha256"]
    assert trade["symbols"] == ["AAPL"] and trade["type"] == "Trade" and trade["state"] == "sealed"
    assert trade["date_range"] == {"start": PERIOD, "end": PERIOD}
    assert trade["event_count"] == 3 and trade["created_at"] == "2024-01-15T14:30:00.000000Z"
    assert entries[files["Heartbeat"]]["checksum"] is None and entries[files["Heartbeat"]]["state"] == "open"
    sources = json.loads((cat_dir / "sources.json").read_text())["sources"]
    assert sources["alpaca"]["reliability"] == 0.999 and sources["alpaca"]["data_types"] == ["Trade", "BboQuote"]
    assert not list(cat_dir.glob("*.tmp"))


def test_read_only_open_without_a_catalog_is_not_found(root):
    with pytest.raises(NotFoundError, match="no catalog"):
        Catalog.open(root, read_only=True)


def test_write_operations_need_a_read_write_catalog(root):
    Catalog.open(root).close()
    with Catalog.open(root, read_only=True) as cat:
        with pytest.raises(MdcsqlError, match="read-write"):
            cat.sync(LAYOUT)
        with pytest.raises(MdcsqlError, match="read-write"):
            cat.register_symbol("AAPL")


# ------------------------------------------------------------------------------- real seals

def test_files_sealed_by_the_ingest_code_are_catalogued_from_their_manifest(root):
    from mdcsql.ingest.seal import seal_file
    hot = catalog_write_file(root, LAYOUT, catalog_events("Trade", 4), codec="none")
    with Catalog.open(root) as cat:
        cat.sync(LAYOUT)
        manifest = seal_file(root, LAYOUT, hot, codec="zstd", level=3)
        r = cat.sync(LAYOUT)
        assert (r.added, r.removed, r.problems) == (1, 1, [])
        row = cat.execute("SELECT * FROM files").dicts()[0]
        for k in ("path", "codec", "sha256", "raw_sha256", "event_count", "size_bytes", "first_seq",
                  "gap_count"):
            assert row[k] == manifest[k], k
        assert cat.execute("SELECT count(*) FROM trades").first() == (4,)


def test_a_targeted_sync_after_a_seal_touches_only_that_partition(root):
    from mdcsql.ingest.seal import seal_file
    other = catalog_write_file(root, LAYOUT, catalog_events("Trade", 2, symbol="MSFT"), codec="none")
    hot = catalog_write_file(root, LAYOUT, catalog_events("Trade", 4), codec="none")
    with Catalog.open(root) as cat:
        cat.sync(LAYOUT)
        exported = (root / "_catalog" / "manifest.json").read_text()
        with open(root / other, "ab") as f:                     # not named: left for a full sync
            f.write(catalog_jsonl(catalog_events("Trade", 1, symbol="MSFT", start_seq=3)))
        manifest = seal_file(root, LAYOUT, hot, codec="gzip", level=6)
        r = cat.sync(LAYOUT, paths=[manifest["path"]])
        assert (r.added, r.updated, r.removed, r.unchanged, r.views_changed) == (1, 0, 1, 0, False)
        assert cat.execute("SELECT path, state FROM files ORDER BY path").rows == \
            sorted([(other, "open"), (manifest["path"], "sealed")])
        assert (root / "_catalog" / "manifest.json").read_text() == exported     # deferred
        r = cat.sync(LAYOUT)
        assert (r.added, r.updated, r.removed) == (0, 1, 0)
        entries = json.loads((root / "_catalog" / "manifest.json").read_text())["catalog"]["entries"]
        assert sorted(e["path"] for e in entries) == sorted([other, manifest["path"]])
        r = cat.sync(LAYOUT, paths=["live/../etc/passwd", "live/NOPE/Trade/x.jsonl"])
        assert r.changed is False and r.problems == [("live/../etc/passwd", "not a relative path under a tier root")]


# ------------------------------------------------------------------------------- concurrency (invariant 4)

def test_threads_of_one_process_syncing_at_once_are_serialised(root):
    import threading
    errors = []

    def work(tag: str) -> None:
        try:
            for i in range(8):
                catalog_write_file(root, LAYOUT, catalog_events("Trade", 2, symbol=f"{tag}{i}"),
                                   codec="zstd" if i % 2 else "none")
                with Catalog.open(root, timeout=30) as cat:
                    cat.sync(LAYOUT)
                    cat.register_symbol(f"{tag}{i}")
        except Exception as exc:        # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in ("A", "B", "C")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with Catalog.open(root) as cat:
        assert cat.sync(LAYOUT).changed is False
        assert cat.execute("SELECT count(*) FROM files").first() == (24,)
        assert len(cat.symbols()) == 24


_HOLDER = textwrap.dedent("""
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
    print("holding", flush=True)
    time.sleep(float(sys.argv[3]))
""")


@pytest.mark.parametrize("mode", ["rw", "ro"])
def test_archive_locked_error_names_the_file_and_the_holder(root, mode):
    Catalog.open(root).close()
    db = root / "_catalog" / "catalog.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(db), mode, "30"],
                              stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        with pytest.raises(ArchiveLockedError) as exc:
            Catalog.open(root, timeout=0.6)
        assert 0.5 <= time.monotonic() - started < 5
        assert str(db) in str(exc.value) and f"PID {holder.pid}" in str(exc.value)
        if mode == "rw":
            with pytest.raises(ArchiveLockedError):
                Catalog.open(root, read_only=True, timeout=0.2)
        else:                                       # readers share the file
            with Catalog.open(root, read_only=True, timeout=1) as cat:
                assert cat.query("SELECT count(*) FROM files").rows == [(0,)]
    finally:
        holder.kill()
        holder.wait()
    with Catalog.open(root, timeout=5) as cat:      # released: opens again
        assert cat.execute("SELECT count(*) FROM files").first() == (0,)


_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from helpers_catalog import catalog_events, catalog_write_file
    from mdcsql.catalog import Catalog
    from mdcsql.layout import Layout
    root, n = Path(sys.argv[1]), int(sys.argv[2])
    layout = Layout("BySymbol", "Daily")
    for i in range(n):
        catalog_write_file(root, layout, catalog_events("Trade", 3, symbol=f"S{i}"),
                           codec="gzip" if i % 2 else "none")
        with Catalog.open(root, timeout=20) as cat:
            cat.sync(layout)
    print("writer done", flush=True)
""")
_READER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from mdcsql.catalog import Catalog
    root, n = Path(sys.argv[1]), int(sys.argv[2])
    last = 0
    for i in range(n):
        with Catalog.open(root, read_only=True, timeout=20) as cat:
            (count,), = cat.query("SELECT count(*) FROM trades").rows
            cat.query("SELECT count(*) FROM files")
        assert count >= last, (count, last)
        last = count
    print("reader done", last, flush=True)
""")


def test_a_writer_and_a_reader_process_work_side_by_side(root):
    catalog_write_file(root, LAYOUT, catalog_events("Trade", 3), codec="gzip")
    with Catalog.open(root) as cat:
        cat.sync(LAYOUT)
    started = time.monotonic()
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(root), "25"], env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reader = subprocess.Popen([sys.executable, "-c", _READER, str(root), "60"], env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    w_out, w_err = writer.communicate(timeout=120)
    r_out, r_err = reader.communicate(timeout=120)
    elapsed = time.monotonic() - started
    assert writer.returncode == 0, w_err
    assert reader.returncode == 0, r_err
    assert "writer done" in w_out and "reader done" in r_out
    assert elapsed < 60
    with Catalog.open(root, read_only=True) as cat:
        assert cat.query("SELECT count(*) FROM files").rows == [(26,)]
        assert cat.query("SELECT count(*) FROM trades").rows == [(78,)]
