"""The replay dispatcher: format detection, JSONL replay into a real archive, pacing, clear errors."""

from __future__ import annotations

import gzip
import json
import threading
import time
import types
from pathlib import Path

import pytest
import zstandard

from archive_contents import data_files, stored_events
from mdcsql.archive import Archive
from mdcsql.collect import collect
from mdcsql.errors import ConfigError, InputError, NotFoundError
from mdcsql.sources import jsonl, replay
from mdcsql.sources.replay import ReplaySource, detect_format

T0 = 1_705_329_000_000_000_000           # 2024-01-15T14:30:00Z

SAMPLES = [
    ("lean/equity/usa/tick/spy/20131008_trade.zip", "lean"),
    ("lean/equity/usa/tick/ibm/20131007_quote.zip", "lean"),
    ("lean/equity/usa/minute/spy/20131007_trade.zip", "lean"),
    ("lean/equity/usa/daily/spy.zip", "lean"),
    ("lean/crypto/coinbase/minute/btcusd/20180404_quote.zip", "lean"),
    ("nautilus_trader/tardis/bitmex_trades_XBTUSD.csv", "tardis"),
    ("nautilus_trader/tardis/huobi-dm-swap_quotes_BTC-USD.csv", "tardis"),
    ("nautilus_trader/tardis/binance-futures_book_snapshot_5_BTCUSDT.csv", "tardis"),
    ("nautilus_trader/tardis/deribit_incremental_book_L2_BTC-PERPETUAL.csv", "tardis"),
    ("nautilus_trader/binance/btcusdt-depth-snap.csv", "binance"),
    ("nautilus_trader/binance/btcusdt-depth-update.csv", "binance"),
    ("nautilus_trader/ADABTC-1m-2021-11-27.csv", "binance"),
    ("nautilus_trader/bybit/xrpusdt-ob500.data.zip", "bybit"),
    ("databento/test_data.trades.dbn", "dbn"),
    ("databento/test_data.trades.v3.dbn.zst", "dbn"),
    ("databento/test_data.mbo.dbn", "dbn"),
    ("databento/test_data.mbp-10.dbn", "dbn"),
]
NOT_REPLAYABLE = ["SOURCES.md", "lean/equity/usa/map_files/spy.csv", "lean/equity/usa/factor_files/spy.csv",
                  "cryptofeed/COINBASE.ws.28.0"]


def _reader(fmt: str):
    """The reader module, or a skip naming why (a colleague's reader that has not landed yet)."""
    return pytest.importorskip(f"mdcsql.sources.{fmt}", reason=f"the {fmt} reader is not in this checkout yet")


def _sample(shared_data: Path, rel: str) -> Path:
    path = shared_data / rel
    if not path.exists():
        pytest.skip(f"sample {rel} is absent from {shared_data}")
    return path


def trade(seq: int, ts: int, **kw) -> dict:
    return {"type": "Trade", "symbol": "AAPL", "source": "alpaca", "ts": ts, "seq": seq, "price": "187.10",
            "size": "100", "side": "buy", **kw}


def write_lines(path: Path, lines: list[bytes], codec: str | None = None) -> Path:
    data = b"".join(line + b"\n" for line in lines)
    if codec == "gzip":
        data = gzip.compress(data)
    elif codec == "zstd":
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


# ---- detection ------------------------------------------------------------------------------------

@pytest.mark.parametrize("rel,fmt", SAMPLES, ids=[s[0].rsplit("/", 1)[-1] for s in SAMPLES])
def test_each_sample_is_detected_as_its_format(shared_data, rel, fmt):
    module = _reader(fmt)
    path = _sample(shared_data, rel)
    assert detect_format(path) == fmt
    source = ReplaySource(path)
    assert (source.format, source.id, source.kind) == (fmt, module.DEFAULT_SOURCE, "historical")
    assert ReplaySource(path, source_id="vendor-x").id == "vendor-x"


@pytest.mark.parametrize("rel", NOT_REPLAYABLE)
def test_files_no_reader_accepts_are_not_detected(shared_data, rel):
    assert detect_format(_sample(shared_data, rel)) is None


def test_a_directory_replays_each_file_with_its_reader(shared_data):
    for fmt in ("tardis", "binance", "bybit"):
        _reader(fmt)
    source = ReplaySource(_sample(shared_data, "nautilus_trader"))
    plan = [(m.FORMAT, [p.name for p in paths]) for m, paths in source.plan]
    assert ("binance", ["btcusdt-depth-snap.csv", "btcusdt-depth-update.csv"]) in plan   # one book across both
    assert ("binance", ["ADABTC-1m-2021-11-27.csv"]) in plan
    assert {f for f, _ in plan} == {"tardis", "binance", "bybit"} and source.id == "binance"
    batches = list(source.batches())
    assert {t.column("type")[0].as_py() for _, t in batches} >= {"Trade", "BboQuote", "L2Snapshot", "HistoricalBar"}
    assert {ac for ac, _ in batches} == {"crypto"}
    assert source.stats.events == sum(t.num_rows for _, t in batches) > 0


def test_format_overrides_detection_and_bad_names_are_config_errors(tmp_path, monkeypatch):
    path = write_lines(tmp_path / "trades.csv", [json.dumps(trade(1, T0)).encode()])
    assert detect_format(path) == "jsonl"                        # by content, not by name
    assert ReplaySource(path, format="jsonl").format == "jsonl"
    with pytest.raises(ConfigError, match="unknown replay format 'csv'"):
        ReplaySource(path, format="csv")
    real_load = replay._load
    monkeypatch.setattr(replay, "_load", lambda name: "not installed here" if name == "dbn" else real_load(name))
    with pytest.raises(ConfigError, match="format dbn is not available"):
        ReplaySource(path, format="dbn")
    assert "dbn" not in replay.available_formats() and detect_format(path) == "jsonl"


def test_an_undetectable_file_is_an_input_error_naming_it_and_the_formats_tried(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("hello, market\n")
    with pytest.raises(InputError) as err:
        ReplaySource(junk)
    message = str(err.value)
    assert str(junk) in message and "cannot tell the format" in message
    for fmt in replay.available_formats():
        assert fmt in message
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("nothing to replay")
    with pytest.raises(InputError, match="no file of a known format"):
        ReplaySource(empty)
    with pytest.raises(NotFoundError):
        ReplaySource(tmp_path / "missing.jsonl")
    with pytest.raises(ConfigError, match="speed"):
        ReplaySource(junk, format="jsonl", speed=0)


# ---- JSONL end to end ---------------------------------------------------------------------------------

CSHARP = (b'{"timestamp":"2024-01-15T14:30:00.1234567+00:00","symbol":"MSFT","type":3,"payload":{"kind":"trade",'
          b'"timestamp":"2024-01-15T14:30:00.1234567+00:00","symbol":"MSFT","price":375.10,"size":100,"aggressor":1,'
          b'"sequenceNumber":42,"streamId":"ALPACA","venue":"XNAS"},"sequence":42,"source":"ALPACA","schemaVersion":1}')


def test_jsonl_replay_into_a_real_archive_has_exact_counts(tmp_path):
    good = [json.dumps(trade(i, T0 + i * 1_000)).encode() for i in range(1, 12_001)]
    bad = [b'{"type": "Trade", "symbol": "AAPL"', json.dumps(trade(99_999, T0, price="abc")).encode()]
    lines = good[:6_000] + [bad[0]] + good[6_000:] + [bad[1], json.dumps(trade(5, T0 + 5_000)).encode()]  # + a dup
    plain = write_lines(tmp_path / "a.jsonl", lines)
    gz = write_lines(tmp_path / "b.jsonl.gz", [json.dumps(trade(i, T0 + i, symbol="SPY")).encode()
                                                for i in range(1, 101)], "gzip")
    zst = write_lines(tmp_path / "c.jsonl.zst", [CSHARP, json.dumps(trade(1, T0, source=None)).encode()], "zstd")
    archive = Archive.init(tmp_path / "arch", config=None)
    sources = [ReplaySource(plain), ReplaySource(gz), ReplaySource(zst, source_id="replayed", symbol="IBM")]
    report = collect(archive, sources)
    assert not report["failed"] and report["duplicates_dropped"] == 1
    src = sources[0]
    assert (src.stats.messages, src.stats.events, src.stats.errors) == (12_003, 12_001, 2)
    assert any(f"{plain}:6001:" in s for s in src.stats.error_samples)
    assert any(f"{plain}:12002:" in s and "price" in s for s in src.stats.error_samples)
    events = stored_events(tmp_path / "arch")
    by = {}
    for e in events:
        by.setdefault((e["source"], e["symbol"]), []).append(e)
    assert len(by[("alpaca", "AAPL")]) == 12_000 and len(by[("alpaca", "SPY")]) == 100
    assert sorted(e["seq"] for e in by[("alpaca", "AAPL")]) == list(range(1, 12_001))
    # C# lines keep their own source; a record without one gets source_id; symbol overrides all
    assert [e["seq"] for e in by[("ALPACA", "IBM")]] == [42] and [e["seq"] for e in by[("replayed", "IBM")]] == [1]
    assert all(p.parts[len((tmp_path / "arch").parts)] == "historical" for p in data_files(tmp_path / "arch"))
    # the bad lines, kept for quarantine
    record = src.quarantine(tmp_path / "arch")
    assert [(l["line"], l["file"]) for l in record["lines"]] == [(6001, str(plain)), (12002, str(plain))]
    assert (tmp_path / "arch" / record["data_file"]).read_bytes() == bad[0] + b"\n" + bad[1] + b"\n"
    assert sources[1].quarantine(tmp_path / "arch") is None


def test_jsonl_reader_alone_raises_on_a_bad_line_without_a_handler(tmp_path):
    path = write_lines(tmp_path / "x.jsonl", [json.dumps(trade(1, T0)).encode(), b"{oops"])
    with pytest.raises(InputError, match=":2:"):
        list(jsonl.read(path))
    assert not jsonl.detect(write_lines(tmp_path / "y.jsonl", [b'{"topic":"orderbook.50.XRPUSDT","type":"delta"}']))
    assert not jsonl.detect(tmp_path)


def test_a_lean_file_replays_end_to_end(shared_data, tmp_path):
    _reader("lean")
    path = _sample(shared_data, "lean/equity/usa/tick/ibm/20131007_trade.zip")
    archive = Archive.init(tmp_path / "arch", config=None)
    source = ReplaySource(path, speed=None)
    report = collect(archive, [source])
    assert report["events"] == 24_293 and not report["failed"]
    stored = stored_events(tmp_path / "arch")
    assert len(stored) == 24_293 and {(e["source"], e["symbol"], e["type"]) for e in stored} == {("lean", "IBM", "Trade")}


# ---- pacing and read-ahead ------------------------------------------------------------------------------

def test_speed_paces_by_event_time(tmp_path):
    span_ns = 2_000_000_000                                      # 2 s of events: 0.5 s at speed 4
    path = write_lines(tmp_path / "p.jsonl", [json.dumps(trade(i + 1, T0 + i * span_ns // 200)).encode()
                                              for i in range(201)])
    started = time.monotonic()
    got = [e for _, batch in ReplaySource(path, speed=4).batches() for e in batch]
    took = time.monotonic() - started
    assert len(got) == 201 and took >= 0.45
    assert [e["seq"] for e in got] == list(range(1, 202))


def _fake_reader(monkeypatch, batches: int, fail: bool):
    def read(path, *, symbol=None, source=None):
        for i in range(batches):
            yield "equity", [trade(i + 1, T0 + i, source=source)]
        if fail:
            raise InputError("broken record", file=str(path), line=batches + 1, field="price")
    fake = types.SimpleNamespace(FORMAT="jsonl", DEFAULT_SOURCE="fake", detect=lambda p: True, read=read)
    real_load = replay._load
    monkeypatch.setattr(replay, "_load", lambda name: fake if name == "jsonl" else real_load(name))


def test_a_reader_error_reaches_the_collection_loop_after_the_good_batches(tmp_path, monkeypatch):
    _fake_reader(monkeypatch, batches=3, fail=True)
    path = write_lines(tmp_path / "f.jsonl", [b"{}"])
    source = ReplaySource(path, format="jsonl")
    archive = Archive.init(tmp_path / "arch", config=None)
    report = collect(archive, [source])
    assert report["failed"] == ["fake"] and "f.jsonl:4: broken record (field 'price')" in report["sources"]["fake"]["failure"]
    assert [e["seq"] for e in stored_events(tmp_path / "arch")] == [1, 2, 3]


def test_stopping_early_ends_the_read_ahead_thread(tmp_path, monkeypatch):
    _fake_reader(monkeypatch, batches=10_000, fail=False)
    source = ReplaySource(write_lines(tmp_path / "f.jsonl", [b"{}"]), format="jsonl")
    it = source.batches()
    assert next(it)[1][0]["seq"] == 1
    started = time.monotonic()
    it.close()                                                   # joins the reader thread
    assert time.monotonic() - started < 2
    assert not [t for t in threading.enumerate() if t.name.startswith("mdcsql-replay-")]
