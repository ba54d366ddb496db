"""Export transforms (design: "Data Transformation Pipeline") over real archive rows and small
hand-made tables whose expected results are worked out independently in Python."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal as D

import duckdb
import pyarrow as pa
import pytest

from helpers_export_data import sim_archive, view_table
from mdcsql.errors import ConfigError, InputError
from mdcsql.export.transforms import (Dedup, Normalize, Ohlcv, Pipeline, QualityFilter, TimeAlign,
                                      parse_interval, parse_pipeline)

S = 1_000_000_000
MIN = 60 * S
DEC = pa.decimal128(38, 18)
UTC_NS = pa.timestamp("ns", tz="UTC")


@pytest.fixture(scope="module")
def trades(tmp_path_factory) -> pa.Table:
    root = sim_archive(tmp_path_factory.mktemp("tx") / "archive")
    return view_table(root, "trades")


@pytest.fixture(scope="module")
def quotes(tmp_path_factory) -> pa.Table:
    root = sim_archive(tmp_path_factory.mktemp("tq") / "archive", days=("2024-01-02",))
    return view_table(root, "bbo_quotes")


def _tiny() -> pa.Table:
    ts = [0, S // 2, 3 * S + 1, 3 * S + 1, 65 * S]
    return pa.table({
        "ts": pa.array(ts, UTC_NS), "symbol": ["A"] * 5, "source": ["sim"] * 5,
        "seq": [1, 2, 3, 3, 4],
        "price": pa.array([D("1.5"), D("2.25"), D("3"), D("3"), D("0.1")], DEC),
        "size": pa.array([D(1), D(2), D(3), D(3), D(4)], DEC),
        "file": ["f1", "f1", "f1", "f2", "f2"]})


def test_ohlcv_bars_from_real_trades_match_a_python_aggregation(trades):
    bars = Pipeline([Ohlcv("100ms")]).apply(trades)   # the simulator's trades are seconds apart
    expected: dict = defaultdict(list)
    for r, ns in zip(trades.to_pylist(), trades.column("ts").cast(pa.int64()).to_pylist()):
        expected[(r["symbol"], ns // (S // 10) * (S // 10))].append((ns, r["seq"], r["price"], r["size"]))
    assert bars.num_rows == len(expected) > 10
    assert bars.schema.field("ts").type == UTC_NS and bars.schema.field("open").type == DEC
    ts_ns = bars.column("ts").cast(pa.int64()).to_pylist()
    for i, row in enumerate(bars.to_pylist()):
        group = sorted(expected[(row["symbol"], ts_ns[i])])
        prices = [g[2] for g in group]
        assert (row["open"], row["close"]) == (prices[0], prices[-1])
        assert (row["high"], row["low"]) == (max(prices), min(prices))
        assert row["volume"] == sum(g[3] for g in group) and row["trades"] == len(group)


def test_ohlcv_stamps_at_bar_start_and_skips_empty_buckets():
    bars = Ohlcv("1min").run(_tiny(), None)[0]
    assert bars.column("ts").cast(pa.int64()).to_pylist() == [0, MIN]
    assert bars.column("open").to_pylist() == [D("1.5"), D("0.1")]
    assert bars.column("close").to_pylist() == [D("3"), D("0.1")]
    assert bars.column("volume").to_pylist() == [D(9), D(4)]   # the duplicate counts until deduped
    assert "source" not in bars.column_names
    by_source = Ohlcv("1min", by_source=True).run(_tiny(), None)[0]
    assert by_source.column("source").to_pylist() == ["sim", "sim"]


def test_quote_bars_from_real_quotes(quotes):
    bars = Pipeline([Ohlcv("1s", kind="quote")]).apply(quotes)
    first = bars.slice(0, 1).to_pylist()[0]
    start = bars.column("ts").cast(pa.int64())[0].as_py()
    ts = quotes.column("ts").cast(pa.int64()).to_pylist()
    rows = [r for r, t in zip(quotes.to_pylist(), ts)
            if r["symbol"] == first["symbol"] and start <= t < start + S]
    bids = [r["bid_price"] for r in rows if r["bid_price"] is not None]
    assert first["bid_open"] == bids[0] and first["bid_close"] == bids[-1]
    assert first["bid_high"] == max(bids) and first["quotes"] == len(rows)
    assert first["last_ask_size"] == [r["ask_size"] for r in rows if r["ask_price"] is not None][-1]


def test_dedup_keeps_first_of_each_event_and_the_order(trades):
    doubled = pa.concat_tables([trades, trades.slice(5, 20)])
    pipe = parse_pipeline(["dedup"])
    out = pipe.apply(doubled)
    assert out.equals(trades)
    assert pipe.notes[0].startswith("dedup: 20 duplicate(s) dropped (keys: ts, recv_ts, symbol")
    by_event = Dedup("event").run(_tiny(), None)[0]
    assert by_event.column("seq").to_pylist() == [1, 2, 3, 4]
    tiny = Dedup("all").run(_tiny(), None)[0]
    assert tiny.num_rows == 4 and tiny.column("file").to_pylist() == ["f1", "f1", "f1", "f2"]
    assert Dedup(["symbol", "price"]).run(_tiny(), None)[0].num_rows == 4
    with pytest.raises(InputError, match="no column nope"):
        Dedup(["nope"]).run(_tiny(), None)


def test_time_alignment_last_value_and_forward_fill():
    tiny = Dedup().run(_tiny(), None)[0]
    grid = TimeAlign("1s").run(tiny, None)[0]
    assert grid.column("ts").cast(pa.int64()).to_pylist() == [0, 3 * S, 65 * S]
    assert grid.column("seq").to_pylist() == [2, 3, 4]          # the last of each bucket
    assert TimeAlign("1s", take="first").run(tiny, None)[0].column("seq").to_pylist() == [1, 3, 4]
    filled = parse_pipeline(["align:1s:fill"]).apply(tiny)
    assert filled.num_rows == 66 and filled.column_names[-1] == "filled"
    assert filled.column("ts").cast(pa.int64()).to_pylist() == [i * S for i in range(66)]
    seqs, flags = filled.column("seq").to_pylist(), filled.column("filled").to_pylist()
    assert seqs[:4] == [2, 2, 2, 3] and seqs[64:] == [3, 4]
    assert sum(flags) == 63 and not flags[0] and not flags[3]
    assert filled.schema.field("price").type == DEC and filled.schema.field("ts").type == UTC_NS


def test_quality_filter_uses_a_score_column_or_passes_through(trades):
    pipe = parse_pipeline([{"step": "quality", "min_score": 0.5}])
    assert pipe.apply(trades).equals(trades)
    assert "no quality_score column" in pipe.notes[0]
    scored = _tiny().append_column("quality_score", pa.array([0.9, 0.2, None, 0.5, 1.0]))
    assert QualityFilter(0.5).run(scored, None)[0].column("seq").to_pylist() == [1, 3, 3, 4]
    assert QualityFilter(0.5, keep_unscored=False).run(scored, None)[0].num_rows == 3


class _Registry:
    """The one method Normalize uses of mdcsql.registry.SymbolRegistry: FB was META from 2022-06-09."""

    def resolve_on(self, symbol, day, source=None):
        return "META" if symbol == "FB" and day >= date(2022, 6, 9) else symbol


def test_normalize_symbols_through_the_registry_and_exact_price_scaling(tmp_path):
    day = 86_400 * S
    t = pa.table({"ts": pa.array([19151 * day, 19152 * day], UTC_NS), "symbol": ["FB", "FB"],
                  "price": pa.array([D("187.1234"), D("0.0001")], DEC)})
    pipe = Pipeline([Normalize("canonical", price_scale="10000")])
    out = pipe.apply(t, registry=_Registry())
    assert out.column("symbol").to_pylist() == ["FB", "META"]   # 2022-06-08 vs 2022-06-09
    assert out.column("price").to_pylist() == [D("1871234"), D("1")]
    assert out.schema.field("price").type == DEC
    assert "canonicalised" in pipe.notes[0]
    with pytest.raises(ConfigError, match="symbol registry"):
        Pipeline([Normalize()]).apply(t)
    with pytest.raises(InputError, match="more than 18 decimals"):
        Normalize("keep", price_scale="0.001").run(
            t.set_column(2, "price", pa.array([D("0.000000000000000001"), D(1)], DEC)), None)


def test_normalize_with_the_real_registry(tmp_path):
    from mdcsql.archive import Archive
    from mdcsql.catalog import Catalog
    from mdcsql.registry import SymbolRegistry
    root = sim_archive(tmp_path / "a", events=300, days=("2024-01-02",), symbols="AAPL")
    Archive.open(root).close()
    with Catalog.open(root) as cat:
        reg = SymbolRegistry.load(cat)
        reg.add_mapping("AAPL", "APPLE", "2024-01-01")
    with Catalog.open(root, read_only=True) as cat:
        reg = SymbolRegistry.load(cat)
    out = Pipeline([Normalize()]).apply(view_table(root, "trades"), registry=reg)
    assert set(out.column("symbol").to_pylist()) == {"APPLE"}


def test_duckdb_relation_input_and_composed_pipeline(trades):
    con = duckdb.connect()
    con.register("t", pa.concat_tables([trades, trades]))
    pipe = parse_pipeline(["dedup", "quality", "ohlcv:5min", "normalize:lower"])
    out = pipe.apply(con.sql("SELECT * FROM t"))
    expected = Pipeline([Ohlcv("5min"), Normalize("lower")]).apply(trades)
    assert out.cast(expected.schema).equals(expected)
    assert [r.step for r in pipe.reports] == ["dedup", "quality", "ohlcv", "normalize"]
    assert pipe.specs()[2] == {"step": "ohlcv", "interval": "5min"}
    assert parse_pipeline(pipe.specs()).specs() == pipe.specs()


@pytest.mark.parametrize("spec, message", [
    ("dedupp", "unknown transform 'dedupp'.*Did you mean 'dedup'"),
    ("ohlcv:1x", "invalid interval '1x'"),
    ({"step": "ohlcv", "intervall": "1s"}, "unknown parameter 'intervall'.*Did you mean 'interval'"),
    ({"interval": "1s"}, "needs \"step\""),
    ("quality:abc", "min_score must be a number"),
    ("normalize:foo", "symbols must be canonical, upper, lower or keep"),
    ({"step": "ohlcv", "kind": "bars"}, "kind must be 'trade' or 'quote'"),
    (42, "a transform is a name"),
])
def test_bad_specs_fail_clearly(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_pipeline([spec])


def test_intervals_and_missing_columns():
    assert [parse_interval(x) for x in ("500ms", "1s", "1min", "1m", "4h", "1d")] == \
        [S // 2, S, MIN, MIN, 4 * 3600 * S, 86400 * S]
    for bad in ("0s", "1 week", "", "s"):
        with pytest.raises(ConfigError):
            parse_interval(bad)
    with pytest.raises(InputError, match="no column price"):
        Ohlcv().run(pa.table({"ts": pa.array([0], UTC_NS), "symbol": ["A"]}), None)


def test_transforms_through_the_export_core_for_text_and_columnar_formats(tmp_path):
    from mdcsql.export.exporter import run_export
    from mdcsql.export.request import ExportRequest
    root = sim_archive(tmp_path / "a", events=600, days=("2024-01-02",))
    expected = Pipeline([Ohlcv("1s")]).apply(view_table(root, "trades"))
    for fmt, name in (("Csv", "trades.csv"), ("Parquet", "trades.parquet")):
        req = ExportRequest.build(format=fmt, destination=tmp_path / "out", types="Trade",
                                  transforms=["dedup", "ohlcv:1s"])
        result = run_export(root, req)
        assert result.events == expected.num_rows
        con = duckdb.connect()
        path = str(result.path / "data" / name)
        if fmt == "Csv":
            got = con.execute("SELECT symbol, open::DECIMAL(38,18), close::DECIMAL(38,18), trades::BIGINT "
                              "FROM read_csv($p, all_varchar=true) ORDER BY symbol, ts", {"p": path}).fetchall()
        else:
            got = con.execute("SELECT symbol, open, close, trades FROM read_parquet($p) ORDER BY symbol, ts",
                              {"p": path}).fetchall()
        assert got == [(r["symbol"], r["open"], r["close"], r["trades"]) for r in expected.to_pylist()]
        assert any("ohlcv: trade bars of 1s" in n for n in result.notes)
