"""Event types, validation into one canonical record, and its JSON-lines encoding.

Every event enters the archive through `normalize` (one record) or `normalize_table` (an Arrow
batch of one type) and leaves as one canonical JSON line: fixed key order, every key present,
times as integer UTC nanoseconds, prices and sizes as the source's decimal text. Both paths
apply the same rules and produce byte-identical lines (`encode` and `encode_table`).
The rules are documented in docs/events.md.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import decimal
import io
import math
import operator
import re
import zlib
from typing import Iterator

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import zstandard

from mdcsql.errors import InputError, NotFoundError

EVENT_TYPES: tuple[str, ...] = ("Trade", "BboQuote", "L2Snapshot", "OrderFlow", "HistoricalBar", "Heartbeat")
COMMON_FIELDS: tuple[str, ...] = ("type", "symbol", "source", "ts", "recv_ts", "seq")
FIELDS: dict[str, tuple[str, ...]] = {
    "Trade": ("price", "size", "side", "trade_id", "venue", "conditions"),
    "BboQuote": ("bid_price", "bid_size", "ask_price", "ask_size", "venue"),
    "L2Snapshot": ("bids", "asks", "venue"),
    "OrderFlow": ("order_id", "action", "side", "price", "size", "venue"),
    "HistoricalBar": ("open", "high", "low", "close", "volume", "interval"),
    "Heartbeat": ("status",),
}
# Fields holding decimal text. L2Snapshot's bids/asks hold [price, size] pairs of decimal text:
# cast those as DECIMAL(38,18)[][] rather than DECIMAL(38,18).
DECIMAL_FIELDS: dict[str, tuple[str, ...]] = {
    "Trade": ("price", "size"),
    "BboQuote": ("bid_price", "bid_size", "ask_price", "ask_size"),
    "L2Snapshot": ("bids", "asks"),
    "OrderFlow": ("price", "size"),
    "HistoricalBar": ("open", "high", "low", "close", "volume"),
    "Heartbeat": (),
}
SIDES: dict[str, str] = {s: v for v in ("buy", "sell", "unknown")
                         for s in (v, v.upper(), v.capitalize())} | {"b": "buy", "B": "buy", "s": "sell", "S": "sell"}
ACTIONS: dict[str, str] = {s: v for v in ("add", "modify", "cancel", "fill", "clear")
                           for s in (v, v.upper(), v.capitalize())}
NO_PRICE_ACTIONS = ("cancel", "clear")          # OrderFlow actions whose price may be null
MAX_DECIMAL_CHARS = 80                          # longest decimal text accepted (after normalising)
MAX_INTEGER_DIGITS = 20                         # DECIMAL(38,18) in the catalog views holds 20 integer digits
MIN_INT_TS = 10**14                             # |int ts| below this is seconds/ms, not ns
I64_MIN, I64_MAX = -(2**63), 2**63 - 1

PLAIN_DECIMAL_RE = r"-?(?:0|[1-9][0-9]{0,19})(?:\.[0-9]+)?"     # canonical text; {0,19}: MAX_INTEGER_DIGITS
NUMBER_RE = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
INTERVAL_RE = r"[1-9][0-9]*(?:ms|s|m|h|d|w|mo)"
ISO_TS_RE = (r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
             r"(?:\.([0-9]{1,9}))?(?:([Zz])|([+-])([0-9]{2}):?([0-9]{2}))?")
_plain = re.compile(PLAIN_DECIMAL_RE).fullmatch
_number = re.compile(NUMBER_RE).fullmatch
_interval = re.compile(INTERVAL_RE).fullmatch
_iso = re.compile(ISO_TS_RE).fullmatch
_NS_PER_DAY, _NS_PER_H, _NS_PER_MIN, _NS_PER_S = 86_400 * 10**9, 3_600 * 10**9, 60 * 10**9, 10**9
_FRAC_SCALE = tuple(10 ** (9 - n) for n in range(10))
_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
_CACHE_MAX = 1 << 16
_day_cache: dict[str, int] = {}
_dec_cache: dict[str, str] = {}

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(float_hook=str)


def _as_int(value) -> int | None:
    """A non-bool integer of another type (numpy.int64, ...) as int, else None."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        return None
    return operator.index(value)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ---- timestamps ---------------------------------------------------------------------------------
def parse_ts(value, field: str = "ts") -> int:
    """Nanoseconds since the Unix epoch (UTC) from int ns, an ISO-8601 string or a datetime."""
    tv = type(value)
    if tv is int:
        if MIN_INT_TS <= value <= I64_MAX or I64_MIN <= value <= -MIN_INT_TS:
            return value
        if -MIN_INT_TS < value < MIN_INT_TS:
            raise InputError(f"integer timestamp {value} is not in nanoseconds (looks like seconds or "
                             f"milliseconds); give int nanoseconds or an ISO-8601 string", field=field)
        raise InputError(f"timestamp {value} is outside the int64 nanosecond range", field=field)
    if tv is str:
        return _parse_iso(value, field)
    if value is None:
        raise InputError(f"missing {field}", field=field)
    if tv is float:
        raise InputError(f"float timestamp {value!r} is ambiguous; give int nanoseconds or an ISO-8601 string",
                         field=field)
    if _as_int(value) is not None:
        return parse_ts(_as_int(value), field)
    if isinstance(value, _dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=_dt.timezone.utc)
        delta = aware - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
        ns = (delta.days * 86_400 + delta.seconds) * _NS_PER_S + delta.microseconds * 1000
        ns += getattr(value, "nanosecond", 0)     # pandas.Timestamp
        return _check_range(ns, value, field)
    raise InputError(f"timestamp must be int nanoseconds or an ISO-8601 string, not {tv.__name__}", field=field)


def _check_range(ns: int, value, field: str) -> int:
    if I64_MIN <= ns <= I64_MAX:
        return ns
    raise InputError(f"timestamp {_short(value)} is outside the int64 nanosecond range (1677..2262)", field=field)


def _parse_iso(s: str, field: str) -> int:
    m = _iso(s)
    if m is None:
        raise InputError(f"not an ISO-8601 timestamp: {_short(s)} (expected e.g. 2024-01-15T14:30:00.123456789Z)",
                         field=field)
    year, month, day, hh, mi, ss, frac, _z, sign, oh, om = m.groups()
    key = s[:10]
    ns = _day_cache.get(key)
    if ns is None:
        try:
            ns = (_dt.date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL) * _NS_PER_DAY
        except ValueError:
            raise InputError(f"invalid date in timestamp {_short(s)}", field=field) from None
        if len(_day_cache) >= _CACHE_MAX:
            _day_cache.clear()
        _day_cache[key] = ns
    h, mnt, sec = int(hh), int(mi), int(ss)
    if h > 23 or mnt > 59 or sec > 59:
        raise InputError(f"time of day out of range in {_short(s)}", field=field)
    ns += h * _NS_PER_H + mnt * _NS_PER_MIN + sec * _NS_PER_S
    if frac:
        ns += int(frac) * _FRAC_SCALE[len(frac)]
    if sign:
        off_h, off_m = int(oh), int(om)
        if off_h > 23 or off_m > 59:
            raise InputError(f"UTC offset out of range in {_short(s)}", field=field)
        ns += (off_h * 60 + off_m) * _NS_PER_MIN * (-1 if sign == "+" else 1)
    return _check_range(ns, s, field)


# ---- decimal text -------------------------------------------------------------------------------
def decimal_text(value, field: str) -> str:
    """The canonical decimal text of a price or size (not None); raises InputError."""
    tv = type(value)
    if tv is str:
        out = _dec_cache.get(value)
        if out is None:
            if _plain(value) and len(value) <= MAX_DECIMAL_CHARS:
                out = value
            elif _number(value):
                out = _from_decimal(decimal.Decimal(value), value, field)
            elif value.strip().lstrip("+-").lower() in ("nan", "snan", "inf", "infinity"):
                raise InputError(f"{field} must be finite, got {_short(value)}", field=field)
            else:
                raise InputError(f"{field} is not a decimal number: {_short(value)}", field=field)
            if len(_dec_cache) >= _CACHE_MAX:
                _dec_cache.clear()
            _dec_cache[value] = out
        return out
    if tv is int:
        if -10**MAX_INTEGER_DIGITS < value < 10**MAX_INTEGER_DIGITS:
            return str(value)
        raise InputError(f"{field} has more than {MAX_INTEGER_DIGITS} integer digits: {_short(value)}", field=field)
    if tv is float:
        if not math.isfinite(value):
            raise InputError(f"{field} must be finite, got {value!r}", field=field)
        return float_text(value, field)
    if tv is bool:
        raise InputError(f"{field} must be a number, not a boolean", field=field)
    if isinstance(value, decimal.Decimal):
        return _from_decimal(value, value, field)
    if isinstance(value, float):           # numpy.float64
        return decimal_text(float(value), field)
    if _as_int(value) is not None:         # numpy integers
        return decimal_text(_as_int(value), field)
    raise InputError(f"{field} must be a number or decimal string, not {tv.__name__}", field=field)


def float_text(value: float, field: str) -> str:
    text = repr(value)
    if "e" in text:
        return _from_decimal(decimal.Decimal(text), value, field)
    return text


def _from_decimal(d: decimal.Decimal, original, field: str) -> str:
    if not d.is_finite():
        raise InputError(f"{field} must be finite, got {_short(original)}", field=field)
    exp = d.as_tuple().exponent
    if not -MAX_DECIMAL_CHARS <= exp <= MAX_DECIMAL_CHARS:
        raise InputError(f"{field} is out of range: {_short(original)}", field=field)
    out = format(d, "f")
    if len(out) > MAX_DECIMAL_CHARS:
        raise InputError(f"{field} has too many digits: {_short(original)}", field=field)
    if not _plain(out):
        raise InputError(f"{field} has more than {MAX_INTEGER_DIGITS} integer digits: {_short(original)}",
                         field=field)
    return out


def _price(value, field: str) -> str:
    if value is None:
        raise InputError(f"missing {field}", field=field)
    return decimal_text(value, field)


def _size(value, field: str) -> str:
    if value is None:
        raise InputError(f"missing {field}", field=field)
    out = decimal_text(value, field)
    if out[0] == "-":
        raise InputError(f"{field} must not be negative, got {out}", field=field)
    return out


def _opt_size(value, field: str) -> str | None:
    if value is None:
        return None
    out = _dec_cache.get(value) if type(value) is str else None
    return out if out is not None and out[0] != "-" else _size(value, field)


def _opt_price(value, field: str) -> str | None:
    if value is None:
        return None
    out = _dec_cache.get(value) if type(value) is str else None
    return out if out is not None else decimal_text(value, field)


# ---- other field kinds --------------------------------------------------------------------------
def _text(value, field: str) -> str:
    if type(value) is str and value:
        return value
    if value is None:
        raise InputError(f"missing {field}", field=field)
    raise InputError(f"{field} must be a non-empty string, got {_short(value)}", field=field)


def _opt_text(value, field: str) -> str | None:
    if value is None or type(value) is str:
        return value
    raise InputError(f"{field} must be a string or null, got {_short(value)}", field=field)


def _ident(value, field: str, required: bool) -> str | None:
    tv = type(value)
    if tv is str and value:
        return value
    if tv is int or _as_int(value) is not None:
        return str(_as_int(value))
    if value is None and not required:
        return None
    if value is None:
        raise InputError(f"missing {field}", field=field)
    raise InputError(f"{field} must be a non-empty string or an integer, got {_short(value)}", field=field)


def _side(value, field: str = "side") -> str:
    if value is None:
        return "unknown"
    out = SIDES.get(value) if type(value) is str else None
    if out is None:
        raise InputError(f"{field} must be buy, sell or unknown (or B/S), got {_short(value)}", field=field)
    return out


def _flow_action(v) -> str:
    out = ACTIONS.get(v) if type(v) is str else None
    if out is None:
        raise InputError(f"action must be one of add, modify, cancel, fill, clear, got {_short(v)}", field="action")
    return out


def _bar_interval(v) -> str:
    if type(v) is not str or not _interval(v):
        raise InputError(f"interval must look like 1s, 5m, 1h, 1d (units ms/s/m/h/d/w/mo), got {_short(v)}",
                         field="interval")
    return v


def _conditions(value, field: str = "conditions") -> list[str] | None:
    if value is None:
        return None
    if type(value) is not list and type(value) is not tuple:
        raise InputError(f"{field} must be a list of strings or null, got {_short(value)}", field=field)
    out = []
    for item in value:
        if type(item) is str:
            out.append(item)
        elif type(item) is int:
            out.append(str(item))
        else:
            raise InputError(f"{field} must hold strings, got {_short(item)}", field=field)
    return out


def _levels(value, field: str) -> list[list[str]]:
    if value is None:
        raise InputError(f"missing {field}", field=field)
    if type(value) is not list and type(value) is not tuple:
        raise InputError(f"{field} must be a list of [price, size] pairs, got {_short(value)}", field=field)
    out = []
    for i, level in enumerate(value):
        if (type(level) is not list and type(level) is not tuple) or len(level) != 2:
            raise InputError(f"{field}[{i}] must be a [price, size] pair, got {_short(level)}", field=field)
        price, size = level
        if price is None or size is None:
            raise InputError(f"{field}[{i}] has a null price or size", field=field)
        out.append([decimal_text(price, field), _size(size, field)])
    return out


# ---- normalize ----------------------------------------------------------------------------------
def _unknown_key(r: dict, etype: str, keys: frozenset):
    bad = sorted(str(k) for k in r.keys() - keys)[0]
    raise InputError(f"unknown key {bad!r} for {etype} (expected: {', '.join(COMMON_FIELDS + FIELDS[etype])})",
                     field=bad)


def _head(r: dict, source: str | None) -> tuple:
    """symbol, source, ts, recv_ts, seq of a record (its keys already checked)."""
    g = r.get
    symbol = g("symbol")
    if type(symbol) is not str or not symbol:
        _text(symbol, "symbol")
    src = g("source")
    if src is None:
        src = source
    if type(src) is not str or not src:
        _text(src, "source")
    ts = g("ts")
    if type(ts) is not int or not MIN_INT_TS <= ts <= I64_MAX:
        ts = parse_ts(ts, "ts")
    recv = g("recv_ts")
    if recv is not None:
        recv = parse_ts(recv, "recv_ts")
    seq = g("seq")
    if seq is not None and (type(seq) is not int or not 0 <= seq <= I64_MAX):
        seq = _as_int(seq) if type(seq) is not int else seq
        if seq is not None and 0 <= seq <= I64_MAX:
            return symbol, src, ts, recv, seq
        raise InputError(f"seq must be an integer in 0..2**63-1, got {_short(seq)}", field="seq")
    return symbol, src, ts, recv, seq


def _common(r: dict, etype: str, keys: frozenset, source: str | None) -> dict:
    if not keys.issuperset(r):
        _unknown_key(r, etype, keys)
    symbol, src, ts, recv, seq = _head(r, source)
    return {"type": etype, "symbol": symbol, "source": src, "ts": ts, "recv_ts": recv, "seq": seq}


def _keys(etype: str) -> frozenset:
    return frozenset(COMMON_FIELDS + FIELDS[etype])


_K_TRADE, _K_BBO, _K_L2, _K_FLOW, _K_BAR, _K_HB = map(_keys, EVENT_TYPES)


def _trade(r: dict, source: str | None) -> dict:
    # The hot path: cached decimal text and inlined common cases, one dict literal.
    if not _K_TRADE.issuperset(r):
        _unknown_key(r, "Trade", _K_TRADE)
    symbol, src, ts, recv, seq = _head(r, source)
    g = r.get
    v = g("price")
    price = _dec_cache.get(v) if type(v) is str else None
    if price is None:
        price = _price(v, "price")
    v = g("size")
    size = _dec_cache.get(v) if type(v) is str else None
    if size is None or size[0] == "-":
        size = _size(v, "size")
    v = g("side")
    side = SIDES.get(v, "") if type(v) is str else "unknown" if v is None else ""
    if not side:
        side = _side(v)
    v = g("trade_id")
    trade_id = v if type(v) is str and v else _ident(v, "trade_id", False)
    venue = g("venue")
    if venue is not None and type(venue) is not str:
        _opt_text(venue, "venue")
    return {"type": "Trade", "symbol": symbol, "source": src, "ts": ts, "recv_ts": recv, "seq": seq,
            "price": price, "size": size, "side": side, "trade_id": trade_id, "venue": venue,
            "conditions": _conditions(g("conditions"))}


def _bbo(r: dict, source: str | None) -> dict:
    if not _K_BBO.issuperset(r):
        _unknown_key(r, "BboQuote", _K_BBO)
    symbol, src, ts, recv, seq = _head(r, source)
    g = r.get
    bp, bs = _opt_price(g("bid_price"), "bid_price"), _opt_size(g("bid_size"), "bid_size")
    if bp is None and bs is not None:
        raise InputError("bid_size given without bid_price", field="bid_size")
    ap, az = _opt_price(g("ask_price"), "ask_price"), _opt_size(g("ask_size"), "ask_size")
    if ap is None and az is not None:
        raise InputError("ask_size given without ask_price", field="ask_size")
    if bp is None and ap is None:
        raise InputError("a BboQuote needs a bid or an ask price (both are null)", field="bid_price")
    venue = g("venue")
    if venue is not None and type(venue) is not str:
        _opt_text(venue, "venue")
    return {"type": "BboQuote", "symbol": symbol, "source": src, "ts": ts, "recv_ts": recv, "seq": seq,
            "bid_price": bp, "bid_size": bs, "ask_price": ap, "ask_size": az, "venue": venue}


def _l2(r: dict, source: str | None) -> dict:
    out = _common(r, "L2Snapshot", _K_L2, source)
    out["bids"] = _levels(r.get("bids"), "bids")
    out["asks"] = _levels(r.get("asks"), "asks")
    if not out["bids"] and not out["asks"]:
        raise InputError("an L2Snapshot needs at least one level (bids and asks are both empty)", field="bids")
    out["venue"] = _opt_text(r.get("venue"), "venue")
    return out


def _flow(r: dict, source: str | None) -> dict:
    out = _common(r, "OrderFlow", _K_FLOW, source)
    g = r.get
    out["order_id"] = _ident(g("order_id"), "order_id", True)
    action = out["action"] = _flow_action(g("action"))
    out["side"] = _side(g("side"))
    price = g("price")
    if price is None and action not in NO_PRICE_ACTIONS:
        raise InputError(f"missing price (only cancel and clear may omit it, action is {action})", field="price")
    out["price"] = _opt_price(price, "price")
    out["size"] = _size(g("size"), "size")
    out["venue"] = _opt_text(g("venue"), "venue")
    return out


def _bar(r: dict, source: str | None) -> dict:
    out = _common(r, "HistoricalBar", _K_BAR, source)
    g = r.get
    for f in ("open", "high", "low", "close"):
        out[f] = _price(g(f), f)
    out["volume"] = _opt_size(g("volume"), "volume")
    out["interval"] = _bar_interval(g("interval"))
    return out


def _heartbeat(r: dict, source: str | None) -> dict:
    out = _common(r, "Heartbeat", _K_HB, source)
    out["status"] = _opt_text(r.get("status"), "status")
    return out


_NORMALIZERS = {"Trade": _trade, "BboQuote": _bbo, "L2Snapshot": _l2, "OrderFlow": _flow,
                "HistoricalBar": _bar, "Heartbeat": _heartbeat}


def normalize(record: dict, *, source: str | None = None) -> dict:
    """Validate one record (canonical or C# collector shape) and return a new canonical dict.

    :param record: a decoded JSON object or a dict built by a collector.
    :param source: used when the record has no (or a null) source; never overrides one.
    :raises InputError: naming the field (no file/line: the caller adds those).

    Example: ``normalize({"type": "Trade", "symbol": "AAPL", "source": "x", "ts": "2024-01-15T14:30:00Z",
    "price": "187.10", "size": 100})``.
    """
    if type(record) is not dict:
        raise InputError(f"an event must be a JSON object, got {type(record).__name__}")
    etype = record.get("type")
    fn = _NORMALIZERS.get(etype) if type(etype) is str else None
    if fn is not None and "payload" not in record:
        return fn(record, source)
    if "payload" in record or type(etype) is int:
        from mdcsql import events_csharp
        return events_csharp.normalize_csharp(record, source=source)
    if etype is None:
        raise InputError("missing type", field="type")
    raise InputError(f"unknown event type {_short(etype)} (expected one of: {', '.join(EVENT_TYPES)})", field="type")


def normalize_canonical(record: dict, etype: str, source: str | None = None) -> dict:
    """Normalise a dict already in canonical shape whose type is `etype` (used by the C# reader)."""
    return _NORMALIZERS[etype](record, source)


# ---- JSON lines ---------------------------------------------------------------------------------
def encode(event: dict) -> bytes:
    """One canonical event (the output of `normalize`) as a JSON line ending in b"\\n".

    Compact separators, UTF-8 (no \\u escapes beyond control characters) — the same bytes
    `encode_table` writes for the same event.
    """
    return _encoder.encode(event) + b"\n"


def decode_line(raw: bytes) -> dict:
    """Decode one JSON line; JSON numbers with a fraction or exponent stay as their exact text."""
    try:
        obj = _decoder.decode(raw)
    except msgspec.DecodeError as e:
        try:
            bytes(raw).decode("utf-8")
        except UnicodeDecodeError as u:
            raise InputError(f"invalid UTF-8 at byte {u.start}") from None
        raise InputError(f"malformed JSON: {e}") from None
    if type(obj) is not dict:
        raise InputError(f"an event must be a JSON object, got {type(obj).__name__}")
    return obj


_GZIP_MAGIC, _ZSTD_MAGIC = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"
_READ_SIZE = 1 << 18
_MAX_OUT = 1 << 24
_BOM = b"\xef\xbb\xbf"


class _StreamBroken(Exception):
    pass


def _chunks_plain(fh) -> Iterator[bytes]:
    while chunk := fh.read(_READ_SIZE):
        yield chunk


def _chunks_compressed(fh, codec: str) -> Iterator[bytes]:
    """Decompressed chunks of a (multi-member/multi-frame) gzip or zstd file; _StreamBroken at a break."""
    new = (lambda: zlib.decompressobj(31)) if codec == "gzip" else zstandard.ZstdDecompressor().decompressobj
    errors = (zlib.error,) if codec == "gzip" else (zstandard.ZstdError,)
    gz = codec == "gzip"
    d, fed = new(), False
    while data := fh.read(_READ_SIZE):
        while data:
            if not fed:
                data = data.lstrip(b"\0") if gz else data   # gzip allows zero padding between members
                if not data:
                    break
            fed = True
            try:
                out = d.decompress(data, _MAX_OUT) if gz else d.decompress(data)
            except errors as e:
                raise _StreamBroken(f"corrupt {codec} stream: {e}") from None
            if out:
                yield out
            data = d.unconsumed_tail if gz else b""     # gzip output is bounded per call
            if d.eof:
                data, d, fed = d.unused_data, new(), False
    if fed:
        if gz:
            tail = d.flush()
            if tail:
                yield tail
        if not d.eof:
            raise _StreamBroken(f"truncated {codec} stream")


def iter_file(path, *, source: str | None = None) -> Iterator[tuple[int, dict | InputError, bytes]]:
    """Yield (line number, event or InputError, raw line without its newline) for every non-blank line.

    The codec (plain, gzip, zstd) is detected from the magic bytes. A broken compressed stream
    ends the iteration with one InputError at the line where it broke, after every good line.
    """
    name = str(path)
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise NotFoundError(f"no such file: {name}") from None
    with fh:
        magic = fh.read(4)
        fh.seek(0)
        codec = "gzip" if magic[:2] == _GZIP_MAGIC else "zstd" if magic == _ZSTD_MAGIC else None
        chunks = _chunks_plain(fh) if codec is None else _chunks_compressed(fh, codec)
        line_no, head, first = 0, [], True      # head: pieces of a line that spans chunks
        try:
            for chunk in chunks:
                if first:
                    chunk, first = (chunk[3:] if chunk.startswith(_BOM) else chunk), False
                if b"\n" not in chunk:
                    head.append(chunk)
                    continue
                if head:
                    head.append(chunk)
                    chunk, head = b"".join(head), []
                lines = chunk.split(b"\n")
                head.append(lines.pop())
                for raw in lines:
                    line_no += 1
                    if raw and not raw.isspace():
                        yield line_no, _parse_line(raw, name, line_no, source), raw
        except _StreamBroken as broken:
            yield line_no + 1, InputError(str(broken), file=name, line=line_no + 1), b"".join(head)
            return
    pending = b"".join(head)
    if pending and not pending.isspace():
        yield line_no + 1, _parse_line(pending, name, line_no + 1, source), pending


def _parse_line(raw: bytes, name: str, line_no: int, source: str | None) -> dict | InputError:
    try:
        return normalize(decode_line(raw), source=source)
    except InputError as e:
        return InputError(e.reason, file=name, line=line_no, field=e.field)


# ---- schemas ------------------------------------------------------------------------------------
_REQUIRED = {  # fields that are never null
    "Trade": ("price", "size", "side"), "BboQuote": (), "L2Snapshot": ("bids", "asks"),
    "OrderFlow": ("order_id", "action", "side", "size"), "HistoricalBar": ("open", "high", "low", "close", "interval"),
    "Heartbeat": (),
}


def arrow_schema(type: str) -> pa.Schema:
    """The canonical Arrow columns of one event type, in canonical order."""
    if type not in FIELDS:
        raise InputError(f"unknown event type {_short(type)} (expected one of: {', '.join(EVENT_TYPES)})",
                         field="type")
    cols = [pa.field("type", pa.string(), False), pa.field("symbol", pa.string(), False),
            pa.field("source", pa.string(), False), pa.field("ts", pa.int64(), False),
            pa.field("recv_ts", pa.int64()), pa.field("seq", pa.int64())]
    for f in FIELDS[type]:
        if f in ("bids", "asks"):
            t = pa.list_(pa.list_(pa.string()))
        elif f == "conditions":
            t = pa.list_(pa.string())
        else:
            t = pa.string()
        cols.append(pa.field(f, t, f not in _REQUIRED[type]))
    return pa.schema(cols, metadata={"mdcsql.event_type": type, "mdcsql.schema_version": "1"})


def json_schema() -> dict:
    """JSON Schema (draft 2020-12) of one canonical JSON line: a oneOf over the event types."""
    dec = {"type": "string", "pattern": f"^{PLAIN_DECIMAL_RE}$", "maxLength": MAX_DECIMAL_CHARS}
    size = {"type": "string", "pattern": f"^{PLAIN_DECIMAL_RE[2:]}$", "maxLength": MAX_DECIMAL_CHARS}  # no "-"
    i64 = {"type": "integer", "minimum": I64_MIN, "maximum": I64_MAX}
    side = {"enum": ["buy", "sell", "unknown"]}
    opt_text = {"type": ["string", "null"]}
    level = {"type": "array", "prefixItems": [{"$ref": "#/$defs/decimal"}, {"$ref": "#/$defs/size"}],
             "minItems": 2, "maxItems": 2}
    props = {
        "price": {"$ref": "#/$defs/decimal"}, "size": {"$ref": "#/$defs/size"}, "side": side,
        "trade_id": {"type": ["string", "null"], "minLength": 1}, "venue": opt_text,
        "conditions": {"type": ["array", "null"], "items": {"type": "string"}},
        "bid_price": {"anyOf": [{"$ref": "#/$defs/decimal"}, {"type": "null"}]},
        "ask_price": {"anyOf": [{"$ref": "#/$defs/decimal"}, {"type": "null"}]},
        "bid_size": {"anyOf": [{"$ref": "#/$defs/size"}, {"type": "null"}]},
        "ask_size": {"anyOf": [{"$ref": "#/$defs/size"}, {"type": "null"}]},
        "bids": {"type": "array", "items": level}, "asks": {"type": "array", "items": level},
        "order_id": {"type": "string", "minLength": 1},
        "action": {"enum": ["add", "modify", "cancel", "fill", "clear"]},
        "open": {"$ref": "#/$defs/decimal"}, "high": {"$ref": "#/$defs/decimal"},
        "low": {"$ref": "#/$defs/decimal"}, "close": {"$ref": "#/$defs/decimal"},
        "volume": {"anyOf": [{"$ref": "#/$defs/size"}, {"type": "null"}]},
        "interval": {"type": "string", "pattern": f"^{INTERVAL_RE}$"}, "status": opt_text,
    }
    variants = []
    for etype in EVENT_TYPES:
        p = {"type": {"const": etype}, "symbol": {"type": "string", "minLength": 1},
             "source": {"type": "string", "minLength": 1}, "ts": i64,
             "recv_ts": {"anyOf": [i64, {"type": "null"}]},
             "seq": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": I64_MAX}, {"type": "null"}]}}
        for f in FIELDS[etype]:
            p[f] = dict(props[f])
        if etype == "OrderFlow":
            p["price"] = {"anyOf": [{"$ref": "#/$defs/decimal"}, {"type": "null"}]}
        variants.append({"title": etype, "type": "object", "properties": p,
                         "required": list(COMMON_FIELDS + FIELDS[etype]), "additionalProperties": False})
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://mdcsql.invalid/schemas/event/v1.json",
            "title": "mdcsql canonical event (one JSON line)",
            "description": "Key order is fixed: type, symbol, source, ts, recv_ts, seq, then the type's fields.",
            "$defs": {"decimal": dec, "size": size}, "oneOf": variants}


# ---- Arrow batches ------------------------------------------------------------------------------
# Vectorised twins of the per-event rules above. An error names the row and field the per-event
# path would report first: the earliest row, and within it the earliest check in canonical order.
ISO_TS_NAMED_RE = (r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})[Tt ](?P<h>[0-9]{2}):(?P<mi>[0-9]{2}):"
                   r"(?P<s>[0-9]{2})(?:\.(?P<f>[0-9]{1,9}))?(?:(?P<z>[Zz])|(?P<sg>[+-])(?P<oh>[0-9]{2}):?"
                   r"(?P<om>[0-9]{2}))?")
_KINDS = {"price": "price", "size": "size", "side": "side", "trade_id": "opt_id", "venue": "opt_text",
          "conditions": "conditions", "bid_price": "opt_price", "ask_price": "opt_price", "bid_size": "opt_size",
          "ask_size": "opt_size", "bids": "levels", "asks": "levels", "order_id": "id", "action": "action",
          "open": "price", "high": "price", "low": "price", "close": "price", "volume": "opt_size",
          "interval": "interval", "status": "opt_text"}


class _FirstError:
    def __init__(self) -> None:
        self.key: tuple | None = None
        self.field: str | None = None
        self.message = ""

    def check(self, bad, order: float, field: str, message, rows=None) -> None:
        """`bad` flags rows (null = fine), or elements whose row numbers are `rows`."""
        if bad is None or len(bad) == 0:
            return
        bad = pc.fill_null(bad, False)
        if not pc.any(bad).as_py():
            return
        if rows is None:
            i = row = pc.index(bad, True).as_py()
        else:
            idx = pc.indices_nonzero(bad)
            at = pc.take(rows, idx)
            row = pc.min(at).as_py()
            i = idx[pc.index(at, row).as_py()].as_py()
        if self.key is None or (row, order) < self.key:
            self.key, self.field = (row, order), field
            self.message = message(i) if callable(message) else message

    def raise_first(self) -> None:
        if self.key is not None:
            raise InputError(self.message, line=self.key[0] + 1, field=self.field)


def _why(validate, arr: pa.Array, i: int, default: str) -> str:
    try:
        validate(arr[i].as_py())
    except InputError as e:
        return e.reason
    except Exception:     # a value Python cannot represent (e.g. an out-of-range timestamp)
        pass
    return default


def _plain_array(col) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        if pa.types.is_dictionary(col.type):
            col = pa.chunked_array([c.dictionary_decode() for c in col.chunks], col.type.value_type)
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    t = col.type
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return col.cast(pa.string())
    if pa.types.is_large_list(t) or pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
        return col.cast(pa.list_(t.value_type))
    if pa.types.is_fixed_size_list(t):
        return col.cast(pa.list_(t.value_type))
    return col


def _dec_array(arr: pa.Array, field: str) -> tuple[pa.Array, pa.Array | None]:
    """Decimal text of every element (null stays null) and a mask of the elements that are not numbers."""
    import polars as pl
    t, n = arr.type, len(arr)
    if pa.types.is_null(t):
        return pa.nulls(n, pa.string()), None
    if pa.types.is_string(t):
        out = arr
    elif pa.types.is_integer(t) or pa.types.is_decimal(t):
        out = arr.cast(pa.string())      # decimals keep their scale: 187.10 stays "187.10"
    elif pa.types.is_floating(t):
        arr = arr.cast(pa.float64())     # shortest repr, as Python's repr(float) gives
        out = pl.from_arrow(arr).cast(pl.String).to_arrow().cast(pa.string())
    else:
        return pa.nulls(n, pa.string()), arr.is_valid()
    # Canonical text passes as is; everything else (exponents, "+1", NaN, junk) takes the per-event path.
    fast = pc.and_kleene(pc.match_substring_regex(out, f"^(?:{PLAIN_DECIMAL_RE})$"),
                         pc.less_equal(pc.binary_length(out), MAX_DECIMAL_CHARS))
    slow = pc.and_kleene(arr.is_valid(), pc.invert(pc.fill_null(fast, False)))
    if not pc.any(slow).as_py():
        return out, None
    results, failed = [], []     # a Python loop over the non-canonical values only
    for v in pc.filter(arr, slow).to_pylist():
        try:
            results.append(decimal_text(v, field))
            failed.append(False)
        except InputError:
            results.append(None)
            failed.append(True)
    out = pc.replace_with_mask(out, slow, pa.array(results, pa.string()))
    if not any(failed):
        return out, None
    return out, pc.replace_with_mask(pa.repeat(False, n), slow, pa.array(failed, pa.bool_()))


def _strings(arr, n: int, field: str, order: float, errs: _FirstError, validate, ints: bool = False) -> pa.Array:
    """A string column (ints converted when `ints`); other types are an error on every non-null row."""
    if arr is None or pa.types.is_null(arr.type):
        return pa.nulls(n, pa.string())
    if pa.types.is_string(arr.type):
        return arr
    if ints and pa.types.is_integer(arr.type):
        return arr.cast(pa.string())
    errs.check(arr.is_valid(), order, field, lambda i: _why(validate, arr, i, f"{field} has the wrong type"))
    return pa.nulls(n, pa.string())


def _ts_col(arr, n: int, field: str, order: float, errs: _FirstError, required: bool) -> pa.Array:
    if arr is None or pa.types.is_null(arr.type):
        if required:
            errs.check(pa.repeat(True, n), order, field, f"missing {field}")
        return pa.nulls(n, pa.int64())
    t = arr.type
    check = (lambda v: parse_ts(v, field))
    if required:
        errs.check(arr.is_null(), order, field, f"missing {field}")
    if pa.types.is_integer(t):
        if t == pa.uint64():
            big = pc.greater(arr, I64_MAX)
            errs.check(big, order, field, lambda i: _why(check, arr, i, "out of range"))
            arr = pc.if_else(big, 0, arr)
        out = arr.cast(pa.int64())
        unit = pc.and_kleene(pc.greater(out, -MIN_INT_TS), pc.less(out, MIN_INT_TS))
        errs.check(unit, order, field, lambda i: _why(check, out, i, "not nanoseconds"))
        return out
    if pa.types.is_timestamp(t):
        mult = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[t.unit]
        raw = arr.cast(pa.int64())
        bad = pc.or_kleene(pc.less(raw, -(-I64_MIN // mult)), pc.greater(raw, I64_MAX // mult))
        errs.check(bad, order, field, f"{field} is outside the int64 nanosecond range (1677..2262)")
        return pc.multiply(pc.if_else(bad, 0, raw), mult)
    if pa.types.is_string(t):
        return _iso_col(arr, field, order, errs)
    errs.check(arr.is_valid(), order, field, lambda i: _why(check, arr, i, f"{field} has the wrong type"))
    return pa.nulls(n, pa.int64())


def _iso_col(arr: pa.Array, field: str, order: float, errs: _FirstError) -> pa.Array:
    ok = pc.fill_null(pc.match_substring_regex(arr, f"^(?:{ISO_TS_RE})$"), False)
    p = pc.extract_regex(pc.if_else(ok, arr, "1970-01-01T00:00:00Z"), ISO_TS_NAMED_RE)

    def num(name: str, width: int = 2, right: bool = False) -> pa.Array:
        pad = pc.utf8_rpad if right else pc.utf8_lpad
        return pc.cast(pad(p.field(name), width=width, padding="0"), pa.int64())

    y, mo, d, h, mi, s = num("y", 4), num("mo"), num("d"), num("h"), num("mi"), num("s")
    frac, oh, om = num("f", 9, right=True), num("oh"), num("om")
    leap = pc.or_kleene(pc.and_kleene(pc.equal(pc.subtract(y, pc.multiply(pc.divide(y, 4), 4)), 0),
                          pc.not_equal(pc.subtract(y, pc.multiply(pc.divide(y, 100), 100)), 0)),
                  pc.equal(pc.subtract(y, pc.multiply(pc.divide(y, 400), 400)), 0))
    month_ok = pc.and_kleene(pc.greater_equal(mo, 1), pc.less_equal(mo, 12))
    dim = pc.add(pc.take(pa.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]), pc.if_else(month_ok, mo, 0)),
                 pc.cast(pc.and_kleene(leap, pc.equal(mo, 2)), pa.int64()))
    # days since the epoch (H. Hinnant's days_from_civil; years are limited to 1677..2262 below)
    y2 = pc.subtract(y, pc.cast(pc.less_equal(mo, 2), pa.int64()))
    era = pc.divide(y2, 400)
    yoe = pc.subtract(y2, pc.multiply(era, 400))
    mp = pc.if_else(pc.greater(mo, 2), pc.subtract(mo, 3), pc.add(mo, 9))
    doy = pc.add(pc.divide(pc.add(pc.multiply(mp, 153), 2), 5), pc.subtract(d, 1))
    doe = pc.add(pc.subtract(pc.add(pc.multiply(yoe, 365), pc.divide(yoe, 4)), pc.divide(yoe, 100)), doy)
    days = pc.subtract(pc.add(pc.multiply(era, 146097), doe), 719468)
    offset = pc.multiply(pc.add(pc.multiply(oh, 3600), pc.multiply(om, 60)),
                         pc.if_else(pc.equal(p.field("sg"), "+"), -1, 1))
    secs = pc.add(pc.add(pc.add(pc.multiply(days, 86400), pc.multiply(h, 3600)),
                         pc.add(pc.multiply(mi, 60), s)), offset)
    bad = pc.invert(ok)
    for cond in (pc.less(y, 1677), pc.greater(y, 2262), pc.invert(month_ok), pc.less(d, 1), pc.greater(d, dim),
                 pc.greater(h, 23), pc.greater(mi, 59), pc.greater(s, 59), pc.greater(oh, 23), pc.greater(om, 59),
                 pc.greater(secs, 9223372036), pc.less(secs, -9223372037),
                 pc.and_kleene(pc.equal(secs, 9223372036), pc.greater(frac, 854775807)),
                 pc.and_kleene(pc.equal(secs, -9223372037), pc.less(frac, 145224192))):
        bad = pc.or_kleene(bad, cond)
    bad = pc.and_kleene(bad, arr.is_valid())
    errs.check(bad, order, field, lambda i: _why(lambda v: parse_ts(v, field), arr, i, f"invalid {field}"))
    secs = pc.if_else(bad, 0, secs)
    ns = pc.if_else(pc.less(secs, 0),   # keep the intermediate product inside int64 near the lower bound
                    pc.add(pc.multiply(pc.add(secs, 1), 10**9), pc.subtract(frac, 10**9)),
                    pc.add(pc.multiply(secs, 10**9), frac))
    return pc.if_else(arr.is_valid(), ns, pa.scalar(None, pa.int64()))


def _decimal_col(arr, n: int, field: str, order: float, errs: _FirstError, *, required: bool,
                 nonneg: bool) -> pa.Array:
    if arr is None:
        arr = pa.nulls(n)
    validate = (lambda v: _size(v, field)) if nonneg else (lambda v: _price(v, field))
    if required:
        errs.check(arr.is_null(), order, field, f"missing {field}")
    out, bad = _dec_array(arr, field)
    if nonneg:
        neg = pc.starts_with(out, "-")
        bad = neg if bad is None else pc.or_kleene(bad, neg)
    errs.check(bad, order, field, lambda i: _why(validate, arr, i, f"{field} is not a decimal number"))
    return out


def _choice_col(arr, n: int, field: str, order: float, errs: _FirstError, mapping: dict,
                default: str | None) -> pa.Array:
    validate = (lambda v: _side(v, field)) if default else (lambda v: _flow_action(v))
    arr = _strings(arr, n, field, order, errs, validate)
    idx = pc.index_in(arr, value_set=pa.array(list(mapping), pa.string()))
    out = pc.take(pa.array(list(mapping.values()), pa.string()), idx)
    errs.check(pc.and_kleene(arr.is_valid(), idx.is_null()), order, field, lambda i: _why(validate, arr, i, "invalid"))
    if default is not None:
        return pc.fill_null(out, default)
    errs.check(arr.is_null(), order, field, f"missing {field}")
    return out


def _rebuild_list(outer: pa.Array, values: pa.Array) -> pa.Array:
    lengths = pc.fill_null(pc.list_value_length(outer), 0)
    offsets = pa.concat_arrays([pa.array([0], pa.int64()), pc.cumulative_sum(lengths.cast(pa.int64()))])
    return pa.ListArray.from_arrays(offsets.cast(pa.int32()), values, mask=outer.is_null())


def _conditions_col(arr, n: int, field: str, order: float, errs: _FirstError) -> pa.Array:
    target = pa.list_(pa.string())
    if arr is None or pa.types.is_null(arr.type):
        return pa.nulls(n, target)
    if not pa.types.is_list(arr.type):
        errs.check(arr.is_valid(), order, field, lambda i: _why(_conditions, arr, i, f"{field} has the wrong type"))
        return pa.nulls(n, target)
    flat, rows = arr.flatten(), pc.list_parent_indices(arr)
    vt = flat.type
    if pa.types.is_string(vt) or pa.types.is_integer(vt) or pa.types.is_null(vt):
        errs.check(flat.is_null(), order, field, lambda i: f"{field} must hold strings, got None", rows=rows)
        values = flat.cast(pa.string())
    else:
        errs.check(flat.is_valid(), order, field, lambda i: _why(_conditions, pa.array([flat[i].as_py()]), 0,
                                                                 f"{field} must hold strings"), rows=rows)
        values = pa.nulls(len(flat), pa.string())
    return _rebuild_list(arr, values)


def _levels_col(arr, n: int, field: str, order: float, errs: _FirstError) -> pa.Array:
    target = pa.list_(pa.list_(pa.string()))
    if arr is None or pa.types.is_null(arr.type):
        errs.check(pa.repeat(True, n), order, field, f"missing {field}")
        return pa.nulls(n, target)
    errs.check(arr.is_null(), order, field, f"missing {field}")
    if not pa.types.is_list(arr.type):
        errs.check(arr.is_valid(), order, field, f"{field} must be a list of [price, size] pairs")
        return pa.nulls(n, target)
    inner, inner_rows = arr.flatten(), pc.list_parent_indices(arr)
    if pa.types.is_null(inner.type):
        errs.check(pa.repeat(True, len(inner)), order, field, f"{field} levels must be [price, size] pairs",
                   rows=inner_rows)
        return _rebuild_list(arr, pa.nulls(len(inner), pa.list_(pa.string())))
    inner = _plain_array(inner)
    if not pa.types.is_list(inner.type):
        errs.check(inner.is_valid(), order, field, f"{field} levels must be [price, size] pairs", rows=inner_rows)
        return pa.nulls(n, target)
    lengths = pc.list_value_length(inner)
    errs.check(pc.or_kleene(inner.is_null(), pc.not_equal(lengths, 2)), order, field,
               lambda i: f"{field} level must be a [price, size] pair, got {_short(inner[i].as_py())}", rows=inner_rows)
    values, value_inner = inner.flatten(), pc.list_parent_indices(inner)
    value_rows = pc.take(inner_rows, value_inner)
    starts = pc.subtract(pc.cumulative_sum(pc.fill_null(lengths, 0).cast(pa.int64())),
                         pc.fill_null(lengths, 0).cast(pa.int64()))
    position = pc.subtract(pa.array(range(len(values)), pa.int64()), pc.take(starts, value_inner))
    out, bad = _dec_array(values, field)
    bad = pc.or_kleene(values.is_null(), pc.and_kleene(pc.equal(position, 1), pc.starts_with(out, "-"))) if bad is None else \
        pc.or_kleene(pc.or_kleene(bad, values.is_null()), pc.and_kleene(pc.equal(position, 1), pc.starts_with(out, "-")))
    errs.check(bad, order, field, lambda i: _why(lambda v: _size(v, field) if position[i].as_py() == 1 else
                                                 _price(v, field), values, i, f"{field} has a bad level"),
               rows=value_rows)
    return _rebuild_list(arr, _rebuild_list(inner, out))


def _table_type(col, type: str | None, n: int) -> tuple[str, pa.Array | None]:
    if type is not None and type not in FIELDS:
        raise InputError(f"unknown event type {_short(type)} (expected one of: {', '.join(EVENT_TYPES)})",
                         field="type")
    if col is None or pa.types.is_null(col.type):
        if type is None:
            raise InputError("a table needs a type column or the type argument", line=1 if n else None, field="type")
        return type, None
    if not pa.types.is_string(col.type):
        raise InputError("the type column must hold strings", line=1 if n else None, field="type")
    if type is None:
        if n == 0:
            raise InputError("cannot tell the event type of an empty table: pass type=", field="type")
        type = col[0].as_py()
        if type is None:
            raise InputError("missing type", line=1, field="type")
        if type not in FIELDS:
            raise InputError(f"unknown event type {_short(type)} (expected one of: {', '.join(EVENT_TYPES)})",
                             line=1, field="type")
    return type, col


def normalize_table(table: pa.Table, *, type: str | None = None, source: str | None = None) -> pa.Table:
    """Validate and convert an Arrow batch of ONE event type to its canonical columns (vectorised).

    :param type: the event type when the table has no `type` column (nulls in it take this value).
    :param source: fills a missing `source` column and its nulls.
    :raises InputError: naming the first bad row (line = row + 1) and its field.
    """
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if not isinstance(table, pa.Table):
        raise InputError(f"normalize_table takes a pyarrow.Table, not {builtins.type(table).__name__}")
    n = table.num_rows
    names = table.column_names
    if len(set(names)) != len(names):
        dup = next(c for c in names if names.count(c) > 1)
        raise InputError(f"duplicate column {dup!r}", field=dup)
    cols = {c: _plain_array(table.column(c)) for c in names}
    etype, tcol = _table_type(cols.get("type"), type, n)
    fields = COMMON_FIELDS + FIELDS[etype]
    pos = {f: i for i, f in enumerate(fields)}
    errs = _FirstError()
    if tcol is not None:
        fixed = pc.fill_null(tcol, etype) if type is not None else tcol
        errs.check(fixed.is_null(), 0, "type", "missing type")
        errs.check(pc.not_equal(fixed, etype), 0, "type",
                   lambda i: f"a table holds one event type: row has {_short(fixed[i].as_py())}, expected {etype}")
    for c in names:
        if c not in pos:
            errs.check(pa.repeat(True, n), 0.5, c, f"unknown key {c!r} for {etype} (expected: {', '.join(fields)})")
    out = {"type": pc.fill_null(pa.nulls(n, pa.string()), etype)}
    sym = out["symbol"] = _strings(cols.get("symbol"), n, "symbol", 1, errs, lambda v: _text(v, "symbol"))
    errs.check(pc.or_kleene(sym.is_null(), pc.equal(pc.binary_length(sym), 0)), 1, "symbol",
               lambda i: _why(lambda v: _text(v, "symbol"), sym, i, "missing symbol"))
    src = _strings(cols.get("source"), n, "source", 2, errs, lambda v: _text(v, "source"))
    src = out["source"] = src if source is None else pc.fill_null(src, source)
    errs.check(pc.or_kleene(src.is_null(), pc.equal(pc.binary_length(src), 0)), 2, "source",
               lambda i: _why(lambda v: _text(v, "source"), src, i, "missing source"))
    out["ts"] = _ts_col(cols.get("ts"), n, "ts", 3, errs, True)
    out["recv_ts"] = _ts_col(cols.get("recv_ts"), n, "recv_ts", 4, errs, False)
    out["seq"] = _seq_col(cols.get("seq"), n, errs)
    for f in FIELDS[etype]:
        kind, o, a = _KINDS[f], pos[f], cols.get(f)
        if etype == "OrderFlow" and f == "price":
            kind = "opt_price"
            action = out["action"]
            errs.check(pc.and_kleene(_nulls_of(a, n), pc.invert(pc.is_in(action, pa.array(NO_PRICE_ACTIONS)))), o, f,
                       lambda i: f"missing price (only cancel and clear may omit it, action is {action[i].as_py()})")
        if kind in ("price", "size", "opt_price", "opt_size"):
            out[f] = _decimal_col(a, n, f, o, errs, required=kind in ("price", "size"), nonneg=kind.endswith("size"))
        elif kind == "side":
            out[f] = _choice_col(a, n, f, o, errs, SIDES, "unknown")
        elif kind == "action":
            out[f] = _choice_col(a, n, f, o, errs, ACTIONS, None)
        elif kind in ("id", "opt_id"):
            req = kind == "id"
            v = out[f] = _strings(a, n, f, o, errs, lambda x, f=f, req=req: _ident(x, f, req), ints=True)
            bad = pc.equal(pc.binary_length(v), 0)
            errs.check(pc.or_kleene(v.is_null(), bad) if req else bad, o, f,
                       lambda i, f=f, req=req, v=v: _why(lambda x: _ident(x, f, req), v, i, f"missing {f}"))
        elif kind == "opt_text":
            out[f] = _strings(a, n, f, o, errs, lambda x, f=f: _opt_text(x, f))
        elif kind == "interval":
            v = out[f] = _strings(a, n, f, o, errs, lambda x: _bar_interval(x))
            errs.check(pc.invert(pc.fill_null(pc.match_substring_regex(v, f"^(?:{INTERVAL_RE})$"), False)), o, f,
                       lambda i, v=v: _why(_bar_interval, v, i, "invalid interval"))
        elif kind == "conditions":
            out[f] = _conditions_col(a, n, f, o, errs)
        elif kind == "levels":
            out[f] = _levels_col(a, n, f, o, errs)
    if etype == "BboQuote":
        for side in ("bid", "ask"):
            price, size = out[side + "_price"], out[side + "_size"]
            errs.check(pc.and_kleene(price.is_null(), size.is_valid()), pos[side + "_size"] + 0.1, side + "_size",
                       f"{side}_size given without {side}_price")
        errs.check(pc.and_kleene(out["bid_price"].is_null(), out["ask_price"].is_null()), pos["ask_size"] + 0.2,
                   "bid_price", "a BboQuote needs a bid or an ask price (both are null)")
    if etype == "L2Snapshot":
        errs.check(pc.and_kleene(pc.equal(pc.list_value_length(out["bids"]), 0),
                           pc.equal(pc.list_value_length(out["asks"]), 0)), pos["asks"] + 0.1, "bids",
                   "an L2Snapshot needs at least one level (bids and asks are both empty)")
    errs.raise_first()
    return pa.Table.from_arrays([out[f] for f in fields], schema=arrow_schema(etype))


def _nulls_of(arr, n: int) -> pa.Array:
    return pa.repeat(True, n) if arr is None else arr.is_null()


def _seq_col(arr, n: int, errs: _FirstError) -> pa.Array:
    if arr is None or pa.types.is_null(arr.type):
        return pa.nulls(n, pa.int64())
    msg = (lambda i: f"seq must be an integer in 0..2**63-1, got {_short(arr[i].as_py())}")
    if not pa.types.is_integer(arr.type):
        errs.check(arr.is_valid(), 5, "seq", msg)
        return pa.nulls(n, pa.int64())
    bad = pc.less(arr, 0)
    if arr.type == pa.uint64():
        bad = pc.greater(arr, I64_MAX)
    errs.check(bad, 5, "seq", msg)
    return pc.if_else(bad, 0, arr).cast(pa.int64())


def encode_table(table: pa.Table) -> bytes:
    """A canonical table (from `normalize_table`) as JSON lines, byte-identical to `encode` per row."""
    import polars as pl
    if table.num_rows == 0:
        return b""
    etype = table.column("type")[0].as_py() if "type" in table.column_names else None
    if etype not in FIELDS or [(f.name, f.type) for f in table.schema] != \
            [(f.name, f.type) for f in arrow_schema(etype)]:
        raise InputError(f"encode_table takes a canonical table (see normalize_table); columns are "
                         f"{', '.join(table.column_names)}")
    buf = io.BytesIO()
    pl.from_arrow(table).write_ndjson(buf)
    return buf.getvalue()
