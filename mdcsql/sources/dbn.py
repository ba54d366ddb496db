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

import pyarrow as pa

from mdcsql import events as ev
from mdcsql.errors import InputError, NotFoundError
from mdcsql.sources.book import ReplayStats, note_skip

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
def _is_zstd(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == _ZSTD


def detect(path: Path) -> bool:
    """True for a DBN stream: `DBN` + version 1–3, plain or inside a zstd frame."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            if head == _ZSTD:
                import zstandard
                f.seek(0)
                with zstandard.ZstdDecompressor().stream_reader(f) as z:
                    head = z.read(4)
    except Exception:
        return False
    return len(head) == 4 and head[:3] == b"DBN" and 1 <= head[3] <= 3


def _records(path: Path, stats) -> Iterator[list]:
    """Lists of decoded records, chunk by chunk; the first list starts with the Metadata."""
    import databento_dbn as dbn
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"{path}: no such file")
    if not detect(path):
        raise InputError("not a DBN file (no DBN header)", file=str(path))
    compression = dbn.Compression.ZSTD if _is_zstd(path) else dbn.Compression.NONE
    decoder = dbn.DBNDecoder(compression=compression)
    done = 0              # whole records decoded, the metadata not counted
    header = False
    with open(path, "rb") as f:
        while True:
            chunk = f.read(CHUNK)
            try:
                if chunk:
                    decoder.write(chunk)
                records = decoder.decode()
            except Exception as exc:          # DBNError / ValueError from the Rust decoder
                raise InputError(f"corrupt DBN stream: {str(exc).strip()[:200]}", file=str(path),
                                 line=done + 1 if header else None) from None
            if records:
                if not header:
                    header = True
                    done -= 1
                done += len(records)
                yield records
            if not chunk:
                break
    left = decoder.buffer()
    if left or not header:
        what = "record" if header else "metadata header"
        raise InputError(f"truncated DBN file: the {what} is cut short ({len(left)} bytes left over)",
                         file=str(path), line=done + 1 if header else None)


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
    """
    path = Path(path)
    source = source or DEFAULT_SOURCE
    depth = max(0, min(depth, 10))
    chunks = _records(path, stats)
    first = next(chunks, None)
    if not first:
        raise InputError("empty DBN stream (no metadata)", file=str(path))
    metadata, records = first[0], first[1:]
    schema = None if metadata.schema is None else str(metadata.schema.value)
    if schema is not None and schema not in SUPPORTED_SCHEMAS:
        raise InputError(f"DBN schema {schema} is not supported (supported: {', '.join(SUPPORTED_SCHEMAS)})",
                         file=str(path), field="schema")
    asset_class = asset_class_of(metadata.dataset)
    symbols = _Symbols(metadata, symbol)
    buffers = {t: _Columns(t, c) for t, c in _COLUMNS.items()}
    number = 0
    while True:
        order: list[str] = []
        for record in records:
            number += 1
            try:
                etypes = _convert(record, schema, symbols, buffers, depth, stats)
            except InputError as exc:
                raise InputError(exc.reason, file=str(path), line=number, field=exc.field) from None
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
                    table = buf.table(source)
                except InputError as exc:
                    raise InputError(exc.reason, file=str(path), line=number - len(records) + 1,
                                     field=exc.field) from None
                if stats is not None:
                    stats.events += n
                yield asset_class, table
        records = next(chunks, None)
        if records is None:
            return


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

    Keys: dataset, asset_class, instrument_id, publisher_id, venue, ts_event, ts_recv (int ns), expiration and
    activation (int ns or None), the text fields (raw_symbol, instrument_class, exchange, currency,
    …), the prices as exact decimal text or None (min_price_increment, display_factor, strike_price,
    …) and the integer fields with their "not set" sentinel turned into None. For a symbol registry.
    """
    out = []
    dataset = None
    for records in _records(Path(path), None):
        for record in records:
            name = type(record).__name__
            if name == "Metadata":
                dataset = record.dataset
                continue
            if not (name == "InstrumentDefMsg" or name.startswith("InstrumentDefMsgV")):
                continue
            row = {"dataset": dataset, "asset_class": asset_class_of(dataset), "instrument_id": record.instrument_id, "publisher_id": record.publisher_id,
                   "venue": _venue(record), "ts_event": record.ts_event, "ts_recv": _recv(record)}
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
