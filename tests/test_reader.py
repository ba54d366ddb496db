"""The fast read path (mdcsql.reader.Reader): same rows and types as the catalog views, across
hot JSONL (open and sealed) and cold Parquet, pruned to files and row groups; never blocks the
catalog's writer. Real files, a real DuckDB catalog, no mocks."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from conftest import python_env
from helpers_catalog import BASE_TS, catalog_events, catalog_write_file
from mdcsql.catalog import Catalog
from mdcsql.errors import InputError, NotFoundError
from mdcsql.layout import DAY_NS, Layout
from mdcsql.lifecycle.parquet import convert
from mdcsql.reader import Reader

LAYOUT = Layout("BySymbol", "Daily")
DAY2 = "2024-01-16"


def _view(root: Path, view: str, symbol: str, lo: int, hi: int, source: str | None = None) -> pa.Table:
    """The catalog view's answer for the same filter, sorted like Reader.read."""
    sql = (f"SELECT * EXCLUDE (file) FROM {view} WHERE symbol = $symbol "
           "AND epoch_ns(ts) >= $lo AND epoch_ns(ts) < $hi"
           + (" AND source = $source" if source else "") + " ORDER BY ts, seq, source")
    params = {"symbol": symbol, "lo": lo, "hi": hi} | ({"source": source} if source else {})
    con = duckdb.connect(str(root / "_catalog" / "catalog.duckdb"), read_only=True)
    try:
        return con.sql(sql, params=params).to_arrow_table()
    finally:
        con.close()


def _sync(root: Path) -> None:
    with Catalog.open(root) as cat:
        cat.sync(LAYOUT)


def _to_cold(root: Path, rel: str, *, row_group_size: int = 10) -> str:
    """Migrate one sealed hot file to the cold tier as typed Parquet (mdcsql.lifecycle.parquet's
    verified conversion), with a manifest, then remove the hot file, as `mdcsql tier migrate`
    does, and sync."""
    meta = LAYOUT.parse(rel)
    cold = LAYOUT.relpath(meta.key, codec="parquet", tier="cold")
    target = root / cold
    target.parent.mkdir(parents=True, exist_ok=True)
    src = root / rel
    tmp = target.with_name(target.name + ".tmp")
    result = convert([src], tmp, meta.key.type, compression="zstd", level=12, row_group_size=row_group_size)
    tmp.rename(target)
    manifest = json.loads(Path(str(src) + ".manifest.json").read_text())
    manifest.update(path=cold, format="parquet", codec="zstd", compression_level=12,
                    size_bytes=result.size_bytes, sha256=result.sha256)
    Path(str(target) + ".manifest.json").write_text(json.dumps(manifest, indent=2))
    src.unlink()
    Path(str(src) + ".manifest.json").unlink()
    _sync(root)
    return cold


@pytest.fixture
def tree(tmp_path) -> Path:
    """AAPL trades: day 1 sealed gzip (60 events), day 2 sealed zstd (40) plus an open .jsonl
    part 2 with a torn tail (late data, 5); a second source on day 1; MSFT trades; AAPL quotes."""
    root = tmp_path / "archive"
    root.mkdir()
    catalog_write_file(root, LAYOUT, catalog_events("Trade", 60), codec="gzip")
    catalog_write_file(root, LAYOUT, catalog_events("Trade", 30, source="sim-b", ts0=BASE_TS + 500),
                       codec="gzip")
    day2 = BASE_TS + DAY_NS
    catalog_write_file(root, LAYOUT, catalog_events("Trade", 40, start_seq=61, ts0=day2), codec="zstd",
                       period=DAY2)
    catalog_write_file(root, LAYOUT, catalog_events("Trade", 5, start_seq=101, ts0=day2 + 3),
                       codec="none", period=DAY2, part=2, torn_tail=b'{"type":"Trade","sym')
    catalog_write_file(root, LAYOUT, catalog_events("Trade", 20, symbol="MSFT"), codec="gzip")
    catalog_write_file(root, LAYOUT, catalog_events("BboQuote", 25), codec="zstd")
    _sync(root)
    return root


RANGES = [
    (None, None),
    (BASE_TS, BASE_TS + 2 * DAY_NS),
    (BASE_TS + 10 * 1_000_001, BASE_TS + 20 * 1_000_001),       # inside day 1, on event times
    (BASE_TS + DAY_NS + 3, BASE_TS + DAY_NS + 5 * 1_000_001),     # day 2, sealed + open file
    (BASE_TS - DAY_NS, BASE_TS),                                  # before everything
]


def _bounds(lo, hi):
    return (-(1 << 63) if lo is None else lo), ((1 << 63) - 1 if hi is None else hi)


def _check_equal_to_view(root: Path, reader: Reader) -> None:
    for type_, view in (("Trade", "trades"), ("BboQuote", "bbo_quotes")):
        for symbol in ("AAPL", "MSFT"):
            for lo, hi in RANGES:
                got = reader.read(type_, symbol, lo, hi)
                want = _view(root, view, symbol, *_bounds(lo, hi))
                assert got.schema == want.schema
                assert got.equals(want), (type_, symbol, lo, hi)
    got = reader.read("Trade", "AAPL", source="sim-b")
    assert got.equals(_view(root, "trades", "AAPL", *_bounds(None, None), source="sim-b"))
    assert got.num_rows == 30


def test_hot_jsonl_reads_equal_the_views_exactly(tree):
    reader = Reader(tree)
    _check_equal_to_view(tree, reader)
    got = reader.read("Trade", "AAPL", BASE_TS + DAY_NS, BASE_TS + 2 * DAY_NS)
    assert got.num_rows == 45                      # 40 sealed + 5 open, the torn line dropped
    ts = got.column("ts").cast(pa.int64()).to_pylist()
    assert ts == sorted(ts) and sorted(got.column("seq").to_pylist()) == [*range(61, 101), *range(101, 106)]
    assert str(got.column("price")[0].as_py()) == "185.123456789012345678"
    assert got.schema.field("ts").type == pa.timestamp("ns")
    assert got.schema.field("price").type == pa.decimal128(38, 18)


def test_cold_parquet_reads_equal_the_views_and_the_hot_reads_before_migration(tree):
    reader = Reader(tree)
    before = {lohi: reader.read("Trade", "AAPL", *lohi) for lohi in RANGES}
    hot = [p for p in reader.plan("Trade", "AAPL") if p["path"].endswith(".jsonl.gz")]
    for p in hot:
        _to_cold(tree, p["path"])
    plan = reader.plan("Trade", "AAPL")             # the catalog changed: the snapshot is refreshed
    assert {p["format"] for p in plan} == {"parquet", "jsonl"}
    assert all(p["path"].startswith("cold/") for p in plan if p["format"] == "parquet")
    for lohi, table in before.items():
        assert reader.read("Trade", "AAPL", *lohi).equals(table)
    _check_equal_to_view(tree, reader)


def test_parquet_row_groups_are_pruned_by_ts_statistics(tree):
    reader = Reader(tree)
    rel = next(p["path"] for p in reader.plan("Trade", "AAPL", source="sim"))
    _to_cold(tree, rel, row_group_size=10)          # 60 events -> 6 row groups of 10
    lo, hi = BASE_TS + 25 * 1_000_001, BASE_TS + 35 * 1_000_001   # events 25..34
    [plan] = reader.plan("Trade", "AAPL", lo, hi, source="sim")
    assert plan["of"] == 6 and plan["row_groups"] == [2, 3]
    got = reader.read("Trade", "AAPL", lo, hi, source="sim")
    assert got.column("seq").to_pylist() == list(range(26, 36))
    assert got.equals(_view(tree, "trades", "AAPL", lo, hi, source="sim"))
    narrow = reader.read("Trade", "AAPL", lo, hi, source="sim", columns=["price", "size"])  # ts read, dropped
    assert narrow.equals(got.select(["price", "size"]))
    assert reader.read("Trade", "AAPL", columns=["symbol", "seq"]).equals(
        _view(tree, "trades", "AAPL", *_bounds(None, None)).select(["symbol", "seq"]))


def test_boundaries_are_half_open(tree):
    reader = Reader(tree)
    t10, t20 = BASE_TS + 10 * 1_000_001, BASE_TS + 20 * 1_000_001
    got = reader.read("Trade", "AAPL", t10, t20, source="sim", columns=["ts", "seq"])
    assert got.column_names == ["ts", "seq"]
    assert got.column("seq").to_pylist() == list(range(11, 21))   # ts == t10 in, ts == t20 out
    assert reader.read("Trade", "AAPL", t10, t10).num_rows == 0
    # text and date bounds
    assert reader.read("Trade", "AAPL", "2024-01-15", "2024-01-16").num_rows == 90
    assert reader.read("Trade", "AAPL", "2024-01-16T00:00:00Z", None).num_rows == 45


def test_file_pruning_opens_only_the_files_of_the_range(tree):
    reader = Reader(tree)
    day1 = reader.plan("Trade", "AAPL", BASE_TS, BASE_TS + 1000)
    assert sorted(p["path"] for p in day1) == ["live/AAPL/Trade/2024-01-15~sim-b~equity.jsonl.gz",
                                               "live/AAPL/Trade/2024-01-15~sim~equity.jsonl.gz"]
    day2 = reader.plan("Trade", "AAPL", BASE_TS + DAY_NS, None, source="sim")
    assert sorted(p["path"] for p in day2) == ["live/AAPL/Trade/2024-01-16~sim~equity.jsonl.zst",
                                               "live/AAPL/Trade/2024-01-16~sim~equity.p2.jsonl"]
    assert reader.plan("Trade", "AAPL", BASE_TS + 3 * DAY_NS, None) == []
    assert [p["path"] for p in reader.plan("Trade", "AAPL", BASE_TS, BASE_TS + 1)] == [
        "live/AAPL/Trade/2024-01-15~sim~equity.jsonl.gz"]       # sim-b's first trade is at +500 ns


def test_unknown_symbol_gives_an_empty_typed_table(tree):
    reader = Reader(tree)
    for type_ in ("Trade", "heartbeats", "L2Snapshot"):
        got = reader.read(type_, "NOPE", None, None)
        assert got.num_rows == 0 and got.schema == reader.schema(type_)
    assert reader.read("Trade", "NOPE", columns=["price"]).schema.names == ["price"]


@pytest.mark.parametrize("call, message", [
    (lambda r: r.read("Trades", "AAPL"), "unknown event type 'Trades'"),
    (lambda r: r.read("Trade", "AAPL", columns=["px"]), "unknown column(s) ['px']"),
    (lambda r: r.read("Trade", "AAPL", BASE_TS + 1, BASE_TS), "is before start"),
    (lambda r: r.read("Trade", "AAPL", "yesterday"), "not an ISO-8601 timestamp"),
    (lambda r: r.read("Trade", "", None, None), "symbol must be a non-empty string"),
    (lambda r: r.read("Trade", "AAPL", source=[]), "source must be"),
])
def test_bad_input_is_a_clear_error(tree, call, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        call(Reader(tree))


def test_no_catalog_is_not_found(tmp_path):
    with pytest.raises(NotFoundError, match="no catalog"):
        Reader(tmp_path)


def test_new_files_appear_after_a_sync_without_reopening(tree):
    reader = Reader(tree)
    assert reader.read("Trade", "IBM").num_rows == 0
    catalog_write_file(tree, LAYOUT, catalog_events("Trade", 7, symbol="IBM"), codec="gzip")
    _sync(tree)
    assert reader.read("Trade", "IBM").num_rows == 7


def test_a_reader_never_blocks_the_catalog_writer(tree):
    """Invariant 4: with a Reader open and used, another process opens the catalog read-write at
    once, and this process can too; a read while that process holds the catalog still answers
    (from the snapshot)."""
    reader = Reader(tree)
    assert reader.read("Trade", "AAPL").num_rows == 135
    with Catalog.open(tree, timeout=0.5) as cat:      # same process, read-write
        cat.sync(LAYOUT)
    holder = textwrap.dedent(f"""
        import sys, time
        from mdcsql.catalog import Catalog
        from mdcsql.layout import Layout
        with Catalog.open({str(tree)!r}, timeout=0.5) as cat:
            cat.execute("INSERT INTO catalog_state VALUES ('reader-test', '1')")   # the file changes
            print("holding", flush=True)
            sys.stdin.readline()
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=python_env())
    try:
        assert proc.stdout.readline().strip() == "holding"
        got = reader.read("Trade", "AAPL")          # catalog locked by the writer: old snapshot serves
        assert got.num_rows == 135
    finally:
        proc.communicate("\n", timeout=30)
    assert proc.returncode == 0
    assert reader.read("Trade", "AAPL").num_rows == 135 and not reader.stale


def test_millisecond_parquet_statistics_are_scaled_to_nanoseconds(tmp_path):
    """A millisecond feed (Lean) is stored with ts in ms: row-group statistics are ms counts, and
    pruning and the returned ns times must still be right."""
    root = tmp_path / "archive"
    root.mkdir()
    ts0 = (BASE_TS // 1_000_000) * 1_000_000
    events = catalog_events("Trade", 40, ts0=ts0)
    for i, e in enumerate(events):
        e["ts"] = ts0 + i * 1_000_000                 # whole milliseconds
    rel = catalog_write_file(root, LAYOUT, events, codec="gzip")
    _sync(root)
    _to_cold(root, rel, row_group_size=8)
    reader = Reader(root)
    lo, hi = ts0 + 17 * 1_000_000, ts0 + 25 * 1_000_000
    [plan] = reader.plan("Trade", "AAPL", lo, hi)
    assert plan["row_groups"] == [2, 3]
    got = reader.read("Trade", "AAPL", lo, hi)
    assert got.column("seq").to_pylist() == list(range(18, 26))
    assert got.column("ts").cast(pa.int64()).to_pylist()[0] == lo
    assert got.equals(_view(root, "trades", "AAPL", lo, hi))


@pytest.mark.parametrize("big", [True, False])
@pytest.mark.parametrize("precision, scale", [(9, 0), (9, 2), (18, 0), (18, 7), (18, 18)])
def test_decimal_widening_is_exact_for_negatives_nulls_and_slices(precision, scale, big):
    """The fast int64 -> 128-bit rescale equals Arrow's checked cast, value for value."""
    from decimal import Decimal

    import numpy as np

    from mdcsql.reader_parquet import widen_decimal
    rng = np.random.default_rng(precision * 100 + scale)
    top = 10 ** precision - 1
    small = min(top, 99_999)          # prices and sizes of real feeds: the multiply-and-shift path
    unscaled = ([int(v) for v in rng.integers(-top, top, 500, endpoint=True)] + [top, -top, 0, 1, -1]
                if big else [int(v) for v in rng.integers(-small, small, 500, endpoint=True)])
    values = [None if i % 7 == 3 else Decimal(v).scaleb(-scale) for i, v in enumerate(unscaled)]
    arr = pa.array(values, pa.decimal128(precision, scale))
    target = pa.decimal128(38, 18)
    for part in (arr, arr.slice(3, 200), arr.slice(499)):
        got = widen_decimal(part, target)
        assert got.equals(part.cast(target))
        assert got.null_count == part.null_count
