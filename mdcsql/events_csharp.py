"""Read-only compatibility with the C# Market Data Collector's JSONL (camelCase envelope + payload).

`normalize` (in events.py) sends a record here when it has a `payload` or a numeric `type`.
The record is mapped to the canonical shape and validated by the same rules as any other
input; errors name the C# field path (`payload.price`, `timestamp`, ...). The mapping table is
in docs/events.md.
"""

from __future__ import annotations

from mdcsql import events as ev
from mdcsql.errors import InputError

# MarketEventType values we can store, and the payload kinds that may carry them.
CS_TYPES: dict[int, str] = {1: "L2Snapshot", 2: "BboQuote", 3: "Trade", 8: "HistoricalBar"}
CS_KINDS: dict[str, str] = {"l2": "L2Snapshot", "l2payload": "L2Snapshot", "bbo": "BboQuote",
                            "trade": "Trade", "historical_bar": "HistoricalBar"}
AGGRESSOR: dict = {0: "unknown", 1: "buy", 2: "sell", "Unknown": "unknown", "Buy": "buy", "Sell": "sell"}
DEFAULT_DATETIMEOFFSET = "0001-01-01T00:00:00"   # DateTimeOffset default: "not set"

# Keys the C# collector writes that have no canonical field; they are accepted and dropped.
ENVELOPE_KEYS = frozenset({"timestamp", "symbol", "type", "sequence", "source", "schemaVersion",
                           "receivedAtUtc", "payload"})
ENVELOPE_DROPPED = frozenset({"tier", "exchangeTimestamp", "receivedAtMonotonic", "canonicalSymbol",
                              "canonicalizationVersion", "canonicalVenue"})
PAYLOAD_KEYS: dict[str, frozenset] = {
    "trade": frozenset({"kind", "timestamp", "symbol", "price", "size", "aggressor", "sequenceNumber",
                        "streamId", "venue"}),
    "bbo": frozenset({"kind", "timestamp", "symbol", "bidPrice", "bidSize", "askPrice", "askSize", "midPrice",
                      "spread", "sequenceNumber", "streamId", "venue"}),
    "l2": frozenset({"kind", "timestamp", "symbol", "bids", "asks", "midPrice", "microPrice", "imbalance",
                     "marketState", "sequenceNumber", "streamId", "venue"}),
    "l2payload": frozenset({"kind", "snapshot", "sequenceNumber", "streamId", "venue"}),
    "historical_bar": frozenset({"kind", "symbol", "sessionDate", "open", "high", "low", "close", "volume",
                                 "source", "sequenceNumber"}),
}
LEVEL_KEYS = frozenset({"side", "level", "price", "size", "marketMaker"})

# canonical field -> C# path, for error messages
_COMMON_PATHS = {"symbol": "symbol", "source": "source", "ts": "timestamp", "recv_ts": "receivedAtUtc",
                 "seq": "sequence", "type": "type"}
_PATHS = {
    "Trade": {"price": "payload.price", "size": "payload.size", "side": "payload.aggressor",
              "venue": "payload.venue"},
    "BboQuote": {"bid_price": "payload.bidPrice", "bid_size": "payload.bidSize", "ask_price": "payload.askPrice",
                 "ask_size": "payload.askSize", "venue": "payload.venue"},
    "L2Snapshot": {"bids": "payload.bids", "asks": "payload.asks", "venue": "payload.venue"},
    "HistoricalBar": {"open": "payload.open", "high": "payload.high", "low": "payload.low",
                      "close": "payload.close", "volume": "payload.volume"},
}


def _check_keys(obj: dict, allowed: frozenset, where: str) -> None:
    unknown = sorted(str(k) for k in obj.keys() - allowed)
    if unknown:
        raise InputError(f"unknown C# collector key {where}{unknown[0]}", field=f"{where}{unknown[0]}")


def _event_type(record: dict, payload: dict) -> tuple[str, str]:
    t = record.get("type")
    if type(t) is int:
        etype = CS_TYPES.get(t)
        if etype is None:
            raise InputError(f"unsupported C# event type {t}", field="type")
    elif type(t) is str and t in ev.FIELDS:      # JsonStringEnumConverter writes the enum name
        etype = t
    elif t is None:
        etype = None
    else:
        raise InputError(f"unsupported C# event type {t!r}", field="type")
    kind = payload.get("kind")
    if type(kind) is not str or kind not in CS_KINDS:
        raise InputError(f"unsupported C# payload kind {kind!r}", field="payload.kind")
    if etype is None:
        etype = CS_KINDS[kind]
    if CS_KINDS[kind] != etype:
        raise InputError(f"C# payload kind {kind!r} does not match event type {t!r}", field="payload.kind")
    return etype, kind


def _levels(levels, path: str) -> list:
    """OrderBookLevel objects sorted by level (0 = best) as [price, size] pairs."""
    if levels is None:
        return []
    if type(levels) is not list:
        raise InputError(f"{path} must be a list of levels", field=path)
    keyed = []
    for i, level in enumerate(levels):
        if type(level) is not dict:
            raise InputError(f"{path}[{i}] must be an object with price, size, level", field=path)
        _check_keys(level, LEVEL_KEYS, f"{path}[{i}].")
        rank = level.get("level", i)
        if type(rank) is not int:
            raise InputError(f"{path}[{i}].level must be an integer", field=path)
        keyed.append((rank, i, [level.get("price"), level.get("size")]))
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [pair for _r, _i, pair in keyed]


def _recv(value):
    if type(value) is str and value.startswith(DEFAULT_DATETIMEOFFSET):
        return None
    return value


def normalize_csharp(record: dict, *, source: str | None = None) -> dict:
    """Map one C# collector record to a canonical event; raises InputError with the C# field path."""
    payload = record.get("payload")
    if type(payload) is not dict:
        t = record.get("type")
        if type(t) is int and t not in CS_TYPES:
            raise InputError(f"unsupported C# event type {t}", field="type")
        raise InputError("C# collector record without a payload object", field="payload")
    etype, kind = _event_type(record, payload)
    _check_keys(record, ENVELOPE_KEYS | ENVELOPE_DROPPED, "")
    _check_keys(payload, PAYLOAD_KEYS[kind], "payload.")
    body = payload
    if kind == "l2payload":
        body = payload.get("snapshot")
        if type(body) is not dict:
            raise InputError("payload.snapshot must be an object", field="payload.snapshot")
        _check_keys(body, PAYLOAD_KEYS["l2"] - {"kind"}, "payload.snapshot.")
    seq = record.get("sequence")
    if seq is None:
        seq = payload.get("sequenceNumber", body.get("sequenceNumber"))
    out = {"type": etype, "symbol": record.get("symbol") or body.get("symbol"),
           "source": record.get("source") or (payload.get("source") if kind == "historical_bar" else None),
           "ts": record.get("timestamp"), "recv_ts": _recv(record.get("receivedAtUtc")), "seq": seq}
    if kind == "trade":
        aggressor = payload.get("aggressor", 0)
        side = AGGRESSOR.get(aggressor) if type(aggressor) in (int, str) else None
        if side is None:
            raise InputError(f"payload.aggressor must be 0 (unknown), 1 (buy) or 2 (sell), got {aggressor!r}",
                             field="payload.aggressor")
        out.update(price=payload.get("price"), size=payload.get("size"), side=side, venue=payload.get("venue"))
    elif kind == "bbo":
        out.update(bid_price=payload.get("bidPrice"), bid_size=payload.get("bidSize"),
                   ask_price=payload.get("askPrice"), ask_size=payload.get("askSize"), venue=payload.get("venue"))
    elif kind in ("l2", "l2payload"):
        out.update(bids=_levels(body.get("bids"), "payload.bids"), asks=_levels(body.get("asks"), "payload.asks"),
                   venue=payload.get("venue") or body.get("venue"))
    else:
        session = payload.get("sessionDate")
        if out["ts"] is None:
            if type(session) is not str or len(session) != 10:
                raise InputError(f"payload.sessionDate must be yyyy-MM-dd, got {session!r}",
                                 field="payload.sessionDate")
            out["ts"] = session + "T00:00:00Z"
        out.update(open=payload.get("open"), high=payload.get("high"), low=payload.get("low"),
                   close=payload.get("close"), volume=payload.get("volume"), interval="1d")
    try:
        return ev.normalize_canonical(out, etype, source)
    except InputError as e:
        path = _PATHS[etype].get(e.field) or _COMMON_PATHS.get(e.field, e.field)
        if e.field == "ts" and record.get("timestamp") is None and kind == "historical_bar":
            path = "payload.sessionDate"
        reason = e.reason
        if reason.startswith(f"{e.field} ") or reason.startswith(f"missing {e.field}"):
            reason = reason.replace(e.field, path, 1)
        raise InputError(reason, field=path) from None
