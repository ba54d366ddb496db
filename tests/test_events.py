"""Event types: normalisation, canonical JSON lines, files, the C# shape and the Arrow batch path."""

from __future__ import annotations

import datetime as dt
import decimal
import gzip
import json
import random
import re

import pyarrow as pa
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from mdcsql import events as ev
from mdcsql.errors import InputError

TS = 1705329000123456789            # 2024-01-15T14:30:00.123456789Z
TS_ISO = "2024-01-15T14:30:00.123456789Z"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def line(record: dict, **kw) -> bytes:
    return ev.encode(ev.normalize(record, **kw))


def err(record, **kw) -> InputError:
    with pytest.raises(InputError) as info:
        ev.normalize(record, **kw)
    return info.value


# ---- the canonical record per type ------------------------------------------------------------
def test_public_constants():
    assert ev.EVENT_TYPES == ("Trade", "BboQuote", "L2Snapshot", "OrderFlow", "HistoricalBar", "Heartbeat")
    assert ev.COMMON_FIELDS == ("type", "symbol", "source", "ts", "recv_ts", "seq")
    assert tuple(ev.FIELDS) == ev.EVENT_TYPES and tuple(ev.DECIMAL_FIELDS) == ev.EVENT_TYPES
    for etype, fields in ev.DECIMAL_FIELDS.items():
        assert set(fields) <= set(ev.FIELDS[etype])


CANONICAL = [
    ({"type": "Trade", "symbol": "AAPL", "source": "alpaca", "ts": TS, "price": "187.10", "size": 100},
     b'{"type":"Trade","symbol":"AAPL","source":"alpaca","ts":1705329000123456789,"recv_ts":null,"seq":null,'
     b'"price":"187.10","size":"100","side":"unknown","trade_id":null,"venue":null,"conditions":null}\n'),
    ({"type": "Trade", "symbol": "AAPL", "source": "alpaca", "ts": TS_ISO, "recv_ts": TS + 1500, "seq": 7,
      "price": "187.10", "size": "100", "side": "B", "trade_id": 987654, "venue": "XNAS", "conditions": ["@", "I"]},
     b'{"type":"Trade","symbol":"AAPL","source":"alpaca","ts":1705329000123456789,"recv_ts":1705329000123458289,'
     b'"seq":7,"price":"187.10","size":"100","side":"buy","trade_id":"987654","venue":"XNAS",'
     b'"conditions":["@","I"]}\n'),
    ({"type": "BboQuote", "symbol": "SPY", "source": "ib", "ts": TS, "bid_price": "475.12", "bid_size": 300,
      "ask_price": "475.13", "ask_size": 200, "venue": "ARCX"},
     b'{"type":"BboQuote","symbol":"SPY","source":"ib","ts":1705329000123456789,"recv_ts":null,"seq":null,'
     b'"bid_price":"475.12","bid_size":"300","ask_price":"475.13","ask_size":"200","venue":"ARCX"}\n'),
    ({"type": "BboQuote", "symbol": "SPY", "source": "ib", "ts": TS, "ask_price": "475.13", "ask_size": "200"},
     b'{"type":"BboQuote","symbol":"SPY","source":"ib","ts":1705329000123456789,"recv_ts":null,"seq":null,'
     b'"bid_price":null,"bid_size":null,"ask_price":"475.13","ask_size":"200","venue":null}\n'),
    ({"type": "L2Snapshot", "symbol": "MSFT", "source": "ib", "ts": TS, "seq": 3,
      "bids": [["375.11", 100], ["375.10", "200"]], "asks": []},
     b'{"type":"L2Snapshot","symbol":"MSFT","source":"ib","ts":1705329000123456789,"recv_ts":null,"seq":3,'
     b'"bids":[["375.11","100"],["375.10","200"]],"asks":[],"venue":null}\n'),
    ({"type": "OrderFlow", "symbol": "ESH4", "source": "databento", "ts": TS, "order_id": 6477321,
      "action": "add", "side": "S", "price": "4790.25", "size": 3, "venue": "XCME"},
     b'{"type":"OrderFlow","symbol":"ESH4","source":"databento","ts":1705329000123456789,"recv_ts":null,'
     b'"seq":null,"order_id":"6477321","action":"add","side":"sell","price":"4790.25","size":"3","venue":"XCME"}\n'),
    ({"type": "OrderFlow", "symbol": "ESH4", "source": "databento", "ts": TS, "order_id": "o-1",
      "action": "cancel", "size": 0},
     b'{"type":"OrderFlow","symbol":"ESH4","source":"databento","ts":1705329000123456789,"recv_ts":null,'
     b'"seq":null,"order_id":"o-1","action":"cancel","side":"unknown","price":null,"size":"0","venue":null}\n'),
    ({"type": "HistoricalBar", "symbol": "AAPL", "source": "stooq", "ts": "2024-01-12T00:00:00Z",
      "open": "186.06", "high": "186.74", "low": "185.19", "close": "185.92", "volume": 40477800, "interval": "1d"},
     b'{"type":"HistoricalBar","symbol":"AAPL","source":"stooq","ts":1705017600000000000,"recv_ts":null,'
     b'"seq":null,"open":"186.06","high":"186.74","low":"185.19","close":"185.92","volume":"40477800",'
     b'"interval":"1d"}\n'),
    ({"type": "Heartbeat", "symbol": "*", "source": "sim", "ts": TS},
     b'{"type":"Heartbeat","symbol":"*","source":"sim","ts":1705329000123456789,"recv_ts":null,"seq":null,'
     b'"status":null}\n'),
]


@pytest.mark.parametrize("record,expected", CANONICAL, ids=[f"{r['type']}-{i}" for i, (r, _) in enumerate(CANONICAL)])
def test_every_type_normalises_to_exact_bytes(record, expected):
    assert line(record) == expected
    again = ev.normalize(ev.decode_line(expected))       # canonical input is a fixed point
    assert ev.encode(again) == expected
    assert list(again) == list(ev.COMMON_FIELDS + ev.FIELDS[record["type"]])


def test_normalize_returns_a_new_dict_and_source_only_fills_gaps():
    rec = {"type": "Trade", "symbol": "AAPL", "ts": TS, "price": "1", "size": "1", "conditions": ["X"]}
    out = ev.normalize(rec, source="fallback")
    assert out is not rec and out["source"] == "fallback" and out["conditions"] is not rec["conditions"]
    assert ev.normalize({**rec, "source": "given"}, source="fallback")["source"] == "given"
    assert err(rec).field == "source"


def test_string_escaping_is_plain_utf8():
    rec = {"type": "Heartbeat", "symbol": "BRK/B", "source": "sim", "ts": TS, "status": 'ok "é" \n\t\x01 日本'}
    assert line(rec) == ('{"type":"Heartbeat","symbol":"BRK/B","source":"sim","ts":1705329000123456789,'
                         '"recv_ts":null,"seq":null,"status":"ok \\"é\\" \\n\\t\\u0001 日本"}\n').encode()


# ---- decimals ---------------------------------------------------------------------------------
def trade(**kw) -> dict:
    return {"type": "Trade", "symbol": "AAPL", "source": "t", "ts": TS, "price": "1", "size": "1", **kw}


@pytest.mark.parametrize("given,stored", [
    ("187.10", "187.10"), (100, "100"), ("100", "100"), ("0.000000001", "0.000000001"),
    ("1e-9", "0.000000001"), ("1E-9", "0.000000001"), ("1.5e3", "1500"), ("+2.50", "2.50"), (".5", "0.5"),
    ("5.", "5"), ("007.5", "7.5"), ("12345678901234567890", "12345678901234567890"),
    ("12345678901234567890.12345678901234567890", "12345678901234567890.12345678901234567890"),
    (99999999999999999999, "99999999999999999999"), ("-12.75", "-12.75"), (-3, "-3"),
    (187.1, "187.1"), (100.0, "100.0"), (1e-09, "0.000000001"), (1e16, "10000000000000000"),
    (decimal.Decimal("187.10"), "187.10"), (decimal.Decimal("1E-9"), "0.000000001"),
])
def test_price_text_round_trips(given, stored):
    assert ev.normalize(trade(price=given))["price"] == stored


def test_json_number_keeps_its_text_through_a_line():
    raw = (b'{"type":"Trade","symbol":"AAPL","source":"t","ts":1705329000123456789,"price":187.10,'
           b'"size":1e-9}')
    out = ev.normalize(ev.decode_line(raw))
    assert (out["price"], out["size"]) == ("187.10", "0.000000001")
    assert b'"price":"187.10","size":"0.000000001"' in ev.encode(out)
    big = ev.decode_line(b'{"p":12345678901234567890.000000000000000001,"q":123456789012345678901}')
    assert ev.normalize(trade(price=big["p"]))["price"] == "12345678901234567890.000000000000000001"
    assert "more than 20 integer digits" in str(err(trade(price=big["q"])))


@pytest.mark.parametrize("bad,message", [
    ("NaN", "must be finite"), ("-Infinity", "must be finite"), (float("nan"), "must be finite"),
    (float("inf"), "must be finite"), (decimal.Decimal("NaN"), "must be finite"), ("abc", "not a decimal"),
    ("1,5", "not a decimal"), (" 1.5", "not a decimal"), ("1_000", "not a decimal"), ("", "not a decimal"),
    ("١٢", "not a decimal"), (True, "boolean"), ([1], "must be a number"), ("1e400", "out of range"),
    ("9" * 81, "too many digits"), (None, "missing price"), ("123456789012345678901", "more than 20 integer"),
    (10**20, "more than 20 integer"), ("1e20", "more than 20 integer"), (1e21, "more than 20 integer"),
])
def test_bad_prices_are_rejected(bad, message):
    e = err(trade(price=bad))
    assert e.field == "price" and message in str(e)


@pytest.mark.parametrize("size", ["-1", -1, "-0", -0.5, "-1e-9"])
def test_negative_sizes_are_rejected(size):
    e = err(trade(size=size))
    assert e.field == "size" and "negative" in str(e)
    assert err({"type": "L2Snapshot", "symbol": "X", "source": "s", "ts": TS, "bids": [["1", size]],
                "asks": []}).field == "bids"


@given(st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: -30 < d.as_tuple().exponent < 30 and len(d.as_tuple().digits) < 40 and d.adjusted() < 20))
@settings(max_examples=300, deadline=None)
def test_decimal_text_is_exact(d):
    text = ev.decimal_text(d, "price")
    assert decimal.Decimal(text) == d and re.fullmatch(ev.PLAIN_DECIMAL_RE, text)
    assert ev.decimal_text(text, "price") == text                # canonical text is a fixed point


# ---- timestamps -------------------------------------------------------------------------------
@pytest.mark.parametrize("text,ns", [
    ("2024-01-15T14:30:00Z", 1705329000000000000),
    ("2024-01-15T14:30:00.123Z", 1705329000123000000),
    ("2024-01-15T14:30:00.123456Z", 1705329000123456000),
    ("2024-01-15T14:30:00.123456789Z", 1705329000123456789),
    ("2024-01-15T14:30:00.1234567+00:00", 1705329000123456700),       # .NET "o" format
    ("2024-01-15T14:30:00.5", 1705329000500000000),                    # no offset = UTC
    ("2024-01-15 14:30:00z", 1705329000000000000),
    ("2024-01-15T09:30:00-05:00", 1705329000000000000),
    ("2024-01-15T20:00:00+0530", 1705329000000000000),
    ("2024-01-16T00:00:00+09:30", 1705329000000000000),
    ("1969-12-31T23:59:59.999999999Z", -1),
    ("2262-04-11T23:47:16.854775807Z", 2**63 - 1),
    ("1677-09-21T00:12:43.145224192Z", -(2**63)),
    ("2024-02-29T00:00:00Z", 1709164800000000000),
])
def test_parse_iso(text, ns):
    assert ev.parse_ts(text) == ns
    assert ev.normalize(trade(ts=text))["ts"] == ns


@pytest.mark.parametrize("bad", [
    "2024-01-15", "2024-01-15T14:30Z", "2024-01-15T14:30:00.1234567890Z", "2024-01-15T24:00:00Z",
    "2024-01-15T14:60:00Z", "2024-01-15T14:30:60Z", "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z",
    "2024-01-15T14:30:00+24:00", "2024-01-15T14:30:00 +01:00", " 2024-01-15T14:30:00Z", "2024-01-15T14:30:00.Z",
    "2262-04-11T23:47:16.854775808Z", "1677-09-21T00:12:43.145224191Z", "0000-01-01T00:00:00Z",
    "2024-01-15T14:30:00UTC", "2024-0１-15T14:30:00Z", "", "yesterday",
    1705329000, 1705329000123, 1.7e18, True, 2**63, [TS],
])
def test_bad_timestamps_name_their_field(bad):
    assert err(trade(ts=bad)).field == "ts"
    assert err(trade(recv_ts=bad)).field == "recv_ts"
    with pytest.raises(InputError):
        ev.parse_ts(bad)


def test_seconds_and_floats_get_a_helpful_message():
    assert "looks like seconds or milliseconds" in str(err(trade(ts=1705329000)))
    assert "ambiguous" in str(err(trade(ts=1705329000.5)))
    assert err(trade(ts=None)).reason == "missing ts"


def test_parse_ts_accepts_datetimes():
    aware = dt.datetime(2024, 1, 15, 9, 30, 0, 123456, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert ev.parse_ts(aware) == 1705329000123456000
    assert ev.parse_ts(dt.datetime(2024, 1, 15, 14, 30)) == 1705329000000000000


@given(st.datetimes(min_value=dt.datetime(1678, 1, 1), max_value=dt.datetime(2261, 12, 31)),
       st.integers(-23 * 60 - 59, 23 * 60 + 59), st.sampled_from(["Z", "offset", "compact", "none"]),
       st.sampled_from([0, 3, 6]))
@settings(max_examples=400, deadline=None)
def test_iso_matches_datetime_for_microseconds(naive, offset_min, style, digits):
    tz = dt.timezone(dt.timedelta(minutes=0 if style in ("Z", "none") else offset_min))
    when = naive.replace(tzinfo=tz)
    if digits < 6:
        when = when.replace(microsecond=when.microsecond // 10 ** (6 - digits) * 10 ** (6 - digits))
    text = when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{when.microsecond:06d}"[:digits + 1] if digits else "")
    sign, off = ("+" if offset_min >= 0 else "-"), abs(offset_min)
    text += {"Z": "Z", "none": "", "offset": f"{sign}{off // 60:02d}:{off % 60:02d}",
             "compact": f"{sign}{off // 60:02d}{off % 60:02d}"}[style]
    assert ev.parse_ts(text) == (when - EPOCH) // dt.timedelta(microseconds=1) * 1000


# ---- validation -------------------------------------------------------------------------------
@pytest.mark.parametrize("record,field,words", [
    ({"symbol": "A", "source": "s", "ts": TS}, "type", "missing type"),
    (trade(type="Tick"), "type", "unknown event type"),
    (trade(prize="1"), "prize", "unknown key 'prize'"),
    (trade(symbol=""), "symbol", "non-empty"),
    (trade(symbol=None), "symbol", "missing symbol"),
    (trade(source=5), "source", "non-empty string"),
    (trade(seq=-1), "seq", "seq must be"),
    (trade(seq="5"), "seq", "seq must be"),
    (trade(side="long"), "side", "buy, sell or unknown"),
    (trade(trade_id=""), "trade_id", "non-empty"),
    (trade(trade_id=1.5), "trade_id", "non-empty"),
    (trade(venue=7), "venue", "string or null"),
    (trade(conditions="@"), "conditions", "list of strings"),
    (trade(conditions=[None]), "conditions", "must hold strings"),
    (trade(size=None), "size", "missing size"),
    ({"type": "BboQuote", "symbol": "A", "source": "s", "ts": TS}, "bid_price", "needs a bid or an ask"),
    ({"type": "BboQuote", "symbol": "A", "source": "s", "ts": TS, "bid_size": "1", "ask_price": "2"},
     "bid_size", "without bid_price"),
    ({"type": "L2Snapshot", "symbol": "A", "source": "s", "ts": TS, "bids": [], "asks": []}, "bids", "at least one"),
    ({"type": "L2Snapshot", "symbol": "A", "source": "s", "ts": TS, "bids": [["1"]], "asks": []}, "bids", "pair"),
    ({"type": "L2Snapshot", "symbol": "A", "source": "s", "ts": TS, "bids": [["1", "2"]]}, "asks", "missing asks"),
    ({"type": "OrderFlow", "symbol": "A", "source": "s", "ts": TS, "order_id": "1", "action": "add", "size": "1"},
     "price", "only cancel and clear"),
    ({"type": "OrderFlow", "symbol": "A", "source": "s", "ts": TS, "order_id": "1", "action": "delete",
      "size": "1"}, "action", "action must be"),
    ({"type": "OrderFlow", "symbol": "A", "source": "s", "ts": TS, "action": "clear", "size": "0"},
     "order_id", "missing order_id"),
    ({"type": "HistoricalBar", "symbol": "A", "source": "s", "ts": TS, "open": "1", "high": "1", "low": "1",
      "close": "1", "interval": "daily"}, "interval", "interval must"),
    ({"type": "HistoricalBar", "symbol": "A", "source": "s", "ts": TS, "open": "1", "high": "1", "low": "1",
      "interval": "1d"}, "close", "missing close"),
    ({"type": "Heartbeat", "symbol": "A", "source": "s", "ts": TS, "status": 1}, "status", "string or null"),
])
def test_bad_records(record, field, words):
    e = err(record)
    assert e.field == field and words in str(e) and e.file is None and e.line is None


def test_not_an_object():
    with pytest.raises(InputError, match="JSON object"):
        ev.normalize([1, 2])


# ---- the C# Market Data Collector shape -------------------------------------------------------
CSHARP = [
    (b'{"timestamp":"2024-01-15T14:30:00.1234567+00:00","symbol":"AAPL","type":3,"payload":{"kind":"trade",'
     b'"timestamp":"2024-01-15T14:30:00.1234567+00:00","symbol":"AAPL","price":187.10,"size":100,"aggressor":1,'
     b'"sequenceNumber":42,"streamId":"ALPACA","venue":"XNAS"},"sequence":42,"source":"ALPACA","schemaVersion":1,'
     b'"tier":0}',
     b'{"type":"Trade","symbol":"AAPL","source":"ALPACA","ts":1705329000123456700,"recv_ts":null,"seq":42,'
     b'"price":"187.10","size":"100","side":"buy","trade_id":null,"venue":"XNAS","conditions":null}\n'),
    (b'{"timestamp":"2024-01-15T14:30:00.5+00:00","symbol":"SPY","type":2,"payload":{"kind":"bbo",'
     b'"timestamp":"2024-01-15T14:30:00.5+00:00","symbol":"SPY","bidPrice":475.12,"bidSize":300,'
     b'"askPrice":475.13,"askSize":200,"midPrice":475.125,"spread":0.01,"sequenceNumber":7,"streamId":"ALPACA"},'
     b'"sequence":7,"source":"ALPACA","schemaVersion":1,"receivedAtUtc":"2024-01-15T14:30:00.5012+00:00"}',
     b'{"type":"BboQuote","symbol":"SPY","source":"ALPACA","ts":1705329000500000000,"recv_ts":1705329000501200000,'
     b'"seq":7,"bid_price":"475.12","bid_size":"300","ask_price":"475.13","ask_size":"200","venue":null}\n'),
    (b'{"timestamp":"2024-01-15T09:30:01-05:00","symbol":"MSFT","type":1,"payload":{"kind":"l2",'
     b'"timestamp":"2024-01-15T09:30:01-05:00","symbol":"MSFT","bids":[{"side":0,"level":1,"price":375.10,'
     b'"size":200},{"side":0,"level":0,"price":375.11,"size":100,"marketMaker":"NSDQ"}],"asks":[{"side":1,'
     b'"level":0,"price":375.12,"size":50}],"midPrice":375.115,"microPrice":375.1137,"imbalance":0.5,'
     b'"marketState":0,"sequenceNumber":9,"venue":"IEX"},"sequence":9,"source":"IB","schemaVersion":1,'
     b'"receivedAtUtc":"0001-01-01T00:00:00+00:00"}',
     b'{"type":"L2Snapshot","symbol":"MSFT","source":"IB","ts":1705329001000000000,"recv_ts":null,"seq":9,'
     b'"bids":[["375.11","100"],["375.10","200"]],"asks":[["375.12","50"]],"venue":"IEX"}\n'),
    (b'{"timestamp":"2024-01-12T00:00:00+00:00","symbol":"AAPL","type":8,"payload":{"kind":"historical_bar",'
     b'"symbol":"AAPL","sessionDate":"2024-01-12","open":186.06,"high":186.74,"low":185.19,"close":185.92,'
     b'"volume":40477800,"source":"stooq","sequenceNumber":0},"sequence":0,"source":"stooq","schemaVersion":1}',
     b'{"type":"HistoricalBar","symbol":"AAPL","source":"stooq","ts":1705017600000000000,"recv_ts":null,"seq":0,'
     b'"open":"186.06","high":"186.74","low":"185.19","close":"185.92","volume":"40477800","interval":"1d"}\n'),
    (b'{"symbol":"AAPL","type":8,"payload":{"kind":"historical_bar","symbol":"AAPL","sessionDate":"2024-01-12",'
     b'"open":186.06,"high":186.74,"low":185.19,"close":185.92,"volume":40477800,"source":"stooq",'
     b'"sequenceNumber":5}}',
     b'{"type":"HistoricalBar","symbol":"AAPL","source":"stooq","ts":1705017600000000000,"recv_ts":null,"seq":5,'
     b'"open":"186.06","high":"186.74","low":"185.19","close":"185.92","volume":"40477800","interval":"1d"}\n'),
    (b'{"timestamp":"2024-01-15T14:30:02Z","symbol":"MSFT","type":1,"payload":{"kind":"l2payload","snapshot":{'
     b'"timestamp":"2024-01-15T14:30:02Z","symbol":"MSFT","bids":[{"level":0,"price":375.11,"size":100}],'
     b'"asks":[],"venue":"IEX"},"sequenceNumber":10},"source":"IB"}',
     b'{"type":"L2Snapshot","symbol":"MSFT","source":"IB","ts":1705329002000000000,"recv_ts":null,"seq":10,'
     b'"bids":[["375.11","100"]],"asks":[],"venue":"IEX"}\n'),
]


@pytest.mark.parametrize("raw,expected", CSHARP, ids=["trade", "bbo", "l2", "bar", "bar-session-date", "l2payload"])
def test_csharp_lines(raw, expected):
    assert ev.encode(ev.normalize(ev.decode_line(raw))) == expected


@pytest.mark.parametrize("raw,field,words", [
    (b'{"timestamp":"2024-01-15T14:30:00Z","symbol":"SYSTEM","type":5,"payload":null,"source":"IB"}',
     "type", "unsupported C# event type 5"),
    (b'{"timestamp":"2024-01-15T14:30:00Z","symbol":"A","type":4,"payload":{"kind":"orderflow"},"source":"IB"}',
     "type", "unsupported C# event type 4"),
    (b'{"timestamp":"2024-01-15T14:30:00Z","symbol":"A","type":3,"payload":{"kind":"bbo"},"source":"IB"}',
     "payload.kind", "does not match"),
    (b'{"timestamp":"2024-01-15T14:30:00Z","symbol":"A","type":3,"payload":{"kind":"trade","price":"x",'
     b'"size":1},"source":"IB"}', "payload.price", "payload.price is not a decimal number"),
    (b'{"timestamp":"2024-01-15T14:30:00Z","symbol":"A","type":3,"payload":{"kind":"trade","price":1,'
     b'"size":-5},"source":"IB"}', "payload.size", "must not be negative"),
    (b'{"timestamp":"2024-01-15T14:30:00Z","symbol":"A","type":3,"payload":{"kind":"trade","price":1,'
     b'"size":5,"aggressor":3},"source":"IB"}', "payload.aggressor", "aggressor"),
    (b'{"timestamp":"soon","symbol":"A","type":3,"payload":{"kind":"trade","price":1,"size":5},"source":"IB"}',
     "timestamp", "not an ISO-8601"),
    (b'{"timestamp":"2024-01-15T14:30:00Z","symbol":"A","type":3,"payload":{"kind":"trade","price":1,"size":5,'
     b'"colour":"red"},"source":"IB"}', "payload.colour", "unknown C# collector key"),
])
def test_csharp_errors_name_the_csharp_field(raw, field, words):
    e = err(ev.decode_line(raw))
    assert e.field == field and words in str(e)


# ---- files ------------------------------------------------------------------------------------
GOOD = [line(trade(seq=i, price=f"{187 + i / 100:.2f}")) for i in range(1, 4)]


def test_iter_file_reports_every_bad_line(tmp_path):
    bad_lines = [
        (b'{"type":"Trade",', None, "malformed JSON"),
        (b'{"type":"Trade","symbol":"A","source":"s","ts":1705329000123456789,"size":"1"}', "price", "missing price"),
        (b'{"type":"Trade","symbol":"A","source":"s","ts":1705329000123456789,"price":"1.2.3","size":"1"}', "price",
         "not a decimal"),
        (b'{"type":"Trade","symbol":"A","source":"s","ts":1705329000123456789,"price":"1","size":"-1"}', "size",
         "negative"),
        (b'{"type":"Trade","symbol":"A\xff","source":"s","ts":1705329000123456789,"price":"1","size":"1"}', None,
         "invalid UTF-8"),
        (b'{"type":"Quote","symbol":"A","source":"s","ts":1705329000123456789}', "type", "unknown event type"),
        (b'{"type":"Trade","symbol":"A","source":"s","ts":1705329000123456789,"price":"1","size":"1","px":"1"}',
         "px", "unknown key"),
        (b'[1,2]', None, "JSON object"),
    ]
    body = GOOD[0] + b"  \n" + b"".join(b + b"\n" for b, _f, _w in bad_lines) + GOOD[1].rstrip(b"\n") + b"\r\n"
    body += GOOD[2].rstrip(b"\n")          # a last line without "\n" is still parsed
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + body)
    out = list(ev.iter_file(path))
    assert [n for n, _i, _r in out] == [1] + list(range(3, 3 + len(bad_lines))) + [3 + len(bad_lines),
                                                                                   4 + len(bad_lines)]
    assert [ev.encode(i) for _n, i, _r in out if isinstance(i, dict)] == GOOD
    errors = [(n, i, r) for n, i, r in out if isinstance(i, InputError)]
    for (n, e, raw), (bad, field, words) in zip(errors, bad_lines):
        assert raw == bad and e.file == str(path) and e.line == n and e.field == field and words in str(e)
        assert str(e).startswith(f"{path}:{n}: ")


def _cut(data: bytes, fraction: float) -> bytes:
    return data[:int(len(data) * fraction)]


def _lines(n: int) -> list[bytes]:
    rng = random.Random(5)
    return [line(trade(seq=i, price=f"{rng.randint(10000, 99999) / 100:.2f}", trade_id=f"T{rng.getrandbits(64)}"))
            for i in range(n)]


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_compressed_files_and_truncation(tmp_path, codec):
    lines = _lines(6000)
    data = b"".join(lines)
    if codec == "gzip":
        whole = gzip.compress(data[: len(data) // 2]) + gzip.compress(data[len(data) // 2:])   # two members
    else:
        c = zstandard.ZstdCompressor(level=3)
        whole = c.compress(data[: len(data) // 2]) + c.compress(data[len(data) // 2:])         # two frames
    path = tmp_path / "events.jsonl.bin"        # no suffix hint: the codec comes from magic bytes
    path.write_bytes(whole)
    assert [ev.encode(i) for _n, i, _r in ev.iter_file(path)] == lines

    cut = _cut(whole, 0.3)
    if codec == "gzip":
        partial = zlib_partial(cut)
    else:
        partial = zstandard.ZstdDecompressor().decompressobj().decompress(cut)
    complete = partial.count(b"\n")
    assert 0 < complete < len(lines)
    path.write_bytes(cut)
    out = list(ev.iter_file(path))
    assert [ev.encode(i) for _n, i, _r in out[:-1]] == lines[:complete]
    n, e, raw = out[-1]
    assert isinstance(e, InputError) and e.reason == f"truncated {codec} stream"
    assert n == e.line == complete + 1 and e.file == str(path) and lines[complete].startswith(raw)


def zlib_partial(data: bytes) -> bytes:
    import zlib
    return zlib.decompressobj(31).decompress(data)


def test_corrupt_gzip_is_reported_after_the_good_lines(tmp_path):
    lines = _lines(3000)
    whole = bytearray(gzip.compress(b"".join(lines)))
    whole[len(whole) // 2: len(whole) // 2 + 64] = b"\x00" * 64
    path = tmp_path / "bad.gz"
    path.write_bytes(bytes(whole))
    out = list(ev.iter_file(path))
    good = [i for _n, i, _r in out[:-1]]
    assert all(isinstance(i, dict) for i in good) and [ev.encode(i) for i in good] == lines[:len(good)]
    assert isinstance(out[-1][1], InputError) and out[-1][1].reason.startswith("corrupt gzip stream")


def test_empty_and_blank_files(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "blank").write_bytes(b"\n \n\t\n")
    assert list(ev.iter_file(tmp_path / "empty")) == [] and list(ev.iter_file(tmp_path / "blank")) == []


# ---- schemas ----------------------------------------------------------------------------------
def test_json_schema_describes_each_line():
    schema = ev.json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert [v["properties"]["type"]["const"] for v in schema["oneOf"]] == list(ev.EVENT_TYPES)
    json.dumps(schema)
    for record, expected in CANONICAL:
        obj = json.loads(expected)
        variant = next(v for v in schema["oneOf"] if v["title"] == obj["type"])
        assert variant["required"] == list(obj) and not variant["additionalProperties"]
        for name in ev.DECIMAL_FIELDS[obj["type"]]:
            values = obj[name] if name not in ("bids", "asks") else [x for pair in obj[name] for x in pair]
            for value in values if isinstance(values, list) else [values]:
                assert value is None or re.fullmatch(schema["$defs"]["decimal"]["pattern"].strip("^$"), value)


def test_arrow_schema():
    s = ev.arrow_schema("L2Snapshot")
    assert s.names == list(ev.COMMON_FIELDS + ev.FIELDS["L2Snapshot"])
    assert s.field("bids").type == pa.list_(pa.list_(pa.string())) and s.field("ts").type == pa.int64()
    assert ev.arrow_schema("Trade").field("conditions").type == pa.list_(pa.string())
    assert not ev.arrow_schema("Trade").field("price").nullable and ev.arrow_schema("Trade").field("seq").nullable
    with pytest.raises(InputError):
        ev.arrow_schema("Tick")


# ---- Arrow batches ----------------------------------------------------------------------------
SYMBOLS = ["AAPL", "BRK/B", "ES=F", "^GSPC", "EUR/USD", '日経"225"']


def _dec(rng: random.Random, negative: bool = False) -> str:
    whole = str(rng.choice([0, rng.randint(1, 999), rng.randint(1, 10**12), rng.randint(10**19, 10**20)]))
    text = whole + (("." + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 12))))
                    if rng.random() < 0.7 else "")
    return ("-" + text) if negative and rng.random() < 0.2 else text


def _gen(etype: str, rng: random.Random, i: int) -> dict:
    r = {"type": etype, "symbol": rng.choice(SYMBOLS), "source": rng.choice(["alpaca", "ib", "sim"]),
         "ts": rng.randint(10**18, 2 * 10**18), "recv_ts": rng.choice([None, rng.randint(10**18, 2 * 10**18)]),
         "seq": rng.choice([None, i])}
    opt = (lambda v: None if rng.random() < 0.3 else v)
    if etype == "Trade":
        r.update(price=_dec(rng, True), size=_dec(rng), side=rng.choice([None, "buy", "sell", "B", "s", "unknown"]),
                 trade_id=opt(f"T{i}"), venue=opt(rng.choice(["XNAS", "ARCX", "é\n\t\x01"])),
                 conditions=opt([rng.choice("@FIT") for _ in range(rng.randint(0, 3))]))
    elif etype == "BboQuote":
        sides = rng.choice([("bid", "ask"), ("bid",), ("ask",)])
        for s in ("bid", "ask"):
            r[s + "_price"] = _dec(rng, True) if s in sides else None
            r[s + "_size"] = opt(_dec(rng)) if s in sides else None
        r["venue"] = opt("IEX")
    elif etype == "L2Snapshot":
        n_b, n_a = rng.choice([(rng.randint(1, 5), rng.randint(1, 5)), (0, 3), (2, 0)])
        r.update(bids=[[_dec(rng), _dec(rng)] for _ in range(n_b)], asks=[[_dec(rng), _dec(rng)] for _ in range(n_a)],
                 venue=opt("XNAS"))
    elif etype == "OrderFlow":
        action = rng.choice(["add", "modify", "cancel", "fill", "clear", "ADD", "Cancel"])
        price = _dec(rng) if action.lower() not in ("cancel", "clear") or rng.random() < 0.5 else None
        r.update(order_id=str(rng.getrandbits(40)), action=action, side=rng.choice([None, "buy", "sell", "S"]),
                 price=price, size=_dec(rng), venue=opt("XCME"))
    elif etype == "HistoricalBar":
        r.update(open=_dec(rng), high=_dec(rng), low=_dec(rng), close=_dec(rng), volume=opt(_dec(rng)),
                 interval=rng.choice(["1s", "1m", "5m", "1h", "1d", "1w", "1mo"]))
    else:
        r.update(status=opt(rng.choice(["ok", "reconnecting", 'say "hi"'])))
    return r


def _per_event(records: list[dict], **kw) -> bytes:
    return b"".join(ev.encode(ev.normalize(r, **kw)) for r in records)


@pytest.mark.parametrize("etype", ev.EVENT_TYPES)
def test_table_path_is_byte_identical(etype):
    rng = random.Random(hash(etype) & 0xFFFF)
    records = [_gen(etype, rng, i) for i in range(3000)]
    table = ev.normalize_table(pa.Table.from_pylist(records))
    assert table.schema == ev.arrow_schema(etype)
    assert ev.encode_table(table) == _per_event(records)
    chunked = pa.concat_tables([pa.Table.from_pylist(records[:1000]), pa.Table.from_pylist(records[1000:])])
    assert ev.encode_table(ev.normalize_table(chunked.slice(7, 2500))) == _per_event(records[7:2507])


def test_table_input_representations():
    rng = random.Random(11)
    n = 2000
    cents = [rng.randint(-10**7, 10**7) for _ in range(n)]
    micros = [rng.randint(10**15, 2 * 10**15) for _ in range(n)]
    floats = [c / 100 for c in cents[:-5]] + [1e-9, 1e16, 2.5e-5, 123.0, -0.0]
    table = pa.table({
        "symbol": pa.array([rng.choice(SYMBOLS) for _ in range(n)]).dictionary_encode(),
        "ts": pa.array(micros, pa.timestamp("us", tz="America/New_York")),
        "recv_ts": pa.array([dt.datetime.fromtimestamp(m / 1e6, dt.timezone.utc).isoformat() for m in micros]),
        "seq": pa.array(range(n), pa.uint32()),
        "price": pa.array(floats, pa.float64()),
        "size": pa.array([decimal.Decimal(abs(c)).scaleb(-4) for c in cents], pa.decimal128(20, 4)),
        "side": pa.array([rng.choice(["B", "S", None]) for _ in range(n)], pa.large_string()),
        "trade_id": pa.array(range(n), pa.int64()),
    })
    out = ev.normalize_table(table, type="Trade", source="feed")
    rows = table.to_pylist()
    assert ev.encode_table(out) == _per_event([{"type": "Trade", **r} for r in rows], source="feed")
    assert out.column("ts").to_pylist() == [m * 1000 for m in micros] == out.column("recv_ts").to_pylist()
    assert out.column("price").to_pylist()[-5:] == ["0.000000001", "10000000000000000", "0.000025", "123.0", "-0.0"]


@given(st.lists(st.one_of(
    st.from_regex(ev.ISO_TS_RE, fullmatch=True),
    st.builds(lambda y, mo, d, h, mi, s, f, z: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{f}{z}",
              st.integers(1600, 2300), st.integers(0, 13), st.integers(0, 32), st.integers(0, 24),
              st.integers(0, 60), st.integers(0, 60), st.sampled_from(["", ".5", ".123456789", ".1234567890"]),
              st.sampled_from(["", "Z", "+05:30", "-2400", "+23:59", "-00:00"])),
    st.text(max_size=12)), min_size=1, max_size=30))
@settings(max_examples=200, deadline=None)
def test_vectorised_iso_agrees_with_parse_ts(texts):
    errs = ev._FirstError()
    got = ev._iso_col(pa.array(texts, pa.string()), "ts", 3, errs).to_pylist()
    expected = []
    for t in texts:
        try:
            expected.append(ev.parse_ts(t))
        except InputError:
            expected.append("bad")
    first_bad = next((i for i, v in enumerate(expected) if v == "bad"), None)
    assert (errs.key[0] if errs.key else None) == first_bad
    assert [g for g, e in zip(got, expected) if e != "bad"] == [e for e in expected if e != "bad"]


FAULTS = {   # field -> bad values that keep the column's Arrow type
    "Trade": {"price": [None, "abc", "NaN", "1e999"], "size": ["-1", None, "1,0"], "ts": [5], "seq": [-3],
              "side": ["long"], "trade_id": [""], "symbol": ["", None]},
    "BboQuote": {"bid_price": ["x"], "ask_size": ["-2"], "ts": [10**13]},
    "L2Snapshot": {"bids": [[["1", "-1"]], [["1"]], None, [["1", "2", "3"]]], "asks": [[["x", "1"]]]},
    "OrderFlow": {"action": ["delete", None], "order_id": [None], "size": ["-0"], "ts": [-5]},
    "HistoricalBar": {"interval": ["daily", None], "close": [None], "volume": ["-7"]},
    "Heartbeat": {"symbol": [""], "ts": [0]},
}


@pytest.mark.parametrize("etype", ev.EVENT_TYPES)
def test_table_errors_match_the_per_event_path(etype):
    rng = random.Random(99)
    for attempt in range(40):
        records = [_gen(etype, rng, i) for i in range(60)]
        for _ in range(rng.randint(1, 3)):
            field = rng.choice(list(FAULTS[etype]))
            records[rng.randrange(60)][field] = rng.choice(FAULTS[etype][field])
        if etype == "BboQuote" and attempt % 5 == 0:
            records[rng.randrange(60)].update(bid_price=None, ask_price=None, bid_size=None, ask_size=None)
        expected = None
        for row, r in enumerate(records):
            try:
                ev.normalize(r)
            except InputError as e:
                expected = (row + 1, e.field)
                break
        try:
            ev.normalize_table(pa.Table.from_pylist(records))
            got = None
        except InputError as e:
            got = (e.line, e.field)
        assert got == expected, (attempt, records[(expected or got)[0] - 1])


def test_table_error_messages():
    good = [trade(seq=i) for i in range(5)]
    cases = [(3, {"size": "-4"}, "size", "must not be negative"), (2, {"price": None}, "price", "missing price"),
             (4, {"price": "1.2.3"}, "price", "not a decimal number"), (1, {"ts": "2024-02-30T00:00:00Z"}, "ts",
                                                                     "invalid date")]
    for row, change, field, words in cases:
        records = [dict(r) for r in good]
        records[row].update(change)
        if field == "ts":
            for r in records:
                r["ts"] = r["ts"] if isinstance(r["ts"], str) else TS_ISO
        with pytest.raises(InputError) as info:
            ev.normalize_table(pa.Table.from_pylist(records))
        assert (info.value.line, info.value.field) == (row + 1, field) and words in str(info.value)
    with pytest.raises(InputError, match="unknown key 'px'") as info:
        ev.normalize_table(pa.Table.from_pylist([dict(trade(), px=1)]))
    assert (info.value.line, info.value.field) == (1, "px")
    with pytest.raises(InputError, match="one event type") as info:
        ev.normalize_table(pa.Table.from_pylist([trade(), trade(), dict(trade(), type="Heartbeat")]))
    assert (info.value.line, info.value.field) == (3, "type")
    with pytest.raises(InputError, match="needs a type"):
        ev.normalize_table(pa.table({"symbol": ["A"]}))
    assert ev.normalize_table(pa.table({"symbol": pa.array([], pa.string())}), type="Heartbeat").num_rows == 0
    assert ev.encode_table(ev.normalize_table(pa.Table.from_pylist([trade()])).slice(0, 0)) == b""


def test_encode_table_refuses_non_canonical_tables():
    table = ev.normalize_table(pa.Table.from_pylist([trade()]))
    with pytest.raises(InputError, match="canonical"):
        ev.encode_table(table.select(["symbol", "type"] + table.column_names[2:]))


def test_numpy_scalars_are_plain_numbers():
    np = pytest.importorskip("numpy")
    out = ev.normalize(trade(ts=np.int64(TS), seq=np.uint32(4), price=np.float64(187.25), size=np.int32(100),
                             trade_id=np.int64(77)))
    assert (out["ts"], out["seq"], out["price"], out["size"], out["trade_id"]) == (TS, 4, "187.25", "100", "77")
    assert err(trade(seq=np.int64(-1))).field == "seq"


def test_missing_file_is_a_not_found_error(tmp_path):
    from mdcsql.errors import NotFoundError
    with pytest.raises(NotFoundError):
        list(ev.iter_file(tmp_path / "nope.jsonl"))


def test_docs_examples_are_canonical():
    from pathlib import Path
    doc = (Path(__file__).resolve().parent.parent / "docs" / "events.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", doc, re.S)
    lines = [b.strip().encode() for b in blocks]
    assert {json.loads(x)["type"] for x in lines} == set(ev.EVENT_TYPES)
    for raw in lines:
        assert ev.encode(ev.normalize(ev.decode_line(raw))) == raw + b"\n"
    csharp = re.search(r"Example: this C# line\n\n```\n(.*?)\n```", doc, re.S).group(1).encode()
    assert ev.encode(ev.normalize(ev.decode_line(csharp))) == lines[-1] + b"\n"
    for etype in ev.EVENT_TYPES:
        assert f"### {etype}" in doc
