"""Replay of Binance public data files (data.binance.vision): order-book depth CSVs and klines.

Depth (`T_DEPTH`, futures): header ``symbol,timestamp,first_update_id,last_update_id,side,
update_type,price,qty,pu``. Rows of one `update_type` and update-id range are one message:
`snap` rows are a snapshot (the book is replaced), `set` rows a diff (qty 0 deletes the level).
The reader keeps the book and emits one L2Snapshot of the top `depth` levels per message, with
`seq` = `last_update_id`. Sequence gaps (`pu` ≠ the previous message's `last_update_id`, diffs
before any snapshot) are reported in `stats.gaps`; the diff is still applied.

Klines: no header (or the newer header line), 12 columns, named ``SYMBOL-INTERVAL-DATE.csv``;
one HistoricalBar per row, `ts` = open time. Times are milliseconds (or microseconds, as Binance
spot files from 2025 on: any value ≥ 10¹⁴ is taken as µs). Files may be plain, gzip, zstd or the
zip Binance ships.

    for asset_class, table in binance.read_many([snap_csv, update_csv], stats=stats):
        writer.append_table(table)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Iterator

import pyarrow as pa

from mdcsql import events as ev
from mdcsql.errors import InputError
from mdcsql.sources.book import (drain, NS_PER_MS, NS_PER_US, Batcher, OrderBook, ReplayStats, csv_rows, head_bytes,
                                 note_skip, where)

FORMAT = "binance"
DEFAULT_SOURCE = "binance"
ASSET_CLASS = "crypto"

DEPTH_HEADER = ["symbol", "timestamp", "first_update_id", "last_update_id", "side", "update_type", "price", "qty",
                "pu"]
KLINE_COLUMNS = ["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
                 "taker_buy_volume", "taker_buy_quote_volume", "ignore"]
KLINE_NAME_RE = re.compile(r"(?P<symbol>[A-Z0-9]+)-(?P<interval>[0-9]+(?:s|m|h|d|w|M|mo))-[0-9]{4}-[0-9]{2}"
                           r"(?:-[0-9]{2})?\.(?:csv|zip|csv\.gz|csv\.zst)")
SEQ_BACK = ("last_update_id went back: seq (= last_update_id) repeats or decreases, and the archive's dedupe "
            "may drop these events as duplicates")
US_FROM = 10**14          # a timestamp ≥ this is microseconds, below it milliseconds
_DIGITS = re.compile(r"[0-9]+").fullmatch


def _first_line(data: bytes) -> list[str]:
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    if line.startswith(b"\xef\xbb\xbf"):
        line = line[3:]
    return line.decode("ascii", "replace").split(",")


def _kind(path: Path, data: bytes) -> str | None:
    first = _first_line(data)
    if first == DEPTH_HEADER:
        return "depth"
    if len(first) == 12 and (first == KLINE_COLUMNS or (_DIGITS(first[0]) and _DIGITS(first[6]))):
        return "klines"
    return None


def detect(path: Path) -> bool:
    """True for a Binance depth CSV (by its header) or a klines CSV (12 columns, numeric open/close time)."""
    path = Path(path)
    return _kind(path, head_bytes(path, 4096, lines=True)) is not None


def read(path: Path, *, symbol: str | None = None, source: str | None = None, depth: int = 10,
         stats: ReplayStats | None = None) -> Iterator[tuple[str, pa.Table]]:
    """Yield ("crypto", canonical Arrow table) in file order: L2Snapshot for depth files, HistoricalBar for klines.

    A depth file read alone starts from an empty book: diffs before the first snapshot are applied
    to it (and reported as a gap), so replay the snapshot file first with `read_many`.
    """
    path = Path(path)
    kind = _kind(path, head_bytes(path, 4096, lines=True))
    if kind is None:
        raise InputError("not a Binance depth or klines CSV", file=str(path), line=1)
    if kind == "depth":
        yield from read_many([path], symbol=symbol, source=source, depth=depth, stats=stats)
    else:
        yield from _read_klines(path, symbol, source or DEFAULT_SOURCE, stats)


# ---- depth --------------------------------------------------------------------------------------
class _DepthState:
    __slots__ = ("book", "last_u", "after_snapshot")

    def __init__(self) -> None:
        self.book = OrderBook()
        self.last_u: int | None = None     # last_update_id of the last message applied
        self.after_snapshot = False        # the next diff is the first after a snapshot


def _update_id(text: str, column: str) -> int:
    if not _DIGITS(text):
        raise InputError(f"{column} must be a non-negative integer, got {text[:30]!r}", field=column)
    return int(text)


def _time_ns(text: str, column: str) -> int:
    if not _DIGITS(text):
        raise InputError(f"{column} must be integer milliseconds, got {text[:30]!r}", field=column)
    t = int(text)
    ns = t * NS_PER_US if t >= US_FROM else t * NS_PER_MS
    if not ev.MIN_INT_TS <= ns <= ev.I64_MAX:
        raise InputError(f"{column} {t} is out of range for a UNIX time in ms or µs", field=column)
    return ns


def read_many(paths: Iterable[Path], *, symbol: str | None = None, source: str | None = None, depth: int = 10,
              stats: ReplayStats | None = None) -> Iterator[tuple[str, pa.Table]]:
    """Replay depth files in the given order through one book per symbol (snapshot file, then updates)."""
    source = source or DEFAULT_SOURCE
    states: dict[str, _DepthState] = {}
    out = Batcher("L2Snapshot")
    decimal_text = ev.decimal_text
    try:
        for path in paths:
            path = Path(path)
            msg = None        # (key, state, symbol, ts ns, first id, last id, pu, line) of the message being read
            skipping = False
            for line, row in csv_rows(path, DEPTH_HEADER):
                if stats is not None:
                    stats.messages += 1
                sym, ts_text, first_text, last_text, side, utype, p, q, pu_text = row
                key = (sym, utype, first_text, last_text)
                try:
                    if msg is None or key != msg[0]:
                        if msg is not None and not skipping and _emit(msg, symbol, source, depth, out, stats):
                            yield ASSET_CLASS, out.take()
                        if not sym:
                            raise InputError("missing symbol", field="symbol")
                        if utype not in ("snap", "set"):
                            raise InputError(f"update_type must be snap or set, got {utype[:20]!r}",
                                             field="update_type")
                        ts = _time_ns(ts_text, "timestamp")
                        first_id = _update_id(first_text, "first_update_id")
                        last_id = _update_id(last_text, "last_update_id")
                        pu = None if pu_text in ("", "-1") else _update_id(pu_text, "pu")
                        state = states.get(sym)
                        if state is None:
                            state = states[sym] = _DepthState()
                        skipping = _start_message(state, utype, first_id, last_id, pu, sym, ts, path, line, stats)
                        msg = (key, state, sym, ts, first_id, last_id, pu, line)
                    if side not in ("a", "b"):
                        raise InputError(f"side must be a or b, got {side[:20]!r}", field="side")
                    price = decimal_text(p, "price")
                    size = decimal_text(q, "qty")
                    if size[0] == "-":
                        raise InputError(f"qty must not be negative, got {size}", field="qty")
                except InputError as exc:
                    raise where(exc, str(path), line) from None
                if skipping:
                    note_skip(stats, "depth row older than the snapshot")
                    continue
                msg[1].book.update(side == "b", price, size)
            if msg is not None and not skipping:
                _emit(msg, symbol, source, depth, out, stats)
    except InputError:
        yield from drain(out, ASSET_CLASS)   # the events completed before the bad line
        raise
    last = out.take()
    if last is not None:
        yield ASSET_CLASS, last


def _start_message(state: _DepthState, utype: str, first_id: int, last_id: int, pu: int | None, sym: str, ts: int,
                   path: Path, line: int, stats) -> bool:
    """Check a message's place in the update-id chain; True when it is stale and to be skipped."""
    expected = state.last_u
    if utype == "snap":
        if expected is not None and last_id <= expected:
            _warn(stats, SEQ_BACK)
        state.book.clear()
        state.after_snapshot = True
        state.last_u = last_id
        return False
    if expected is None:                             # diffs before any snapshot: report once, then chain-check
        if stats is not None:
            stats.gaps.append({"symbol": sym, "expected": None, "got": pu if pu is not None else first_id,
                               "ts": ts, "file": str(path), "line": line, "reason": "diff before any snapshot"})
        state.last_u = last_id
        return False
    if state.after_snapshot:
        if last_id < expected:                       # wholly older than the snapshot: Binance says drop it
            return True
        ok = first_id <= expected <= last_id or pu == expected
    else:
        if last_id <= expected:
            _warn(stats, SEQ_BACK)
        ok = pu == expected if pu is not None else first_id == expected + 1   # no pu (spot): ids contiguous
    if not ok and stats is not None:
        stats.gaps.append({"symbol": sym, "expected": expected, "got": pu if pu is not None else first_id,
                           "ts": ts, "file": str(path), "line": line,
                           "reason": "pu is not the previous last_update_id" if pu is not None
                           else "first_update_id is not the previous last_update_id + 1"})
    state.after_snapshot = False
    state.last_u = last_id
    return False


def _warn(stats, reason: str) -> None:
    if stats is not None and hasattr(stats, "warn"):
        stats.warn(reason)


def _emit(msg, symbol, source, depth, out: Batcher, stats) -> bool:
    _key, state, sym, ts, _first, last_id, _pu, _line = msg
    event = state.book.l2_event(symbol or sym, source, ts, seq=last_id, depth=depth)
    if event is None:
        note_skip(stats, "depth message leaving an empty book")
        return False
    if stats is not None:
        stats.events += 1
    return out.add(event)


# ---- klines -------------------------------------------------------------------------------------
_UNIT_MS = (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000))


def interval_of(open_ns: int, close_ns: int) -> str | None:
    """The canonical interval of a kline from its open and close time (close = next open - 1 unit)."""
    span_ms = (close_ns - open_ns) // NS_PER_MS + 1
    for unit, ms in _UNIT_MS:
        if span_ms % ms == 0 and span_ms >= ms:
            return f"{span_ms // ms}{unit}"
    if 28 * 86_400_000 <= span_ms <= 31 * 86_400_000:
        return "1mo"
    return None


def _read_klines(path: Path, symbol: str | None, source: str, stats) -> Iterator[tuple[str, pa.Table]]:
    m = KLINE_NAME_RE.fullmatch(path.name)
    symbol = symbol or (m and m.group("symbol"))
    if not symbol:
        raise InputError("cannot tell the symbol of a klines file not named SYMBOL-INTERVAL-DATE.csv; pass symbol=",
                         file=str(path))
    interval = None
    if m:
        interval = m.group("interval")
        interval = interval[:-1] + "mo" if interval.endswith("M") else interval
    out = Batcher("HistoricalBar")
    first = True
    try:
        for line, row in csv_rows(path, None, 12):
            if first and row == KLINE_COLUMNS:
                first = False
                continue
            first = False
            if stats is not None:
                stats.messages += 1
            try:
                ts = _time_ns(row[0], "open_time")
                bar_interval = interval
                if bar_interval is None:
                    bar_interval = interval_of(ts, _time_ns(row[6], "close_time"))
                    if bar_interval is None:
                        raise InputError("cannot tell the interval from open_time and close_time", field="close_time")
                event = {"type": "HistoricalBar", "symbol": symbol, "source": source, "ts": ts, "recv_ts": None,
                         "seq": None, "open": row[1], "high": row[2], "low": row[3], "close": row[4], "volume": row[5],
                         "interval": bar_interval}
                event = ev.normalize(event)
            except InputError as exc:
                raise where(exc, str(path), line) from None
            if stats is not None:
                stats.events += 1
            if out.add(event):
                yield ASSET_CLASS, out.take()
    except InputError:
        yield from drain(out, ASSET_CLASS)   # the events completed before the bad line
        raise
    last = out.take()
    if last is not None:
        yield ASSET_CLASS, last
