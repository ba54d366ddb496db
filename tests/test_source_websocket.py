"""Live websocket adapters (Coinbase, BitMEX) against a local server replaying real captures.

The captures are cryptofeed's raw websocket recordings (`shared/data/cryptofeed/`).  Every
expectation (trade counts, prices, sides, final books) is computed here from the capture file
with the standard library, independently of the adapters' own parsing.
"""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from mdcsql.archive import Archive
from mdcsql.catalog import Catalog
from mdcsql.sources.bitmex import BitmexSource
from mdcsql.sources.coinbase import CoinbaseSource, backoff_delays
from mdcsql.sources.wsreplay import ReplayServer, read_capture

COINBASE = "cryptofeed/COINBASE.ws.28.0"
BITMEX = "cryptofeed/BITMEX.ws.1.0"
FAST = dict(min_backoff_s=0.05, max_backoff_s=0.2, idle_stop_s=5.0)


# ---- independent reading of a capture -----------------------------------------------------------
def received(path: Path):
    """(line_no, message) for every received line, parsed with the stdlib (floats kept as text)."""
    out = []
    for no, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("wss://"):
            continue
        out.append((no, json.loads(line.partition(": ")[2], parse_float=str)))
    return out


def sent_lines(path: Path) -> list[str]:
    return [line.split(": ", 1)[1] for line in path.read_text().splitlines() if " <- " in line]


def coinbase_products(path: Path) -> list[str]:
    return json.loads(sent_lines(path)[0])["product_ids"]


def bitmex_symbols(path: Path) -> list[str]:
    return [a.split(":", 1)[1] for a in json.loads(sent_lines(path)[0])["args"]]


def coinbase_trades(path: Path) -> dict[str, dict]:
    return {f"{m['product_id']}/{m['trade_id']}": m for _, m in received(path)
            if m.get("type") in ("match", "last_match")}


def coinbase_quote_states(path: Path) -> int:
    return len({(m["product_id"], m["time"], m["best_bid"], m["best_ask"]) for _, m in received(path)
                if m.get("type") == "ticker"})


def bitmex_trades(path: Path) -> dict[str, dict]:
    return {r["trdMatchID"]: r for _, m in received(path) if m.get("table") == "trade" for r in m["data"]}


def _top(bids: dict, asks: dict, depth: int) -> tuple[list, list]:
    b = [[bids[k][0], bids[k][1]] for k in sorted(bids, reverse=True)[:depth]]
    a = [[asks[k][0], asks[k][1]] for k in sorted(asks)[:depth]]
    return b, a


def coinbase_books(path: Path, depth: int, *, skip: set[int] = frozenset()) -> dict[str, tuple]:
    books: dict[str, tuple[dict, dict]] = {}
    for no, m in received(path):
        if no in skip:
            continue
        if m.get("type") == "snapshot":
            books[m["product_id"]] = ({Decimal(p): (p, s) for p, s in m["bids"]},
                                      {Decimal(p): (p, s) for p, s in m["asks"]})
        elif m.get("type") == "l2update":
            bids, asks = books[m["product_id"]]
            for side, p, s in m["changes"]:
                d = bids if side == "buy" else asks
                if Decimal(s) == 0:
                    d.pop(Decimal(p), None)
                else:
                    d[Decimal(p)] = (p, s)
    return {k: _top(b, a, depth) for k, (b, a) in books.items()}


def bitmex_books(path: Path, depth: int) -> dict[str, tuple]:
    entries: dict[str, dict] = {}
    for _, m in received(path):
        if m.get("table") != "orderBookL2":
            continue
        if m["action"] == "partial":
            entries[m["filter"]["symbol"]] = {}
        for r in m["data"]:
            book = entries[r["symbol"]]
            if m["action"] in ("partial", "insert"):
                book[r["id"]] = [r["side"], str(r["price"]), r["size"]]
            elif m["action"] == "update":
                book[r["id"]][2] = r["size"]
                if "price" in r:
                    book[r["id"]][1] = str(r["price"])
            else:
                del book[r["id"]]
    out = {}
    for sym, book in entries.items():
        sides = {"Buy": {}, "Sell": {}}
        for side, p, size in book.values():
            lv = sides[side].setdefault(Decimal(p), [p, 0])
            lv[1] += size
        bids = {k: (v[0], str(v[1])) for k, v in sides["Buy"].items() if v[1] > 0}
        asks = {k: (v[0], str(v[1])) for k, v in sides["Sell"].items() if v[1] > 0}
        out[sym] = _top(bids, asks, depth)
    return out


# ---- running a source against the server ---------------------------------------------------------
def run(source, srv: ReplayServer, archive_root: Path | None = None, *, timeout: float = 30.0) -> list[dict]:
    """Collect until the server has sent the whole capture and the source has read every message."""
    done = threading.Event()

    def watch():
        t0 = time.monotonic()
        while not done.wait(0.02):
            if (srv.finished.is_set() and source.stats.messages >= sum(srv.delivered)) \
                    or time.monotonic() - t0 > timeout:
                source.stop()
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    archive = w = None
    if archive_root is not None:
        archive = Archive.init(archive_root)
        w = archive.writer(source.id, root="live", asset_class="crypto")
    events: list[dict] = []
    try:
        for batch in source.batches():
            assert isinstance(batch, list) and batch
            if w is not None:
                w.append_many(batch)
            events.extend(batch)
    finally:
        done.set()
        source.close()
        if archive is not None:
            archive.close()
    assert srv.finished.is_set(), "the capture was not replayed to the end"
    return events


def client_messages(srv: ReplayServer, conn: int, n: int) -> list[str]:
    """The messages a client sent on connection `conn`, once at least `n` reached the server."""
    deadline = time.monotonic() + 5
    while len(srv.client_messages[conn]) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return list(srv.client_messages[conn])


def sql(root: Path, query: str, params=None) -> list[tuple]:
    with Catalog.open(root, read_only=True) as cat:
        return cat.query(query, params).rows


def last_l2(events: list[dict]) -> dict[str, tuple]:
    out = {}
    for e in events:
        if e["type"] == "L2Snapshot":
            out[e["symbol"]] = (e["bids"], e["asks"])
    return out


def coinbase(shared_data, srv, **kw) -> CoinbaseSource:
    return CoinbaseSource(coinbase_products(shared_data / COINBASE), url=srv.url,
                          channels=("level2", "ticker", "matches"), **{**FAST, **kw})


def bitmex(shared_data, srv, **kw) -> BitmexSource:
    return BitmexSource(bitmex_symbols(shared_data / BITMEX), url=srv.url, **{**FAST, **kw})


# ---- the replay server ----------------------------------------------------------------------------
def test_replay_server_reads_captures_and_listens_on_loopback_only(shared_data):
    cb = read_capture(shared_data / COINBASE)
    assert (len(cb.sent), len(cb.received)) == (3, 9946)        # 9,952 lines: 1 connection, 2 blank
    assert cb.url == "wss://ws-feed.pro.coinbase.com"
    bm = read_capture(shared_data / BITMEX)
    assert (len(bm.sent), len(bm.received)) == (3, 2120)
    for host in ("0.0.0.0", "192.168.1.10", "example.com"):
        with pytest.raises(ValueError, match="loopback"):
            ReplayServer(shared_data / COINBASE, host=host)


# ---- Coinbase ----------------------------------------------------------------------------------------
def test_coinbase_stores_every_trade_of_the_capture(shared_data, tmp_path):
    path = shared_data / COINBASE
    expected = coinbase_trades(path)
    assert len(expected) == 107                                  # 97 match + 10 last_match
    with ReplayServer(path) as srv:
        src = coinbase(shared_data, srv)
        events = run(src, srv, tmp_path / "a")
        # the subscribe messages are byte-for-byte those of the capture
        assert client_messages(srv, 0, 3) == sent_lines(path)
    assert src.stats.errors == 0 and src.stats.gaps == [] and src.stats.reconnects == 0
    assert src.stats.messages == 9946
    rows = sql(tmp_path / "a", "SELECT symbol, trade_id, price, size, side, seq, ts FROM trades WHERE source = ?",
               ["coinbase"])
    assert len(rows) == len(expected)
    got = {f"{r[0]}/{r[1]}": r for r in rows}
    assert got.keys() == expected.keys()
    for key in ("BAND-GBP/881613", "SKL-BTC/280232", "DASH-BTC/923575", "SKL-USD/1568286"):
        m, r = expected[key], got[key]
        assert r[2] == Decimal(m["price"]) and r[3] == Decimal(m["size"])
        assert r[4] == {"buy": "sell", "sell": "buy"}[m["side"]]      # maker side -> taker side
        assert r[5] == m["trade_id"]
    # exact decimal text in the stored events (the view casts to DECIMAL(38,18))
    trades = {f"{e['symbol']}/{e['trade_id']}": e for e in events if e["type"] == "Trade"}
    assert all(trades[k]["price"] == m["price"] and trades[k]["size"] == m["size"] for k, m in expected.items())
    # the ticker repeats each trade with the taker's side: evidence for the side conversion
    tickers = {(m["product_id"], m["trade_id"]): m["side"] for _, m in received(path) if m.get("type") == "ticker"}
    pairs = [(tickers[(m["product_id"], m["trade_id"])], trades[k]["side"]) for k, m in expected.items()
             if (m["product_id"], m["trade_id"]) in tickers]
    assert len(pairs) == 107 and all(a == b for a, b in pairs)
    # a cascade of matches repeats the same BBO at the same instant: stored once
    assert sql(tmp_path / "a", "SELECT count(*) FROM bbo_quotes")[0][0] == coinbase_quote_states(path) == 89
    assert src.stats.events == len(events)
    l2 = sql(tmp_path / "a", "SELECT count(*) FROM l2_snapshots")[0][0]
    assert l2 == sum(1 for e in events if e["type"] == "L2Snapshot") > 1000


def test_coinbase_last_l2_snapshot_equals_an_independent_book(shared_data):
    path = shared_data / COINBASE
    with ReplayServer(path) as srv:
        events = run(coinbase(shared_data, srv, depth=10), srv)
    want = coinbase_books(path, 10)
    assert len(want) == 10
    assert last_l2(events) == want
    for e in events:
        if e["type"] == "L2Snapshot":
            assert len(e["bids"]) <= 10 and len(e["asks"]) <= 10


def test_coinbase_l2_interval_throttles_but_ends_on_the_final_book(shared_data):
    path = shared_data / COINBASE
    with ReplayServer(path) as srv:
        every = run(coinbase(shared_data, srv, depth=5), srv)
    with ReplayServer(path, speed=10.0) as srv:                 # the 30 s capture in ~3 s
        throttled = run(coinbase(shared_data, srv, depth=5, l2_interval_ms=500), srv)
    n_every = sum(1 for e in every if e["type"] == "L2Snapshot")
    n_thr = sum(1 for e in throttled if e["type"] == "L2Snapshot")
    assert n_thr < n_every / 5
    # per product at most one snapshot per 500 ms of wall time (plus the snapshot and the final flush)
    assert n_thr <= 10 * (2 * 4 + 2 + 1)
    assert last_l2(throttled) == coinbase_books(path, 5)
    assert sum(1 for e in throttled if e["type"] == "Trade") == 107


def test_coinbase_forced_disconnect_reconnects_resubscribes_and_loses_no_trade(shared_data, tmp_path):
    path = shared_data / COINBASE
    with ReplayServer(path, drop_after=4000) as srv:
        src = coinbase(shared_data, srv)
        events = run(src, srv, tmp_path / "a")
        assert srv.connections == 2
        assert client_messages(srv, 1, 3)[:3] == sent_lines(path)    # subscribed again
    assert src.stats.reconnects == 1 and src.stats.gaps == [] and src.stats.errors == 0
    assert src.duplicates > 0                                    # the replayed start was recognised
    status = [e["status"] for e in events if e["type"] == "Heartbeat" and e["symbol"] == "*"]
    assert status[0].startswith("connected") and status[1].startswith("disconnected") \
        and status[2].startswith("connected")
    expected = coinbase_trades(path)
    rows = sql(tmp_path / "a", "SELECT symbol, trade_id FROM trades")
    assert len(rows) == len(expected) == 107
    assert {f"{s}/{t}" for s, t in rows} == expected.keys()
    assert sql(tmp_path / "a", "SELECT count(*) FROM bbo_quotes")[0][0] == coinbase_quote_states(path)
    assert last_l2(events) == coinbase_books(path, 10)          # rebuilt from the new snapshot


def test_coinbase_skipped_match_is_a_gap_and_rebuilds_that_book(shared_data):
    path = shared_data / COINBASE
    msgs = received(path)
    # the third match of SKL-USD (its trades are contiguous: 1568267, 1568268, ...)
    skl = [(no, m) for no, m in msgs if m.get("type") == "match" and m["product_id"] == "SKL-USD"]
    no, skipped = skl[2]
    with ReplayServer(path, skip_lines={no}) as srv:
        src = coinbase(shared_data, srv)
        events = run(src, srv)
        later = client_messages(srv, 0, 5)[3:]
    tid = skipped["trade_id"]
    assert src.stats.gaps == [{"symbol": "SKL-USD", "expected": tid, "got": tid + 1, "field": "trade_id",
                               "channel": "matches", "missing": [tid, tid]}]
    assert sum(1 for e in events if e["type"] == "Trade") == 106
    # the book is stale and a fresh snapshot was requested for that product only
    assert [json.loads(t) for t in later] == [
        {"type": "unsubscribe", "product_ids": ["SKL-USD"], "channels": ["level2"]},
        {"type": "subscribe", "product_ids": ["SKL-USD"], "channels": ["level2"]}]
    assert "SKL-USD" not in src.live and src.resyncs[0]["symbol"] == "SKL-USD"
    gap_at = next(i for i, e in enumerate(events) if e["type"] == "Trade" and e["trade_id"] == str(tid + 1))
    assert not any(e["type"] == "L2Snapshot" and e["symbol"] == "SKL-USD" for e in events[gap_at:])
    books = coinbase_books(path, 10)
    assert {k: v for k, v in last_l2(events).items() if k != "SKL-USD"} == \
        {k: v for k, v in books.items() if k != "SKL-USD"}


BAD_COINBASE = [
    '{"type":"match","trade_id":',                                            # malformed JSON
    '[1,2,3]',                                                                # not an object
    '{"type":"match","product_id":"BAND-GBP"}',                               # missing fields
    '{"type":"match","trade_id":999999999,"side":"sell","size":"1","price":"NaN","product_id":"BAND-GBP",'
    '"sequence":1,"time":"2021-04-17T16:43:37.5Z"}',                          # not a price
    '{"type":"match","trade_id":999999998,"side":"left","size":"1","price":"1","product_id":"BAND-GBP",'
    '"sequence":1,"time":"2021-04-17T16:43:37.5Z"}',                          # not a side
    '{"type":"l2update","product_id":"BAND-GBP","changes":[["buy","abc","1"]],"time":"2021-04-17T16:43:37.5Z"}',
    '{"type":"l2update","product_id":"BAND-GBP","changes":[["buy","14.70","-1"]],"time":"2021-04-17T16:43:37.5Z"}',
    '{"type":"ticker","product_id":"BAND-GBP","sequence":999999999999,"time":"2021-04-17T16:43:37.5Z"}',
    '{"type":"wat"}',                                                         # unexpected type
    '{"type":"error","message":"Failed to subscribe","reason":"level2 requires authentication"}',
]


def test_coinbase_bad_messages_are_counted_and_the_source_continues(shared_data, tmp_path):
    path = shared_data / COINBASE
    lines = path.read_text().splitlines()
    hb = '{"type":"heartbeat","last_trade_id":881613,"product_id":"BAND-GBP","sequence":333938798,' \
         '"time":"2021-04-17T16:43:37.6Z"}'
    at = 200                                                     # after every snapshot and last_match
    injected = [f"1618677817.5: {t}" for t in BAD_COINBASE + [hb]]
    bad = tmp_path / "bad.ws"
    bad.write_text("\n".join(lines[:at] + injected + lines[at:]) + "\n")
    with ReplayServer(bad) as srv:
        src = coinbase(shared_data, srv)
        events = run(src, srv)
    assert src.stats.errors == len(BAD_COINBASE)
    assert len(src.stats.error_samples) == len(BAD_COINBASE)
    assert any("requires authentication" in s for s in src.stats.error_samples)
    assert src.stats.messages == 9946 + len(injected)
    trades = [e for e in events if e["type"] == "Trade"]
    assert len(trades) == 107 and {f"{e['symbol']}/{e['trade_id']}" for e in trades} == coinbase_trades(path).keys()
    assert last_l2(events) == coinbase_books(path, 10)          # bad updates were not applied
    assert [e["status"] for e in events if e["type"] == "Heartbeat" and e["symbol"] == "BAND-GBP"] == \
        ["last_trade_id=881613 sequence=333938798"]
    assert src.stats.gaps == []


def test_coinbase_gap_seen_by_heartbeat_or_after_a_reconnect():
    """Unit level, no network: the two other ways trades go missing."""
    src = CoinbaseSource(["BTC-USD"], url="ws://127.0.0.1:9", channels=("matches", "heartbeat"))

    def match(tid, kind="match"):
        return json.dumps({"type": kind, "trade_id": tid, "side": "buy", "size": "1", "price": "100.5",
                           "product_id": "BTC-USD", "sequence": tid * 7, "time": "2024-01-02T03:04:05.123456Z"})

    def heartbeat(last):
        return json.dumps({"type": "heartbeat", "last_trade_id": last, "product_id": "BTC-USD", "sequence": 1,
                           "time": "2024-01-02T03:04:06Z"})

    assert [e["side"] for e in src.handle(match(10, "last_match"), 1)] == ["sell"]
    src.handle(heartbeat(12), 2)             # trade 11, 12 may still be on their way
    assert src.stats.gaps == []
    src.handle(match(11), 3)
    src.handle(heartbeat(12), 4)             # a second later 12 never came: lost
    assert src.stats.gaps == [{"symbol": "BTC-USD", "expected": 12, "got": 12, "field": "trade_id",
                               "channel": "heartbeat", "missing": [12, 12]}]
    assert len(src.handle(match(12), 5)) == 1          # a late arrival is still stored once
    assert src.handle(match(12), 6) == []
    # reconnect: last_match tells what happened during the outage
    src.on_disconnect()
    src.on_connect()
    assert src.handle(match(12, "last_match"), 7) == []           # nothing missed: a duplicate
    src.on_disconnect()
    src.on_connect()
    assert len(src.handle(match(20, "last_match"), 8)) == 1
    assert src.stats.gaps[-1] == {"symbol": "BTC-USD", "expected": 13, "got": 20, "field": "trade_id",
                                  "channel": "matches", "missing": [13, 19]}


# ---- BitMEX --------------------------------------------------------------------------------------------
def test_bitmex_stores_every_trade_of_the_capture(shared_data, tmp_path):
    path = shared_data / BITMEX
    expected = bitmex_trades(path)
    assert len(expected) == 27                                   # 10 partial rows + 17 inserted
    with ReplayServer(path) as srv:
        src = bitmex(shared_data, srv)
        events = run(src, srv, tmp_path / "a")
        assert client_messages(srv, 0, 3) == sent_lines(path)
    assert src.stats.errors == 0 and src.stats.gaps == [] and src.stats.messages == 2120
    rows = sql(tmp_path / "a", "SELECT trade_id, symbol, price, size, side, ts FROM trades WHERE source = ?",
               ["bitmex"])
    assert len(rows) == 27 and {r[0] for r in rows} == expected.keys()
    got = {r[0]: r for r in rows}
    for tid, m in list(expected.items())[::5]:
        r = got[tid]
        assert (r[1], r[2], r[3], r[4]) == (m["symbol"], Decimal(str(m["price"])), Decimal(m["size"]),
                                            m["side"].lower())
    trades = {e["trade_id"]: e for e in events if e["type"] == "Trade"}
    assert all(trades[t]["price"] == str(m["price"]) for t, m in expected.items())   # exact text
    n_quotes = sum(len(m["data"]) for _, m in received(path) if m.get("table") == "quote")
    assert sql(tmp_path / "a", "SELECT count(*) FROM bbo_quotes")[0][0] == n_quotes == 436


def test_bitmex_last_l2_snapshot_equals_an_independent_book(shared_data):
    path = shared_data / BITMEX
    with ReplayServer(path) as srv:
        events = run(bitmex(shared_data, srv, depth=10), srv)
    want = bitmex_books(path, 10)
    assert len(want) == 10
    assert last_l2(events) == want


def test_bitmex_forced_disconnect_reconnects_resubscribes_and_loses_no_trade(shared_data, tmp_path):
    path = shared_data / BITMEX
    with ReplayServer(path, drop_after=1000) as srv:
        src = bitmex(shared_data, srv)
        events = run(src, srv, tmp_path / "a")
        assert srv.connections == 2 and client_messages(srv, 1, 3)[:3] == sent_lines(path)
    assert src.stats.reconnects == 1 and src.stats.gaps == [] and src.stats.errors == 0
    rows = sql(tmp_path / "a", "SELECT trade_id FROM trades")
    assert sorted(r[0] for r in rows) == sorted(bitmex_trades(path))
    n_quotes = sum(len(m["data"]) for _, m in received(path) if m.get("table") == "quote")
    assert sql(tmp_path / "a", "SELECT count(*) FROM bbo_quotes")[0][0] == n_quotes
    assert last_l2(events) == bitmex_books(path, 10)


def test_bitmex_bad_messages_and_an_out_of_sync_book(shared_data, tmp_path):
    path = shared_data / BITMEX
    lines = path.read_text().splitlines()
    bad_msgs = [
        'not json at all',
        '{"table":"trade","action":"insert","data":[{"symbol":"XBTUSD"}]}',
        '{"table":"quote","action":"insert","data":"x"}',
        '{"table":"trade","action":"insert","data":[{"timestamp":"2021-07-22T22:36:10.014Z","symbol":"XBTUSD",'
        '"side":"Up","size":1,"price":1,"trdMatchID":"x"}]}',
        '{"status":400,"error":"Unknown table: foo","request":{"op":"subscribe","args":["foo:XBTUSD"]}}',
        '{"table":"orderBookL2","action":"update","data":[{"symbol":"XBTUSD","id":1,"side":"Buy","size":5}]}',
    ]
    at = 100                                                     # after every partial
    assert all('"partial"' not in ln for ln in lines[at:])
    bad = tmp_path / "bad.ws"
    bad.write_text("\n".join(lines[:at] + [f"1626993371.5: {t}" for t in bad_msgs + ["pong"]] + lines[at:]))
    with ReplayServer(bad) as srv:
        src = bitmex(shared_data, srv)
        events = run(src, srv)
        later = client_messages(srv, 0, 5)[3:]
    assert src.stats.errors == len(bad_msgs)
    assert any("unknown order-book id 1" in s for s in src.stats.error_samples)
    assert [json.loads(t) for t in later] == [{"op": "unsubscribe", "args": ["orderBookL2:XBTUSD"]},
                                              {"op": "subscribe", "args": ["orderBookL2:XBTUSD"]}]
    assert "XBTUSD" not in src.live
    assert sorted(e["trade_id"] for e in events if e["type"] == "Trade") == sorted(bitmex_trades(path))
    assert any(e["type"] == "Heartbeat" and e["status"] == "pong" for e in events)
    want = {k: v for k, v in bitmex_books(path, 10).items() if k != "XBTUSD"}
    assert {k: v for k, v in last_l2(events).items() if k != "XBTUSD"} == want


def test_bitmex_trades_missed_during_an_outage_are_a_gap():
    src = BitmexSource(["XBTUSD"], url="ws://127.0.0.1:9")

    def trade(tid, ts, action="insert"):
        return json.dumps({"table": "trade", "action": action, "data": [
            {"timestamp": ts, "symbol": "XBTUSD", "side": "Sell", "size": 100, "price": 31964.5, "trdMatchID": tid}]})

    src.on_connect()
    assert [e["side"] for e in src.handle(trade("a", "2021-07-22T22:36:00.000Z", "partial"), 1)] == ["sell"]
    assert len(src.handle(trade("b", "2021-07-22T22:36:01.000Z"), 2)) == 1
    src.on_disconnect()
    src.on_connect()
    assert src.handle(trade("b", "2021-07-22T22:36:01.000Z", "partial"), 3) == []   # seen: nothing missed
    assert src.stats.gaps == []
    src.on_disconnect()
    src.on_connect()
    assert len(src.handle(trade("d", "2021-07-22T22:37:00.000Z", "partial"), 4)) == 1
    assert src.stats.gaps == [{"symbol": "XBTUSD", "expected": "the trade after b (2021-07-22T22:36:01.000Z)",
                               "got": "d (2021-07-22T22:37:00.000Z)", "field": "trdMatchID",
                               "channel": "trade", "missing": None}]


# ---- lifecycle -----------------------------------------------------------------------------------------
def test_stop_ends_a_live_source_cleanly(shared_data):
    with ReplayServer(shared_data / COINBASE, speed=1.0) as srv:          # 30 s of real time
        src = coinbase(shared_data, srv, idle_stop_s=None)
        got = []
        threading.Timer(1.0, src.stop).start()
        t0 = time.monotonic()
        for batch in src.batches():
            got.extend(batch)
        took = time.monotonic() - t0
        src.close()
    assert 0.9 < took < 5.0
    assert src._thread is not None and not src._thread.is_alive()
    assert any(e["type"] == "L2Snapshot" for e in got)


def test_unreachable_server_backs_off_and_stops(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                                    # nothing listens there
    src = CoinbaseSource(["BTC-USD"], url=f"ws://127.0.0.1:{port}", min_backoff_s=0.02, max_backoff_s=0.1,
                         idle_stop_s=0.6)
    assert list(src.batches()) == []
    src.close()
    assert src.connect_failures >= 3 and src.stats.reconnects == 0 and "Error" in src.last_connect_error


def test_backoff_is_exponential_jittered_and_capped():
    import random
    d = backoff_delays(0.5, 30, rng=random.Random(1))
    got = [next(d) for _ in range(12)]
    caps = [min(30, 0.5 * 2 ** k) for k in range(12)]
    assert all(c / 2 <= g <= c for g, c in zip(got, caps))
    assert max(got) <= 30 and len(set(got)) == len(got)


def test_cli_collect_from_a_websocket_feed(shared_data, tmp_path):
    """`mdcsql collect --source bitmex --url …` against the local replay server: every trade stored."""
    import subprocess
    from conftest import PYTHON, python_env
    root = tmp_path / "cli"
    with ReplayServer(shared_data / BITMEX) as srv:
        proc = subprocess.run([PYTHON, "-m", "mdcsql", "collect", str(root), "--source", "bitmex",
                               "--symbols", ",".join(bitmex_symbols(shared_data / BITMEX)), "--url", srv.url,
                               "--idle-stop", "2", "--json"], capture_output=True, text=True, env=python_env(),
                              timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["sources"]["bitmex"]["errors"] == 0
    expected = sum(1 for _, m in received(shared_data / BITMEX)
                   if m.get("table") == "trade" and m.get("action") in ("partial", "insert")
                   for _row in m.get("data", []))
    with Catalog.open(root, read_only=True) as cat:
        assert cat.query("SELECT count(*) FROM trades").rows == [(expected,)]
