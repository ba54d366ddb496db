"""The integrity policy on real archives: monotonicity, sequence-gap alerts, verify on read, stale data."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from archive_contents import stored_events
from mdcsql.archive import Archive
from mdcsql.errors import IntegrityError, NotFoundError
from mdcsql.ingest.integrity import OutOfOrderError, policy_for, read_jsonl, stale_streams, verify_on_read

START = 1_705_276_800 * 10**9   # 2024-01-15T00:00:00Z
DAY = 86_400 * 10**9


def _init(root: Path, **storage) -> Archive:
    cfg = root.parent / f"{root.name}-config.json"
    cfg.write_text(json.dumps({"Storage": storage}))
    return Archive.init(root, config=cfg)


def trade(seq, ts, symbol="AAPL", etype="Trade"):
    if etype == "BboQuote":
        return {"type": "BboQuote", "symbol": symbol, "source": "alpaca", "ts": ts, "seq": seq,
                "bid_price": "1.1", "bid_size": "1", "ask_price": "1.2", "ask_size": "1"}
    return {"type": "Trade", "symbol": symbol, "source": "alpaca", "ts": ts, "seq": seq, "price": "187.10",
            "size": "100", "side": "buy"}


def _quarantine_records(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / "_quarantine").glob("*.json"))]


def test_policy_per_type_overrides_the_global_section(archive_root):
    archive = _init(archive_root, Integrity={"EnforceMonotonicity": True, "MaxSequenceGap": 100},
                    Policies={"BboQuote": {"Integrity": {"EnforceMonotonicity": False}}})
    trade_policy = policy_for(archive.settings, "Trade")
    quote_policy = policy_for(archive.settings, "BboQuote")
    assert trade_policy.enforce_monotonicity and trade_policy.max_sequence_gap == 100
    assert not quote_policy.enforce_monotonicity and quote_policy.max_sequence_gap == 100
    assert policy_for(Archive.open(archive_root).settings, "Heartbeat").verify_on_read is True
    plain = _init(archive_root.parent / "plain")
    assert not policy_for(plain.settings, "Trade").on_write_path


def test_monotonicity_refuses_ts_going_backwards_and_quarantines_it(archive_root):
    archive = _init(archive_root, Policies={"Trade": {"Integrity": {"EnforceMonotonicity": True}}})
    w = archive.writer("alpaca")
    for i in range(10):
        w.append(trade(i + 1, START + i * 1000))
    with pytest.raises(OutOfOrderError) as err:
        w.append(trade(11, START + 5000))
    msg = str(err.value)
    assert "alpaca/AAPL/Trade" in msg and "seq 11" in msg and str(START + 5000) in msg
    assert err.value.file.startswith("live/") and err.value.field == "ts"
    assert msg.startswith(err.value.file)                      # file first, like every InputError
    # equal ts is in order; a re-sent duplicate (older ts, seen seq) is dropped as a duplicate
    w.append(trade(11, START + 9000))
    w.append(trade(3, START + 2000))
    assert archive._ingestor.duplicates_dropped == 1
    # other types and other streams are not affected
    w.append(trade(1, START + 5000, etype="BboQuote"))
    w.append(trade(2, START, etype="BboQuote"))
    w.append(trade(1, START, symbol="MSFT"))
    # append_many names the refused event's index; those before it are stored
    with pytest.raises(OutOfOrderError) as err:
        w.append_many([trade(12, START + 10_000), trade(13, START + 1)])
    assert err.value.index == 1
    archive.close()
    events = stored_events(archive_root)
    aapl = [e["seq"] for e in events if e["symbol"] == "AAPL" and e["type"] == "Trade"]
    assert aapl == list(range(1, 13))
    assert len(events) == 12 + 2 + 1
    records = [r for r in _quarantine_records(archive_root) if r["reason"].startswith("out-of-order")]
    assert [(r["seq"], r["ts"], r["previous_ts"]) for r in records] == [
        (11, START + 5000, START + 9000), (13, START + 1, START + 10_000)]
    assert records[0]["file"] == err.value.file and records[0]["field"] == "ts"
    kept = (archive_root / records[0]["data_file"]).read_bytes()
    assert json.loads(kept)["seq"] == 11                      # the refused event itself is kept


def test_monotonicity_on_the_table_path(archive_root):
    archive = _init(archive_root, Integrity={"EnforceMonotonicity": True})
    w = archive.writer("alpaca")
    assert w.append_table(pa.Table.from_pylist([trade(i + 1, START + i) for i in range(5)]), type="Trade") == 5
    bad = pa.Table.from_pylist([trade(6, START + 10), trade(7, START + 3)])
    with pytest.raises(OutOfOrderError) as err:
        w.append_table(bad, type="Trade")
    assert "seq 7" in str(err.value)
    late = pa.Table.from_pylist([trade(8, START + 2)])
    with pytest.raises(OutOfOrderError):
        w.append_table(late, type="Trade")
    archive.close()
    assert [e["seq"] for e in stored_events(archive_root)] == [1, 2, 3, 4, 5]


def test_sequence_gap_over_the_limit_raises_an_alert(archive_root):
    archive = _init(archive_root, Integrity={"MaxSequenceGap": 5})
    w = archive.writer("alpaca")
    for seq in [*range(1, 11), 13, 30, 31]:
        w.append(trade(seq, START + seq))
    for seq in (1, 50):                                        # another stream: its first seq is no gap
        w.append(trade(seq, START + seq, symbol="MSFT"))
    w.flush()
    assert archive._ingestor.limits.gap_alerts == 2
    archive.close()
    alerts = read_jsonl(archive_root / "_catalog" / "alerts.jsonl")
    assert [(a["kind"], a["symbol"], a["first_missing"], a["last_missing"], a["missing"]) for a in alerts] == [
        ("sequence_gap", "AAPL", 14, 29, 16), ("sequence_gap", "MSFT", 2, 49, 48)]
    assert alerts[0]["max_sequence_gap"] == 5 and alerts[0]["file"].startswith("live/")
    assert len(stored_events(archive_root)) == 15              # an alert, never a refusal


def test_verify_on_read_checks_the_sealed_sha256(archive_root):
    archive = _init(archive_root, Policies={"BboQuote": {"Integrity": {"VerifyOnRead": False}}})
    w = archive.writer("alpaca")
    w.append(trade(1, START))
    manifests = archive.seal()
    archive.close()
    rel = manifests[0]["path"]
    assert verify_on_read(archive_root, rel) is True
    assert verify_on_read(archive_root, rel, settings=archive.settings, etype="Trade") is True
    path = archive_root / rel
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as err:
        verify_on_read(archive_root, rel)
    assert rel in str(err.value) and manifests[0]["sha256"] in str(err.value)
    assert verify_on_read(archive_root, rel, settings=archive.settings, etype="BboQuote") is False
    with pytest.raises(NotFoundError):
        verify_on_read(archive_root, "live/AAPL/Trade/nothing.jsonl.gz")


def test_stale_streams_by_threshold_as_of(archive_root):
    archive = _init(archive_root, Integrity={"StaleDataThreshold": "1h"},
                    Policies={"BboQuote": {"Integrity": {"StaleDataThreshold": "2d"}}})
    w = archive.writer("alpaca")
    w.append(trade(1, START + 10**9))
    w.append(trade(1, START + 10**9, etype="BboQuote"))
    archive.close()
    with Archive.open(archive_root).catalog() as cat:
        assert stale_streams(cat, archive.settings, as_of_ns=START + 1800 * 10**9) == []
        stale = stale_streams(cat, archive.settings, as_of_ns=START + DAY)
    assert [(s["symbol"], s["type"]) for s in stale] == [("AAPL", "Trade")]
    assert stale[0]["stale_data_threshold_seconds"] == 3600 and stale[0]["idle_seconds"] == 86399
