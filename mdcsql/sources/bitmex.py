"""BitMEX public websocket feed (``wss://ws.bitmex.com/realtime``) → canonical events (no API key).

Tables (one ``{"op":"subscribe","args":["<table>:<symbol>",...]}`` message per table, as
cryptofeed sends them):

* ``trade`` (partial + insert rows) → Trade.  BitMEX's ``side`` is the aggressor's side already
  (``Buy`` = a buyer lifted the offer).  ``trade_id`` = ``trdMatchID``; ``seq`` is null (the
  public tables carry no sequence numbers).  The ``partial`` sent on every (re)subscribe repeats
  the latest trade: rows whose ``trdMatchID`` was already stored are dropped, and when none of a
  post-reconnect partial's trades was seen before, trades between the last stored one and it may
  have been missed during the outage: that is recorded in ``stats.gaps`` (see docs).
* ``quote`` → BboQuote (a row older than the last stored quote of the symbol is a replay duplicate;
  one identical to the previous quote, timestamp included, is stored once).
* ``orderBookL2`` (or ``orderBookL2_25``): ``partial`` resets a symbol's book; ``insert`` /
  ``update`` / ``delete`` by order-book ``id`` (an update may omit the price: it comes from the
  stored entry) → L2Snapshot of ``depth`` aggregated price levels when the top levels change.
  Rows before the partial are ignored (BitMEX's documented rule); an update/delete of an unknown
  id means the book is out of sync: counted as an error, the book is marked stale and re-requested
  (unsubscribe + subscribe for that symbol → a new partial).
* Keep-alive: after ``keepalive_s`` (5 s) without a message the client sends the text ``ping``;
  BitMEX answers ``pong`` → a Heartbeat (symbol ``*``, status ``pong``); no answer within another
  ``keepalive_s`` → reconnect.  Websocket protocol pings run as well (websockets' defaults).
  The ``info`` welcome message and ``success`` acks produce no events; ``error`` replies are
  counted errors (sample kept).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from decimal import Decimal

from mdcsql import events as ev
from mdcsql.sources.book import OrderBook
from mdcsql.sources.coinbase import WebSocketSource, _decode, check_decimal

__all__ = ["BitmexSource"]

_SIDES = {"Buy": "buy", "Sell": "sell"}
_BOOK_TABLES = ("orderBookL2", "orderBookL2_25")
_SEEN_TRADES = 20_000          # trdMatchIDs remembered per symbol for duplicate detection


class _IdBook:
    """BitMEX order-book entries by id, aggregated into an `OrderBook` of price levels."""

    __slots__ = ("entries", "totals", "levels")

    def __init__(self) -> None:
        self.entries: dict[int, tuple[bool, Decimal, str, Decimal]] = {}   # id -> (is_bid, price, text, size)
        self.totals: dict[tuple[bool, Decimal], list] = {}                  # (is_bid, price) -> [text, size, n]
        self.levels = OrderBook()

    def clear(self) -> None:
        self.entries.clear()
        self.totals.clear()
        self.levels.clear()

    def _add(self, is_bid: bool, price: Decimal, text: str, size: Decimal) -> None:
        t = self.totals.get((is_bid, price))
        if t is None:
            t = self.totals[(is_bid, price)] = [text, Decimal(0), 0]
        t[1] += size
        t[2] += 1
        self._publish(is_bid, price, t)

    def _remove(self, is_bid: bool, price: Decimal, size: Decimal) -> None:
        t = self.totals[(is_bid, price)]
        t[1] -= size
        t[2] -= 1
        if t[2] == 0:
            del self.totals[(is_bid, price)]
            self.levels.set(is_bid, t[0], "0")
        else:
            self._publish(is_bid, price, t)

    def _publish(self, is_bid: bool, price: Decimal, t: list) -> None:
        if t[1] > 0:
            self.levels.set(is_bid, t[0], format(t[1], "f"))
        else:                                        # a zero-size entry shows no level
            self.levels.set(is_bid, t[0], "0")

    def upsert(self, oid: int, is_bid: bool, text: str | None, size: Decimal, *, must_exist: bool) -> None:
        """Insert (or, `must_exist`, update: KeyError for an unknown id) one entry."""
        old = self.entries.get(oid)
        if must_exist and old is None:
            raise KeyError(oid)
        if text is None:
            if old is None:
                raise KeyError(oid)
            text = old[2]
        price = Decimal(text)
        if old is not None:
            self._remove(old[0], old[1], old[3])
        self.entries[oid] = (is_bid, price, text, size)
        self._add(is_bid, price, text, size)

    def delete(self, oid: int) -> None:
        old = self.entries.pop(oid)
        self._remove(old[0], old[1], old[3])


class BitmexSource(WebSocketSource):
    """BitMEX market data: trades, quotes, orderBookL2 book, keep-alive heartbeats (no API key)."""

    id = "bitmex"

    def __init__(self, symbols: list[str], *, url: str = "wss://ws.bitmex.com/realtime",
                 tables=("orderBookL2", "quote", "trade"), depth: int = 10, l2_interval_ms: int = 0,
                 source_id: str | None = None, max_backoff_s: float = 30.0, keepalive_s: float = 5.0,
                 **kwargs) -> None:
        super().__init__(url, source_id=source_id or "bitmex", depth=depth, l2_interval_ms=l2_interval_ms,
                         max_backoff_s=max_backoff_s, keepalive_s=keepalive_s, **kwargs)
        if not symbols:
            raise ValueError("BitmexSource needs at least one symbol")
        unknown = set(tables) - {"trade", "quote", *_BOOK_TABLES}
        if unknown:
            raise ValueError(f"unsupported BitMEX table(s): {', '.join(sorted(unknown))}")
        self.symbols = list(symbols)
        self.tables = tuple(tables)
        self._book_table = next((t for t in self.tables if t in _BOOK_TABLES), None)
        self.books: dict[str, _IdBook] = {}
        self.live: set[str] = set()                  # symbols whose book had its partial on this connection
        self._seen: dict[str, OrderedDict] = {}      # symbol -> recent trdMatchIDs
        self._last_trade: dict[str, tuple[str, str]] = {}   # symbol -> (trdMatchID, timestamp) last stored
        self._quote_ts: dict[str, tuple] = {}     # symbol -> (ts, bid, bid size, ask, ask size)
        self._reconnected = False
        self.resyncs: list[dict] = []
        self.server_errors: list[str] = []
        self.welcome: dict | None = None

    keepalive_text = "ping"

    # ------------------------------------------------------------------ protocol
    def subscribe_messages(self) -> list[str]:
        return [json.dumps({"op": "subscribe", "args": [f"{t}:{s}" for s in self.symbols]}, separators=(",", ":"))
                for t in self.tables]

    def on_connect(self) -> None:
        self.live.clear()
        self._reconnected = bool(self._last_trade)

    def on_disconnect(self) -> None:
        self.live.clear()

    def resync(self, symbol: str, reason: str) -> None:
        self.live.discard(symbol)
        self.l2_forget(symbol)
        self.resyncs.append({"symbol": symbol, "reason": reason})
        if self._book_table:
            for op in ("unsubscribe", "subscribe"):
                self.send(json.dumps({"op": op, "args": [f"{self._book_table}:{symbol}"]}, separators=(",", ":")))

    # ------------------------------------------------------------------ messages
    def handle(self, text: str, recv_ns: int) -> list[dict]:
        if text == "pong":
            return [self.event("Heartbeat", "*", recv_ns, recv_ns, None, status="pong")]
        m = _decode(text)
        if type(m) is not dict:
            raise ValueError(f"expected a JSON object, got {type(m).__name__}")
        table = m.get("table")
        if table is None:
            if "error" in m:
                msg = f"server error: {m.get('error')} (status {m.get('status')})"
                self.server_errors.append(msg)
                self.stats.error(msg)
                return []
            if "info" in m:
                self.welcome = m
                return []
            if "success" in m:
                if m["success"] is not True:
                    self.stats.error(f"subscription refused: {text[:300]}")
                return []
            raise ValueError("a message with neither table, info, success nor error")
        action, data = m.get("action"), m.get("data")
        if type(data) is not list or action not in ("partial", "insert", "update", "delete"):
            raise ValueError(f"bad table message (action {action!r}, data {type(data).__name__})")
        if table == "trade":
            return self._trades(action, data, recv_ns)
        if table == "quote":
            return self._quotes(data, recv_ns)
        if table in _BOOK_TABLES:
            return self._book(action, data, m.get("filter"), recv_ns)
        return []                                      # a table we did not subscribe to

    def _trades(self, action: str, rows: list, recv_ns: int) -> list[dict]:
        parsed = []
        for r in rows:                                 # validate the whole message first
            side = _SIDES.get(r["side"])
            if side is None:
                raise ValueError(f"trade side must be Buy or Sell, got {r['side']!r}")
            tid = r["trdMatchID"]
            if type(tid) is not str or not tid:
                raise ValueError(f"bad trdMatchID {tid!r}")
            sym = _sym(r)
            parsed.append((sym, tid, r["timestamp"], self.event(
                "Trade", sym, ev.parse_ts(r["timestamp"], "timestamp"), recv_ns, None,
                price=check_decimal(r["price"], "price"), size=check_decimal(r["size"], "size", size=True),
                side=side, trade_id=tid, venue=None, conditions=None)))
        if action == "partial" and self._reconnected:
            by_symbol: dict[str, list] = {}
            for sym, tid, ts, _ in parsed:
                by_symbol.setdefault(sym, []).append((tid, ts))
            for sym, items in by_symbol.items():
                seen = self._seen.get(sym)
                last = self._last_trade.get(sym)
                if last is not None and not any(seen is not None and tid in seen for tid, _ in items):
                    first = min(items, key=lambda x: x[1])
                    self.stats.gaps.append({"symbol": sym, "expected": f"the trade after {last[0]} ({last[1]})",
                                            "got": f"{first[0]} ({first[1]})", "field": "trdMatchID",
                                            "channel": "trade", "missing": None})
        out = []
        for sym, tid, ts, e in parsed:
            seen = self._seen.get(sym)
            if seen is None:
                seen = self._seen[sym] = OrderedDict()
            if tid in seen:
                self.duplicates += 1
                continue
            seen[tid] = None
            if len(seen) > _SEEN_TRADES:
                seen.popitem(last=False)
            self._last_trade[sym] = (tid, ts)
            out.append(e)
        return out

    def _quotes(self, rows: list, recv_ns: int) -> list[dict]:
        out, latest = [], {}
        for r in rows:
            sym = _sym(r)
            ts = ev.parse_ts(r["timestamp"], "timestamp")
            bid, ask = r.get("bidPrice"), r.get("askPrice")
            if bid is None and ask is None:
                continue                              # an empty book: no quote to record
            e = self.event("BboQuote", sym, ts, recv_ns, None,
                           bid_price=None if bid is None else check_decimal(bid, "bidPrice"),
                           bid_size=None if bid is None or r.get("bidSize") is None
                           else check_decimal(r["bidSize"], "bidSize", size=True),
                           ask_price=None if ask is None else check_decimal(ask, "askPrice"),
                           ask_size=None if ask is None or r.get("askSize") is None
                           else check_decimal(r["askSize"], "askSize", size=True),
                           venue=None)
            last = latest.get(sym, self._quote_ts.get(sym))
            key = (ts, e["bid_price"], e["bid_size"], e["ask_price"], e["ask_size"])
            if (last is not None and ts < last[0]) or key == last:
                self.duplicates += 1          # replayed after a reconnect, or the same quote again
                continue
            latest[sym] = key
            out.append(e)
        self._quote_ts.update(latest)
        return out

    def _book(self, action: str, rows: list, flt, recv_ns: int) -> list[dict]:
        changes = []
        for r in rows:                                 # validate the whole message first
            sym = _sym(r)
            oid = r["id"]
            if type(oid) is not int:
                raise ValueError(f"order-book id must be an integer, got {oid!r}")
            side = r.get("side")
            if side not in _SIDES:
                raise ValueError(f"order-book side must be Buy or Sell, got {side!r}")
            price = r.get("price")
            price = None if price is None else check_decimal(price, "price")
            if price is None and action in ("partial", "insert"):
                raise ValueError(f"{action} row without a price")
            size = None if action == "delete" else Decimal(check_decimal(r["size"], "size", size=True))
            ts = ev.parse_ts(r["timestamp"], "timestamp") if r.get("timestamp") is not None else None
            changes.append((sym, oid, side == "Buy", price, size, ts))
        touched: dict[str, int] = {}
        if action == "partial":
            syms = {c[0] for c in changes}
            if type(flt) is dict and type(flt.get("symbol")) is str:
                syms.add(flt["symbol"])
            for sym in syms:
                book = self.books.get(sym)
                if book is None:
                    book = self.books[sym] = _IdBook()
                book.clear()
                self.live.add(sym)
                self.l2_forget(sym)
                touched[sym] = recv_ns
        for sym, oid, is_bid, price, size, ts in changes:
            if sym not in self.live:
                continue                               # before the partial, or stale
            book = self.books[sym]
            try:
                if action == "delete":
                    book.delete(oid)
                else:
                    book.upsert(oid, is_bid, price, size, must_exist=action == "update")
            except KeyError:
                self.stats.error(f"{action} of unknown order-book id {oid} for {sym}: book out of sync")
                self.resync(sym, f"{action} of unknown id {oid}")
                touched.pop(sym, None)
                continue
            touched[sym] = max(touched.get(sym, 0), ts or recv_ns)
        out: list = []
        for sym, ts in touched.items():
            if sym in self.live:
                self.l2_changed(sym, self.books[sym].levels, ts, recv_ns, out)
        return out


def _sym(r: dict) -> str:
    s = r["symbol"]
    if type(s) is not str or not s:
        raise ValueError(f"symbol must be a non-empty string, got {s!r}")
    return s
