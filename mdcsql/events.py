"""Event types, validation into one canonical record, and its JSON-lines encoding.

Every event enters the archive through `normalize` (one record) or `normalize_table` (an Arrow
batch of one type) and leaves as one canonical JSON line: fixed key order, every key present,
times as integer UTC nanoseconds, prices and sizes as the source's decimal text. Both paths
apply the same rules and produce byte-identical lines (`encode` and `encode_table`).
This module holds the per-event path; the Arrow batch path (`normalize_table`, `encode_table`,
`arrow_schema`) lives in events_table.py and is re-exported here.
The rules are documented in docs/events.md.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import math
import operator
import re
import zlib
from typing import Iterator

import msgspec
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
# The vectorised batch path lives in events_table.py (which imports the helpers above); imported
# last so that every name it needs from this module exists. `_FirstError` and `_iso_col` are
# re-exported for the tests that check the vectorised ISO parser against `parse_ts`.
from mdcsql.events_table import (  # noqa: E402, F401
    ISO_TS_NAMED_RE, _FirstError, _iso_col, arrow_schema, encode_table, normalize_table,
)
