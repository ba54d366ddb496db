"""The simulator: deterministic archives, realistic prices and rates, each view's imperfections at its rate."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

import numpy as np
import pytest

from archive_contents import data_files, stored_events
from mdcsql import events as ev
from mdcsql.archive import Archive
from mdcsql.collect import collect
from mdcsql.errors import ConfigError
from mdcsql.sources.sim import BLOCK, DAY_NS, SimConfig, SimSource, SimulatedMarket, SimView, sim_sources

START = 1_709_303_400 * 10**9          # 2024-03-01T14:30:00Z = 09:30 in New York, the open
SYMBOLS = ["AAPL", "MSFT", "BRK/B"]


def _collect(root, sources) -> dict:
    archive = Archive.init(root, config=None)
    return collect(archive, sources)


def _files(root) -> dict:
    return {p.relative_to(root): p.read_bytes() for p in data_files(root)}


def _near(got: float, want: float, rel: float = 0.2) -> bool:
    return abs(got - want) <= rel * want


def _by_stream(events) -> dict:
    out = defaultdict(list)
    for e in events:
        out[(e["source"], e["symbol"], e["type"])].append(e)
    return out


# ---- determinism ----------------------------------------------------------------------------------

def test_three_views_collected_twice_give_byte_identical_archives(tmp_path):
    runs = []
    for name in ("a", "b"):
        sources = sim_sources(SYMBOLS, seed=11, start_ns=START, limit=20_000)
        report = _collect(tmp_path / name, sources)
        assert not report["failed"]
        runs.append(_files(tmp_path / name))
    assert runs[0] == runs[1]
    names = {p.name.split("~")[1] for p in runs[0]}
    assert names == {"sim", "sim-b", "sim-c"}
    assert len(runs[0]) >= 3 * 3 * 3
    assert SimulatedMarket(SYMBOLS, seed=12, start_ns=START).take(100) != \
        SimulatedMarket(SYMBOLS, seed=11, start_ns=START).take(100)


def test_output_does_not_depend_on_how_it_is_consumed():
    whole = SimulatedMarket(SYMBOLS, seed=3, start_ns=START, limit=BLOCK + 5_000).take(10**6)
    pieces = SimulatedMarket(SYMBOLS, seed=3, start_ns=START, limit=BLOCK + 5_000)
    parts = []
    for n in (1, 7, 500, 4096, 9000, 10**6):
        parts.extend(pieces.take(n))
    assert parts == whole and len(whole) == BLOCK + 5_000        # two blocks
    assert list(SimulatedMarket(SYMBOLS, seed=3, start_ns=START, limit=500)) == whole[:500]
    # the paced path slices blocks into chunks: same rows per stream as the unpaced one
    cfg = SimConfig(events_per_second=5_000)
    fast = SimSource(SYMBOLS, seed=3, start_ns=START, config=cfg, limit=BLOCK + 5_000)
    paced = SimSource(SYMBOLS, seed=3, start_ns=START, config=cfg, limit=BLOCK + 5_000, rate=10**9, chunk=3_333)
    rows_fast = [r for t in fast.batches() for r in t.to_pylist()]
    rows_paced = [r for t in paced.batches() for r in t.to_pylist()]
    assert _by_stream(rows_fast) == _by_stream(rows_paced)


def test_the_primary_view_is_clean_and_limit_counts_market_events(tmp_path):
    report = _collect(tmp_path / "a", [SimSource(SYMBOLS, seed=5, start_ns=START, limit=20_000)])
    assert report["events"] == 20_000 and report["duplicates_dropped"] == 0
    for stream in _by_stream(stored_events(tmp_path / "a")).values():
        assert [e["seq"] for e in stream] == list(range(1, len(stream) + 1))


# ---- realism ----------------------------------------------------------------------------------------

def test_prices_sit_on_the_tick_grid_with_a_positive_spread():
    cfg = SimConfig(tick_sizes={"BTCUSD": "0.5", "PENNY": "0.0001"}, prices={"BTCUSD": "64000", "PENNY": "0.8123"})
    events = SimulatedMarket(["BTCUSD", "PENNY", "AAPL"], seed=1, start_ns=START, config=cfg).take(30_000)
    ticks = {"BTCUSD": Decimal("0.5"), "PENNY": Decimal("0.0001"), "AAPL": Decimal("0.01")}
    decimals = {"BTCUSD": 1, "PENNY": 4, "AAPL": 2}
    spreads = Counter()
    for e in events:
        prices = {"Trade": lambda: [e["price"]], "BboQuote": lambda: [e["bid_price"], e["ask_price"]],
                  "L2Snapshot": lambda: [p for p, _ in e["bids"] + e["asks"]], "OrderFlow": lambda: [e["price"]],
                  "HistoricalBar": lambda: [e["open"], e["high"], e["low"], e["close"]]}[e["type"]]()
        for p in prices:
            assert Decimal(p) % ticks[e["symbol"]] == 0 and len(p.split(".")[1]) == decimals[e["symbol"]], (p, e)
        if e["type"] == "BboQuote":
            spread = (Decimal(e["ask_price"]) - Decimal(e["bid_price"])) / ticks[e["symbol"]]
            assert spread >= 1
            spreads[int(spread)] += 1
        if e["type"] == "L2Snapshot":
            assert [Decimal(p) for p, _ in e["bids"]] == sorted((Decimal(p) for p, _ in e["bids"]), reverse=True)
            assert Decimal(e["bids"][0][0]) < Decimal(e["asks"][0][0])
    mean_spread = sum(k * v for k, v in spreads.items()) / sum(spreads.values())
    assert 1.2 < mean_spread < 1.8                                # the configured mean, 1.5 ticks
    btc = [Decimal(e["price"]) for e in events if e["type"] == "Trade" and e["symbol"] == "BTCUSD"]
    assert abs(btc[-1] - 64000) < 64000 * Decimal("0.01")         # a random walk, not a runaway


def _times(market: SimulatedMarket) -> np.ndarray:
    return np.concatenate([t.column("ts").to_numpy() for block in market.blocks() for _, t in block])


def test_volume_follows_a_u_shaped_curve_in_exchange_time():
    day = 1_709_251_200 * 10**9                                   # 2024-03-01T00:00Z; New York is UTC-5 all day
    cfg = SimConfig(events_per_second=2.0, bar_interval=None)
    ts = _times(SimulatedMarket(["AAPL"], seed=2, start_ns=day, config=cfg, limit=2 * 86_400))
    per_half_hour = Counter(((ts - day) // (60 * 10**9) - 300) % 1440 // 30)
    opening, midday, closing = per_half_hour[19], per_half_hour[25], per_half_hour[31]   # 9:30, 12:30, 15:30 local
    assert opening > 2.5 * midday and closing > 1.5 * midday
    assert per_half_hour[2] < midday / 20                         # 01:00: nearly silent
    assert _near(len(ts[ts < day + DAY_NS]), 2 * 86_400, 0.02)    # the rate is the mean over the day
    flat = _times(SimulatedMarket(["AAPL"], seed=2, start_ns=day, limit=2 * 86_400,
                                  config=SimConfig(events_per_second=2.0, volume_curve=False, bar_interval=None)))
    hours = Counter((flat - day) // (3600 * 10**9))
    full = [hours[h] for h in range(22)]                          # the last hours may be cut off
    assert max(full) < 1.15 * min(full)


def test_order_flow_and_bars_are_valid_canonical_events_and_consistent():
    cfg = SimConfig(bar_interval="1s", events_per_second=50)
    events = SimulatedMarket(SYMBOLS, seed=4, start_ns=START, config=cfg).take(60_000)
    types = Counter(e["type"] for e in events)
    assert types["OrderFlow"] > 5_000 and types["HistoricalBar"] > 100 and types["L2Snapshot"] > 1_000
    for e in events:
        assert ev.normalize(e) == e and ev.encode(e) == ev.encode(ev.normalize(ev.decode_line(ev.encode(e))))
    live = defaultdict(dict)
    actions = Counter()
    for e in (e for e in events if e["type"] == "OrderFlow"):
        book = live[e["symbol"]]
        actions[e["action"]] += 1
        if e["action"] == "add":
            assert e["order_id"] not in book
            book[e["order_id"]] = [e["side"], e["price"], int(e["size"])]
            continue
        side, price, size = book[e["order_id"]]                  # only orders that were added
        assert (e["side"], e["price"]) == (side, price)
        if e["action"] == "modify":
            book[e["order_id"]][2] = int(e["size"])
        elif e["action"] == "cancel" or int(e["size"]) == size:
            assert int(e["size"]) == size
            del book[e["order_id"]]
        else:
            book[e["order_id"]][2] -= int(e["size"])
    assert set(actions) == {"add", "modify", "cancel", "fill"}
    # a bar comes in the stream right after its interval ends
    for i, e in enumerate(events):
        if e["type"] == "HistoricalBar" and i + 1 < len(events) and events[i + 1]["type"] != "HistoricalBar":
            before = next(x for x in reversed(events[:i]) if x["type"] != "HistoricalBar")
            assert before["ts"] < e["ts"] + 10**9 <= events[i + 1]["ts"]
    # every bar is the OHLCV of the view's trades in its interval
    trades = defaultdict(list)
    for t in (e for e in events if e["type"] == "Trade"):
        trades[(t["symbol"], t["ts"] // 10**9)].append(t)
    for bar in (e for e in events if e["type"] == "HistoricalBar"):
        ts = trades[(bar["symbol"], bar["ts"] // 10**9)]
        prices = [Decimal(t["price"]) for t in ts]
        assert (Decimal(bar["open"]), Decimal(bar["close"])) == (prices[0], prices[-1])
        assert (Decimal(bar["high"]), Decimal(bar["low"])) == (max(prices), min(prices))
        assert int(bar["volume"]) == sum(int(t["size"]) for t in ts) and bar["interval"] == "1s"


# ---- imperfections -------------------------------------------------------------------------------------

NOISY = SimView("noisy", latency_ns=1_000_000, jitter_ns=500_000, gap_rate=0.02, duplicate_rate=0.01,
                out_of_order_rate=0.01, price_error_rate=0.05, price_error_ticks=2, seq_offset=500)


def test_each_imperfection_appears_at_its_configured_rate(tmp_path):
    n = 60_000
    clean, noisy = sim_sources(SYMBOLS, seed=9, start_ns=START, views=["sim", NOISY], limit=n)
    report = _collect(tmp_path / "a", [clean, noisy])
    inj = noisy.injected
    assert _near(inj["dropped"], 0.02 * n) and _near(inj["duplicated"], 0.01 * 0.98 * n)
    assert _near(inj["reordered"], 0.01 * 0.98 * n, 0.3) and _near(inj["price_errors"], 0.05 * 0.98 * n)
    # duplicates: every copy is dropped by the writer, and counted
    assert report["duplicates_dropped"] == inj["duplicated"]
    assert report["sources"]["noisy"]["events_appended"] == n - inj["dropped"] + inj["duplicated"]
    streams = _by_stream(stored_events(tmp_path / "a"))
    missing = inversions = 0
    latencies = []
    for (source, _symbol, etype), evs in streams.items():
        if source != "noisy":
            continue
        seqs = [e["seq"] for e in evs]
        assert len(seqs) == len(set(seqs)) and min(seqs) > 500   # no duplicate stored; offset numbering
        missing += max(seqs) - min(seqs) + 1 - len(seqs)          # gaps in seq
        inversions += sum(1 for a, b in zip(seqs, seqs[1:]) if b < a)
        if etype != "HistoricalBar":
            latencies += [e["recv_ts"] - e["ts"] for e in evs]
    assert _near(missing, inj["dropped"], 0.1)
    assert _near(inversions, inj["reordered"], 0.15)
    lat = np.array(latencies)
    assert lat.min() >= 1_000_000 and _near(lat.mean(), 1_500_000, 0.05)
    assert _near(float(np.median(lat)), 1_000_000 + 500_000 * np.log(2), 0.05)    # exponential jitter


def test_the_second_view_differs_from_the_first_only_as_configured(tmp_path):
    n = 60_000
    a, b = sim_sources(SYMBOLS, seed=21, start_ns=START, views=["sim", NOISY], limit=n)
    _collect(tmp_path / "a", [a, b])
    events = stored_events(tmp_path / "a")
    trades = {src: {e["trade_id"]: e for e in events if e["type"] == "Trade" and e["source"] == src}
              for src in ("sim", "noisy")}
    first, second = trades["sim"], trades["noisy"]
    assert set(second) <= set(first)                              # the same underlying trades, some missing
    assert _near(len(first) - len(second), 0.02 * len(first), 0.25)
    tick = Decimal("0.01")
    differ = 0
    for tid, t in second.items():
        u = first[tid]
        assert (t["ts"], t["symbol"], t["size"], t["side"], t["seq"]) == (u["ts"], u["symbol"], u["size"], u["side"],
                                                                         u["seq"] + 500)
        diff = abs(Decimal(t["price"]) - Decimal(u["price"]))
        assert diff <= 2 * tick                                   # within the configured bound
        differ += diff > 0
        assert t["recv_ts"] - t["ts"] >= 1_000_000 > u["recv_ts"] - u["ts"]
    assert _near(differ, 0.05 * len(second), 0.25)


def test_the_third_view_renumbers_and_carries_fewer_types(tmp_path):
    sources = sim_sources(SYMBOLS, seed=8, start_ns=START, limit=40_000)
    _collect(tmp_path / "a", sources)
    streams = _by_stream(stored_events(tmp_path / "a"))
    c_types = {etype for (src, _s, etype) in streams if src == "sim-c"}
    assert c_types <= {"Trade", "BboQuote", "HistoricalBar"} and {"Trade", "BboQuote"} <= c_types
    for (src, _s, _t), evs in streams.items():
        if src == "sim-c":                                       # dense: its drops leave no gap
            assert sorted(e["seq"] for e in evs) == list(range(1, len(evs) + 1))
    assert sources[2].injected["dropped"] > 0 and sources[1].injected["dropped"] > 0


def test_bad_configuration_is_a_config_error():
    with pytest.raises(ConfigError, match="gap_rate"):
        SimView("x", gap_rate=1.5)
    with pytest.raises(ConfigError, match="tick size of AAPL"):
        SimulatedMarket(["AAPL"], config=SimConfig(tick_sizes={"AAPL": "-1"}))
    with pytest.raises(ConfigError, match="bar_interval"):
        SimConfig(bar_interval="daily")
    with pytest.raises(ConfigError, match="time zone"):
        SimConfig(exchange_tz="Mars/Olympus")
    with pytest.raises(ConfigError, match="09:30"):
        SimConfig(session=("9h30", "16:00"))
    with pytest.raises(ConfigError, match="at least one symbol"):
        SimulatedMarket([])
    with pytest.raises(ConfigError, match="two simulator views"):
        sim_sources(["AAPL"], views=["sim", "sim"])
