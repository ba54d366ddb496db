"""Coinbase Exchange public websocket feed → canonical events (no API key).

Also home of the machinery both live websocket adapters share (``WebSocketSource``: the client
thread, reconnect with jittered exponential backoff, resubscription, batching, error counting,
top-N `L2Snapshot` emission from a `mdcsql.sources.book.OrderBook`).  `bitmex.py` imports it
from here.  See docs/sources-live.md for every decision (taker side, gaps, heartbeats).

Coinbase specifics:

* One ``subscribe`` message per channel, exactly as cryptofeed sends them
  (``{"type":"subscribe","product_ids":[...],"channels":["level2"]}``).
* ``match``/``last_match`` → Trade.  Coinbase's ``side`` is the side of the **maker** order; the
  aggressor (taker) is the other side, so ``side: "sell"`` becomes ``buy``.  ``seq`` = ``trade_id``
  (contiguous per product), not ``sequence`` (see below).
* ``ticker`` → BboQuote (``best_bid``/``best_ask`` and their sizes when present).
* ``snapshot`` + ``l2update`` (channels ``level2`` or ``level2_batch``) → a book per product →
  L2Snapshot of ``depth`` levels, whenever the top ``depth`` levels change (at most every
  ``l2_interval_ms`` per product when that is > 0).
* ``heartbeat`` → Heartbeat (status ``last_trade_id=N``).
* Gaps: on the public channels ``sequence`` is the product's *full-channel* sequence and skips by
  design (the capture goes 333938798 → 333939588 between two consecutive BAND-GBP trades), so a
  jump there is not a loss.  Trades are checked on ``trade_id`` instead, which is contiguous per
  product; a jump is recorded in ``stats.gaps`` and the product's book is marked stale and
  re-requested (unsubscribe + subscribe level2 for that product → a fresh snapshot).
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from typing import Iterator

import msgspec

from mdcsql import events as ev
from mdcsql.errors import InputError
from mdcsql.sources.base import Source
from mdcsql.sources.book import OrderBook

__all__ = ["CoinbaseSource", "WebSocketSource", "backoff_delays", "check_decimal"]

_decode = msgspec.json.Decoder(float_hook=str).decode      # JSON numbers with a fraction stay text


# =================================================================================================
# Shared live-websocket machinery (used by bitmex.py too)
# =================================================================================================
def backoff_delays(min_s: float, max_s: float, *, rng: random.Random | None = None) -> Iterator[float]:
    """Exponential backoff with "equal jitter": attempt k waits uniform(d/2, d), d = min(max_s, min_s·2^k)."""
    rng = rng or random.Random()
    k = 0
    while True:
        d = min(max_s, min_s * (2 ** k))
        yield rng.uniform(d / 2, d)
        if d < max_s:
            k += 1


def check_decimal(value, field: str, *, size: bool = False) -> str:
    """Canonical decimal text of an exchange value (text, int or float text); raises InputError."""
    text = ev.decimal_text(value, field)
    if size and text.startswith("-"):
        raise InputError(f"{field} must not be negative: {text}", field=field)
    return text


class _L2State:
    """Per-symbol L2 emission state: what was last emitted, and a pending (throttled) snapshot."""

    __slots__ = ("last", "last_emit_mono", "pending")

    def __init__(self) -> None:
        self.last = None              # (bids, asks) last emitted
        self.last_emit_mono = 0.0
        self.pending = None           # event dict waiting for the interval


class WebSocketSource(Source):
    """Base of the live websocket adapters.

    A client thread (``websockets.sync.client``) connects, sends ``subscribe_messages()``, and puts
    every received text with its local receive time (``time.time_ns()``) on a bounded queue.
    ``batches()`` (the caller's thread) parses them with ``handle()`` into canonical event dicts
    (validated with ``mdcsql.events.normalize``, so ``canonical = True``) and yields one list per
    group of up to ``max_batch`` queued messages.

    On a lost connection the client reconnects after a jittered exponential backoff
    (``min_backoff_s`` doubling up to ``max_backoff_s``; reset after a connection that delivered
    messages), counts it in ``stats.reconnects`` and sends the subscriptions again.  Subclasses are
    told in stream order (``on_connect`` / ``on_disconnect``) so they can discard books.

    ``idle_stop_s`` ends ``batches()`` when nothing arrived for that long (replays, tests; live
    collection leaves it None).  ``stop()`` ends it from any thread within ~0.25 s; messages
    already received are still parsed and yielded.
    """

    kind = "live"
    asset_class = "crypto"
    canonical = True

    def __init__(self, url: str, *, source_id: str, depth: int = 10, l2_interval_ms: int = 0,
                 min_backoff_s: float = 0.5, max_backoff_s: float = 30.0, idle_stop_s: float | None = None,
                 open_timeout_s: float = 10.0, max_batch: int = 500, queue_size: int = 100_000,
                 max_message_bytes: int = 64 * 1024 * 1024, keepalive_s: float | None = None,
                 connection_heartbeats: bool = True, proxy: str | bool | None = None) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError("depth must be >= 1")
        if min_backoff_s <= 0 or max_backoff_s < min_backoff_s:
            raise ValueError("need 0 < min_backoff_s <= max_backoff_s")
        self.id = source_id
        self.url = url
        self.depth = depth
        self.l2_interval_s = max(0, l2_interval_ms) / 1000.0
        self.min_backoff_s, self.max_backoff_s = min_backoff_s, max_backoff_s
        self.idle_stop_s = idle_stop_s
        self.open_timeout_s = open_timeout_s
        self.max_batch = max_batch
        self.max_message_bytes = max_message_bytes
        self.keepalive_s = keepalive_s
        self.connection_heartbeats = connection_heartbeats
        # proxy=None: websockets' default (environment proxies) except for loopback replays
        self.proxy = proxy if proxy is not None else (None if _is_loopback_url(url) else True)
        # observations dropped as already stored: replayed after a reconnect, or a quote identical
        # to the symbol's previous one at the same instant (the archive would drop those too)
        self.duplicates = 0
        self.connect_failures = 0
        self.last_connect_error: str | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._outbox: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._l2: dict[str, _L2State] = {}
        self._conn_no = 0
        self._connected = False

    # ---------------------------------------------------------------- subclass hooks
    def subscribe_messages(self) -> list[str]:
        raise NotImplementedError

    def handle(self, text: str, recv_ns: int) -> list[dict]:
        """Parse one received message into event dicts (any shape `normalize` accepts); may raise."""
        raise NotImplementedError

    def on_connect(self) -> None:
        """A new connection is up (before its first message)."""

    def on_disconnect(self) -> None:
        """The connection was lost: books are stale until the next snapshot."""

    keepalive_text: str | None = None      # sent after `keepalive_s` of silence (BitMEX: "ping")

    # ---------------------------------------------------------------- helpers for subclasses
    def send(self, text: str) -> None:
        """Queue a message for the server (sent by the client thread, on the current connection)."""
        self._outbox.put(text)

    def event(self, etype: str, symbol: str, ts: int, recv_ns: int | None, seq: int | None, **fields) -> dict:
        return {"type": etype, "symbol": symbol, "source": self.id, "ts": ts, "recv_ts": recv_ns, "seq": seq,
                **fields}

    def l2_changed(self, symbol: str, book: OrderBook, ts: int, recv_ns: int, out: list) -> None:
        """Emit (into `out`) an L2Snapshot of `book` if its top levels changed, honouring the interval."""
        bids, asks = book.top(self.depth)
        st = self._l2.get(symbol)
        if st is None:
            st = self._l2[symbol] = _L2State()
        if (bids, asks) == st.last or (not bids and not asks):
            st.pending = None          # nothing new (or nothing to show): a pending snapshot is obsolete
            return
        e = self.event("L2Snapshot", symbol, ts, recv_ns, None, bids=bids, asks=asks, venue=None)
        now = time.monotonic()
        if self.l2_interval_s and now - st.last_emit_mono < self.l2_interval_s:
            st.pending = e
            return
        st.pending = None
        st.last, st.last_emit_mono = (bids, asks), now
        out.append(e)

    def l2_forget(self, symbol: str | None = None) -> None:
        """Drop pending throttled snapshots (a book went stale); the next fresh book is emitted."""
        for sym, st in self._l2.items():
            if symbol is None or sym == symbol:
                st.pending = None
                st.last = None

    def _flush_l2(self, *, force: bool) -> list[dict]:
        out = []
        now = time.monotonic()
        for st in self._l2.values():
            e = st.pending
            if e is not None and (force or now - st.last_emit_mono >= self.l2_interval_s):
                st.pending = None
                st.last, st.last_emit_mono = (e["bids"], e["asks"]), now
                out.append(e)
        return out

    # ---------------------------------------------------------------- the client thread
    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._client, name=f"mdcsql-ws-{self.id}", daemon=True)
            self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.25)
                return True
            except queue.Full:
                continue
        return False

    def _client(self) -> None:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        delays = backoff_delays(self.min_backoff_s, self.max_backoff_s)
        try:
            while not self._stop.is_set():
                try:
                    ws = connect(self.url, open_timeout=self.open_timeout_s, close_timeout=2,
                                 max_size=self.max_message_bytes, proxy=self.proxy)
                except Exception as exc:          # refused, DNS, TLS, handshake timeout, HTTP 4xx/5xx
                    self.connect_failures += 1
                    self.last_connect_error = f"{type(exc).__name__}: {exc}"
                    self._stop.wait(next(delays))
                    continue
                self._connected = True
                self._conn_no += 1
                if self._conn_no > 1:
                    self.stats.reconnects += 1
                got_any = False
                reason = "closed"
                try:
                    with ws:
                        while not self._outbox.empty():        # resubscribe requests of a dead connection
                            self._outbox.get_nowait()
                        self._put(("up", time.time_ns(), None))
                        for msg in self.subscribe_messages():
                            ws.send(msg)
                        last_rx = time.monotonic()
                        pinged = False
                        while not self._stop.is_set():
                            self._send_outbox(ws)
                            try:
                                raw = ws.recv(timeout=0.25)
                            except TimeoutError:
                                if self.keepalive_s and self.keepalive_text:
                                    idle = time.monotonic() - last_rx
                                    if idle >= 2 * self.keepalive_s and pinged:
                                        reason = f"no reply to keep-alive within {self.keepalive_s:g} s"
                                        break
                                    if idle >= self.keepalive_s and not pinged:
                                        ws.send(self.keepalive_text)
                                        pinged = True
                                continue
                            recv_ns = time.time_ns()
                            last_rx, pinged = time.monotonic(), False
                            got_any = True
                            if not isinstance(raw, str):
                                raw = raw.decode("utf-8", "replace")
                            if not self._put(("msg", recv_ns, raw)):
                                break
                        self._send_outbox(ws)        # requests made while the last messages were parsed
                except ConnectionClosed as exc:
                    reason = f"connection closed ({exc})"
                except Exception as exc:             # a socket error mid-stream: reconnect
                    reason = f"{type(exc).__name__}: {exc}"
                finally:
                    self._connected = False
                if self._stop.is_set():
                    break
                self._put(("down", time.time_ns(), reason))
                if got_any:
                    delays = backoff_delays(self.min_backoff_s, self.max_backoff_s)
                self._stop.wait(next(delays))
        finally:
            try:
                self._queue.put_nowait(("end", time.time_ns(), None))
            except queue.Full:
                pass

    def _send_outbox(self, ws) -> None:
        while True:
            try:
                text = self._outbox.get_nowait()
            except queue.Empty:
                return
            ws.send(text)

    # ---------------------------------------------------------------- the caller's side
    def _dispatch(self, item, out: list) -> bool:
        kind, recv_ns, payload = item
        if kind == "msg":
            self.stats.messages += 1
            try:
                raw_events = self.handle(payload, recv_ns)
            except Exception as exc:
                self.stats.error(f"{type(exc).__name__}: {exc} | message: {payload[:300]}")
                return True
            for e in raw_events:
                try:
                    out.append(ev.normalize(e))
                except InputError as exc:
                    self.stats.error(f"{exc} | message: {payload[:300]}")
            return True
        if kind == "up":
            self.on_connect()
            if self.connection_heartbeats:
                out.append(ev.normalize(self.event("Heartbeat", "*", recv_ns, recv_ns, None,
                                                   status=f"connected {self.url}")))
            return True
        if kind == "down":
            self.on_disconnect()
            self.l2_forget()
            if self.connection_heartbeats:
                out.append(ev.normalize(self.event("Heartbeat", "*", recv_ns, recv_ns, None,
                                                   status=f"disconnected: {payload}"[:500])))
            return True
        return False       # "end"

    def batches(self) -> Iterator[list]:
        self._start()
        last_item = time.monotonic()
        try:
            while True:
                wait = 0.25
                if self.l2_interval_s:
                    wait = min(wait, self.l2_interval_s)
                try:
                    item = self._queue.get(timeout=wait)
                except queue.Empty:
                    out = self._flush_l2(force=False) if self.l2_interval_s else []
                    if out:
                        self.stats.events += len(out)
                        yield out
                    if self.idle_stop_s is not None and time.monotonic() - last_item >= self.idle_stop_s:
                        self._stop.set()
                    # stopped, and nothing more can arrive: the client thread is gone, or it is
                    # between connections (a connect attempt may block for `open_timeout_s`)
                    if self._stop.is_set() and self._queue.empty() and \
                            (not self._connected or self._thread is None or not self._thread.is_alive()):
                        break
                    continue
                last_item = time.monotonic()
                out: list = []
                alive = self._dispatch(item, out)
                n = 1
                while alive and n < self.max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    alive = self._dispatch(item, out)
                    n += 1
                if self.l2_interval_s:
                    out.extend(self._flush_l2(force=False))
                if out:
                    self.stats.events += len(out)
                    yield out
                if not alive:
                    break
            out = self._flush_l2(force=True)
            if out:
                self.stats.events += len(out)
                yield out
        finally:
            self._stop.set()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _is_loopback_url(url: str) -> bool:
    from urllib.parse import urlsplit
    import ipaddress
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _IdTracker:
    """Contiguous ids of one stream: new / duplicate / gap, with late fills of ids inside a gap."""

    __slots__ = ("last", "missing")
    MAX_MISSING = 100_000

    def __init__(self) -> None:
        self.last: int | None = None
        self.missing: set[int] = set()

    def admit(self, i: int) -> tuple[bool, tuple[int, int] | None]:
        """(is new, (expected, got) when `i` skipped ids)."""
        last = self.last
        if last is None or i == last + 1:
            self.last = i
            return True, None
        if i > last:
            if i - last - 1 <= self.MAX_MISSING and len(self.missing) <= self.MAX_MISSING:
                self.missing.update(range(last + 1, i))
            self.last = i
            return True, (last + 1, i)
        if i in self.missing:
            self.missing.discard(i)
            return True, None
        return False, None


# =================================================================================================
# Coinbase
# =================================================================================================
_TAKER = {"buy": "sell", "sell": "buy"}       # Coinbase match `side` is the maker's side
_L2_CHANNELS = ("level2", "level2_batch")


class CoinbaseSource(WebSocketSource):
    """Coinbase Exchange market data: trades, ticker BBO, level-2 book, heartbeats (no API key).

    ``channels`` default uses ``level2_batch`` (public; Coinbase now requires authentication for
    ``level2``, whose messages have the same shape — pass ``"level2"`` to replay older captures or
    with an authenticating proxy).
    """

    id = "coinbase"

    def __init__(self, products: list[str], *, url: str = "wss://ws-feed.exchange.coinbase.com",
                 channels=("matches", "ticker", "level2_batch", "heartbeat"), depth: int = 10,
                 l2_interval_ms: int = 0, source_id: str | None = None, max_backoff_s: float = 30.0,
                 **kwargs) -> None:
        super().__init__(url, source_id=source_id or "coinbase", depth=depth, l2_interval_ms=l2_interval_ms,
                         max_backoff_s=max_backoff_s, **kwargs)
        if not products:
            raise ValueError("CoinbaseSource needs at least one product id")
        unknown = set(channels) - {"matches", "ticker", "level2", "level2_batch", "heartbeat"}
        if unknown:
            raise ValueError(f"unsupported Coinbase channel(s): {', '.join(sorted(unknown))}")
        self.products = list(products)
        self.channels = tuple(channels)
        self._l2_channel = next((c for c in self.channels if c in _L2_CHANNELS), None)
        self.books: dict[str, OrderBook] = {}
        self.live: set[str] = set()                 # products whose book is in sync (snapshot seen)
        self._trades: dict[str, _IdTracker] = {}
        self._ticker_seq: dict[str, int] = {}
        self._last_quote: dict[str, tuple] = {}
        self._hb_pending: dict[str, int] = {}
        self.resyncs: list[dict] = []               # book rebuild requests: {symbol, reason}
        self.server_errors: list[str] = []

    # ------------------------------------------------------------------ protocol
    def subscribe_messages(self) -> list[str]:
        return [_compact({"type": "subscribe", "product_ids": self.products, "channels": [c]})
                for c in self.channels]

    def on_connect(self) -> None:
        self.live.clear()
        self._hb_pending.clear()

    def on_disconnect(self) -> None:
        self.live.clear()

    def resync(self, product: str, reason: str) -> None:
        """Mark the product's book stale and ask Coinbase for a fresh snapshot of it."""
        self.live.discard(product)
        self.l2_forget(product)
        self.resyncs.append({"symbol": product, "reason": reason})
        if self._l2_channel:
            for op in ("unsubscribe", "subscribe"):
                self.send(_compact({"type": op, "product_ids": [product], "channels": [self._l2_channel]}))

    # ------------------------------------------------------------------ messages
    def handle(self, text: str, recv_ns: int) -> list[dict]:
        m = _decode(text)
        if type(m) is not dict:
            raise ValueError(f"expected a JSON object, got {type(m).__name__}")
        t = m.get("type")
        fn = self._HANDLERS.get(t)
        if fn is None:
            if t == "error":
                msg = f"server error: {m.get('message')} ({m.get('reason')})"
                self.server_errors.append(msg)
                self.stats.error(msg)
                return []
            if t in ("subscriptions", "status"):
                return []
            raise ValueError(f"unexpected message type {t!r}")
        return fn(self, m, recv_ns)

    def _match(self, m: dict, recv_ns: int) -> list[dict]:
        product = _str(m, "product_id")
        trade_id = m["trade_id"]
        if type(trade_id) is not int:
            raise ValueError(f"trade_id must be an integer, got {trade_id!r}")
        maker = m["side"]
        if maker not in _TAKER:
            raise ValueError(f"side must be buy or sell, got {maker!r}")
        e = self.event("Trade", product, ev.parse_ts(m["time"], "time"), recv_ns, trade_id,
                       price=check_decimal(m["price"], "price"), size=check_decimal(m["size"], "size", size=True),
                       side=_TAKER[maker], trade_id=str(trade_id), venue=None, conditions=None)
        tracker = self._trades.get(product)
        if tracker is None:
            tracker = self._trades[product] = _IdTracker()
        new, gap = tracker.admit(trade_id)
        if not new:
            self.duplicates += 1
            return []
        if gap is not None:
            self._gap(product, gap[0], gap[1], "matches", [gap[0], gap[1] - 1])
        return [e]

    def _gap(self, product: str, expected: int, got: int, channel: str, missing: list[int]) -> None:
        """Record trades lost upstream (ids `missing` = [first, last]) and rebuild the product's book."""
        self.stats.gaps.append({"symbol": product, "expected": expected, "got": got, "field": "trade_id",
                                "channel": channel, "missing": missing})
        if product in self.live:
            self.resync(product, f"trade_id gap: expected {expected}, got {got}")

    def _ticker(self, m: dict, recv_ns: int) -> list[dict]:
        product = _str(m, "product_id")
        seq = m.get("sequence")
        if type(seq) is int:
            last = self._ticker_seq.get(product)
            if last is not None and seq <= last:
                self.duplicates += 1
                return []
        bid, ask = m.get("best_bid"), m.get("best_ask")
        if bid is None and ask is None:
            raise ValueError("ticker without best_bid and best_ask")
        ts = ev.parse_ts(m["time"], "time") if m.get("time") is not None else recv_ns
        e = self.event("BboQuote", product, ts, recv_ns, None,
                       bid_price=None if bid is None else check_decimal(bid, "best_bid"),
                       bid_size=_opt_size(m.get("best_bid_size"), "best_bid_size") if bid is not None else None,
                       ask_price=None if ask is None else check_decimal(ask, "best_ask"),
                       ask_size=_opt_size(m.get("best_ask_size"), "best_ask_size") if ask is not None else None,
                       venue=None)
        if type(seq) is int:
            self._ticker_seq[product] = seq
        key = (ts, e["bid_price"], e["bid_size"], e["ask_price"], e["ask_size"])
        if self._last_quote.get(product) == key:
            self.duplicates += 1          # a cascade of matches: the same BBO at the same instant, once
            return []
        self._last_quote[product] = key
        return [e]

    def _snapshot(self, m: dict, recv_ns: int) -> list[dict]:
        product = _str(m, "product_id")
        bids = _levels(m.get("bids"), "bids")
        asks = _levels(m.get("asks"), "asks")
        book = self.books.get(product)
        if book is None:
            book = self.books[product] = OrderBook()
        book.clear()
        for p, s in bids:
            book.set(True, p, s)
        for p, s in asks:
            book.set(False, p, s)
        self.live.add(product)
        self.l2_forget(product)
        ts = ev.parse_ts(m["time"], "time") if m.get("time") is not None else recv_ns
        out: list = []
        self.l2_changed(product, book, ts, recv_ns, out)
        return out

    def _l2update(self, m: dict, recv_ns: int) -> list[dict]:
        product = _str(m, "product_id")
        changes = m["changes"]
        if type(changes) is not list:
            raise ValueError("changes must be a list")
        parsed = []
        for ch in changes:                      # validate everything before touching the book
            if type(ch) is not list or len(ch) < 3 or ch[0] not in ("buy", "sell"):
                raise ValueError(f"bad change {ch!r}")
            parsed.append((ch[0] == "buy", check_decimal(ch[1], "price"), check_decimal(ch[2], "size", size=True)))
        ts = ev.parse_ts(m["time"], "time")
        if product not in self.live:            # before the snapshot or while stale: nothing to apply to
            return []
        book = self.books[product]
        for is_bid, p, s in parsed:
            book.set(is_bid, p, s)
        out: list = []
        self.l2_changed(product, book, ts, recv_ns, out)
        return out

    def _heartbeat(self, m: dict, recv_ns: int) -> list[dict]:
        product = _str(m, "product_id")
        last_trade = m.get("last_trade_id")
        seq = m.get("sequence")
        ts = ev.parse_ts(m["time"], "time")
        if type(last_trade) is int and "matches" in self.channels:
            self._check_heartbeat(product, last_trade)
        status = f"last_trade_id={last_trade}" + (f" sequence={seq}" if seq is not None else "")
        return [self.event("Heartbeat", product, ts, recv_ns, None, status=status)]

    def _check_heartbeat(self, product: str, last_trade: int) -> None:
        """A trade the heartbeat reports but the matches channel never delivered by the next heartbeat is lost."""
        tracker = self._trades.get(product)
        if tracker is None or tracker.last is None:
            return
        pending = self._hb_pending.pop(product, None)
        if pending is not None and tracker.last < pending:
            expected = tracker.last + 1
            tracker.missing.update(range(expected, pending + 1))   # a late arrival is still accepted
            tracker.last = pending
            self._gap(product, expected, pending, "heartbeat", [expected, pending])
        if last_trade > tracker.last:
            self._hb_pending[product] = last_trade

    _HANDLERS = {"match": _match, "last_match": _match, "ticker": _ticker, "snapshot": _snapshot,
                 "l2update": _l2update, "heartbeat": _heartbeat}


# ---- small helpers ------------------------------------------------------------------------------
def _compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _str(m: dict, key: str) -> str:
    v = m[key]
    if type(v) is not str or not v:
        raise ValueError(f"{key} must be a non-empty string, got {v!r}")
    return v


def _opt_size(v, field: str) -> str | None:
    return None if v is None else check_decimal(v, field, size=True)


def _levels(v, field: str) -> list[tuple[str, str]]:
    if type(v) is not list:
        raise ValueError(f"{field} must be a list")
    out = []
    for lv in v:
        if type(lv) is not list or len(lv) < 2:
            raise ValueError(f"bad {field} level {lv!r}")
        out.append((check_decimal(lv[0], "price"), check_decimal(lv[1], "size", size=True)))
    return out


