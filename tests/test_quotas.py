"""Quotas on real archives: every enforcement mode on the write path, the lifecycle job, dynamic limits."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from archive_contents import stored_events
from mdcsql.archive import Archive
from mdcsql.lifecycle.quotas import QuotaExceededError, enforce, quota_events, status

START = 1_705_276_800 * 10**9   # 2024-01-15T00:00:00Z
DAY = 86_400 * 10**9
LINE = 190                      # about the bytes of one encoded trade below


def _init(root: Path, quotas: dict, **storage) -> Archive:
    cfg = root.parent / f"{root.name}-config.json"
    cfg.write_text(json.dumps({"Storage": {"Quotas": quotas, **storage}}))
    return Archive.init(root, config=cfg)


def trade(seq, ts, symbol="AAPL", source="alpaca", etype="Trade"):
    if etype == "BboQuote":
        return {"type": "BboQuote", "symbol": symbol, "source": source, "ts": ts, "seq": seq,
                "bid_price": "187.10", "bid_size": "100", "ask_price": "187.12", "ask_size": "200"}
    return {"type": "Trade", "symbol": symbol, "source": source, "ts": ts, "seq": seq, "price": "187.10",
            "size": "100", "side": "buy"}


def _write(w, n, *, first_seq=1, ts0=START, symbol="AAPL", etype="Trade", step=1000):
    for i in range(n):
        w.append(trade(first_seq + i, ts0 + i * step, symbol, w.source, etype))


def _kinds(root, scope=None):
    return [e["kind"] for e in quota_events(root) if scope is None or e.get("scope") == scope]


def test_warn_logs_once_per_crossing_and_keeps_writing(archive_root):
    archive = _init(archive_root, {"PerSymbol": {"AAPL": {"MaxBytes": 20 * LINE}}})
    w = archive.writer("alpaca")
    _write(w, 200)
    w.flush()
    archive.close()
    assert len(stored_events(archive_root)) == 200
    assert _kinds(archive_root, "PerSymbol.AAPL") == ["warn"]
    warn = quota_events(archive_root)[0]
    assert warn["dimension"] == "MaxBytes" and warn["limit"] == 20 * LINE and warn["enforcement"] == "Warn"
    assert warn["usage"] > 20 * LINE >= warn["usage"] - LINE       # logged at the crossing event


def test_default_enforcement_is_warn(archive_root):
    archive = _init(archive_root, {"Global": {"MaxFiles": 1}})
    w = archive.writer("alpaca")
    _write(w, 5)
    _write(w, 5, symbol="MSFT")
    archive.close()
    assert len(stored_events(archive_root)) == 10
    assert _kinds(archive_root) == ["warn"]


def test_hard_limit_refuses_with_a_clear_error_and_keeps_what_is_stored(archive_root):
    archive = _init(archive_root, {"PerSymbol": {"AAPL": {"MaxBytes": 30 * LINE, "Enforcement": "HardLimit"}}})
    w = archive.writer("alpaca")
    accepted = 0
    with pytest.raises(QuotaExceededError) as err:
        for i in range(100):
            w.append(trade(i + 1, START + i))
            accepted += 1
    msg = str(err.value)
    assert "PerSymbol.AAPL" in msg and "MaxBytes" in msg and f"{30 * LINE}" in msg and "HardLimit" in msg
    assert "usage is" in msg and "Refused" in msg
    assert err.value.limit == 30 * LINE and err.value.usage <= 30 * LINE
    assert 20 <= accepted < 31
    # the refused event may be retried later; other scopes keep writing; the limit stays enforced
    with pytest.raises(QuotaExceededError):
        w.append(trade(accepted + 1, START + accepted))
    _write(w, 50, symbol="MSFT")
    w.flush()
    archive.close()
    events = stored_events(archive_root)
    assert sum(e["symbol"] == "AAPL" for e in events) == accepted
    assert sum(e["symbol"] == "MSFT" for e in events) == 50
    assert sum(len(e["price"]) > 0 for e in events) == accepted + 50
    assert _kinds(archive_root, "PerSymbol.AAPL") == ["refused"]     # logged once per crossing


def test_hard_limit_counts_what_the_catalog_already_holds(archive_root):
    archive = _init(archive_root, {"PerSource": {"alpaca": {"MaxBytes": 60 * LINE, "Enforcement": "HardLimit"}}})
    w = archive.writer("alpaca")
    _write(w, 30)
    archive.close()                                       # sealed (gzip) and in the catalog
    stored = sum(p.stat().st_size for p in (archive_root / "live").rglob("*.gz"))
    archive = Archive.open(archive_root)
    w = archive.writer("alpaca")
    written = 0
    with pytest.raises(QuotaExceededError) as err:
        for i in range(200):
            event = trade(1000 + i, START + DAY + i, "MSFT")
            w.append(event)
            written += _size(event)
    refused = _size(trade(1000 + i, START + DAY + i, "MSFT"))
    # exact: the snapshot of the catalog plus what this process wrote, to the byte
    assert err.value.usage == stored + written <= 60 * LINE < stored + written + refused
    archive.close()


def _size(event) -> int:
    from mdcsql import events as ev
    return len(ev.encode(ev.normalize(event)))


def test_per_symbol_default_applies_to_each_symbol_without_its_own_entry(archive_root):
    archive = _init(archive_root, {"PerSymbol": {
        "default": {"MaxBytes": 10 * LINE, "Enforcement": "HardLimit"},
        "AAPL": {"MaxBytes": 40 * LINE, "Enforcement": "HardLimit"}}})
    w = archive.writer("alpaca")
    counts = {}
    for symbol in ("AAPL", "MSFT", "IBM"):
        counts[symbol] = 0
        with pytest.raises(QuotaExceededError) as err:
            for i in range(100):
                w.append(trade(i + 1, START + i, symbol))
                counts[symbol] += 1
        assert f"PerSymbol.{symbol}" in str(err.value)
        assert ("(default)" in str(err.value)) == (symbol != "AAPL")
    archive.close()
    assert counts["MSFT"] == counts["IBM"] < 11           # each symbol has its own default limit
    assert 30 < counts["AAPL"] <= 40


def test_events_per_day_limit_is_per_utc_day(archive_root):
    archive = _init(archive_root, {"PerEventType": {"Trade": {"MaxEventsPerDay": 100, "Enforcement": "HardLimit"}}})
    w = archive.writer("alpaca")
    _write(w, 60)
    _write(w, 40, symbol="MSFT")                          # 100 Trades on 2024-01-15: exactly the limit
    with pytest.raises(QuotaExceededError) as err:
        w.append(trade(61, START + 10**9))
    assert "MaxEventsPerDay" in str(err.value) and "2024-01-15" in str(err.value)
    _write(w, 100, first_seq=61, ts0=START + DAY)         # the next UTC day has its own 100
    w.append(trade(500, START + 5, etype="BboQuote"))     # other types are not limited
    archive.close()
    events = stored_events(archive_root)
    assert len(events) == 201
    # and the next process counts today's stored events from the catalog
    archive = Archive.open(archive_root)
    w = archive.writer("alpaca")
    with pytest.raises(QuotaExceededError):
        w.append(trade(10_000, START + DAY + 999_999, "IBM"))
    _write(w, 10, first_seq=10_000, ts0=START + 2 * DAY, symbol="IBM")
    archive.close()


def test_soft_limit_requests_cleanup_and_enforce_deletes_oldest(archive_root):
    archive = _init(archive_root, {"PerSource": {"alpaca": {"MaxBytes": 4000, "Enforcement": "SoftLimit"}}},
                    Compress=False, Policies={"Trade": {"Classification": "Standard"}})
    w = archive.writer("alpaca")
    for day in range(6):
        _write(w, 10, first_seq=day * 10 + 1, ts0=START + day * DAY)
    archive.close()
    assert len(stored_events(archive_root)) == 60          # SoftLimit never refuses
    assert _kinds(archive_root, "PerSource.alpaca") == ["cleanup_requested"]
    before = status(Archive.open(archive_root))
    row = next(r for r in before["quotas"] if r["scope"] == "PerSource.alpaca")
    assert row["over"] and before["cleanup_requests"] == 1
    plan = enforce(Archive.open(archive_root), dry_run=True)
    assert plan["deleted"] and len(stored_events(archive_root)) == 60   # dry run: nothing changes
    done = enforce(Archive.open(archive_root))
    assert done["deleted"] == plan["deleted"]
    days = sorted({p.split("/")[-1][:10] for p in done["deleted"]})
    assert days[0] == "2024-01-15"                          # oldest first
    after = next(r for r in status(Archive.open(archive_root))["quotas"] if r["scope"] == "PerSource.alpaca")
    assert not after["over"] and after["usage"] <= 4000, (after, done)
    assert len(stored_events(archive_root)) == 60 - 10 * len(done["deleted"])
    assert _kinds(archive_root, "PerSource.alpaca").count("dropped") == len(done["deleted"])


def test_drop_oldest_deletes_oldest_non_critical_files_while_writing(archive_root):
    archive = _init(archive_root, {"Global": {"MaxBytes": 20_000, "Enforcement": "DropOldest"}},
                    Compress=False, Policies={"Trade": {"Classification": "Critical"}})
    w = archive.writer("alpaca")
    for day in range(4):                                   # sealed day files: Trades and quotes
        _write(w, 10, first_seq=day * 10 + 1, ts0=START + day * DAY)
        _write(w, 10, first_seq=day * 10 + 1, ts0=START + day * DAY, etype="BboQuote")
    archive.close()
    trades_before = [e for e in stored_events(archive_root) if e["type"] == "Trade"]
    archive = Archive.open(archive_root)
    w = archive.writer("alpaca")
    _write(w, 30, first_seq=1000, ts0=START + 10 * DAY, etype="BboQuote")
    w.flush()
    dropped = archive._ingestor.limits.dropped
    assert dropped and all("BboQuote" in p for p in dropped)
    assert "2024-01-15" in dropped[0]                       # the oldest day went first
    # keep writing until only Critical files are left: then DropOldest refuses
    with pytest.raises(QuotaExceededError) as err:
        _write(w, 400, first_seq=2000, ts0=START + 11 * DAY, etype="BboQuote")
    assert "DropOldest found no sealed file of a non-Critical type it may delete" in str(err.value)
    archive.close()
    trades_after = [e for e in stored_events(archive_root) if e["type"] == "Trade"]
    assert trades_after == trades_before                    # Critical data never deleted
    events = quota_events(archive_root)
    assert {e["path"] for e in events if e["kind"] == "dropped"} >= set(dropped)
    deletions = archive_root / "_catalog" / "deletions.jsonl"
    assert deletions.exists() and all(p in deletions.read_text() for p in dropped)


def test_max_files_hard_limit_refuses_a_new_file(archive_root):
    archive = _init(archive_root, {"PerSource": {"alpaca": {"MaxFiles": 2, "Enforcement": "HardLimit"}}})
    w = archive.writer("alpaca")
    _write(w, 3)
    _write(w, 3, symbol="MSFT")
    with pytest.raises(QuotaExceededError) as err:
        _write(w, 3, symbol="IBM")
    assert "MaxFiles is 2 files" in str(err.value)
    _write(w, 3, first_seq=4)                               # the open files take more events
    archive.close()
    assert len(stored_events(archive_root)) == 9


def test_append_table_part_refused_whole_and_retryable(archive_root):
    archive = _init(archive_root, {"PerSymbol": {"AAPL": {"MaxBytes": 50 * LINE, "Enforcement": "HardLimit"}}})
    w = archive.writer("alpaca")
    rows = [trade(i + 1, START + i) for i in range(40)]
    table = pa.Table.from_pylist(rows)
    assert w.append_table(table, type="Trade") == 40
    more = pa.Table.from_pylist([trade(41 + i, START + 40 + i) for i in range(40)])
    with pytest.raises(QuotaExceededError):
        w.append_table(more, type="Trade")
    archive.close()
    assert len(stored_events(archive_root)) == 40
    # a higher limit later: the refused seqs are not mistaken for duplicates
    cfg = json.loads((archive_root / "_catalog" / "config.json").read_text())
    cfg["Storage"]["Quotas"]["PerSymbol"]["AAPL"]["MaxBytes"] = 10**9
    (archive_root / "_catalog" / "config.json").write_text(json.dumps(cfg))
    archive = Archive.open(archive_root)
    assert archive.writer("alpaca").append_table(more, type="Trade") == 40
    archive.close()
    assert len(stored_events(archive_root)) == 80


def test_status_lists_usage_against_limits_as_of(archive_root):
    archive = _init(archive_root, {"Global": {"MaxBytes": 10**9},
                                   "PerSymbol": {"default": {"MaxEventsPerDay": 5}}})
    w = archive.writer("alpaca")
    _write(w, 3)
    _write(w, 7, ts0=START + DAY, first_seq=100)
    archive.close()
    doc = status(Archive.open(archive_root), as_of=_dt("2024-01-16T12:00:00"))
    aapl = next(r for r in doc["quotas"] if r["scope"] == "PerSymbol.AAPL (default)")
    assert aapl["usage"] == 7 and aapl["over"] and aapl["day"] == "2024-01-16"
    doc = status(Archive.open(archive_root), as_of=_dt("2024-01-15T12:00:00"))
    aapl = next(r for r in doc["quotas"] if r["scope"] == "PerSymbol.AAPL (default)")
    glob = next(r for r in doc["quotas"] if r["scope"] == "Global")
    assert aapl["usage"] == 3 and not aapl["over"]
    assert 0 < glob["usage"] < status(Archive.open(archive_root))["quotas"][0]["usage"]


def _dt(text):
    from datetime import datetime, timezone
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def _dynamic_archive(root, *, enabled=True):
    archive = _init(root, {"Global": {"MaxBytes": 10**6},
                           "PerSource": {"alpaca": {"MaxBytes": 3000, "Enforcement": "HardLimit"},
                                         "ib": {"MaxBytes": 50_000}},
                           "Dynamic": {"Enabled": enabled, "EvaluationPeriod": "1d", "MinReservePct": 10,
                                       "OverprovisionFactor": 0.5, "StealFromInactive": True}},
                    Compress=False)
    _write(archive.writer("ib"), 10, ts0=START - 5 * DAY)        # inactive in the window
    _write(archive.writer("alpaca"), 10)                          # active: ~1900 bytes a day
    archive.close()
    return Archive.open(root)


def test_dynamic_quotas_propose_with_reasons_and_apply(archive_root):
    from mdcsql.lifecycle.dynamic_quotas import apply, evaluate
    archive = _dynamic_archive(archive_root)
    as_of = _dt("2024-01-15T12:00:00")
    doc = evaluate(archive, as_of=as_of, disk=(10**7, 9 * 10**6))
    by_scope = {p["scope"]: p for p in doc["proposals"]}
    assert set(by_scope) == {"PerSource.alpaca", "PerSource.ib"}
    alpaca, ib = by_scope["PerSource.alpaca"], by_scope["PerSource.ib"]
    assert ib["proposed"] == ib["usage"] and "inactive" in ib["reason"] and "2024-01-10" in ib["reason"]
    assert alpaca["proposed"] == alpaca["usage"] * 2 == alpaca["usage"] + alpaca["window_bytes"]
    assert "active" in alpaca["reason"] and "4500" in alpaca["reason"]       # burst ceiling 3000 × 1.5
    assert doc["reserve_bytes"] == 10**6
    applied = apply(archive, doc)
    assert applied["limits"]["PerSource.alpaca"]["max_bytes"] == alpaca["proposed"]
    # the write path and quota status use the applied limit
    row = next(r for r in status(Archive.open(archive_root))["quotas"] if r["scope"] == "PerSource.alpaca")
    assert row["limit"] == alpaca["proposed"] and row["configured_max_bytes"] == 3000
    archive = Archive.open(archive_root)
    with pytest.raises(QuotaExceededError) as err:
        _write(archive.writer("alpaca"), 100, first_seq=100, ts0=START + DAY)
    assert err.value.limit == alpaca["proposed"]
    archive.close()
    # a disk short of its reserve lowers the global limit to the current usage
    low = evaluate(Archive.open(archive_root), as_of=as_of, disk=(10**6, 100))
    glob = next(p for p in low["proposals"] if p["scope"] == "Global")
    assert glob["proposed"] == glob["usage"] and "10% free" in glob["reason"]


def test_dynamic_quotas_apply_needs_enabled(archive_root):
    from mdcsql.errors import MdcsqlError
    from mdcsql.lifecycle.dynamic_quotas import apply, evaluate
    archive = _dynamic_archive(archive_root, enabled=False)
    doc = evaluate(archive, as_of=_dt("2024-01-15T12:00:00"), disk=(10**7, 9 * 10**6))
    assert doc["proposals"] and not doc["enabled"]
    with pytest.raises(MdcsqlError, match="not enabled"):
        apply(archive, doc)
    assert not (archive_root / "_catalog" / "quota_limits.json").exists()


def test_cli_quota_status_enforce_rebalance(archive_root):
    import subprocess
    from conftest import PYTHON, python_env

    def mdcsql(*args):
        return subprocess.run([PYTHON, "-m", "mdcsql", *map(str, args)], capture_output=True, text=True,
                              env=python_env())

    _dynamic_archive(archive_root, enabled=False)
    out = mdcsql("quota", "status", archive_root, "--json", "--as-of", "2024-01-16")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert {r["scope"] for r in doc["quotas"]} == {"Global", "PerSource.alpaca", "PerSource.ib"}
    assert doc["integrity"]["Trade"]["enforced"] == {"validate_on_write": True, "checksum_on_write": True}
    table = mdcsql("quota", "status", archive_root)
    assert table.returncode == 0 and "PerSource.alpaca" in table.stdout
    bad = mdcsql("quota", "status", archive_root, "--as-of", "yesterday-ish")
    assert bad.returncode == 2 and "--as-of" in bad.stderr
    dry = mdcsql("quota", "enforce", archive_root, "--dry-run")
    assert dry.returncode == 0 and "within its limits" in dry.stdout
    refused = mdcsql("quota", "rebalance", archive_root, "--apply", "--as-of", "2024-01-15T12:00:00Z")
    assert refused.returncode == 1 and "not enabled" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    shown = mdcsql("quota", "rebalance", archive_root, "--as-of", "2024-01-15T12:00:00Z")
    assert shown.returncode == 0 and "PerSource.ib" in shown.stdout and "inactive" in shown.stdout


def test_quota_records_are_mirrored_into_the_catalog_and_rebuilt(archive_root):
    archive = _init(archive_root, {"PerSymbol": {"AAPL": {"MaxBytes": 5 * LINE, "Enforcement": "HardLimit"}}},
                    Integrity={"MaxSequenceGap": 1})
    w = archive.writer("alpaca")
    with pytest.raises(QuotaExceededError):
        for i in range(20):
            w.append(trade(1 + i * 10, START + i))
    archive.close()
    archive = Archive.open(archive_root)
    archive.sync_catalog()
    with archive.catalog() as cat:
        events = cat.execute("SELECT kind, scope, dimension, limit_value FROM quota_events").rows
        alerts = cat.execute("SELECT kind, symbol FROM integrity_alerts ORDER BY seq").rows
    assert events == [("refused", "PerSymbol.AAPL", "MaxBytes", 5 * LINE)]
    assert alerts and set(alerts) == {("sequence_gap", "AAPL")}
    (archive_root / "_catalog" / "catalog.duckdb").unlink()
    archive.rebuild_catalog()
    with archive.catalog() as cat:
        assert cat.execute("SELECT kind, scope, dimension, limit_value FROM quota_events").rows == events
        assert cat.execute("SELECT kind, symbol FROM integrity_alerts ORDER BY seq").rows == alerts


def test_cleanup_skips_held_files_and_records_why(archive_root):
    from mdcsql.lifecycle.holds import add_hold
    archive = _init(archive_root, {"PerSource": {"alpaca": {"MaxBytes": 4000, "Enforcement": "DropOldest"}}},
                    Compress=False, Policies={"Trade": {"Classification": "Standard"}})
    w = archive.writer("alpaca")
    for day in range(2):
        _write(w, 10, first_seq=day * 10 + 1, ts0=START + day * DAY)
    archive.close()
    held = "live/AAPL/Trade/2024-01-15~alpaca~equity.jsonl"
    add_hold(archive_root, "case-1", reason="litigation", paths=[held])
    archive = Archive.open(archive_root)
    w = archive.writer("alpaca")
    _write(w, 8, first_seq=100, ts0=START + 2 * DAY)
    archive.close()
    assert (archive_root / held).exists()                              # held: never deleted
    assert not (archive_root / "live/AAPL/Trade/2024-01-16~alpaca~equity.jsonl").exists()
    kinds = [(e["kind"], e.get("path")) for e in quota_events(archive_root)]
    assert ("drop_skipped", held) in kinds
    assert ("dropped", "live/AAPL/Trade/2024-01-16~alpaca~equity.jsonl") in kinds
    skipped = next(e for e in quota_events(archive_root) if e["kind"] == "drop_skipped")
    assert "case-1" in skipped["error"]


def test_a_damaged_quota_limits_file_does_not_stop_catalog_syncs(tmp_path):
    from mdcsql.archive import Archive
    root = tmp_path / "a"
    Archive.init(root)
    (root / "_catalog" / "quota_limits.json").write_text("{not json")
    archive = Archive.open(root)
    with archive.catalog() as cat:
        cat.sync(archive.layout)            # must not raise
        cat.rebuild(archive.layout)
