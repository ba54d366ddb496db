"""Replay of Bybit order-book dumps (quote-saver.bycsi.com `*_ob500.data`, or the zip holding one).

Each line is one websocket message as Bybit sent it:
``{"topic":"orderbook.500.XRPUSDT","type":"snapshot"|"delta","ts":…,"data":{"s","b":[[px,qty]…],
"a":[…],"u","seq"},"cts":…}``. A snapshot replaces the symbol's book; a delta sets levels
(qty "0" removes one). After every message the reader emits one L2Snapshot of the top `depth`
levels.

- `ts` = `cts` (the matching engine's time of this book state), or `ts` when a line has no `cts`;
  `recv_ts` = `ts` (when Bybit's system published the message; the dump holds no local receive
  time). Both are milliseconds.
- `seq` = `data.u`, the update id: it grows by exactly 1 per message of a stream, so a jump is a
  gap (reported in `stats.gaps`) and `seq` gaps in the archive mean what they say. `data.seq` (the
  cross sequence, shared with other depths and trades, not contiguous) is not kept.

    for asset_class, table in bybit.read(Path("xrpusdt-ob500.data.zip"), depth=10):
        writer.append_table(table)
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pyarrow as pa

from mdcsql import events as ev
from mdcsql.errors import InputError
from mdcsql.sources.book import (drain, NS_PER_MS, STREAM_ERRORS, Batcher, OrderBook, ReplayStats, head_bytes,
                                 note_skip, broken, open_binary, stream_error, where)

FORMAT = "bybit"
DEFAULT_SOURCE = "bybit"
ASSET_CLASS = "crypto"
_MS_MIN, _MS_MAX = ev.MIN_INT_TS // NS_PER_MS, ev.I64_MAX // NS_PER_MS
SEQ_BACK = ("update id u went back (Bybit restarts u at 1 after a service restart): the archive's dedupe may "
            "drop these events as duplicates")


def detect(path: Path) -> bool:
    """True when the first line is a Bybit order-book message (`{"topic":"orderbook.…`)."""
    data = head_bytes(Path(path), 2048, lines=True).lstrip(b"\xef\xbb\xbf").lstrip()
    return data.startswith(b"{") and b'"topic":"orderbook.' in data.split(b"\n", 1)[0]


class _State:
    __slots__ = ("book", "last_u")

    def __init__(self) -> None:
        self.book, self.last_u = OrderBook(), None


def _ms(value, field: str) -> int:
    if type(value) is not int or not _MS_MIN <= value <= _MS_MAX:
        raise InputError(f"{field} must be integer UNIX milliseconds, got {str(value)[:40]!r}", field=field)
    return value * NS_PER_MS


def _levels(value, field: str) -> list[tuple[str, str]]:
    if type(value) is not list:
        raise InputError(f"{field} must be a list of [price, qty] pairs", field=field)
    out = []
    decimal_text = ev.decimal_text
    for i, level in enumerate(value):
        if type(level) is not list or len(level) != 2:
            raise InputError(f"{field}[{i}] must be a [price, qty] pair, got {str(level)[:40]}", field=f"{field}[{i}]")
        p, q = level
        if p is None or q is None:
            raise InputError(f"{field}[{i}] has a null price or qty", field=f"{field}[{i}]")
        try:
            price, size = decimal_text(p, "price"), decimal_text(q, "qty")
        except InputError as exc:
            raise InputError(exc.reason, field=f"{field}[{i}]") from None
        if size[0] == "-":
            raise InputError(f"{field}[{i}] qty must not be negative, got {size}", field=f"{field}[{i}]")
        out.append((price, size))
    return out


def read(path: Path, *, symbol: str | None = None, source: str | None = None, depth: int = 10,
         stats: ReplayStats | None = None) -> Iterator[tuple[str, pa.Table]]:
    """Yield ("crypto", Arrow table of L2Snapshot) in file order: one event per message line.

    :param symbol: overrides `data.s` in the events (books are still kept per `data.s`).
    :param stats: messages = lines, events, gaps (update id jumps, deltas before any snapshot).
    """
    path = Path(path)
    source = source or DEFAULT_SOURCE
    states: dict[str, _State] = {}
    out = Batcher("L2Snapshot")
    try:
        line_no = 0
        with open_binary(path, lines=True) as f:
            lines = iter(f)
            while True:
                try:
                    raw = next(lines, None)
                except STREAM_ERRORS as exc:
                    raise stream_error(exc, str(path), line_no + 1) from None
                if raw is None:
                    break
                line_no += 1
                raw = raw.rstrip(b"\r\n")
                if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                if not raw.strip():
                    continue
                if stats is not None:
                    stats.messages += 1
                try:
                    event = _message(raw, states, symbol, source, depth, stats, path, line_no)
                except InputError as exc:
                    raise where(exc, str(path), line_no) from None
                if event is None:
                    note_skip(stats, "message leaving an empty book")
                    continue
                if stats is not None:
                    stats.events += 1
                if out.add(event):
                    yield ASSET_CLASS, out.take()
            why = broken(f)
            if why:
                raise InputError(why, file=str(path), line=line_no + 1)
    except InputError:
        yield from drain(out, ASSET_CLASS)   # the events completed before the bad line
        raise
    last = out.take()
    if last is not None:
        yield ASSET_CLASS, last


def _message(raw: bytes, states: dict, symbol, source, depth, stats, path, line_no) -> dict | None:
    msg = ev.decode_line(raw)
    kind = msg.get("type")
    if kind not in ("snapshot", "delta"):
        raise InputError(f"type must be snapshot or delta, got {str(kind)[:30]!r}", field="type")
    topic = msg.get("topic")
    if type(topic) is not str or not topic.startswith("orderbook."):
        raise InputError(f"topic must be an orderbook topic, got {str(topic)[:40]!r}", field="topic")
    pub = _ms(msg.get("ts"), "ts")
    cts = msg.get("cts")
    ts = pub if cts is None else _ms(cts, "cts")
    data = msg.get("data")
    if type(data) is not dict:
        raise InputError("data must be an object", field="data")
    sym = data.get("s")
    if type(sym) is not str or not sym:
        raise InputError(f"data.s must be the symbol, got {str(sym)[:30]!r}", field="data.s")
    u = data.get("u")
    if type(u) is not int or not 0 <= u <= ev.I64_MAX:
        raise InputError(f"data.u must be a non-negative integer, got {str(u)[:30]!r}", field="data.u")
    bids, asks = _levels(data.get("b"), "data.b"), _levels(data.get("a"), "data.a")
    state = states.get(sym)
    if state is None:
        state = states[sym] = _State()
    book = state.book
    if state.last_u is not None and u <= state.last_u and hasattr(stats, "warn"):
        stats.warn(SEQ_BACK)
    if kind == "snapshot":
        book.load(bids, asks)
    else:
        if stats is not None and (state.last_u is None or u != state.last_u + 1):
            stats.gaps.append({"symbol": sym, "expected": None if state.last_u is None else state.last_u + 1,
                               "got": u, "ts": ts, "file": str(path), "line": line_no,
                               "reason": "delta before any snapshot" if state.last_u is None
                               else "update id is not the previous + 1"})
        update = book.update
        for price, size in bids:
            update(True, price, size)
        for price, size in asks:
            update(False, price, size)
    state.last_u = u
    return book.l2_event(symbol or sym, source, ts, recv_ts=pub, seq=u, depth=depth)
