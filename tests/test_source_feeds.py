"""Replay readers for the Tardis, Binance, Bybit and Databento samples, and the shared order book.

Every expectation is computed here from the raw sample (csv / json / databento_dbn), not taken
from the readers, so a reader bug cannot confirm itself.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import zipfile
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mdcsql import events as ev
from mdcsql.errors import InputError
from mdcsql.sources import binance, bybit, dbn, tardis
from mdcsql.sources.book import OrderBook, ReplayStats, is_zero, price_key

NT = "nautilus_trader"
DB = "databento"
READERS = {"tardis": tardis, "binance": binance, "bybit": bybit, "dbn": dbn}


# ---- helpers ------------------------------------------------------------------------------------
def events_of(module, path, **kw) -> tuple[list[str], list[dict]]:
    """(asset classes, canonical events) of one replay, checking the batch contract on the way."""
    classes, out = [], []
    for asset_class, batch in module.read(Path(path), **kw):
        assert isinstance(batch, pa.Table) and batch.num_rows > 0
        etype = batch.schema.metadata[b"mdcsql.event_type"].decode()
        assert batch.schema == ev.arrow_schema(etype)                    # canonical (normalize_table's output)
        assert set(batch.column("type").to_pylist()) == {etype}          # one event type per batch
        classes.append(asset_class)
        out.extend(batch.to_pylist())
    for e in out:
        assert ev.normalize(e) == e                                      # the per-event path agrees
    return classes, out


def csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def utc(ns: int) -> str:
    dt = datetime.fromtimestamp(ns // 10**9, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 10**9:09d}Z"


def day_base(us: int) -> int:
    return us // 86_400_000_000 * 10**12


def dbn_records(path: Path) -> tuple[object, list]:
    import databento_dbn
    import zstandard
    raw = path.read_bytes()
    if raw[:4] == b"\x28\xb5\x2f\xfd":
        raw = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    dec = databento_dbn.DBNDecoder()
    dec.write(raw)
    recs = dec.decode()
    return recs[0], recs[1:]


def dec9(value: int) -> str:
    """Independent fixed-point → text: Decimal arithmetic, trailing zeros dropped."""
    return format(Decimal(value).scaleb(-9).normalize(), "f")


# ---- Tardis -------------------------------------------------------------------------------------
def test_tardis_trades(shared_data):
    path = shared_data / NT / "tardis" / "bitmex_trades_XBTUSD.csv"
    rows = csv_rows(path)
    stats = ReplayStats()
    classes, events = events_of(tardis, path, stats=stats)
    assert len(events) == len(rows) == 10 and set(classes) == {"crypto"}
    assert (stats.messages, stats.events) == (10, 10)
    for e, r in zip(events, rows):
        assert e["type"] == "Trade" and e["source"] == "tardis" and e["symbol"] == r["symbol"] == "XBTUSD"
        assert e["ts"] == int(r["timestamp"]) * 1000 and e["recv_ts"] == int(r["local_timestamp"]) * 1000
        assert (e["price"], e["size"], e["side"], e["trade_id"], e["venue"]) == \
            (r["price"], r["amount"], r["side"], r["id"], r["exchange"])
    assert utc(events[0]["ts"]) == "2020-03-01T00:00:03.145000000Z"
    assert utc(events[-1]["recv_ts"]) == "2020-03-01T00:00:03.336743000Z"
    assert events[0]["price"] == "8531.5" and events[0]["size"] == "2152" and events[-1]["size"] == "1"
    assert events[-1]["trade_id"] == "7cae8d7b-b69d-025b-cc3c-84b911f37a8a"
    # seq: day number of the first row × 10^12 + ordinal; rows 2..10 share one µs and stay distinct
    assert [e["seq"] for e in events] == [day_base(1583020803145000) + i for i in range(1, 11)]
    assert events[0]["seq"] == 18322 * 10**12 + 1


def test_tardis_quotes(shared_data):
    path = shared_data / NT / "tardis" / "huobi-dm-swap_quotes_BTC-USD.csv"
    rows = csv_rows(path)
    _, events = events_of(tardis, path)
    assert len(events) == len(rows) == 10
    for e, r in zip(events, rows):
        assert e["type"] == "BboQuote" and e["ts"] == int(r["timestamp"]) * 1000
        assert (e["bid_price"], e["bid_size"], e["ask_price"], e["ask_size"]) == \
            (r["bid_price"], r["bid_amount"], r["ask_price"], r["ask_amount"])
    assert events[0] == {"type": "BboQuote", "symbol": "BTC-USD", "source": "tardis", "ts": 1588291201099000000,
                         "recv_ts": 1588291201234268000, "seq": 18383 * 10**12 + 1, "bid_price": "8629.2",
                         "bid_size": "806", "ask_price": "8629.3", "ask_size": "5494", "venue": "huobi-dm-swap"}
    assert utc(events[-1]["ts"]) == "2020-05-01T00:00:01.814000000Z" and events[-1]["bid_size"] == "847"


@pytest.mark.parametrize("n", [5, 25])
def test_tardis_book_snapshots_keep_every_level(shared_data, n):
    path = shared_data / NT / "tardis" / f"binance-futures_book_snapshot_{n}_BTCUSDT.csv"
    rows = csv_rows(path)
    _, events = events_of(tardis, path, depth=3)        # depth does not cut snapshot files
    assert len(events) == len(rows) == 10
    for e, r in zip(events, rows):
        assert e["type"] == "L2Snapshot" and e["ts"] == int(r["timestamp"]) * 1000
        assert e["bids"] == [[r[f"bids[{i}].price"], r[f"bids[{i}].amount"]] for i in range(n)]
        assert e["asks"] == [[r[f"asks[{i}].price"], r[f"asks[{i}].amount"]] for i in range(n)]
    assert events[0]["asks"][0] == ["11657.08", "1.714"] and events[0]["bids"][0] == ["11657.07", "10.896"]
    # seq: day × 10^12 + N × 10^9 + ordinal, so the _5 and _25 files of one symbol and day never collide
    assert [e["seq"] for e in events] == [day_base(1598918403696000) + n * 10**9 + i for i in range(1, 11)]
    assert utc(events[0]["ts"]) == "2020-09-01T00:00:03.696000000Z"


def test_tardis_incremental_book_emits_one_snapshot_per_timestamp(shared_data):
    path = shared_data / NT / "tardis" / "deribit_incremental_book_L2_BTC-PERPETUAL.csv"
    rows = csv_rows(path)
    groups = []
    for r in rows:
        if not groups or groups[-1] != (r["symbol"], r["timestamp"]):
            groups.append((r["symbol"], r["timestamp"]))
    stats = ReplayStats()
    _, events = events_of(tardis, path, depth=10, stats=stats)
    assert len(events) == len(groups) == 1 and stats.messages == 15
    asks = sorted(((Decimal(r["price"]), r["price"], r["amount"]) for r in rows if r["side"] == "ask"))
    (e,) = events
    assert e["bids"] == [] and e["asks"] == [[p, a] for _, p, a in asks[:10]]
    assert e["ts"] == 1585699200245000000 and e["recv_ts"] == 1585699200355684000
    assert e["venue"] == "deribit" and e["seq"] == day_base(1585699200245000) + 1
    _, deep = events_of(tardis, path, depth=50)
    assert len(deep[0]["asks"]) == 15


def test_tardis_incremental_updates_and_a_new_snapshot(tmp_path):
    """Amount 0 removes a level; snapshot rows after updates start a fresh book; one event per timestamp."""
    head = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
    body = ["deribit,X,1585699200000000,1585699200000001,true,bid,100,1",
            "deribit,X,1585699200000000,1585699200000001,true,bid,99.5,2",
            "deribit,X,1585699200000000,1585699200000001,true,ask,101,3",
            "deribit,X,1585699200000100,1585699200000101,false,bid,100,0",       # delete the best bid
            "deribit,X,1585699200000100,1585699200000101,false,ask,100.50,4",    # new best ask
            "deribit,X,1585699200000200,1585699200000201,true,ask,105,1",        # a new snapshot: fresh book
            ]
    path = tmp_path / "inc.csv"
    path.write_text(head + "\n".join(body) + "\n")
    _, events = events_of(tardis, path)
    assert [(e["bids"], e["asks"]) for e in events] == [
        ([["100", "1"], ["99.5", "2"]], [["101", "3"]]),
        ([["99.5", "2"]], [["100.50", "4"], ["101", "3"]]),
        ([], [["105", "1"]])]
    assert [e["recv_ts"] for e in events] == [1585699200000001000, 1585699200000101000, 1585699200000201000]
    assert [e["seq"] % 10**12 for e in events] == [1, 2, 3]


@pytest.mark.parametrize("module, sample", [
    (tardis, "tardis/bitmex_trades_XBTUSD.csv"), (tardis, "tardis/deribit_incremental_book_L2_BTC-PERPETUAL.csv"),
    (tardis, "tardis/binance-futures_book_snapshot_5_BTCUSDT.csv"), (binance, "binance/btcusdt-depth-snap.csv"),
    (binance, "ADABTC-1m-2021-11-27.csv"), (bybit, "bybit/xrpusdt-ob500.data.zip")])
def test_compressed_files_give_the_same_events(shared_data, tmp_path, module, sample):
    import zstandard
    src = shared_data / NT / sample
    raw = src.read_bytes()
    if raw[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(src) as zf:
            raw = zf.read(zf.namelist()[0])
    _, expected = events_of(module, src)
    stem = src.name.removesuffix(".zip")
    for name, data in ((stem + ".gz", gzip.compress(raw)), (stem + ".zst", zstandard.ZstdCompressor().compress(raw))):
        path = tmp_path / name
        path.write_bytes(data)
        assert module.detect(path), name
        assert events_of(module, path)[1] == expected, name


def test_tardis_symbol_override(shared_data):
    src = shared_data / NT / "tardis" / "bitmex_trades_XBTUSD.csv"
    _, renamed = events_of(tardis, src, symbol="XBT-PERP", source="tardis-bitmex")
    assert {e["symbol"] for e in renamed} == {"XBT-PERP"} and {e["source"] for e in renamed} == {"tardis-bitmex"}


def test_tardis_identical_rows_are_distinct_events(tmp_path):
    row = "bitmex,XBTUSD,1583020803276000,1583020803336743,,sell,8531.5,1\n"
    path = tmp_path / "dups.csv"
    path.write_text(",".join(tardis.TRADES) + "\n" + row * 3)
    _, events = events_of(tardis, path)
    assert len(events) == 3 and len({e["seq"] for e in events}) == 3
    assert {e["trade_id"] for e in events} == {None}           # an empty id is null


def test_tardis_grouped_files_and_empty_quotes(tmp_path):
    """A file with several symbols numbers each symbol's events; symbol= makes one stream of them;
    a quote row with neither side is skipped and counted."""
    rows = ["huobi,A,1588291201099000,1588291201234268,1,2,1,3",
            "huobi,B,1588291201100000,1588291201234269,5,6,4,7",
            "huobi,A,1588291201101000,1588291201234270,,,,",
            "huobi,A,1588291201102000,1588291201234271,1,2.5,,"]
    path = tmp_path / "quotes.csv"
    path.write_text(",".join(tardis.QUOTES) + "\n" + "\n".join(rows) + "\n")
    stats = ReplayStats()
    _, events = events_of(tardis, path, stats=stats)
    base = day_base(1588291201099000)
    assert [(e["symbol"], e["seq"] - base) for e in events] == [("A", 1), ("B", 1), ("A", 2)]
    assert events[-1]["bid_price"] is None and events[-1]["ask_price"] == "2.5"
    assert stats.skipped == {"quote row with neither bid nor ask": 1} and stats.messages == 4
    _, merged = events_of(tardis, path, symbol="X")
    assert [e["seq"] - base for e in merged] == [1, 2, 3]


# ---- Binance ------------------------------------------------------------------------------------
def _recompute_book(files: list[Path]) -> tuple[dict, dict]:
    bids, asks = {}, {}
    for f in files:
        for r in csv_rows(f):
            side = bids if r["side"] == "b" else asks
            if Decimal(r["qty"]) == 0:
                side.pop(Decimal(r["price"]), None)
            else:
                side[Decimal(r["price"])] = [r["price"], r["qty"]]
    return bids, asks


def test_binance_depth_snapshot_then_updates(shared_data):
    snap = shared_data / NT / "binance" / "btcusdt-depth-snap.csv"
    upd = shared_data / NT / "binance" / "btcusdt-depth-update.csv"
    snap_rows, upd_rows = csv_rows(snap), csv_rows(upd)
    messages = {(r["update_type"], r["last_update_id"]) for r in snap_rows + upd_rows}
    stats = ReplayStats()
    classes, events = [], []
    for asset_class, table in binance.read_many([snap, upd], depth=10, stats=stats):
        classes.append(asset_class)
        events.extend(table.to_pylist())
    assert len(events) == len(messages) == 2 and set(classes) == {"crypto"}
    assert stats.messages == 200 and stats.events == 2
    first, last = events
    assert first["seq"] == int(snap_rows[0]["last_update_id"]) == 2098021528332
    assert last["seq"] == int(upd_rows[0]["last_update_id"]) == 2098041696700
    assert first["ts"] == int(snap_rows[0]["timestamp"]) * 10**6
    assert utc(last["ts"]) == "2022-11-01T23:59:59.939000000Z"
    # the snapshot alone: its 10 best bids, no asks
    snap_bids = sorted(((Decimal(r["price"]), [r["price"], r["qty"]]) for r in snap_rows), reverse=True)
    assert first["bids"] == [lvl for _, lvl in snap_bids[:10]] and first["asks"] == []
    assert first["bids"][0] == ["20377.00", "1.770"]
    # snapshot + updates, recomputed independently
    bids, asks = _recompute_book([snap, upd])
    assert last["bids"] == [bids[k] for k in sorted(bids, reverse=True)[:10]]
    assert last["asks"] == [asks[k] for k in sorted(asks)[:10]]
    final = {}
    for r in upd_rows:                                   # a price may appear twice in the message: last wins
        final[(r["side"], Decimal(r["price"]))] = Decimal(r["qty"])
    deleted = {k for k, q in final.items() if q == 0}
    assert len(deleted) == 13 and sum(Decimal(r["qty"]) == 0 for r in upd_rows) == 21
    shown = {("b", Decimal(p)) for p, _ in last["bids"]} | {("a", Decimal(p)) for p, _ in last["asks"]}
    assert not shown & deleted
    # the update does not follow the snapshot (pu ≠ the snapshot's last_update_id): one gap, reported
    assert [(g["expected"], g["got"]) for g in stats.gaps] == [(2098021528332, int(upd_rows[0]["pu"]))]


def test_binance_depth_delete_removes_a_level_of_the_replayed_book(shared_data, tmp_path):
    snap = shared_data / NT / "binance" / "btcusdt-depth-snap.csv"
    upd = shared_data / NT / "binance" / "btcusdt-depth-update.csv"
    extra = tmp_path / "btcusdt-depth-more.csv"
    extra.write_text(",".join(binance.DEPTH_HEADER) + "\n"
                     "BTCUSDT,1667347200100,2098041696701,2098041696800,b,set,20472.10,0.000,2098041696700\n"
                     "BTCUSDT,1667347200100,2098041696701,2098041696800,a,set,20472.20,0,2098041696700\n")
    stats = ReplayStats()
    events = [e for _, t in binance.read_many([snap, upd, extra], stats=stats) for e in t.to_pylist()]
    before, after = events[-2], events[-1]
    assert before["bids"][0] == ["20472.10", "22.276"] and before["asks"][0] == ["20472.20", "4.211"]
    assert after["bids"] == before["bids"][1:] + [after["bids"][-1]] and after["bids"][0] == ["20469.20", "2.864"]
    assert after["asks"][:9] == before["asks"][1:] and after["seq"] == 2098041696800
    assert len(stats.gaps) == 1                           # the extra message follows the chain: no new gap


def test_binance_depth_files_alone(shared_data):
    upd = shared_data / NT / "binance" / "btcusdt-depth-update.csv"
    stats = ReplayStats()
    _, events = events_of(binance, upd, stats=stats)
    assert len(events) == 1
    assert [(g["expected"], g["reason"]) for g in stats.gaps] == [(None, "diff before any snapshot")]
    _, snap = events_of(binance, shared_data / NT / "binance" / "btcusdt-depth-snap.csv", depth=100)
    assert len(snap) == 1 and len(snap[0]["bids"]) == 100


def test_binance_depth_deletes_chain_and_stale_updates(tmp_path):
    head = ",".join(binance.DEPTH_HEADER) + "\n"
    rows = ["BTCUSDT,1667346579146,10,10,b,snap,100.0,1,-1",
            "BTCUSDT,1667346579146,10,10,b,snap,99.9,2,-1",
            "BTCUSDT,1667346579146,10,10,a,snap,100.1,3,-1",
            "BTCUSDT,1667346579200,5,8,b,set,100.0,0,4",        # older than the snapshot: skipped
            "BTCUSDT,1667346579300,9,12,b,set,100.0,0.000,8",    # first after the snapshot: 9 <= 10 <= 12
            "BTCUSDT,1667346579300,9,12,a,set,100.2,5,8",
            "BTCUSDT,1667346579400,13,15,a,set,100.1,0,12",      # pu = 12: in order
            "BTCUSDT,1667346579500,20,22,b,set,99.8,7,16",       # pu 16 ≠ 15: a gap
            ]
    path = tmp_path / "depth.csv"
    path.write_text(head + "\n".join(rows) + "\n")
    stats = ReplayStats()
    _, events = events_of(binance, path, stats=stats)
    assert [e["seq"] for e in events] == [10, 12, 15, 22]
    assert [(e["bids"], e["asks"]) for e in events] == [
        ([["100.0", "1"], ["99.9", "2"]], [["100.1", "3"]]),
        ([["99.9", "2"]], [["100.1", "3"], ["100.2", "5"]]),
        ([["99.9", "2"]], [["100.2", "5"]]),
        ([["99.9", "2"], ["99.8", "7"]], [["100.2", "5"]])]
    assert stats.skipped == {"depth row older than the snapshot": 1}
    assert [(g["expected"], g["got"], g["line"]) for g in stats.gaps] == [(15, 16, 9)]
    assert stats.warnings == {}
    # an older snapshot after newer diffs: seq (= last_update_id) goes back, which the archive would dedupe
    path.write_text(head + "\n".join(rows + ["BTCUSDT,1667346579600,12,12,b,snap,99.0,1,-1"]) + "\n")
    stats = ReplayStats()
    assert events_of(binance, path, stats=stats)[1][-1]["seq"] == 12
    assert stats.warnings == {binance.SEQ_BACK: 1}


def test_binance_klines(shared_data, tmp_path):
    path = shared_data / NT / "ADABTC-1m-2021-11-27.csv"
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    classes, events = events_of(binance, path)
    assert len(events) == len(rows) == 10 and set(classes) == {"crypto"}
    for e, r in zip(events, rows):
        assert e["type"] == "HistoricalBar" and e["symbol"] == "ADABTC" and e["interval"] == "1m"
        assert e["ts"] == int(r[0]) * 10**6 and e["seq"] is None
        assert [e["open"], e["high"], e["low"], e["close"], e["volume"]] == r[1:6]
    assert utc(events[0]["ts"]) == "2021-11-27T00:00:00.000000000Z"
    assert events[0]["open"] == "0.00002853" and events[-1]["close"] == "0.00002865"
    assert events[-1]["volume"] == "8160.50000000"
    # the zip Binance ships, and µs timestamps (spot files from 2025 on) with the header line
    z = tmp_path / "ADABTC-1m-2021-11-27.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(path, "ADABTC-1m-2021-11-27.csv")
    assert events_of(binance, z)[1] == events
    us = tmp_path / "BTCUSDT-1h-2025-01-01.csv"
    us.write_text(",".join(binance.KLINE_COLUMNS) + "\n"
                  "1735689600000000,93576.00,94509.42,93489.03,94401.14,1,1735693199999999,1,1,1,1,0\n")
    (bar,) = events_of(binance, us)[1]
    assert bar["ts"] == 1735689600 * 10**9 and bar["interval"] == "1h" and bar["high"] == "94509.42"
    assert binance.interval_of(0, 59_999 * 10**6) == "1m" and binance.interval_of(0, (86_400_000 - 1) * 10**6) == "1d"


# ---- Bybit --------------------------------------------------------------------------------------
def _bybit_lines(shared_data) -> list[dict]:
    with zipfile.ZipFile(shared_data / NT / "bybit" / "xrpusdt-ob500.data.zip") as zf:
        (name,) = zf.namelist()
        assert name == "2024-12-01_XRPUSDT_ob500.data"
        return [json.loads(l) for l in zf.read(name).decode().splitlines() if l.strip()]


def test_bybit_book(shared_data):
    lines = _bybit_lines(shared_data)
    stats = ReplayStats()
    classes, events = events_of(bybit, shared_data / NT / "bybit" / "xrpusdt-ob500.data.zip", depth=10, stats=stats)
    assert len(events) == len(lines) == 50 and set(classes) == {"crypto"}
    assert stats.gaps == [] and stats.messages == 50
    assert [e["seq"] for e in events] == [m["data"]["u"] for m in lines]
    assert [e["ts"] for e in events] == [m["cts"] * 10**6 for m in lines]
    assert [e["recv_ts"] for e in events] == [m["ts"] * 10**6 for m in lines]
    assert utc(events[0]["ts"]) == "2024-12-01T00:00:00.589000000Z"
    # an independent book: Decimal keys, qty "0" deletes
    bids, asks = {}, {}
    for m, e in zip(lines, events):
        if m["type"] == "snapshot":
            bids, asks = {}, {}
        for side, levels in ((bids, m["data"]["b"]), (asks, m["data"]["a"])):
            for p, q in levels:
                if Decimal(q) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = [p, q]
        assert e["bids"] == [bids[k] for k in sorted(bids, reverse=True)[:10]]
        assert e["asks"] == [asks[k] for k in sorted(asks)[:10]]
    assert events[0]["bids"][0] == ["1.9531", "6203"] and events[0]["asks"][0] == ["1.9532", "10480"]
    assert events[-1]["bids"][0] == ["1.9537", "10605"] and events[-1]["asks"][0] == ["1.9538", "6702"]
    _, deep = events_of(bybit, shared_data / NT / "bybit" / "xrpusdt-ob500.data.zip", depth=500)
    assert len(deep[0]["bids"]) == len(lines[0]["data"]["b"]) == 500


def test_bybit_gap_is_reported(shared_data, tmp_path):
    with zipfile.ZipFile(shared_data / NT / "bybit" / "xrpusdt-ob500.data.zip") as zf:
        lines = zf.read(zf.namelist()[0]).splitlines(keepends=True)
    path = tmp_path / "gap.data"
    path.write_bytes(b"".join(lines[:5] + lines[6:]))          # drop one delta
    stats = ReplayStats()
    _, events = events_of(bybit, path, stats=stats)
    assert len(events) == 49
    u5 = json.loads(lines[5])["data"]["u"]
    assert [(g["expected"], g["got"], g["line"]) for g in stats.gaps] == [(u5, u5 + 1, 6)]
    assert stats.warnings == {}
    # a service restart: a snapshot with u = 1
    restart = json.loads(lines[0])
    restart["data"]["u"] = 1
    path.write_bytes(b"".join(lines[:3]) + json.dumps(restart).encode() + b"\n")
    stats = ReplayStats()
    assert [e["seq"] for e in events_of(bybit, path, stats=stats)[1]][-1] == 1
    assert stats.warnings == {bybit.SEQ_BACK: 1} and stats.gaps == []


# ---- Databento DBN ------------------------------------------------------------------------------
def test_dbn_trades_v2_and_v3_give_the_same_events(shared_data):
    v2, v3 = shared_data / DB / "test_data.trades.dbn", shared_data / DB / "test_data.trades.v3.dbn.zst"
    assert v2.read_bytes()[:4] == b"DBN\x02"
    _, recs = dbn_records(v2)
    classes, events = events_of(dbn, v2)
    assert events_of(dbn, v3)[1] == events
    assert len(events) == len(recs) == 2 and set(classes) == {"futures"}
    for e, r in zip(events, recs):
        assert e["type"] == "Trade" and e["symbol"] == "ESH1" and e["source"] == "databento"
        assert (e["ts"], e["recv_ts"], e["seq"]) == (r.ts_event, r.ts_recv, r.sequence)
        assert e["price"] == dec9(r.price) and e["size"] == str(r.size)
        assert e["side"] == {"A": "sell", "B": "buy", "N": "unknown"}[r.side.value]
    assert events[0]["price"] == "3720.25" and events[0]["size"] == "5" and events[-1]["size"] == "21"
    assert events[0]["venue"] == "GLBX"
    assert utc(events[0]["ts"]) == "2020-12-28T13:00:00.098821953Z"
    assert utc(events[-1]["recv_ts"]) == "2020-12-28T13:00:00.108142648Z"


def test_dbn_mbp1_v2_and_v3(shared_data):
    v2, v3 = shared_data / DB / "test_data.mbp-1.dbn", shared_data / DB / "test_data.mbp-1.v3.dbn.zst"
    _, recs = dbn_records(v2)
    _, events = events_of(dbn, v2)
    assert events_of(dbn, v3)[1] == events
    trades = [r for r in recs if r.action.value == "T"]
    assert len(events) == len(recs) + len(trades) == 2
    for e, r in zip(events, recs):
        assert e["type"] == "BboQuote" and e["seq"] == r.sequence and e["ts"] == r.ts_event
        assert (e["bid_price"], e["bid_size"], e["ask_price"], e["ask_size"]) == \
            (dec9(r.bid_px_00), str(r.bid_sz_00), dec9(r.ask_px_00), str(r.ask_sz_00))
    assert (events[0]["bid_price"], events[0]["ask_price"], events[-1]["ask_size"]) == ("3720.25", "3720.5", "12")


def test_dbn_mbp10(shared_data):
    path = shared_data / DB / "test_data.mbp-10.dbn"
    _, recs = dbn_records(path)
    _, events = events_of(dbn, path)
    assert len(events) == len(recs) == 2
    for e, r in zip(events, recs):
        assert e["type"] == "L2Snapshot" and len(e["bids"]) == len(e["asks"]) == 10
        assert e["bids"] == [[dec9(getattr(r, f"bid_px_{i:02d}")), str(getattr(r, f"bid_sz_{i:02d}"))]
                             for i in range(10)]
        assert e["asks"] == [[dec9(getattr(r, f"ask_px_{i:02d}")), str(getattr(r, f"ask_sz_{i:02d}"))]
                             for i in range(10)]
    assert events[0]["bids"][1] == ["3720", "31"] and events[1]["bids"][1] == ["3720", "30"]
    _, top3 = events_of(dbn, path, depth=3)
    assert [len(e["bids"]) for e in top3] == [3, 3]


def test_dbn_mbo(shared_data):
    path = shared_data / DB / "test_data.mbo.dbn"
    _, recs = dbn_records(path)
    _, events = events_of(dbn, path, symbol="ES")
    assert len(events) == len(recs) == 2
    assert events[0] == {"type": "OrderFlow", "symbol": "ES", "source": "databento", "ts": 1609160400000429831,
                         "recv_ts": 1609160400000704060, "seq": 1170352, "order_id": "647784973705",
                         "action": "cancel", "side": "sell", "price": "3722.75", "size": "1", "venue": "GLBX"}
    assert events[1]["price"] == dec9(recs[1].price) == "3723" and events[1]["order_id"] == str(recs[1].order_id)


def test_dbn_ohlcv_and_empty_and_definitions(shared_data):
    path = shared_data / DB / "test_data.ohlcv-1m.dbn"
    _, recs = dbn_records(path)
    _, bars = events_of(dbn, path)
    assert len(bars) == len(recs) == 2
    assert [(b["ts"], b["open"], b["high"], b["low"], b["close"], b["volume"], b["interval"]) for b in bars] == \
        [(r.ts_event, dec9(r.open), dec9(r.high), dec9(r.low), dec9(r.close), str(r.volume), "1m") for r in recs]
    assert bars[0]["open"] == "372025" and utc(bars[1]["ts"]) == "2020-12-28T13:01:00.000000000Z"
    # 0 records: nothing, no error
    stats = ReplayStats()
    assert list(dbn.read(shared_data / DB / "test_data.ohlcv-1d.dbn", stats=stats)) == []
    assert stats.messages == 0
    # definitions are not events (counted skip) but are exposed for the symbol registry
    stats = ReplayStats()
    assert list(dbn.read(shared_data / DB / "test_data.definition.dbn", stats=stats)) == []
    assert sum(stats.skipped.values()) == 2
    defs = dbn.definitions(shared_data / DB / "test_data.definition.dbn")
    assert [(d["raw_symbol"], d["instrument_id"], d["asset_class"]) for d in defs] == \
        [("MSFT", 6819, "equity"), ("MSFT", 6830, "equity")]
    assert defs[0]["display_factor"] == "100000" and defs[0]["min_price_increment"] is None
    assert defs[0]["expiration"] is None and defs[0]["min_lot_size_round_lot"] == 100


def test_dbn_price_text_is_exact():
    assert dbn.price_text(3720250000000) == "3720.25"
    assert dbn.price_text(1) == "0.000000001" and dbn.price_text(-1) == "-0.000000001"
    assert dbn.price_text(-12_750_000_000) == "-12.75" and dbn.price_text(0) == "0"
    assert dbn.price_text(2**63 - 2) == "9223372036.854775806"
    assert dbn.price_text(2**63 - 1) is None
    assert dbn.asset_class_of("GLBX.MDP3") == "futures" and dbn.asset_class_of("XNAS.ITCH") == "equity"


# ---- detection ----------------------------------------------------------------------------------
def test_each_reader_detects_only_its_own_samples(shared_data):
    expected = {}
    for p in (shared_data / NT / "tardis").glob("*.csv"):
        expected[p] = "tardis"
    for p in (shared_data / NT / "binance").glob("*.csv"):
        expected[p] = "binance"
    expected[shared_data / NT / "ADABTC-1m-2021-11-27.csv"] = "binance"
    expected[shared_data / NT / "bybit" / "xrpusdt-ob500.data.zip"] = "bybit"
    for p in (shared_data / DB).iterdir():
        expected[p] = "dbn"
    for path in sorted(p for p in shared_data.rglob("*") if p.is_file()):
        hits = [name for name, m in READERS.items() if m.detect(path)]
        assert hits == ([expected[path]] if path in expected else []), path
    for name, m in READERS.items():
        assert m.FORMAT == name and m.DEFAULT_SOURCE == {"dbn": "databento"}.get(name, name)


# ---- end to end into an archive -----------------------------------------------------------------
def test_replay_into_an_archive_and_query_the_views(shared_data, tmp_path):
    from mdcsql.archive import Archive
    from mdcsql.catalog import Catalog
    root = tmp_path / "archive"
    archive = Archive.init(root)
    jobs = [(tardis, [shared_data / NT / "tardis" / f.name for f in (shared_data / NT / "tardis").glob("*.csv")]),
            (bybit, [shared_data / NT / "bybit" / "xrpusdt-ob500.data.zip"]),
            (binance, [shared_data / NT / "ADABTC-1m-2021-11-27.csv"]),
            (dbn, [p for p in (shared_data / DB).iterdir() if ".v3." not in p.name])]
    counts = {}
    for module, paths in jobs:
        for path in paths:
            for asset_class, batch in module.read(path):
                w = archive.writer(module.DEFAULT_SOURCE, root="historical", asset_class=asset_class)
                n = w.append_table(batch) if isinstance(batch, pa.Table) else w.append_many(batch)
                counts[module.DEFAULT_SOURCE] = counts.get(module.DEFAULT_SOURCE, 0) + n
    w = archive.writer("binance", root="historical", asset_class="crypto")
    for _, batch in binance.read_many([shared_data / NT / "binance" / "btcusdt-depth-snap.csv",
                                       shared_data / NT / "binance" / "btcusdt-depth-update.csv"]):
        counts["binance"] += w.append_table(batch)
    archive.close()
    assert counts == {"tardis": 41, "bybit": 50, "binance": 12, "databento": 10}
    with Catalog.open(root, read_only=True) as cat:
        q = lambda sql: cat.query(sql).rows
        assert q("SELECT count(*), min(price), max(price), sum(size) FROM trades WHERE source = 'tardis'") == \
            [(10, Decimal("8531.5"), Decimal("8531.5"), Decimal("2161"))]
        assert q("SELECT count(DISTINCT seq) FROM trades WHERE source = 'tardis'") == [(10,)]
        assert q("SELECT price, size, side, symbol, venue, epoch_ns(ts), CAST(ts AS VARCHAR) FROM trades "
                 "WHERE source = 'databento' ORDER BY ts") == \
            [(Decimal("3720.25"), Decimal("5"), "sell", "ESH1", "GLBX", 1609160400098821953,
              "2020-12-28 13:00:00.098821953"),
             (Decimal("3720.25"), Decimal("21"), "sell", "ESH1", "GLBX", 1609160400107665963,
              "2020-12-28 13:00:00.107665963")]
        assert q("SELECT source, count(*) FROM l2_snapshots GROUP BY ALL ORDER BY 1") == \
            [("binance", 2), ("bybit", 50), ("databento", 2), ("tardis", 21)]
        assert q("SELECT bids[1].price, asks[1].price FROM l2_snapshots WHERE source = 'bybit' ORDER BY seq "
                 "LIMIT 1") == [(Decimal("1.9531"), Decimal("1.9532"))]
        assert q("SELECT bids[1].price, bids[1].size FROM l2_snapshots WHERE source = 'binance' "
                 "ORDER BY seq DESC LIMIT 1") == [(Decimal("20472.10"), Decimal("22.276"))]
        assert q("SELECT count(*), min(bid_price), max(ask_size) FROM bbo_quotes") == \
            [(12, Decimal("3720.25"), Decimal("5673"))]
        assert q("SELECT order_id, action, price FROM order_flow ORDER BY seq") == \
            [("647784973705", "cancel", Decimal("3722.75")), ("647784973631", "cancel", Decimal("3723"))]
        assert q("SELECT source, symbol, count(*), min(open) FROM historical_bars GROUP BY ALL ORDER BY 1") == \
            [("binance", "ADABTC", 10, Decimal("0.00002853")), ("databento", "ESH1", 2, Decimal("372025"))]


# ---- malformed input ----------------------------------------------------------------------------
def _bad(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


@pytest.mark.parametrize("row, field", [
    ("bitmex,XBTUSD,1583020803276000,1583020803336743,x,sell,85x1.5,1", "price"),
    ("bitmex,XBTUSD,1583020803276000,1583020803336743,x,sell,8531.5,-1", "amount"),
    ("bitmex,XBTUSD,1583020803276,1583020803336743,x,sell,8531.5,1", "timestamp"),      # milliseconds
    ("bitmex,XBTUSD,abc,1583020803336743,x,sell,8531.5,1", "timestamp"),
    ("bitmex,XBTUSD,1583020803276000,1583020803336743,x,long,8531.5,1", "side"),
    ("bitmex,XBTUSD,1583020803276000,1583020803336743,x,sell,8531.5", None),             # 7 columns
])
def test_tardis_bad_row_names_file_line_and_column(shared_data, tmp_path, row, field):
    good = (shared_data / NT / "tardis" / "bitmex_trades_XBTUSD.csv").read_text().splitlines()
    path = _bad(tmp_path, "t.csv", "\n".join(good[:4] + [row] + good[4:]) + "\n")
    with pytest.raises(InputError) as info:
        events_of(tardis, path)
    assert (info.value.file, info.value.line, info.value.field) == (str(path), 5, field)


def test_book_formats_bad_rows(shared_data, tmp_path):
    inc = _bad(tmp_path, "inc.csv", ",".join(tardis.INCREMENTAL) + "\n"
               "deribit,X,1585699200000000,1585699200000001,true,bid,100,1\n"
               "deribit,X,1585699200000000,1585699200000001,maybe,bid,100,1\n")
    snap = _bad(tmp_path, "snap.csv", ",".join(tardis._COMMON + ["asks[0].price", "asks[0].amount", "bids[0].price",
                                                                  "bids[0].amount"]) + "\n"
                "binance,X,1598918403696000,1598918403810979,1,1,,0.5\n")
    depth = _bad(tmp_path, "depth.csv", ",".join(binance.DEPTH_HEADER) + "\n"
                 "BTCUSDT,1667346579146,1,1,b,snap,20377.00,1.770,-1\n"
                 "BTCUSDT,1667346579146,1,1,b,snap,20376.90,NaN,-1\n")
    kl = _bad(tmp_path, "ADABTC-1m-2021-11-27.csv",
              "1637971200000,0.00002853,0.00002854,0.00002851,0.00002854,36304.2,1637971259999,1,79,1,1,0\n"
              "1637971260000,0.0000285x,0.00002860,0.00002854,0.00002859,89196.6,1637971319999,2,98,5,1,0\n")
    good = (shared_data / NT / "bybit" / "xrpusdt-ob500.data.zip")
    with zipfile.ZipFile(good) as zf:
        lines = zf.read(zf.namelist()[0]).splitlines(keepends=True)
    msg = json.loads(lines[1])
    msg["data"]["b"][0] = ["1.95x", "10"]
    by_level = _bad(tmp_path, "level.data", lines[0] + json.dumps(msg).encode() + b"\n")
    by_json = _bad(tmp_path, "json.data", lines[0] + b"\n" + b'{"topic":"orderbook.500.XRPUSDT","type":\n')
    cases = [(tardis, inc, 3, "is_snapshot"), (tardis, snap, 2, "bids[0].price"), (binance, depth, 3, "qty"),
             (binance, kl, 2, "open"), (bybit, by_level, 2, "data.b[0]"), (bybit, by_json, 3, None)]
    for module, path, line, field in cases:
        with pytest.raises(InputError) as info:
            events_of(module, path)
        assert (info.value.file, info.value.line, info.value.field) == (str(path), line, field), (path, info.value)


def test_dbn_truncated_and_foreign_files(shared_data, tmp_path, monkeypatch):
    raw = (shared_data / DB / "test_data.mbo.dbn").read_bytes()
    cut = _bad(tmp_path, "cut.dbn", raw[:-10])
    got = []
    with pytest.raises(InputError, match="truncated DBN file") as info:
        for _, batch in dbn.read(cut):
            got.extend(batch.to_pylist())
    assert (info.value.file, info.value.line) == (str(cut), 2)
    assert len(got) == 1                                    # the whole record before the break was yielded
    with pytest.raises(InputError, match="not a DBN file"):
        list(dbn.read(shared_data / NT / "tardis" / "bitmex_trades_XBTUSD.csv"))
    import zstandard
    packed = zstandard.ZstdCompressor().compress((shared_data / DB / "test_data.mbp-10.dbn").read_bytes())
    cut = _bad(tmp_path, "cut.dbn.zst", packed[:len(packed) // 2])
    assert dbn.detect(cut)
    with pytest.raises(InputError, match="truncated zstd stream"):
        list(dbn.read(cut))
    # a big zstd file cut in the middle: every whole record before the break becomes an event
    head, body = _dbn_parts(shared_data / DB / "test_data.mbo.dbn")
    recs = np.resize(np.frombuffer(body, dbn._LAYOUTS["mbo"][0]), 60_000).copy()
    recs["order_id"] = np.random.default_rng(5).integers(0, 2**63, len(recs), dtype=np.uint64)
    raw = head + recs.tobytes()
    c = zstandard.ZstdCompressor(level=1)
    frames = [c.compress(raw[i:i + 200_000]) for i in range(0, len(raw), 200_000)]
    packed = b"".join(frames)[:-sum(map(len, frames[-8:])) - 5_000]     # cut inside a frame
    with zstandard.ZstdDecompressor().stream_reader(packed, read_across_frames=True) as r:
        prefix = r.read()
    whole = (len(prefix) - len(head)) // 56
    assert 1000 < whole < 60_000
    cut = _bad(tmp_path, "cut-big.dbn.zst", packed)
    for vectorised in (True, False):
        got = 0
        with monkeypatch.context() as m:
            m.setattr(dbn._Context, "vectorised", vectorised)
            with pytest.raises(InputError, match="truncated zstd stream") as info:
                for _, batch in dbn.read(cut):
                    got += batch.num_rows
        assert (got, info.value.line) == (whole, whole + 1)


# ---- the order book -----------------------------------------------------------------------------
def test_order_book_orders_exactly_and_keeps_text():
    book = OrderBook()
    for p, s in [("9.99", "1"), ("10", "2"), ("10.000000000000000000001", "3"), ("1.5", "4"), ("-0.5", "5")]:
        book.update(True, p, s)
    assert [lvl[0] for lvl in book.bids()] == ["10.000000000000000000001", "10", "9.99", "1.5", "-0.5"]
    book.update(True, "1.50", "7")                          # the same level written another way
    assert book.bid_levels == 5 and book.bids()[3] == ["1.50", "7"]
    book.update(True, "10.000", "0.000")                    # zero removes; the text need not match
    assert [lvl[0] for lvl in book.bids(2)] == ["10.000000000000000000001", "9.99"]
    book.update(True, "123", "0")
    assert book.missing_deletes == 1
    for p in ("0.00000001", "100", "0.0000000100000000000000001"):
        book.update(False, p, "1")
    assert [lvl[0] for lvl in book.asks()] == ["0.00000001", "0.0000000100000000000000001", "100"]
    assert book.crossed() and book.best_ask() == ["0.00000001", "1"]
    e = book.l2_event("X", "s", 1705329000000000000, depth=1)
    assert ev.normalize(e) == e and e["bids"] == [["10.000000000000000000001", "3"]]
    book.clear()
    assert book.l2_event("X", "s", 1705329000000000000) is None and len(book) == 0
    assert price_key("1.5") == price_key("1.50") < price_key("10") and is_zero("0.000") and not is_zero("0.001")


def test_order_book_matches_a_sorted_reference_under_random_updates():
    import random
    rng = random.Random(7)
    book, ref = OrderBook(), {True: {}, False: {}}
    for _ in range(20_000):
        is_bid = rng.random() < 0.5
        price = f"{rng.randint(9000, 9100) / 4:.2f}".rstrip("0").rstrip(".") if rng.random() < 0.5 else \
            f"{rng.randint(9000, 9100) / 4:.4f}"
        size = "0" if rng.random() < 0.3 else str(rng.randint(1, 50))
        book.update(is_bid, price, size)
        side = ref[is_bid]
        if size == "0":
            side.pop(Decimal(price), None)
        else:
            side[Decimal(price)] = [price, size]
    assert book.bids() == [ref[True][k] for k in sorted(ref[True], reverse=True)]
    assert book.asks() == [ref[False][k] for k in sorted(ref[False])]


# ---- DBN: the vectorised path against DBNDecoder record by record -------------------------------
def _dbn_parts(path: Path) -> tuple[bytes, bytes]:
    raw = path.read_bytes()
    length = int.from_bytes(raw[4:8], "little")
    return raw[:8 + length], raw[8 + length:]


def _both_paths(path: Path, monkeypatch, **kw) -> tuple[list, list, dict, dict]:
    fast_stats, slow_stats = ReplayStats(), ReplayStats()
    with monkeypatch.context() as m:
        m.setattr(dbn, "_slow_tables", None)                  # the vectorised path must do it all
        fast = events_of(dbn, path, stats=fast_stats, **kw)[1]
    with monkeypatch.context() as m:
        m.setattr(dbn._Context, "vectorised", False)
        m.setattr(dbn, "_fast_tables", None)
        slow = events_of(dbn, path, stats=slow_stats, **kw)[1]
    return fast, slow, fast_stats.to_dict(), slow_stats.to_dict()


def _by_type(events):
    out = {}
    for e in events:
        out.setdefault(e["type"], []).append(e)
    return out


@pytest.mark.parametrize("schema, n", [("mbo", 50_000), ("mbp-10", 7_000), ("mbp-1", 30_000), ("trades", 30_000),
                                       ("ohlcv-1m", 5_000)])
def test_dbn_vectorised_path_equals_the_decoder(shared_data, tmp_path, monkeypatch, schema, n):
    """Crafted records (every action and side, undefined prices and levels, bad ts_recv flags,
    negative prices, several chunks) read both ways give the same events and the same skips."""
    import zstandard
    rng = np.random.default_rng(11)
    head, body = _dbn_parts(shared_data / DB / f"test_data.{schema}.dbn")
    dtype = dbn._LAYOUTS[schema][0]
    base = np.frombuffer(body, dtype)
    recs = np.resize(base, n).copy()
    recs["ts_event"] = base["ts_event"][0] + np.sort(rng.integers(0, 3_600_000_000_000, n)).astype(np.uint64)
    undef = np.int64(2**63 - 1)
    if schema.startswith("ohlcv"):
        for f in ("open", "high", "low", "close"):
            recs[f] = rng.integers(-10**13, 10**15, n)
        recs["volume"] = rng.integers(0, 10**6, n)
    else:
        recs["ts_recv"] = recs["ts_event"] + rng.integers(1000, 10**6, n).astype(np.uint64)
        recs["ts_recv"][rng.random(n) < 0.01] = np.uint64(2**64 - 1)
        recs["flags"] = rng.choice(np.array([0, 8, 128, 136, 130], np.uint8), n)
        recs["sequence"] = np.arange(n, dtype=np.uint32) + 1000
        recs["side"] = rng.choice(np.frombuffer(b"ABN", np.uint8), n)
        recs["price"] = rng.integers(-10**11, 10**13, n) // 250_000_000 * 250_000_000
        recs["size"] = rng.integers(0, 500, n)
        actions = b"AMCFRTN" if schema == "mbo" else b"AMCT"
        recs["action"] = rng.choice(np.frombuffer(actions, np.uint8), n)
        if schema == "mbo":
            recs["order_id"] = rng.integers(0, 2**63, n, dtype=np.uint64)
            recs["price"][recs["action"] == ord("R")] = undef
        if "levels" in dtype.names:
            lv = recs["levels"]
            k = lv.shape[1]
            for side in ("bid", "ask"):
                px = 3720 * 10**9 + rng.integers(-40, 40, (n, k)) * 250_000_000
                cut = rng.integers(0, k + 1, n)                     # levels beyond `cut` are undefined
                px[np.arange(k)[None, :] >= cut[:, None]] = undef
                lv[f"{side}_px"] = px
                lv[f"{side}_sz"] = rng.integers(1, 100, (n, k))
    plain = tmp_path / f"crafted.{schema}.dbn"
    plain.write_bytes(head + recs.tobytes())
    packed = tmp_path / f"crafted.{schema}.dbn.zst"
    packed.write_bytes(zstandard.ZstdCompressor().compress(plain.read_bytes()))
    fast, slow, fast_stats, slow_stats = _both_paths(plain, monkeypatch, depth=7)
    assert _by_type(fast) == _by_type(slow) and fast_stats == slow_stats
    assert fast_stats["messages"] == n and len(fast) > 0 and fast_stats["warnings"] == {}
    assert _by_type(events_of(dbn, packed, depth=7)[1]) == _by_type(fast)
    if schema == "mbo":
        assert {e["action"] for e in fast if e["type"] == "OrderFlow"} == {"add", "modify", "cancel", "fill", "clear"}
        assert {"Trade", "OrderFlow"} == set(_by_type(fast)) and fast_stats["skipped"]["mbo record with action N"] > 0
        assert any(e["price"] is None for e in fast if e.get("action") == "clear")
    if schema in ("mbp-1", "mbp-10"):
        assert "Trade" in _by_type(fast) and sum(fast_stats["skipped"].values()) > 0
    if schema != "ohlcv-1m":
        assert any(e["recv_ts"] is None for e in fast) and any(e["price"].startswith("-") for e in fast
                                                               if e["type"] == "Trade")


def test_dbn_repeated_sequence_numbers_are_flagged(shared_data, tmp_path, monkeypatch):
    """Venues may give several records one sequence number; the archive dedupes on seq, so say so."""
    head, body = _dbn_parts(shared_data / DB / "test_data.trades.dbn")
    recs = np.frombuffer(body, dbn._LAYOUTS["trades"][0]).copy()
    recs["sequence"][1] = recs["sequence"][0]
    path = tmp_path / "repeat.dbn"
    path.write_bytes(head + recs.tobytes())
    fast, slow, fast_stats, slow_stats = _both_paths(path, monkeypatch)
    assert fast == slow and [e["seq"] for e in fast] == [1170380, 1170380]
    assert fast_stats["warnings"] == slow_stats["warnings"] == {dbn.SEQ_WARNING: 1}


def test_dbn_symbols_by_date_and_unmapped_instruments(shared_data, tmp_path, monkeypatch):
    import datetime as dt
    import databento_dbn

    class Interval:
        def __init__(self, start, end, symbol):
            self.start_date, self.end_date, self.symbol = start, end, symbol

    class Mapping:
        def __init__(self, raw, intervals):
            self.raw_symbol, self.intervals = raw, intervals

    meta = databento_dbn.Metadata(
        dataset="GLBX.MDP3", start=1609113600 * 10**9, end=1609286400 * 10**9, schema=databento_dbn.Schema.TRADES,
        stype_in=databento_dbn.SType.RAW_SYMBOL, stype_out=databento_dbn.SType.INSTRUMENT_ID,
        symbols=["ESH1", "ESM1"], version=2,
        mappings=[Mapping("ESH1", [Interval(dt.date(2020, 12, 28), dt.date(2020, 12, 29), "5482")]),
                  Mapping("ESM1", [Interval(dt.date(2020, 12, 29), dt.date(2020, 12, 30), "5482")])])
    _, body = _dbn_parts(shared_data / DB / "test_data.trades.dbn")
    recs = np.frombuffer(body, dbn._LAYOUTS["trades"][0]).copy()
    recs = np.concatenate([recs, recs])
    recs["ts_event"][2:] += np.uint64(86_400 * 10**9)            # the next UTC day: the other contract
    path = tmp_path / "two-days.dbn"
    path.write_bytes(meta.encode() + recs.tobytes())
    fast, slow, _, _ = _both_paths(path, monkeypatch)
    assert [e["symbol"] for e in fast] == [e["symbol"] for e in slow] == ["ESH1", "ESH1", "ESM1", "ESM1"]
    recs["ts_event"][3] += np.uint64(86_400 * 10**9)              # a day with no mapping
    path.write_bytes(meta.encode() + recs.tobytes())
    for vectorised in (True, False):
        with monkeypatch.context() as m:
            m.setattr(dbn._Context, "vectorised", vectorised)
            with pytest.raises(InputError, match="no symbol mapping for instrument_id 5482 on 2020-12-30") as info:
                list(dbn.read(path))
        assert (info.value.line, info.value.field) == (4, "instrument_id")


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
@pytest.mark.parametrize("module, sample", [
    (tardis, "tardis/bitmex_trades_XBTUSD.csv"), (tardis, "tardis/binance-futures_book_snapshot_25_BTCUSDT.csv"),
    (bybit, "bybit/xrpusdt-ob500.data.zip")])
def test_truncated_compressed_input(shared_data, tmp_path, module, sample, codec):
    """A cut gzip/zstd file: every event of the whole lines before the break is yielded, then
    InputError('truncated … stream') at the line where the stream broke."""
    import zlib
    import zstandard
    src = shared_data / NT / sample
    raw = src.read_bytes()
    if raw[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(src) as zf:
            raw = zf.read(zf.namelist()[0])
    header = 1 if module is tardis else 0
    lines = raw.splitlines(keepends=True)
    if module is tardis:                             # more rows, so that the cut leaves many whole lines
        lines = lines[:1] + lines[1:] * 300
    raw = b"".join(lines)
    if codec == "gzip":
        data = gzip.compress(raw)[:-200]
        prefix = zlib.decompressobj(31).decompress(data)
    else:                                            # several frames (also read across), the last one cut
        c = zstandard.ZstdCompressor(level=1)
        data = b"".join(c.compress(b"".join(lines[i:i + 40])) for i in range(0, len(lines), 40))[:-200]
        with zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True) as r:
            prefix = r.read()
    whole = prefix.count(b"\n")
    assert 10 < whole < len(lines)
    path = tmp_path / f"cut.{codec}"
    path.write_bytes(data)
    assert module.detect(path)                       # the whole first lines still tell the format
    events = []
    with pytest.raises(InputError, match=f"truncated {codec} stream") as info:
        for _, batch in module.read(path):
            events.extend(batch.to_pylist())
    assert (info.value.file, info.value.line) == (str(path), whole + 1)
    assert len(events) == whole - header
    full = tmp_path / "full"
    full.write_bytes(raw)
    assert events == events_of(module, full)[1][:len(events)]
