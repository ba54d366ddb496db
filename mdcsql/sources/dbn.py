"""Replay of Databento DBN files (v1–v3, plain or zstd) through `databento_dbn`'s DBNDecoder.

| schema | canonical events |
|---|---|
| trades | Trade (side = aggressor: A → sell, B → buy, N → unknown) |
| tbbo | Trade (the trade; its pre-trade BBO is mbp-1's business) |
| mbp-1 | BboQuote per record (the book after it); records with action T also a Trade |
| mbp-10 | L2Snapshot per record (the 10 given levels, cut to `depth`); action T also a Trade |
| mbo | OrderFlow (A add, M modify, C cancel, F fill, R clear); T → Trade; N skipped (counted) |
| ohlcv-1s/1m/1h/1d/eod | HistoricalBar (`ts` = bar open) |
| definition | nothing: instrument definitions are reference data, see `definitions()` |

Prices are int64 in units of 10⁻⁹ and become exact decimal text by integer arithmetic
(3720250000000 → "3720.25"; `UNDEF_PRICE` → null). `ts` = `ts_event`, `recv_ts` = `ts_recv`
(null when undefined or flagged `F_BAD_TS_RECV`), `seq` = `sequence`. The symbol is the raw symbol
from the metadata's symbol mappings (instrument_id → e.g. "ESH1", by date) unless `symbol=` is
given. Asset class comes from the dataset (GLBX.MDP3 → futures, XNAS.ITCH → equity, …).

Within one event type the events are in file order; a file whose records map to two types
(mbp-1 with trades, mbo with T records) yields them per decoded chunk, one table per type.
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa

from mdcsql import events as ev
from mdcsql.errors import InputError, NotFoundError
from mdcsql.sources.book import ReplayStats, head_bytes, note_skip, open_binary, unbuffered

FORMAT = "dbn"
DEFAULT_SOURCE = "databento"

FIXED_PRICE_SCALE = 1_000_000_000
UNDEF_PRICE = 2**63 - 1
UNDEF_TIMESTAMP = 2**64 - 1
F_BAD_TS_RECV = 1 << 3
CHUNK = 1 << 20

# Dataset → asset class. Datasets are named VENUE.FEED; the venue decides.
ASSET_CLASSES = {
    "GLBX": "futures", "IFEU": "futures", "IFUS": "futures", "IFLL": "futures", "NDEX": "futures",
    "XEUR": "futures", "OPRA": "options",
    "XNAS": "equity", "XNYS": "equity", "XBOS": "equity", "XPSX": "equity", "BATS": "equity", "BATY": "equity",
    "EDGA": "equity", "EDGX": "equity", "IEXG": "equity", "ARCX": "equity", "XCHI": "equity", "XCIS": "equity",
    "MEMX": "equity", "EPRL": "equity", "DBEQ": "equity", "EQUS": "equity", "XASE": "equity", "FINN": "equity",
    "FINY": "equity", "FINC": "equity",
}
_SIDE = {"A": "sell", "B": "buy", "N": "unknown"}
_FLOW_ACTION = {"A": "add", "M": "modify", "C": "cancel", "F": "fill", "R": "clear"}
_OHLCV_INTERVAL = {"ohlcv-1s": "1s", "ohlcv-1m": "1m", "ohlcv-1h": "1h", "ohlcv-1d": "1d", "ohlcv-eod": "1d"}
SUPPORTED_SCHEMAS = ("trades", "tbbo", "mbp-1", "mbp-10", "mbo", *_OHLCV_INTERVAL, "definition")
_ZSTD = b"\x28\xb5\x2f\xfd"
_PUBLISHER_RE = re.compile(r"publisher_id=([A-Za-z0-9.]+) \(\d+\)")


def asset_class_of(dataset: str | None) -> str:
    """futures for GLBX.MDP3, equity for XNAS.ITCH, … ("other" for a dataset not in ASSET_CLASSES)."""
    return ASSET_CLASSES.get((dataset or "").split(".", 1)[0], "other")


def price_text(value: int) -> str | None:
    """Exact decimal text of a DBN fixed-point price (units of 10⁻⁹); None for UNDEF_PRICE."""
    if value == UNDEF_PRICE:
        return None
    text = _px_cache.get(value)
    if text is None:
        q, r = divmod(-value if value < 0 else value, FIXED_PRICE_SCALE)
        text = str(q) if not r else f"{q}.{r:09d}".rstrip("0")
        if value < 0:
            text = "-" + text
        if len(_px_cache) >= 1 << 16:
            _px_cache.clear()
        _px_cache[value] = text
    return text


_px_cache: dict[int, str] = {}


# ---- files --------------------------------------------------------------------------------------
def detect(path: Path) -> bool:
    """True for a DBN stream: `DBN` + version 1–3, plain or compressed (zstd, gzip); or a file named
    `*.dbn` / `*.dbn.zst` whose start cannot be decompressed (read() then says what is wrong)."""
    path = Path(path)
    head = head_bytes(path, 4)
    if len(head) == 4 and head[:3] == b"DBN" and 1 <= head[3] <= 3:
        return True
    return not head and path.name.endswith((".dbn", ".dbn.zst")) and path.is_file() and path.stat().st_size > 0


class _Stream:
    """Reads of a (decompressed) DBN stream that hand out every byte before a break, then stop.

    A truncated or corrupt compressed file does not raise in the middle of a read: the bytes
    decoded before the break are returned, `error` is set, and the reader raises at the record
    where the stream broke after handing on the records before it.
    """

    def __init__(self, f, path: Path) -> None:
        self.src = unbuffered(f)                 # below the buffer: what was read before a break is kept
        self.path = path
        self.error: str | None = None

    def read(self, n: int) -> bytes:
        """Up to `n` bytes; fewer only at the end of the stream or at a break (then `error` is set)."""
        parts, got = [], 0
        while got < n and self.error is None:
            try:
                b = self.src.read(n - got)
            except InputError as exc:
                self.error = exc.reason
                break
            except Exception as exc:             # zlib / zip errors of a corrupt or cut file
                self.error = f"corrupt compressed DBN stream: {str(exc).strip()[:200]}"
                break
            if not b:
                break
            parts.append(b)
            got += len(b)
        return b"".join(parts)

    def fail(self, line: int | None) -> InputError:
        return InputError(self.error, file=str(self.path), line=line)


def _header(stream: _Stream, path: Path):
    """(metadata, version, decoder positioned after the metadata) of an open DBN stream."""
    import databento_dbn as dbn
    prefix = stream.read(8)
    if len(prefix) >= 4 and (prefix[:3] != b"DBN" or not 1 <= prefix[3] <= 3) or not prefix and not stream.error:
        raise InputError("not a DBN file (no DBN header)", file=str(path))
    length = int.from_bytes(prefix[4:8], "little") if len(prefix) == 8 else 0
    meta = stream.read(length) if length else b""
    if len(prefix) < 8 or len(meta) < length:
        if stream.error:
            raise stream.fail(None)
        raise InputError("truncated DBN file: the metadata header is cut short", file=str(path))
    decoder = dbn.DBNDecoder()
    try:
        decoder.write(prefix + meta)
        (metadata,) = decoder.decode()
    except Exception as exc:
        raise InputError(f"corrupt DBN metadata: {str(exc).strip()[:200]}", file=str(path)) from None
    return metadata, prefix[3], decoder


def _decoded(stream: _Stream, decoder, path: Path, done: int, pending: bytes = b"") -> Iterator[list]:
    """Lists of records decoded by DBNDecoder from the rest of the stream (`done` records came before)."""
    chunk = pending
    while True:
        if chunk:
            decoder.write(chunk)
        try:
            records = decoder.decode()
        except Exception as exc:          # DBNError / ValueError from the Rust decoder
            raise InputError(f"corrupt DBN stream: {str(exc).strip()[:200]}", file=str(path), line=done + 1) from None
        if records:
            yield records
            done += len(records)
        chunk = stream.read(CHUNK)
        if not chunk:
            break
    if stream.error:
        raise stream.fail(done + 1)
    left = decoder.buffer()
    if left:
        raise InputError(f"truncated DBN file: the record is cut short ({len(left)} bytes left over)",
                         file=str(path), line=done + 1)


class _Symbols:
    """instrument_id → symbol from the metadata's mappings (date-aware), with `symbol=` overriding."""

    def __init__(self, metadata, override: str | None) -> None:
        self.override = override
        self.by_id: dict[int, list] = {}
        self.cache: dict[tuple, str] = {}
        for key, intervals in (metadata.mappings or {}).items():
            for iv in intervals:
                out = iv["symbol"]
                if out.isdigit() and not key.isdigit():
                    iid, name = int(out), key
                elif key.isdigit() and out and not out.isdigit():
                    iid, name = int(key), out
                else:
                    continue
                self.by_id.setdefault(iid, []).append((iv["start_date"], iv["end_date"], name))

    def add(self, iid: int, name: str) -> None:
        """A SymbolMappingMsg in the stream (live data)."""
        self.by_id[iid] = [(_dt.date.min, _dt.date.max, name)]
        self.cache = {k: v for k, v in self.cache.items() if k[0] != iid}

    def __call__(self, iid: int, ts: int) -> str:
        if self.override:
            return self.override
        entries = self.by_id.get(iid)
        if entries is not None and len(entries) == 1:
            return entries[0][2]
        day = ts // 86_400_000_000_000
        name = self.cache.get((iid, day))
        if name is None:
            date = _dt.date(1970, 1, 1) + _dt.timedelta(days=day)
            name = next((n for start, end, n in entries or () if start <= date < end), None)
            if name is None:
                raise InputError(f"no symbol mapping for instrument_id {iid} on {date}; pass symbol=",
                                 field="instrument_id")
            self.cache[(iid, day)] = name
        return name


_venues: dict[int, str | None] = {}


def _venue(record) -> str | None:
    """The venue of a record's publisher (GLBX.MDP3.GLBX → "GLBX"), read once per publisher id."""
    pid = record.publisher_id
    if pid not in _venues:
        m = _PUBLISHER_RE.search(repr(record)[:400])
        _venues[pid] = m.group(1).rsplit(".", 1)[-1] if m else None
    return _venues[pid]


# ---- reading ------------------------------------------------------------------------------------
class _Columns:
    __slots__ = ("etype", "cols", "n")

    def __init__(self, etype: str, names: tuple) -> None:
        self.etype, self.n = etype, 0
        self.cols = {c: [] for c in names}

    def table(self, source: str) -> pa.Table:
        t = ev.normalize_table(pa.table(self.cols), type=self.etype, source=source)
        for v in self.cols.values():
            v.clear()
        self.n = 0
        return t


_HEAD = ("symbol", "ts", "recv_ts", "seq")
_COLUMNS = {
    "Trade": _HEAD + ("price", "size", "side", "venue"),
    "BboQuote": _HEAD + ("bid_price", "bid_size", "ask_price", "ask_size", "venue"),
    "L2Snapshot": _HEAD + ("bids", "asks", "venue"),
    "OrderFlow": _HEAD + ("order_id", "action", "side", "price", "size", "venue"),
    "HistoricalBar": _HEAD + ("open", "high", "low", "close", "volume", "interval"),
}


def read(path: Path, *, symbol: str | None = None, source: str | None = None, depth: int = 10,
         stats: ReplayStats | None = None) -> Iterator[tuple[str, pa.Table]]:
    """Yield (asset class, canonical Arrow table of one event type) for a DBN file.

    :param depth: levels per L2Snapshot from mbp-10 (at most the 10 the schema has).
    :param stats: messages = records, events, skips by reason (definitions, N actions, empty books).
    :raises InputError: an unsupported schema, a corrupt or truncated stream, an unmapped instrument;
        `line` is the record number (1 = the first record after the metadata).

    Files of one fixed-size schema (trades, tbbo, mbp-1, mbp-10, mbo, ohlcv-*; DBN v2/v3) are read
    as numpy record arrays and converted column-wise; anything else (v1, mixed record types,
    `ts_out`) goes record by record through DBNDecoder. Both paths give the same events (tested).
    """
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"{path}: no such file")
    ctx = _Context(path, source or DEFAULT_SOURCE, max(0, min(depth, 10)), stats)
    with open_binary(path) as f:
        stream = _Stream(f, path)
        metadata, version, decoder = _header(stream, path)
        schema = None if metadata.schema is None else str(metadata.schema.value)
        if schema is not None and schema not in SUPPORTED_SCHEMAS:
            raise InputError(f"DBN schema {schema} is not supported (supported: {', '.join(SUPPORTED_SCHEMAS)})",
                             file=str(path), field="schema")
        ctx.schema, ctx.version = schema, version
        ctx.asset_class = asset_class_of(metadata.dataset)
        ctx.symbols = _Symbols(metadata, symbol)
        layout = _LAYOUTS.get(schema) if version >= 2 and not metadata.ts_out and ctx.vectorised else None
        number, pending = 0, b""
        if layout is not None:
            dtype, rtypes = layout
            size = dtype.itemsize
            while True:
                data = stream.read(max(1, CHUNK // size) * size)
                if not data:
                    if stream.error:
                        raise stream.fail(number + 1)
                    break
                n = len(data) // size
                recs = np.frombuffer(data, dtype, count=n)
                if not (recs["length"] == size // 4).all() or not np.isin(recs["rtype"], rtypes).all():
                    pending = data            # not one fixed-size record type: decode the rest record by record
                    break
                for item in _fast_tables(recs, ctx, number):
                    _check_seq(ctx, item[1])
                    yield item
                number += n
                if stream.error:
                    raise stream.fail(number + 1)
                if n * size < len(data):
                    raise InputError(f"truncated DBN file: the record is cut short ({len(data) - n * size} bytes "
                                     f"left over)", file=str(path), line=number + 1)
            if not pending:
                return
        for records in _decoded(stream, decoder, path, number, pending):
            for item in _slow_tables(records, ctx, number):
                _check_seq(ctx, item[1])
                yield item
            number += len(records)


SEQ_WARNING = ("seq (the DBN sequence) repeats or goes back within a stream: the archive's dedupe may drop "
               "such events as duplicates")


def _check_seq(ctx: "_Context", table: pa.Table) -> None:
    """Count events whose `seq` does not grow within its (type, symbol) stream (see SEQ_WARNING)."""
    stats = ctx.stats
    if stats is None or not hasattr(stats, "warn"):
        return
    seq_col = table.column("seq")
    if seq_col.null_count == table.num_rows:
        return
    etype = table.column("type")[0].as_py()
    seqs = seq_col.to_numpy(zero_copy_only=False)
    codes = table.column("symbol").combine_chunks().dictionary_encode()
    names, indices = codes.dictionary.to_pylist(), codes.indices.to_numpy(zero_copy_only=False)
    bad = 0
    for code, name in enumerate(names):
        s = seqs if len(names) == 1 else seqs[indices == code]
        bad += int((np.diff(s) <= 0).sum())
        last = ctx.last_seq.get((etype, name))
        if last is not None and s[0] <= last:
            bad += 1
        ctx.last_seq[(etype, name)] = int(s[-1])
    if bad:
        stats.warn(SEQ_WARNING, bad)


class _Context:
    """What one read() knows: the file, its schema and symbols, the options, the column buffers."""

    vectorised = True          # tests switch this off to compare the two paths

    def __init__(self, path: Path, source: str, depth: int, stats) -> None:
        self.path, self.source, self.depth, self.stats = path, source, depth, stats
        self.schema = self.version = self.asset_class = self.symbols = None
        self.buffers = {t: _Columns(t, c) for t, c in _COLUMNS.items()}
        self.last_seq: dict[tuple, int] = {}

    def error(self, exc: InputError, line: int | None) -> InputError:
        return InputError(exc.reason, file=str(self.path), line=line, field=exc.field)


def _slow_tables(records: list, ctx: _Context, number: int) -> Iterator[tuple[str, pa.Table]]:
    """The record-by-record path: one table per event type met in this list of records."""
    order: list[str] = []
    buffers, stats = ctx.buffers, ctx.stats
    for i, record in enumerate(records, number + 1):
        try:
            etypes = _convert(record, ctx.schema, ctx.symbols, buffers, ctx.depth, stats)
        except InputError as exc:
            raise ctx.error(exc, i) from None
        for etype in etypes:
            if etype not in order:
                order.append(etype)
    if stats is not None:
        stats.messages += len(records)
    for etype in order:
        buf = buffers[etype]
        if buf.n:
            n = buf.n
            try:
                table = buf.table(ctx.source)
            except InputError as exc:
                raise ctx.error(exc, number + 1) from None
            if stats is not None:
                stats.events += n
            yield ctx.asset_class, table


def _head(cols: dict, sym: str, ts: int, recv: int | None, seq: int | None) -> None:
    cols["symbol"].append(sym)
    cols["ts"].append(ts)
    cols["recv_ts"].append(recv)
    cols["seq"].append(seq)


def _recv(record) -> int | None:
    recv = record.ts_recv
    return None if recv == UNDEF_TIMESTAMP or getattr(record, "flags", 0) & F_BAD_TS_RECV else recv


def _trade(buffers, record, sym: str, venue) -> str:
    buf = buffers["Trade"]
    c = buf.cols
    _head(c, sym, record.ts_event, _recv(record), record.sequence)
    c["price"].append(price_text(record.price))
    c["size"].append(str(record.size))
    c["side"].append(_SIDE.get(record.side.value, "unknown"))
    c["venue"].append(venue)
    buf.n += 1
    return "Trade"


def _convert(record, schema, symbols: _Symbols, buffers, depth: int, stats) -> tuple:
    """Append the events of one record to the column buffers; returns their types."""
    name = type(record).__name__
    if name == "InstrumentDefMsg" or name.startswith("InstrumentDefMsgV"):
        note_skip(stats, "definition record (reference data, see dbn.definitions())")
        return ()
    if name.startswith("SymbolMappingMsg"):
        symbols.add(record.instrument_id, record.stype_out_symbol)
        note_skip(stats, "symbol mapping record")
        return ()
    if name.startswith(("SystemMsg", "ErrorMsg")):
        note_skip(stats, f"{name} record")
        return ()
    ts = record.ts_event
    if ts == UNDEF_TIMESTAMP:
        raise InputError("ts_event is undefined", field="ts_event")
    sym = symbols(record.instrument_id, ts)
    if name == "TradeMsg":
        return (_trade(buffers, record, sym, _venue(record)),)
    if name == "MBP1Msg":
        venue = _venue(record)
        if schema == "tbbo":
            return (_trade(buffers, record, sym, venue),)
        out = ("Trade",) if record.action.value == "T" else ()
        if out:
            _trade(buffers, record, sym, venue)
        bid, ask = price_text(record.bid_px_00), price_text(record.ask_px_00)
        if bid is None and ask is None:
            note_skip(stats, "mbp-1 record with an empty book")
            return out
        buf = buffers["BboQuote"]
        c = buf.cols
        _head(c, sym, ts, _recv(record), record.sequence)
        c["bid_price"].append(bid)
        c["bid_size"].append(None if bid is None else str(record.bid_sz_00))
        c["ask_price"].append(ask)
        c["ask_size"].append(None if ask is None else str(record.ask_sz_00))
        c["venue"].append(venue)
        buf.n += 1
        return out + ("BboQuote",)
    if name == "MBP10Msg":
        venue = _venue(record)
        out = ("Trade",) if record.action.value == "T" else ()
        if out:
            _trade(buffers, record, sym, venue)
        bids, asks = [], []
        bid_open = ask_open = True
        for level in record.levels[:depth]:
            if bid_open:
                p = price_text(level.bid_px)
                if p is None:
                    bid_open = False
                else:
                    bids.append([p, str(level.bid_sz)])
            if ask_open:
                p = price_text(level.ask_px)
                if p is None:
                    ask_open = False
                else:
                    asks.append([p, str(level.ask_sz)])
        if not bids and not asks:
            note_skip(stats, "mbp-10 record with an empty book")
            return out
        buf = buffers["L2Snapshot"]
        c = buf.cols
        _head(c, sym, ts, _recv(record), record.sequence)
        c["bids"].append(bids)
        c["asks"].append(asks)
        c["venue"].append(venue)
        buf.n += 1
        return out + ("L2Snapshot",)
    if name == "MBOMsg":
        action = record.action.value
        if action == "T":
            return (_trade(buffers, record, sym, _venue(record)),)
        flow = _FLOW_ACTION.get(action)
        if flow is None:
            note_skip(stats, f"mbo record with action {action}")
            return ()
        buf = buffers["OrderFlow"]
        c = buf.cols
        _head(c, sym, ts, _recv(record), record.sequence)
        c["order_id"].append(str(record.order_id))
        c["action"].append(flow)
        c["side"].append(_SIDE.get(record.side.value, "unknown"))
        c["price"].append(price_text(record.price))
        c["size"].append(str(record.size))
        c["venue"].append(_venue(record))
        buf.n += 1
        return ("OrderFlow",)
    if name == "OHLCVMsg":
        interval = _OHLCV_INTERVAL.get(schema) or _OHLCV_BY_RTYPE.get(int(record.rtype.value))
        if interval is None:
            raise InputError("cannot tell the bar interval of this OHLCV record", field="rtype")
        buf = buffers["HistoricalBar"]
        c = buf.cols
        _head(c, sym, ts, None, None)
        c["open"].append(price_text(record.open))
        c["high"].append(price_text(record.high))
        c["low"].append(price_text(record.low))
        c["close"].append(price_text(record.close))
        c["volume"].append(str(record.volume))
        c["interval"].append(interval)
        buf.n += 1
        return ("HistoricalBar",)
    note_skip(stats, f"{name} record (no canonical event)")
    return ()


_OHLCV_BY_RTYPE = {32: "1s", 33: "1m", 34: "1h", 35: "1d", 36: "1d"}


# ---- the vectorised path ------------------------------------------------------------------------
# Record layouts (little endian, packed) of the fixed-size schemas, as in databento/dbn record.rs;
# identical in DBN v2 and v3. Every record's length byte and rtype are checked before use.
_HD = [("length", "u1"), ("rtype", "u1"), ("publisher_id", "<u2"), ("instrument_id", "<u4"), ("ts_event", "<u8")]
_TAIL = [("ts_recv", "<u8"), ("ts_in_delta", "<i4"), ("sequence", "<u4")]
_PAIR = [("bid_px", "<i8"), ("ask_px", "<i8"), ("bid_sz", "<u4"), ("ask_sz", "<u4"), ("bid_ct", "<u4"),
         ("ask_ct", "<u4")]
_MBP0 = _HD + [("price", "<i8"), ("size", "<u4"), ("action", "u1"), ("side", "u1"), ("flags", "u1"),
               ("depth", "u1")] + _TAIL
_OHLCV = np.dtype(_HD + [("open", "<i8"), ("high", "<i8"), ("low", "<i8"), ("close", "<i8"), ("volume", "<u8")])
_LAYOUTS = {
    "trades": (np.dtype(_MBP0), (0,)),
    "tbbo": (np.dtype(_MBP0 + [("levels", _PAIR, (1,))]), (1, 197)),
    "mbp-1": (np.dtype(_MBP0 + [("levels", _PAIR, (1,))]), (1,)),
    "mbp-10": (np.dtype(_MBP0 + [("levels", _PAIR, (10,))]), (10,)),
    "mbo": (np.dtype(_HD + [("order_id", "<u8"), ("price", "<i8"), ("size", "<u4"), ("flags", "u1"),
                            ("channel_id", "u1"), ("action", "u1"), ("side", "u1")] + _TAIL), (160,)),
    "ohlcv-1s": (_OHLCV, (32,)), "ohlcv-1m": (_OHLCV, (33,)), "ohlcv-1h": (_OHLCV, (34,)),
    "ohlcv-1d": (_OHLCV, (35,)), "ohlcv-eod": (_OHLCV, (36,)),
}
assert [_LAYOUTS[k][0].itemsize for k in ("trades", "mbp-1", "mbp-10", "mbo", "ohlcv-1m")] == [48, 80, 368, 56, 56]
_I64_MAX = 2**63 - 1
_NS_PER_DAY = 86_400_000_000_000
_SIDE_NAMES = pa.array(["unknown", "sell", "buy"])
_SIDE_INDEX = np.zeros(256, np.int8)
_SIDE_INDEX[ord("A")], _SIDE_INDEX[ord("B")] = 1, 2
_ACTION_NAMES = pa.array(["add", "modify", "cancel", "fill", "clear"])
_ACTION_INDEX = np.full(256, -1, np.int8)
for _i, _c in enumerate("AMCFR"):
    _ACTION_INDEX[ord(_c)] = _i
_LEVELS_TYPE = pa.list_(pa.list_(pa.string()))


def _texts(values: np.ndarray) -> pa.Array:
    """Exact decimal text (null for UNDEF_PRICE) of fixed-point prices: `price_text` once per distinct value."""
    if len(values) == 0:
        return pa.array([], pa.string())
    uniq, inverse = np.unique(values, return_inverse=True)
    return pa.array([price_text(v) for v in uniq.tolist()], pa.string()).take(pa.array(inverse.ravel()))


def _ints_text(values: np.ndarray) -> pa.Array:
    return pa.array(values).cast(pa.string())


def _symbol_array(recs: np.ndarray, ts: np.ndarray, ctx: _Context, number: int) -> pa.Array:
    symbols = ctx.symbols
    n = len(recs)
    if symbols.override:
        return pa.array([symbols.override]).take(pa.array(np.zeros(n, np.int32)))
    iids = recs["instrument_id"].astype(np.int64)
    keys = iids if all(len(symbols.by_id.get(i, ())) == 1 for i in np.unique(iids).tolist()) \
        else (iids << 20) | (ts // _NS_PER_DAY)
    _uniq, firsts, inverse = np.unique(keys, return_index=True, return_inverse=True)
    names = []
    for first in firsts.tolist():
        try:
            names.append(symbols(int(iids[first]), int(ts[first])))
        except InputError as exc:
            raise ctx.error(exc, number + first + 1) from None
    return pa.array(names, pa.string()).take(pa.array(inverse.ravel()))


def _venue_array(recs: np.ndarray, ctx: _Context) -> pa.Array:
    import databento_dbn as dbn
    pids = recs["publisher_id"]
    uniq, firsts, inverse = np.unique(pids, return_index=True, return_inverse=True)
    names = []
    for pid, first in zip(uniq.tolist(), firsts.tolist()):
        if pid not in _venues:
            decoder = dbn.DBNDecoder(has_metadata=False, input_version=ctx.version)
            decoder.write(recs[first:first + 1].tobytes())
            _venue(decoder.decode()[0])
        names.append(_venues[pid])
    return pa.array(names, pa.string()).take(pa.array(inverse.ravel()))


def _table(etype: str, n: int, ctx: _Context, cols: dict) -> pa.Table:
    schema = ev.arrow_schema(etype)
    const = {"type": etype, "source": ctx.source}
    arrays = []
    for field in schema:
        if field.name in cols:
            arrays.append(cols[field.name])
        elif field.name in const:
            arrays.append(pa.array([const[field.name]]).take(pa.array(np.zeros(n, np.int32))))
        else:
            arrays.append(pa.nulls(n, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _levels_array(px: np.ndarray, sz: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """list<list<string>> of the [price, size] levels up to the first undefined price, and the counts."""
    n = px.shape[0]
    valid = np.logical_and.accumulate(px != UNDEF_PRICE, axis=1) if px.shape[1] else np.zeros(px.shape, bool)
    counts = valid.sum(axis=1)
    fp, fs = px[valid], sz[valid]
    m = len(fp)
    both = pa.concat_arrays([_texts(fp), _ints_text(fs)])
    order = np.empty(2 * m, np.int64)
    order[0::2] = np.arange(m)
    order[1::2] = np.arange(m, 2 * m)
    pairs = pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * m + 1, 2, dtype=np.int32)),
                                     both.take(pa.array(order)))
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), pairs, type=_LEVELS_TYPE), counts


def _fast_tables(recs: np.ndarray, ctx: _Context, number: int) -> Iterator[tuple[str, pa.Table]]:
    """The vectorised path: one chunk of fixed-size records → one table per event type."""
    n, stats, schema = len(recs), ctx.stats, ctx.schema
    if stats is not None:
        stats.messages += n
    if n == 0:
        return
    ts_raw = recs["ts_event"]
    bad = np.flatnonzero(ts_raw > _I64_MAX)
    if bad.size:
        raise InputError("ts_event is undefined", file=str(ctx.path), line=number + int(bad[0]) + 1,
                         field="ts_event")
    ts = ts_raw.astype(np.int64)
    head = {"symbol": _symbol_array(recs, ts, ctx, number), "ts": pa.array(ts)}
    out: list[tuple[int, str, pa.Table]] = []
    if schema.startswith("ohlcv"):
        cols = dict(head, open=_texts(recs["open"]), high=_texts(recs["high"]), low=_texts(recs["low"]),
                    close=_texts(recs["close"]), volume=_ints_text(recs["volume"]),
                    interval=pa.array([_OHLCV_INTERVAL[schema]] * n, pa.string()))
        out.append((0, "HistoricalBar", _table("HistoricalBar", n, ctx, cols)))
    else:
        recv_raw = recs["ts_recv"]
        unset = (recv_raw > _I64_MAX) | (recs["flags"] & F_BAD_TS_RECV != 0)
        head["recv_ts"] = pa.array(recv_raw.astype(np.int64), mask=unset)
        head["seq"] = pa.array(recs["sequence"].astype(np.int64))
        head["venue"] = _venue_array(recs, ctx)
        action = recs["action"]
        side = _SIDE_NAMES.take(pa.array(_SIDE_INDEX[recs["side"]]))
        is_trade = np.ones(n, bool) if schema in ("trades", "tbbo") else action == ord("T")
        if is_trade.any():
            rows = pa.array(np.flatnonzero(is_trade))
            cols = {k: v.take(rows) for k, v in head.items()}
            cols.update(price=_texts(recs["price"][is_trade]), size=_ints_text(recs["size"][is_trade]),
                        side=side.take(rows))
            out.append((int(np.argmax(is_trade)), "Trade", _table("Trade", len(rows), ctx, cols)))
        if schema in ("mbp-1", "mbp-10"):
            lv = recs["levels"][:, :ctx.depth] if schema == "mbp-10" else recs["levels"][:, 0]
            if schema == "mbp-1":
                bid_px, ask_px = lv["bid_px"], lv["ask_px"]
                keep = (bid_px != UNDEF_PRICE) | (ask_px != UNDEF_PRICE)
                bid, ask = _texts(bid_px), _texts(ask_px)
                cols = dict(head, bid_price=bid, ask_price=ask,
                            bid_size=_size_if_price(bid, _ints_text(lv["bid_sz"])),
                            ask_size=_size_if_price(ask, _ints_text(lv["ask_sz"])))
                etype, what = "BboQuote", "mbp-1 record with an empty book"
            else:
                bids, nb = _levels_array(lv["bid_px"], lv["bid_sz"])
                asks, na = _levels_array(lv["ask_px"], lv["ask_sz"])
                keep = (nb > 0) | (na > 0)
                cols = dict(head, bids=bids, asks=asks)
                etype, what = "L2Snapshot", "mbp-10 record with an empty book"
            if not keep.all():
                note_skip(stats, what, int(n - keep.sum()))
            if keep.any():
                rows = pa.array(np.flatnonzero(keep))
                cols = {k: v.take(rows) for k, v in cols.items()}
                out.append((int(np.argmax(keep)), etype, _table(etype, len(rows), ctx, cols)))
        elif schema == "mbo":
            index = _ACTION_INDEX[action]
            flow = index >= 0
            for code in np.unique(action[(index < 0) & ~is_trade]).tolist():
                note_skip(stats, f"mbo record with action {chr(code)}", int((action == code).sum()))
            if flow.any():
                rows = pa.array(np.flatnonzero(flow))
                cols = {k: v.take(rows) for k, v in head.items()}
                cols.update(order_id=_ints_text(recs["order_id"][flow]),
                            action=_ACTION_NAMES.take(pa.array(index[flow])), side=side.take(rows),
                            price=_texts(recs["price"][flow]), size=_ints_text(recs["size"][flow]))
                out.append((int(np.argmax(flow)), "OrderFlow", _table("OrderFlow", len(rows), ctx, cols)))
    for _first, _etype, table in sorted(out, key=lambda x: x[0]):
        if stats is not None:
            stats.events += table.num_rows
        yield ctx.asset_class, table


def _size_if_price(price: pa.Array, size: pa.Array) -> pa.Array:
    """`size` where `price` is set, else null (a BboQuote size needs its price)."""
    import pyarrow.compute as pc
    return pc.if_else(price.is_valid(), size, pa.scalar(None, pa.string()))


# ---- reference data -----------------------------------------------------------------------------
_DEF_PRICES = ("min_price_increment", "display_factor", "high_limit_price", "low_limit_price", "max_price_variation",
               "trading_reference_price", "unit_of_measure_qty", "min_price_increment_amount", "price_ratio",
               "strike_price")
_DEF_TEXT = ("raw_symbol", "security_update_action", "instrument_class", "exchange", "group", "asset", "cfi",
             "security_type", "currency", "settl_currency", "unit_of_measure", "underlying", "strike_price_currency",
             "match_algorithm", "secsubtype")
_DEF_INTS = {  # field: its "not set" sentinel
    "contract_multiplier": 2**31 - 1, "min_lot_size": 2**31 - 1, "min_lot_size_block": 2**31 - 1,
    "min_lot_size_round_lot": 2**31 - 1, "min_trade_vol": 2**32 - 1, "max_trade_vol": 2**32 - 1,
    "market_depth": 2**31 - 1, "market_depth_implied": 2**31 - 1, "underlying_id": None, "channel_id": None,
    "maturity_year": 2**16 - 1, "maturity_month": 2**8 - 1, "maturity_day": 2**8 - 1, "maturity_week": 2**8 - 1,
}


def definitions(path: Path) -> list[dict]:
    """The instrument definitions of a DBN file (schema definition), one plain dict per record.

    Keys: dataset, asset_class, instrument_id, publisher_id, venue, ts_event, ts_recv (int ns),
    expiration and activation (int ns or None), the text fields (raw_symbol, instrument_class, exchange, currency,
    …), the prices as exact decimal text or None (min_price_increment, display_factor, strike_price,
    …) and the integer fields with their "not set" sentinel turned into None. For a symbol registry.
    """
    out = []
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"{path}: no such file")
    with open_binary(path) as f:
        stream = _Stream(f, path)
        metadata, _version, decoder = _header(stream, path)
        dataset = metadata.dataset
        records = [r for chunk in _decoded(stream, decoder, path, 0) for r in chunk]
    for record in records:
        name = type(record).__name__
        if not (name == "InstrumentDefMsg" or name.startswith("InstrumentDefMsgV")):
            continue
        row = {"dataset": dataset, "asset_class": asset_class_of(dataset), "instrument_id": record.instrument_id,
               "publisher_id": record.publisher_id, "venue": _venue(record), "ts_event": record.ts_event,
               "ts_recv": _recv(record)}
        for f in ("expiration", "activation"):
            v = getattr(record, f, UNDEF_TIMESTAMP)
            row[f] = None if v == UNDEF_TIMESTAMP else v
        for f in _DEF_TEXT:
            v = getattr(record, f, None)
            v = getattr(v, "value", v)
            row[f] = v if v not in ("", None) else None
        for f in _DEF_PRICES:
            v = getattr(record, f, None)
            row[f] = None if v is None else price_text(v)
        for f, sentinel in _DEF_INTS.items():
            v = getattr(record, f, None)
            row[f] = None if v is None or v == sentinel else v
        out.append(row)
    return out
