"""Lean zip replay (`mdcsql.sources.lean`) against the real sample files in ../shared/data/lean.

Every expected value is computed here independently of the reader: rows counted with zipfile,
prices divided with `decimal.Decimal`, times converted with datetime + zoneinfo.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mdcsql import events as ev
from mdcsql.errors import InputError, NotFoundError
from mdcsql.sources import lean

NY = ZoneInfo("America/New_York")
UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# (path under shared/data/lean, kind, event type, symbol, asset class)
SAMPLES = [
    ("equity/usa/tick/spy/20131007_trade.zip", "tick_trade", "Trade", "SPY", "equity"),
    ("equity/usa/tick/spy/20131008_trade.zip", "tick_trade", "Trade", "SPY", "equity"),
    ("equity/usa/tick/ibm/20131007_trade.zip", "tick_trade", "Trade", "IBM", "equity"),
    ("equity/usa/tick/ibm/20131008_trade.zip", "tick_trade", "Trade", "IBM", "equity"),
    ("equity/usa/tick/ibm/20131007_quote.zip", "tick_quote", "BboQuote", "IBM", "equity"),
    ("equity/usa/tick/ibm/20131008_quote.zip", "tick_quote", "BboQuote", "IBM", "equity"),
    ("equity/usa/second/spy/20131007_trade.zip", "bar_trade", "HistoricalBar", "SPY", "equity"),
    ("equity/usa/second/spy/20131007_quote.zip", "bar_quote", "BboQuote", "SPY", "equity"),
    ("equity/usa/minute/spy/20131007_trade.zip", "bar_trade", "HistoricalBar", "SPY", "equity"),
    ("equity/usa/minute/spy/20131007_quote.zip", "bar_quote", "BboQuote", "SPY", "equity"),
    ("equity/usa/minute/spy/20131008_trade.zip", "bar_trade", "HistoricalBar", "SPY", "equity"),
    ("equity/usa/minute/spy/20131008_quote.zip", "bar_quote", "BboQuote", "SPY", "equity"),
    ("equity/usa/daily/spy.zip", "bar_trade", "HistoricalBar", "SPY", "equity"),
    ("crypto/coinbase/minute/btcusd/20180404_trade.zip", "bar_trade", "HistoricalBar", "BTCUSD", "crypto"),
    ("crypto/coinbase/minute/btcusd/20180404_quote.zip", "bar_quote", "BboQuote", "BTCUSD", "crypto"),
]
INTERVALS = {"second": ("1s", timedelta(seconds=1)), "minute": ("1m", timedelta(minutes=1)),
             "hour": ("1h", timedelta(hours=1)), "daily": ("1d", timedelta(days=1))}


# ---- independent reference computations -------------------------------------------------------

def csv_rows(path: Path) -> list[list[str]]:
    """The rows of the one CSV in a zip (blank lines dropped), split on commas."""
    with zipfile.ZipFile(path) as zf:
        (name,) = zf.namelist()
        text = zf.read(name).decode()
    return [line.split(",") for line in text.split("\n") if line.strip()]


def count_rows(path: Path) -> int:
    with zipfile.ZipFile(path) as zf:
        (name,) = zf.namelist()
        return sum(1 for line in zf.read(name).split(b"\n") if line.strip())


def ns(dt: datetime) -> int:
    td = dt - EPOCH
    return (td.days * 86_400 + td.seconds) * 10**9 + td.microseconds * 1000


def wall_ns(day: date, ms: int, tz) -> int:
    """UTC ns of `ms` after local midnight of `day` in `tz` (aware arithmetic is wall-clock arithmetic)."""
    return ns(datetime.combine(day, time(), tzinfo=tz) + timedelta(milliseconds=ms))


def deci_cents(text: str) -> str:
    """'1674100' -> '167.41' via Decimal."""
    d = (Decimal(text) / 10000).normalize()
    return format(d, "f")


def collect_rows(path, **kw) -> tuple[list[dict], list[tuple[str, pa.Table]]]:
    batches = list(lean.read(path, **kw))
    rows = [r for _, t in batches for r in t.to_pylist()]
    return rows, batches


def read_table(path, **kw) -> tuple[pa.Table, list[tuple[str, pa.Table]]]:
    """All of a file's events as one table (for the big files: no per-row Python objects)."""
    batches = list(lean.read(path, **kw))
    return pa.concat_tables([t for _, t in batches]), batches


def row_at(table: pa.Table, i: int) -> dict:
    return table.slice(i % table.num_rows, 1).to_pylist()[0]


def expected_event(rel: str, kind: str, row: list[str]) -> dict:
    """The canonical fields a CSV row should become (without seq)."""
    parts = Path(rel).parts
    crypto = parts[0] == "crypto"
    tz = UTC if crypto else NY
    resolution = parts[2]
    price = (lambda v: v) if crypto else deci_cents
    if resolution in ("hour", "daily"):
        local = datetime.strptime(row[0], "%Y%m%d %H:%M")
        day, ms = local.date(), (local.hour * 3600 + local.minute * 60) * 1000
    else:
        day, ms = datetime.strptime(Path(rel).name[:8], "%Y%m%d").date(), int(row[0])
    ts = wall_ns(day, ms, tz)
    if kind == "tick_trade":
        conds = [row[4]] + (["suspicious"] if row[5] == "1" else [])
        return {"type": "Trade", "ts": ts, "price": price(row[1]), "size": row[2], "side": "unknown",
                "venue": row[3], "conditions": conds}
    if kind == "tick_quote":
        bid = row[1] != "0"
        ask = row[3] != "0"
        return {"type": "BboQuote", "ts": ts, "bid_price": price(row[1]) if bid else None,
                "bid_size": row[2] if bid else None, "ask_price": price(row[3]) if ask else None,
                "ask_size": row[4] if ask else None, "venue": row[5]}
    interval, length = INTERVALS[resolution]
    if kind == "bar_trade":
        return {"type": "HistoricalBar", "ts": ts, "open": price(row[1]), "high": price(row[2]),
                "low": price(row[3]), "close": price(row[4]), "volume": row[5], "interval": interval}
    end = ns(datetime.combine(day, time(), tzinfo=tz) + timedelta(milliseconds=ms) + length)
    return {"type": "BboQuote", "ts": end, "bid_price": price(row[4]), "bid_size": row[5],
            "ask_price": price(row[9]), "ask_size": row[10], "venue": "coinbase" if crypto else None}


def write_zip(path: Path, lines: list[str], member: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member or path.stem + ".csv", "\n".join(lines))
    return path


# ---- every sample file ------------------------------------------------------------------------

@pytest.mark.parametrize("rel,kind,etype,symbol,asset_class", SAMPLES, ids=[s[0] for s in SAMPLES])
def test_sample_file(shared_data, rel, kind, etype, symbol, asset_class):
    path = shared_data / "lean" / rel
    assert lean.detect(path)
    raw = csv_rows(path)
    table, batches = read_table(path)
    assert table.num_rows == len(raw)                             # one event per CSV row
    assert all(ac == asset_class for ac, _ in batches)
    assert all(t.num_rows <= lean.CHUNK_ROWS for _, t in batches)
    assert all(t.schema == ev.arrow_schema(etype) for _, t in batches)
    for i, row in ((0, raw[0]), (-1, raw[-1])):
        got, want = row_at(table, i), expected_event(rel, kind, row)
        assert {k: got[k] for k in want} == want, row
        assert got["symbol"] == symbol and got["source"] == "lean" and got["recv_ts"] is None
    ts = table.column("ts").to_numpy()
    assert (np.diff(ts) >= 0).all()                               # event-time order
    assert pc.count_distinct(table.column("seq")).as_py() == table.num_rows   # seq unique in the file
    assert set(table.column("symbol").unique().to_pylist()) == {symbol}


def test_literal_spot_values(shared_data):
    """A few values written out by hand, so the reference helpers are checked too."""
    trades, _ = read_table(shared_data / "lean/equity/usa/tick/spy/20131007_trade.zip")
    first = row_at(trades, 0)       # 14400464,1674100,100,P,20002000,0 -> 04:00:00.464 EDT
    assert (first["ts"], first["price"], first["size"], first["venue"], first["conditions"]) == \
        (1381132800464000000, "167.41", "100", "P", ["20002000"])
    assert first["seq"] == 15985 * lean.SEQ_DAY + 1               # 2013-10-07 is day 15985
    assert row_at(trades, -1)["ts"] == ns(datetime(2013, 10, 7, 23, 59, 59, 536000, tzinfo=UTC))  # 19:59:59.536 EDT
    bars, _ = collect_rows(shared_data / "lean/equity/usa/daily/spy.zip")
    assert bars[0]["ts"] == ns(datetime(1998, 1, 2, 5, tzinfo=UTC))       # 00:00 EST
    assert (bars[0]["open"], bars[0]["volume"], bars[0]["interval"]) == ("97.31", "2150000", "1d")
    assert bars[-1]["ts"] == ns(datetime(2021, 3, 31, 4, tzinfo=UTC))     # 00:00 EDT
    assert bars[-1]["high"] == "398"                                       # 3980000: no trailing zeros
    quotes, _ = collect_rows(shared_data / "lean/crypto/coinbase/minute/btcusd/20180404_quote.zip")
    assert quotes[0]["ts"] == ns(datetime(2018, 4, 4, 0, 1, tzinfo=UTC))   # bar 00:00-00:01 UTC, at its end
    assert quotes[0]["ask_size"] == "33.35399601000002"                    # crypto text kept as given


def test_quote_ticks_are_one_sided(shared_data):
    rows, _ = collect_rows(shared_data / "lean/equity/usa/tick/ibm/20131007_quote.zip")
    assert all((r["bid_price"] is None) != (r["ask_price"] is None) for r in rows)
    assert all((r["bid_size"] is None) == (r["bid_price"] is None) for r in rows)


def test_seq_rule_spans_days_and_resolutions(shared_data):
    data = shared_data / "lean/equity/usa"
    day7 = (date(2013, 10, 7) - date(1970, 1, 1)).days
    expect = {"tick/spy/20131007_trade.zip": 0, "second/spy/20131007_trade.zip": 1,
              "minute/spy/20131007_trade.zip": 2}
    seen = set()
    for rel, slot in expect.items():
        table, _ = read_table(data / rel)
        seqs = table.column("seq").to_pylist()
        assert seqs[:3] == [day7 * lean.SEQ_DAY + slot * lean.SEQ_SLOT + i for i in (1, 2, 3)]
        assert not set(seqs) & seen
        seen |= set(seqs)
    day8, _ = read_table(data / "tick/spy/20131008_trade.zip")
    assert day8.column("seq")[0].as_py() == (day7 + 1) * lean.SEQ_DAY + 1
    daily, _ = collect_rows(data / "daily/spy.zip")
    d = (date(1998, 1, 2) - date(1970, 1, 1)).days
    assert daily[0]["seq"] == d * lean.SEQ_DAY + 4 * lean.SEQ_SLOT + 1     # row 1 of its own date


# ---- time zones -----------------------------------------------------------------------------

def test_edt_file(shared_data):
    """2013-10-07 is EDT (UTC-4): 09:30 New York is 13:30Z."""
    rows, _ = collect_rows(shared_data / "lean/equity/usa/minute/spy/20131007_trade.zip")
    open_bar = next(r for r in rows if r["ts"] == ns(datetime(2013, 10, 7, 13, 30, tzinfo=UTC)))
    raw = {int(r[0]): r for r in csv_rows(shared_data / "lean/equity/usa/minute/spy/20131007_trade.zip")}
    assert open_bar["open"] == deci_cents(raw[9 * 3_600_000 + 30 * 60_000][1])
    assert datetime(2013, 10, 7, tzinfo=NY).utcoffset() == timedelta(hours=-4)


def test_est_file_written_by_the_test(tmp_path):
    """A December file is EST (UTC-5): 09:30 New York is 14:30Z."""
    path = write_zip(tmp_path / "equity/usa/tick/spy/20131209_trade.zip",
                     ["34200000,1800000,100,P,2000,0", "34200000,1800000,100,P,2000,0"])
    rows, _ = collect_rows(path)
    assert [r["ts"] for r in rows] == [ns(datetime(2013, 12, 9, 14, 30, tzinfo=UTC))] * 2
    assert rows[0]["ts"] == wall_ns(date(2013, 12, 9), 34_200_000, NY)
    assert [r["seq"] for r in rows] == [r["seq"] for r in rows[:1]] + [rows[0]["seq"] + 1]


@pytest.mark.parametrize("day,ms,expected", [
    (date(2013, 11, 3), 0, datetime(2013, 11, 3, 4, tzinfo=UTC)),                    # 00:00 EDT
    (date(2013, 11, 3), 5_400_000, datetime(2013, 11, 3, 5, 30, tzinfo=UTC)),        # 01:30 ambiguous: earlier (EDT)
    (date(2013, 11, 3), 7_200_000, datetime(2013, 11, 3, 7, tzinfo=UTC)),            # 02:00 EST
    (date(2013, 11, 3), 34_200_000, datetime(2013, 11, 3, 14, 30, tzinfo=UTC)),      # 09:30 EST
    (date(2013, 3, 10), 3_599_999, datetime(2013, 3, 10, 5, 59, 59, 999000, tzinfo=UTC)),
    (date(2013, 3, 10), 9_000_000, datetime(2013, 3, 10, 7, 30, tzinfo=UTC)),        # 02:30 skipped: as zoneinfo
    (date(2013, 3, 10), 10_800_000, datetime(2013, 3, 10, 7, tzinfo=UTC)),           # 03:00 EDT
])
def test_dst_change_days(tmp_path, day, ms, expected):
    path = write_zip(tmp_path / f"equity/usa/second/spy/{day:%Y%m%d}_trade.zip", [f"{ms},10000,10000,10000,10000,1"])
    (row,), _ = collect_rows(path)
    assert row["ts"] == ns(expected) == wall_ns(day, ms, NY)


def test_daily_rows_across_dst(tmp_path):
    path = write_zip(tmp_path / "equity/usa/daily/abc.zip",
                     ["20131101 00:00,10000,10000,10000,10000,5", "20131104 00:00,10000,10000,10000,10000,5",
                      "20131104 09:30,10000,10000,10000,10000,5"])
    rows, _ = collect_rows(path)
    assert [r["ts"] for r in rows] == [ns(datetime(2013, 11, 1, 4, tzinfo=UTC)),
                                       ns(datetime(2013, 11, 4, 5, tzinfo=UTC)),
                                       ns(datetime(2013, 11, 4, 14, 30, tzinfo=UTC))]
    d = (date(2013, 11, 4) - date(1970, 1, 1)).days
    assert [r["seq"] for r in rows[1:]] == [d * lean.SEQ_DAY + 4 * lean.SEQ_SLOT + i for i in (1, 2)]
    assert rows[0]["symbol"] == "ABC"


def test_hour_file_seq_ranks_continue_across_csv_blocks(tmp_path, monkeypatch):
    """Rows of one date split over two CSV blocks still get ranks 1..n of that date."""
    monkeypatch.setattr(lean, "_BLOCK_SIZE", 256)
    lines = [f"201804{d:02d} {h:02d}:00,1,1,1,1,1" for d in (3, 4, 5) for h in range(24)]
    path = write_zip(tmp_path / "crypto/coinbase/hour/btcusd_trade.zip", lines)
    table, batches = read_table(path)
    assert len(batches) == 1 and table.num_rows == 72
    seqs = table.column("seq").to_pylist()
    base = {d: (date(2018, 4, d) - date(1970, 1, 1)).days * lean.SEQ_DAY + 3 * lean.SEQ_SLOT for d in (3, 4, 5)}
    assert seqs == [base[d] + h + 1 for d in (3, 4, 5) for h in range(24)]
    assert table.column("ts").to_pylist() == [ns(datetime(2018, 4, d, h, tzinfo=UTC)) for d in (3, 4, 5)
                                              for h in range(24)]


def test_crypto_is_utc(shared_data):
    rows, _ = collect_rows(shared_data / "lean/crypto/coinbase/minute/btcusd/20180404_trade.zip")
    assert rows[0]["ts"] == ns(datetime(2018, 4, 4, tzinfo=UTC))
    assert (rows[0]["open"], rows[0]["low"], rows[0]["volume"]) == ("7424.91", "7422", "7.14319709")


# ---- detect, paths, directories -------------------------------------------------------------

def test_detect(shared_data, tmp_path):
    data = shared_data / "lean"
    assert all(lean.detect(data / rel) for rel, *_ in SAMPLES)
    assert not lean.detect(data / "equity/usa/map_files/spy.csv")
    assert not lean.detect(data / "equity/usa/factor_files/spy.csv")
    assert not lean.detect(shared_data / "nautilus_trader/bybit/xrpusdt-ob500.data.zip")
    fake = tmp_path / "equity/usa/minute/spy/20131007_trade.zip"
    fake.parent.mkdir(parents=True)
    fake.write_text("14400000,1,1,1,1,1")                        # right name, not a zip
    assert not lean.detect(fake)
    for rel in ("option/usa/minute/spy/20131007_trade.zip",      # unsupported security type
                "equity/india/minute/sbin/20131007_trade.zip",   # unknown market time zone
                "crypto/coinbase/tick/btcusd/20180404_trade.zip",  # no crypto ticks
                "equity/usa/minute/spy/20131307_trade.zip",      # no such date
                "equity/usa/minute/spy/20131007_openinterest.zip"):
        p = write_zip(tmp_path / rel, ["1,1,1,1,1,1"])
        assert not lean.detect(p), rel
    hourly = write_zip(tmp_path / "crypto/coinbase/hour/btcusd_quote.zip", ["20180404 00:00,1,1,1,1,1,2,2,2,2,1"])
    info = lean.parse_path(hourly)
    assert lean.detect(hourly) and (info.symbol, info.tick_type, info.resolution) == ("BTCUSD", "quote", "hour")


def test_directory_reads_every_zip_in_path_order(shared_data):
    root = shared_data / "lean"
    files = lean.find_files(root)
    assert [f.relative_to(root).as_posix() for f in files] == sorted(rel for rel, *_ in SAMPLES)
    rows = sum(t.num_rows for _, t in lean.read(root))
    assert rows == sum(count_rows(root / rel) for rel, *_ in SAMPLES)


def test_symbol_and_source_overrides(shared_data):
    rows, _ = collect_rows(shared_data / "lean/equity/usa/minute/spy/20131007_trade.zip", symbol="SPY.US",
                           source="qc")
    assert {(r["symbol"], r["source"]) for r in rows} == {("SPY.US", "qc")}


def test_missing_paths(tmp_path):
    with pytest.raises(NotFoundError):
        list(lean.read(tmp_path / "nope.zip"))
    with pytest.raises(NotFoundError, match="no Lean data zips"):
        list(lean.read(tmp_path))


# ---- bad input ------------------------------------------------------------------------------

def _error(path) -> InputError:
    with pytest.raises(InputError) as info:
        list(lean.read(path))
    return info.value


def test_malformed_value_names_file_line_and_field(tmp_path):
    path = write_zip(tmp_path / "equity/usa/tick/spy/20131007_trade.zip",
                     ["14400464,1674100,100,P,20002000,0", "14400465,16741x0,100,P,20002000,0",
                      "14400466,1674100,-5,P,20002000,0"])
    err = _error(path)
    assert (err.file, err.line, err.field) == (str(path), 2, "price")
    assert str(err).startswith(f"{path}:2: price must be a number of deci-cents") and "'16741x0'" in str(err)


@pytest.mark.parametrize("bad,field,message", [
    ("144004x4,1674100,100,P,2000,0", "time", "milliseconds since midnight"),
    ("86400000,1674100,100,P,2000,0", "time", "not within the day"),
    ("14400464,1674100,-5,P,2000,0", "quantity", "non-negative"),
    ("14400464,1674100,100,P,2000,2", "suspicious", "0 or 1"),
    ("14400464,1674100,100,P", "sale_condition", "expected 6 comma-separated fields"),
    ("14400464,1674100,100,P,2000,0,7", None, "got 7"),
])
def test_bad_rows(tmp_path, bad, field, message):
    path = write_zip(tmp_path / "equity/usa/tick/spy/20131007_trade.zip",
                     ["14400464,1674100,100,P,20002000,0", "", "14400465,1674100,100,P,20002000,0", bad])
    err = _error(path)
    assert (err.line, err.field) == (4, field) and message in str(err), str(err)


def test_bad_quote_rows(tmp_path):
    ticks = write_zip(tmp_path / "equity/usa/tick/ibm/20131007_quote.zip", ["14400054,0,0,0,0,Q,1,0"])
    assert "neither a bid nor an ask" in str(_error(ticks))
    bars = write_zip(tmp_path / "equity/usa/minute/spy/20131007_quote.zip",
                     ["14400000,1,1,1,1,1,2,2,2,2,1", "14460000,1,1,1,,1,2,2,2,2,1"])
    err = _error(bars)
    assert (err.line, err.field) == (2, "bid_close")
    daily = write_zip(tmp_path / "equity/usa/daily/spy.zip", ["20130231 00:00,1,1,1,1,1"])
    err = _error(daily)
    assert (err.line, err.field) == (1, "time") and "not a valid date" in str(err)


def test_one_sided_quote_bar(tmp_path):
    path = write_zip(tmp_path / "crypto/coinbase/minute/btcusd/20180404_quote.zip",
                     ["0,,,,,,7424.91,7424.91,7424.91,7424.91,1.5", "60000,7415,7415,7415,7415,2.5,,,,,"])
    rows, _ = collect_rows(path)
    assert [(r["bid_price"], r["bid_size"], r["ask_price"], r["ask_size"]) for r in rows] == \
        [(None, None, "7424.91", "1.5"), ("7415", "2.5", None, None)]


def test_blank_lines_are_skipped_but_counted(tmp_path):
    path = write_zip(tmp_path / "equity/usa/tick/spy/20131007_trade.zip",
                     ["14400464,1674100,100,P,2000,0", "", "14400465,1674200,100,P,2000,1", ""])
    rows, _ = collect_rows(path)
    assert [r["price"] for r in rows] == ["167.41", "167.42"]
    assert rows[1]["conditions"] == ["2000", "suspicious"]
    assert rows[1]["seq"] - rows[0]["seq"] == 2                     # seq counts lines


def test_error_late_in_a_big_file_after_chunks_were_yielded(tmp_path):
    n = 150_000
    lines = [f"{14400000 + i},1674100,100,P,2000,0" for i in range(n)]
    lines[140_000] = "14540000,1674100,abc,P,2000,0"
    path = write_zip(tmp_path / "equity/usa/tick/spy/20131007_trade.zip", lines)
    got = []
    with pytest.raises(InputError) as info:
        for _, table in lean.read(path):
            got.append(table.num_rows)
    assert (info.value.line, info.value.field) == (140_001, "quantity")
    assert got == [100_000]


def test_not_a_zip_and_corrupt_zip(tmp_path):
    junk = tmp_path / "equity/usa/tick/spy/20131007_trade.zip"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"not a zip at all")
    err = _error(junk)
    assert err.file == str(junk) and "unreadable zip" in str(err)
    good = write_zip(tmp_path / "equity/usa/minute/spy/20131007_trade.zip",
                     [f"{14400000 + 60000 * i},1674100,1674100,1674100,1674100,{i}" for i in range(2000)])
    data = bytearray(good.read_bytes())
    data[200:260] = bytes(60)                                        # damage the deflate stream
    good.write_bytes(bytes(data))
    err = _error(good)
    assert err.file == str(good)


def test_a_damaged_zip_in_a_directory_is_reported_not_skipped(tmp_path):
    write_zip(tmp_path / "equity/usa/minute/spy/20131007_trade.zip", ["14400000,1,1,1,1,1"])
    bad = tmp_path / "equity/usa/minute/spy/20131008_trade.zip"
    bad.write_bytes(b"garbage")
    (tmp_path / "equity/usa/minute/spy/notes.zip").write_bytes(b"garbage")     # not Lean-shaped: ignored
    assert lean.find_files(tmp_path) == [bad.parent / "20131007_trade.zip", bad]
    got = []
    with pytest.raises(InputError) as info:
        for _, table in lean.read(tmp_path):
            got.append(table.num_rows)
    assert got == [1] and info.value.file == str(bad)


def test_two_csv_members_are_refused(tmp_path):
    path = tmp_path / "equity/usa/daily/spy.zip"
    path.parent.mkdir(parents=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.csv", "20130101 00:00,1,1,1,1,1")
        zf.writestr("b.csv", "20130101 00:00,1,1,1,1,1")
    assert "one CSV file" in str(_error(path))


def test_scale_text():
    values = ["1674100", "1670000", "5", "0", "-25", "00012.5", "123.4500", "99999999999999999999990000"]
    assert lean.scale_text(pa.array(values), 4).to_pylist() == [deci_cents(v) for v in values]


# ---- into an archive --------------------------------------------------------------------------

def test_end_to_end_spy_ticks_into_the_archive(shared_data, tmp_path):
    from mdcsql.archive import Archive
    from mdcsql.catalog import Catalog

    path = shared_data / "lean/equity/usa/tick/spy/20131007_trade.zip"
    raw = csv_rows(path)
    prices = [Decimal(r[1]) / 10000 for r in raw]
    root = tmp_path / "archive"
    archive = Archive.init(root)
    writer = archive.writer(lean.DEFAULT_SOURCE, root="historical", asset_class="equity")
    for asset_class, table in lean.read(path):
        assert asset_class == "equity"
        writer.append_table(table)
    archive.close()
    cat = Catalog.open(root, read_only=True)
    try:
        count, lo, hi = cat.query("SELECT count(*), min(price), max(price) FROM trades").rows[0]
        assert (count, Decimal(lo), Decimal(hi)) == (len(raw), min(prices), max(prices))
        # identical rows at the same millisecond are distinct trades: all of them are kept
        repeats = Counter(tuple(r) for r in raw)
        assert len(raw) - len(repeats) > 40_000                   # the file has ~48k such repeats
        row, n = repeats.most_common(1)[0]
        assert n > 1
        got = cat.query("SELECT count(*) FROM trades WHERE ts = make_timestamp_ns($1) AND price = $2 AND size = $3"
                        " AND venue = $4", [wall_ns(date(2013, 10, 7), int(row[0]), NY), deci_cents(row[1]), row[2],
                                            row[3]]).rows[0][0]
        assert got == n
    finally:
        cat.close()


def test_second_and_minute_bars_of_one_day_share_a_stream_without_loss(shared_data, tmp_path):
    """Both resolutions land in the same (source, symbol, HistoricalBar) stream; their seqs never collide."""
    from mdcsql.archive import Archive
    from mdcsql.catalog import Catalog

    data = shared_data / "lean/equity/usa"
    root = tmp_path / "archive"
    archive = Archive.init(root)
    writer = archive.writer(lean.DEFAULT_SOURCE, root="historical", asset_class="equity")
    for rel in ("second/spy/20131007_trade.zip", "minute/spy/20131007_trade.zip"):
        for _, table in lean.read(data / rel):
            writer.append_table(table)
    archive.close()
    cat = Catalog.open(root, read_only=True)
    try:
        rows = cat.query("SELECT interval, count(*) FROM historical_bars GROUP BY interval ORDER BY interval").rows
    finally:
        cat.close()
    assert rows == [("1m", 828), ("1s", 16675)]


def test_replay_source_through_the_collection_loop(shared_data, tmp_path):
    from mdcsql.archive import Archive
    from mdcsql.catalog import Catalog
    from mdcsql.collect import collect

    src = lean.LeanReplaySource(shared_data / "lean/crypto/coinbase/minute/btcusd")
    assert (src.id, src.kind, src.asset_class) == ("lean", "historical", "crypto")
    root = tmp_path / "archive"
    archive = Archive.init(root)
    collect(archive, [src])
    archive.close()
    assert src.stats.events == 1007 + 1437 and src.stats.errors == 0
    cat = Catalog.open(root, read_only=True)
    try:
        n_bars = cat.query("SELECT count(*) FROM historical_bars WHERE symbol = 'BTCUSD'").rows[0][0]
        n_quotes = cat.query("SELECT count(*) FROM bbo_quotes WHERE venue = 'coinbase'").rows[0][0]
    finally:
        cat.close()
    assert (n_bars, n_quotes) == (1007, 1437)
