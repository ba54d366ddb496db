"""Replay of Tardis.dev CSV files (datasets API): trades, quotes, book_snapshot_N, incremental_book_L2.

One file is one data type (told apart by its header line), plain or gzip/zstd-compressed, and
usually one symbol. Timestamps are UNIX microseconds (`timestamp` = exchange time → `ts`,
`local_timestamp` = Tardis' receive time → `recv_ts`). Tardis has no sequence numbers, so `seq`
is a deterministic per-file ordinal: ``day × 10¹² + N × 10⁹ + n``, where `day` is the UTC day number
of the file's first row, `N` the depth of a book_snapshot_N file (0 for the other types) and `n`
counts the events of each symbol from 1 (see docs/sources-feeds.md for why).

    for asset_class, table in tardis.read(Path("bitmex_trades_XBTUSD.csv")):
        writer.append_table(table)

trades and quotes go through pyarrow's CSV reader and `normalize_table` (vectorised); the book
formats are read row by row. A bad row raises `InputError` with the file, the line and the CSV
column; events of the batches before it have already been yielded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from mdcsql import events as ev
from mdcsql.errors import InputError
from mdcsql.sources.book import (drain, NS_PER_US, STREAM_ERRORS, Batcher, OrderBook, ReplayStats, day_seq_base,
                                 csv_rows, head_bytes, broken, note_skip, open_binary, where)

FORMAT = "tardis"
DEFAULT_SOURCE = "tardis"
ASSET_CLASS = "crypto"

_COMMON = ["exchange", "symbol", "timestamp", "local_timestamp"]
TRADES = _COMMON + ["id", "side", "price", "amount"]
QUOTES = _COMMON + ["ask_amount", "ask_price", "bid_price", "bid_amount"]
INCREMENTAL = _COMMON + ["is_snapshot", "side", "price", "amount"]
_LEVEL_RE = re.compile(r"(asks|bids)\[(\d+)\]\.(price|amount)")

# canonical field → Tardis column, to name the column in errors
_TRADE_COLS = {"ts": "timestamp", "recv_ts": "local_timestamp", "trade_id": "id", "size": "amount",
               "venue": "exchange", "price": "price", "side": "side", "symbol": "symbol"}
_QUOTE_COLS = {"ts": "timestamp", "recv_ts": "local_timestamp", "bid_size": "bid_amount", "ask_size": "ask_amount",
               "bid_price": "bid_price", "ask_price": "ask_price", "venue": "exchange", "symbol": "symbol"}
SEQ_KIND = 10**9         # seq = day × 10¹² + N × 10⁹ + ordinal (N: book_snapshot depth, else 0)
MIN_US = 10**14          # µs timestamps below this (before 1973) are seconds or milliseconds by mistake
MAX_US = (2**63 - 1) // NS_PER_US


def _kind(header: list[str]) -> str | None:
    if header == TRADES:
        return "trades"
    if header == QUOTES:
        return "quotes"
    if header == INCREMENTAL:
        return "incremental_book_L2"
    if header[:4] == _COMMON and len(header) > 4 and (len(header) - 4) % 4 == 0:
        n = (len(header) - 4) // 4
        expect = [f"{s}[{i}].{f}" for i in range(n) for s in ("asks", "bids") for f in ("price", "amount")]
        if header[4:] == expect:
            return f"book_snapshot_{n}"
    return None


def _header(data: bytes) -> list[str] | None:
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    if line.startswith(b"\xef\xbb\xbf"):
        line = line[3:]
    try:
        return line.decode("ascii").split(",")
    except UnicodeDecodeError:
        return None


def detect(path: Path) -> bool:
    """True for a Tardis CSV (plain, .gz or .zst) whose header is one of the supported data types."""
    data = head_bytes(Path(path), 8192, lines=True)
    if b"\n" not in data and len(data) >= 8192:
        return False
    header = _header(data)
    return header is not None and _kind(header) is not None


def read(path: Path, *, symbol: str | None = None, source: str | None = None, depth: int = 10,
         stats: ReplayStats | None = None) -> Iterator[tuple[str, pa.Table]]:
    """Yield ("crypto", canonical Arrow table of one event type) in file order.

    :param symbol: overrides the file's `symbol` column in the events.
    :param source: the events' source (default "tardis"); the exchange goes into `venue`.
    :param depth: levels per L2Snapshot emitted from incremental_book_L2 (book_snapshot files keep all
                  the levels they give).
    :param stats: filled in as the file is read (messages = CSV rows, events, skips).
    """
    path = Path(path)
    source = source or DEFAULT_SOURCE
    with open_binary(path, lines=True) as f:
        first = f.readline()
        why = broken(f) if not first.endswith(b"\n") else None
    if why:
        raise InputError(why, file=str(path), line=1)
    header = _header(first)
    if header is None or _kind(header) is None:
        raise InputError(f"not a supported Tardis CSV: header {','.join(header or [])[:120]!r}",
                         file=str(path), line=1)
    kind = _kind(header)
    if kind in ("trades", "quotes"):
        yield from _read_flat(path, kind, header, symbol, source, stats)
    elif kind == "incremental_book_L2":
        yield from _read_incremental(path, symbol, source, depth, stats)
    else:
        yield from _read_snapshots(path, header, symbol, source, stats)


# ---- trades and quotes: the vectorised path -----------------------------------------------------
def _read_flat(path, kind, header, symbol, source, stats) -> Iterator[tuple[str, pa.Table]]:
    etype = "Trade" if kind == "trades" else "BboQuote"
    types = {c: pa.string() for c in header}
    types["timestamp"] = types["local_timestamp"] = pa.int64()
    convert = pacsv.ConvertOptions(column_types=types, null_values=[""], strings_can_be_null=True,
                                   quoted_strings_can_be_null=True)
    counters: dict[str, int] = {}
    base = None
    done = 0
    with open_binary(path, lines=True) as f:
        try:
            reader = pacsv.open_csv(f, read_options=pacsv.ReadOptions(block_size=4 << 20), convert_options=convert)
            for batch in reader:
                n = batch.num_rows
                if n == 0:
                    continue
                ts_us, recv_us = batch.column("timestamp"), batch.column("local_timestamp")
                if (ts_us.null_count or pc.min(ts_us).as_py() < MIN_US or pc.max(ts_us).as_py() > MAX_US
                        or (recv_us.null_count < n and (pc.min(recv_us).as_py() < MIN_US
                                                        or pc.max(recv_us).as_py() > MAX_US))):
                    raise _Slow()
                if base is None:
                    base = day_seq_base(ts_us[0].as_py() * NS_PER_US)
                if etype == "BboQuote":
                    empty = pc.and_(batch.column("bid_price").is_null(), batch.column("ask_price").is_null())
                    skipped = pc.sum(empty).as_py() or 0
                    if skipped:
                        note_skip(stats, "quote row with neither bid nor ask", skipped)
                        if stats is not None:
                            stats.messages += skipped
                        batch = batch.filter(pc.invert(empty))
                        n -= skipped
                        if n == 0:
                            continue
                        ts_us, recv_us = batch.column("timestamp"), batch.column("local_timestamp")
                sym_col = pa.repeat(symbol, n) if symbol else batch.column("symbol")
                cols = {"symbol": sym_col, "source": pa.repeat(source, n),
                        "ts": pc.multiply(ts_us, NS_PER_US), "recv_ts": pc.multiply(recv_us, NS_PER_US),
                        "seq": _ordinals(sym_col, counters, base)}
                if etype == "Trade":
                    cols.update(price=batch.column("price"), size=batch.column("amount"), side=batch.column("side"),
                                trade_id=batch.column("id"), venue=batch.column("exchange"))
                else:
                    cols.update(bid_price=batch.column("bid_price"), bid_size=batch.column("bid_amount"),
                                ask_price=batch.column("ask_price"), ask_size=batch.column("ask_amount"),
                                venue=batch.column("exchange"))
                try:
                    table = ev.normalize_table(pa.table(cols), type=etype)
                except InputError:
                    raise _Slow() from None
                done += n
                if stats is not None:
                    stats.messages += n
                    stats.events += n
                yield ASSET_CLASS, table
        except (_Slow, pa.ArrowInvalid, *STREAM_ERRORS):
            pass
        else:
            if not broken(f):
                return
    # Something in the file is wrong: find the exact line and column row by row, then raise.
    _locate_error(path, kind, symbol, source)
    raise InputError(f"malformed Tardis CSV after row {done}", file=str(path))


class _Slow(Exception):
    """The vectorised path met a bad value; the row-by-row path names it exactly."""


def _ordinals(sym_col: pa.Array, counters: dict, base: int) -> pa.Array:
    """base + 1-based running count per symbol (the counters carry over between batches)."""
    n = len(sym_col)
    uniq = pc.unique(sym_col).to_pylist()
    if len(uniq) == 1:
        start = counters.get(uniq[0], 0)
        counters[uniq[0]] = start + n
        _check_ordinal(start + n)
        return pa.array(np.arange(base + start + 1, base + start + n + 1, dtype=np.int64))
    out = np.empty(n, dtype=np.int64)
    for i, s in enumerate(sym_col.to_pylist()):
        c = counters.get(s, 0) + 1
        counters[s] = c
        out[i] = base + c
    _check_ordinal(max(counters.values()))
    return pa.array(out)


def _check_ordinal(n: int) -> None:
    if n >= SEQ_KIND:
        raise InputError(f"more than {SEQ_KIND - 1} events of one symbol in one file: the seq scheme "
                         f"(day × 10^12 + N × 10^9 + ordinal) cannot number them")


def _us(text: str, column: str) -> int:
    if not text.isdigit():
        raise InputError(f"{column} must be integer microseconds, got {text[:40]!r}", field=column)
    us = int(text)
    if not MIN_US <= us <= MAX_US:
        raise InputError(f"{column} {us} is not UNIX microseconds (expected 10^14..{MAX_US})", field=column)
    return us


def _locate_error(path: Path, kind: str, symbol, source) -> None:
    """Validate row by row, as the vectorised path does, and raise at the first bad line."""
    header = TRADES if kind == "trades" else QUOTES
    colmap = _TRADE_COLS if kind == "trades" else _QUOTE_COLS
    for line, row in csv_rows(path, None, len(header), skip_first=True):
        r = dict(zip(header, row))
        try:
            ts = _us(r["timestamp"], "timestamp")
            recv = _us(r["local_timestamp"], "local_timestamp") if r["local_timestamp"] else None
            e = {"symbol": symbol or r["symbol"] or None, "source": source, "ts": ts * NS_PER_US,
                 "recv_ts": None if recv is None else recv * NS_PER_US, "venue": r["exchange"] or None}
            if kind == "trades":
                e.update(type="Trade", price=r["price"] or None, size=r["amount"] or None, side=r["side"] or None,
                         trade_id=r["id"] or None)
            else:
                if not r["bid_price"] and not r["ask_price"]:
                    continue                    # skipped (and counted) by the vectorised path
                e.update(type="BboQuote", bid_price=r["bid_price"] or None, bid_size=r["bid_amount"] or None,
                         ask_price=r["ask_price"] or None, ask_size=r["ask_amount"] or None)
            ev.normalize(e)
        except InputError as exc:
            raise where(exc, str(path), line, colmap.get(exc.field, exc.field)) from None


# ---- book_snapshot_N: one L2Snapshot per row ----------------------------------------------------
def _levels(row: list[str], start: int, n: int) -> tuple[list, list]:
    asks, bids = [], []
    for i in range(n):
        j = start + 4 * i
        for side, out, p, a in (("asks", asks, row[j], row[j + 1]), ("bids", bids, row[j + 2], row[j + 3])):
            if not p and not a:
                continue
            if not p or not a:
                col = f"{side}[{i}].{'price' if not p else 'amount'}"
                raise InputError(f"{col} is empty but its pair is not", field=col)
            try:
                price = ev.decimal_text(p, "price")
                size = ev.decimal_text(a, "amount")
            except InputError as exc:
                raise InputError(exc.reason, field=f"{side}[{i}].{exc.field}") from None
            if size[0] == "-":
                raise InputError(f"amount must not be negative, got {size}", field=f"{side}[{i}].amount")
            out.append([price, size])
    return bids, asks


def _read_snapshots(path, header, symbol, source, stats) -> Iterator[tuple[str, pa.Table]]:
    n = (len(header) - 4) // 4
    out = Batcher("L2Snapshot")
    counters: dict[str, int] = {}
    base = None
    try:
        for line, row in csv_rows(path, None, len(header), skip_first=True):
            if stats is not None:
                stats.messages += 1
            try:
                ts = _us(row[2], "timestamp") * NS_PER_US
                recv = _us(row[3], "local_timestamp") * NS_PER_US if row[3] else None
                bids, asks = _levels(row, 4, n)
                sym = symbol or row[1]
                if not sym:
                    raise InputError("missing symbol", field="symbol")
            except InputError as exc:
                raise where(exc, str(path), line) from None
            if not bids and not asks:
                note_skip(stats, "book_snapshot row with no levels")
                continue
            if base is None:
                base = day_seq_base(ts) + n * SEQ_KIND
            c = counters[sym] = counters.get(sym, 0) + 1
            if c >= SEQ_KIND:
                _check_ordinal(c)
            if stats is not None:
                stats.events += 1
            if out.add({"type": "L2Snapshot", "symbol": sym, "source": source, "ts": ts, "recv_ts": recv,
                        "seq": base + c, "bids": bids, "asks": asks, "venue": row[0] or None}):
                yield ASSET_CLASS, out.take()
    except InputError:
        yield from drain(out, ASSET_CLASS)   # the events completed before the bad line
        raise
    last = out.take()
    if last is not None:
        yield ASSET_CLASS, last


# ---- incremental_book_L2: maintain the book, emit per timestamp ---------------------------------
_SIDES = {"bid": True, "ask": False, "buy": True, "sell": False}


class _SymbolBook:
    __slots__ = ("book", "snapshot_ts")

    def __init__(self) -> None:
        self.book, self.snapshot_ts = OrderBook(), None


def _read_incremental(path, symbol, source, depth, stats) -> Iterator[tuple[str, pa.Table]]:
    out = Batcher("L2Snapshot")
    books: dict[str, _SymbolBook] = {}      # by the file's symbol
    counts: dict[str, int] = {}             # events per output symbol (the seq ordinal)
    base = None
    group = None            # (file symbol, timestamp text) of the rows being collected
    state = ts = None       # that group's book state and time (ns)
    recv_text = venue = None
    good_recv = None        # the last local_timestamp text that passed validation
    prices: dict[str, str] = {}     # price text → canonical text (validated once)
    sizes: dict[str, str] = {}      # amount text → canonical text (validated once, not negative)
    decimal_text = ev.decimal_text

    def emit():
        recv = int(recv_text) * NS_PER_US if recv_text else None
        event = state.book.l2_event(symbol or group[0], source, ts, recv_ts=recv, seq=None, venue=venue, depth=depth)
        if event is None:
            note_skip(stats, "incremental_book_L2 group leaving an empty book")
            return False
        out_sym = event["symbol"]
        c = counts[out_sym] = counts.get(out_sym, 0) + 1
        if c >= SEQ_KIND:
            _check_ordinal(c)
        event["seq"] = base + c
        if stats is not None:
            stats.events += 1
        return out.add(event)

    try:
        for line, row in csv_rows(path, None, len(INCREMENTAL), skip_first=True):
            if stats is not None:
                stats.messages += 1
            exchange, fsym, ts_text, r_text, snap, side, p, a = row
            try:
                if group is None or ts_text != group[1] or fsym != group[0]:
                    if group is not None and emit():
                        yield ASSET_CLASS, out.take()
                    ts = _us(ts_text, "timestamp") * NS_PER_US
                    if base is None:
                        base = day_seq_base(ts)
                    if not fsym and not symbol:
                        raise InputError("missing symbol", field="symbol")
                    group = (fsym, ts_text)
                    state = books.get(fsym)
                    if state is None:
                        state = books[fsym] = _SymbolBook()
                if r_text != good_recv and r_text:
                    _us(r_text, "local_timestamp")
                    good_recv = r_text
                is_bid = _SIDES.get(side)
                if is_bid is None:
                    raise InputError(f"side must be bid or ask, got {side[:20]!r}", field="side")
                price = prices.get(p)
                if price is None:
                    price = decimal_text(p, "price")
                    if len(prices) > 1 << 16:
                        prices.clear()
                    prices[p] = price
                size = sizes.get(a)
                if size is None:
                    size = decimal_text(a, "amount")
                    if size[0] == "-":
                        raise InputError(f"amount must not be negative, got {size}", field="amount")
                    if len(sizes) > 1 << 16:
                        sizes.clear()
                    sizes[a] = size
                if snap == "true":
                    if state.snapshot_ts != ts_text:    # a new snapshot starts (file start or after a reconnection)
                        state.book.clear()
                        state.snapshot_ts = ts_text
                elif snap == "false":
                    state.snapshot_ts = None
                else:
                    raise InputError(f"is_snapshot must be true or false, got {snap[:20]!r}", field="is_snapshot")
            except InputError as exc:
                raise where(exc, str(path), line) from None
            state.book.update(is_bid, price, size)
            recv_text, venue = r_text, exchange or None
        if group is not None:
            emit()
    except InputError:
        yield from drain(out, ASSET_CLASS)   # the events completed before the bad line
        raise
    last = out.take()
    if last is not None:
        yield ASSET_CLASS, last
