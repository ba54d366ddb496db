"""Policy changes reach a running collector: quotas and integrity settings reloaded from
_catalog/config.json and _catalog/quota_limits.json within about a second, without a restart."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from archive_contents import stored_events
from conftest import PYTHON, python_env
from mdcsql.archive import Archive
from mdcsql.ingest.integrity import ALERTS_FILE, OutOfOrderError, read_jsonl
from mdcsql.lifecycle.quotas import QuotaExceededError, quota_events

START = 1_705_276_800 * 10**9   # 2024-01-15T00:00:00Z
DAY = 86_400 * 10**9


def trade(seq, ts, symbol="AAPL", source="alpaca"):
    return {"type": "Trade", "symbol": symbol, "source": source, "ts": ts, "seq": seq, "price": "187.10",
            "size": "100", "side": "buy"}


def _config_path(root: Path) -> Path:
    return root / "_catalog" / "config.json"


def _set_storage(root: Path, **sections) -> None:
    """Rewrite the archive's config.json with these Storage sections (None removes one), atomically."""
    path = _config_path(root)
    doc = json.loads(path.read_text())
    storage = doc.setdefault("Storage", {})
    for key, value in sections.items():
        if value is None:
            storage.pop(key, None)
        else:
            storage[key] = value
    _write_atomic(path, json.dumps(doc))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _wait_reloads(archive: Archive, n: int, timeout: float = 5.0) -> None:
    """Wait until the running collector's reloader applied `n` changes (it looks once per second)."""
    deadline = time.monotonic() + timeout
    while archive._reloader.reloads < n:
        assert time.monotonic() < deadline, "the running collector did not pick up the change"
        time.sleep(0.05)


def _alerts(root: Path, kind: str) -> list[dict]:
    return [a for a in read_jsonl(root / "_catalog" / ALERTS_FILE) if a["kind"] == kind]


def _hot_bytes(root: Path, symbol: str) -> int:
    return sum(p.stat().st_size for p in (root / "live").rglob("*.jsonl") if f"/{symbol}/" in p.as_posix()
               or p.name.startswith(symbol))


def test_hard_limit_added_at_runtime_refuses_that_symbol_with_exact_usage(archive_root):
    """Started with no limits at all (no write hook): a HardLimit added to config.json refuses the
    next AAPL event that does not fit, counting the sealed file of an earlier run (catalog) and
    this process's open hot file (committed and pending bytes) to the byte; MSFT goes on."""
    archive = Archive.init(archive_root)
    with archive:                                       # an earlier run: one sealed AAPL file
        w = archive.writer("alpaca")
        for i in range(40):
            w.append(trade(i + 1, START - DAY + i * 1000))
    sealed_bytes = sum(p.stat().st_size for p in (archive_root / "live").rglob("*.jsonl.gz"))
    assert sealed_bytes > 0

    _set_storage(archive_root, Sync={"IntervalMs": 10_000})  # events stay pending until a flush
    archive = Archive.open(archive_root)
    w = archive.writer("alpaca")
    assert archive.ingestor().limits is None
    for i in range(30):
        w.append(trade(1000 + i, START + i * 1000))
        w.append(trade(1000 + i, START + i * 1000, symbol="MSFT"))
    w.flush()
    archive.sync_catalog()                  # the catalog lists our open hot files: taken out, counted by us
    for i in range(30, 35):                 # pending (not yet committed) when the limit arrives
        w.append(trade(1000 + i, START + i * 1000))
    line = len(json.dumps(trade(1, START), separators=(",", ":")))    # about one event's bytes
    cap = sealed_bytes + _hot_bytes(archive_root, "AAPL") + 5 * 200 + 10 * line
    _set_storage(archive_root, Quotas={"PerSymbol": {"AAPL": {"MaxBytes": cap, "Enforcement": "HardLimit"}}})
    _wait_reloads(archive, 1)
    assert archive.ingestor().limits is not None and archive.settings.storage.quotas is not None

    accepted = 0
    with pytest.raises(QuotaExceededError) as err:
        for i in range(35, 200):
            w.append(trade(1000 + i, START + i * 1000))
            accepted += 1
    assert 0 < accepted < 165
    w.flush()
    aapl_bytes = sealed_bytes + _hot_bytes(archive_root, "AAPL")
    assert err.value.scope == "PerSymbol.AAPL" and err.value.limit == cap
    assert err.value.usage == aapl_bytes              # catalog + this process, to the byte
    for i in range(30, 100):                          # other symbols keep writing
        w.append(trade(1000 + i, START + i * 1000, symbol="MSFT"))
    archive.close()
    events = stored_events(archive_root)
    assert sum(e["symbol"] == "MSFT" for e in events) == 100
    assert sum(e["symbol"] == "AAPL" for e in events) == 40 + 35 + accepted
    assert [e["kind"] for e in quota_events(archive_root)] == ["refused"]


def test_limits_removed_at_runtime_let_writes_through_again(archive_root):
    cfg = archive_root.parent / "cfg.json"
    cfg.write_text(json.dumps({"Storage": {"Quotas": {
        "PerSymbol": {"AAPL": {"MaxBytes": 2000, "Enforcement": "HardLimit"}}}}}))
    archive = Archive.init(archive_root, config=cfg)
    w = archive.writer("alpaca")
    with pytest.raises(QuotaExceededError):
        for i in range(100):
            w.append(trade(i + 1, START + i * 1000))
    stored = i
    _set_storage(archive_root, Quotas=None)
    _wait_reloads(archive, 1)
    assert archive.ingestor().limits is None            # nothing left to check: no hook at all
    for j in range(stored, 100):
        w.append(trade(j + 1, START + j * 1000))
    # and back: a limit again, above what is stored now, counts everything written so far
    w.flush()
    _set_storage(archive_root, Quotas={"PerSymbol": {"AAPL": {"MaxBytes": _hot_bytes(archive_root, "AAPL") + 1,
                                                               "Enforcement": "HardLimit"}}})
    _wait_reloads(archive, 2)
    with pytest.raises(QuotaExceededError) as err:
        w.append(trade(101, START + 101 * 1000))
    assert err.value.usage == _hot_bytes(archive_root, "AAPL")
    archive.close()
    assert len(stored_events(archive_root)) == 100


def test_enforce_monotonicity_switched_on_at_runtime(archive_root):
    archive = Archive.init(archive_root)
    w = archive.writer("alpaca")
    w.append(trade(1, START + 5000))
    w.append(trade(2, START + 1000))                    # backwards: accepted, nothing enforces order yet
    w.append(trade(9, START + 6000))                    # a seq gap of 6: no check yet either
    _set_storage(archive_root, Integrity={"EnforceMonotonicity": True, "MaxSequenceGap": 2})
    _wait_reloads(archive, 1)
    assert not _alerts(archive_root, "sequence_gap")
    w.append(trade(10, START + 9000))
    with pytest.raises(OutOfOrderError, match="EnforceMonotonicity"):
        w.append(trade(4, START + 8000))
    w.append(trade(11, START + 9000))                   # equal ts is fine
    w.append(trade(20, START + 9500))                   # 8 missing > MaxSequenceGap 2: an alert
    gaps = _alerts(archive_root, "sequence_gap")
    assert [(g["first_missing"], g["last_missing"]) for g in gaps] == [(12, 19)]
    # ... and off again
    _set_storage(archive_root, Integrity=None)
    _wait_reloads(archive, 2)
    w.append(trade(30, START + 2000))
    archive.close()
    assert sorted(e["seq"] for e in stored_events(archive_root)) == [1, 2, 9, 10, 11, 20, 30]
    assert len(_alerts(archive_root, "sequence_gap")) == 1
    records = list((archive_root / "_quarantine").rglob("*.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["seq"] == 4


def test_invalid_config_is_not_applied_and_alerts_once(archive_root, caplog):
    cfg = archive_root.parent / "cfg.json"
    cfg.write_text(json.dumps({"Storage": {"Quotas": {
        "PerSymbol": {"AAPL": {"MaxBytes": 2000, "Enforcement": "HardLimit"}}}}}))
    archive = Archive.init(archive_root, config=cfg)
    w = archive.writer("alpaca")
    before = archive.settings.to_dict()
    _set_storage(archive_root, Quotas={"PerSymbol": {"AAPL": {"MaxBytes": -5, "Enforcement": "HardLimit"}}})
    deadline = time.monotonic() + 5
    while not _alerts(archive_root, "config_rejected"):
        assert time.monotonic() < deadline, "no alert for the rejected config"
        time.sleep(0.05)
    time.sleep(2.2)                                      # two more looks at the unchanged file
    alerts = _alerts(archive_root, "config_rejected")
    assert len(alerts) == 1
    assert alerts[0]["key"] == "Storage.Quotas.PerSymbol.AAPL.MaxBytes"
    assert "out of range" in alerts[0]["error"] and alerts[0]["file"] == "_catalog/config.json"
    assert archive._reloader.reloads == 0 and archive.settings.to_dict() == before
    with pytest.raises(QuotaExceededError):             # the old limit still holds
        for i in range(100):
            w.append(trade(i + 1, START + i * 1000))
    # not JSON at all: another alert, still running on the old settings
    _write_atomic(_config_path(archive_root), '{"Storage": {"Quotas": ')
    deadline = time.monotonic() + 5
    while len(_alerts(archive_root, "config_rejected")) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "not valid JSON" in _alerts(archive_root, "config_rejected")[1]["error"]
    # a valid file again is applied
    _write_atomic(_config_path(archive_root), json.dumps({"Storage": {}}))
    _wait_reloads(archive, 1)
    w.append(trade(500, START + 500 * 1000))
    archive.close()
    with Archive.open(archive_root).catalog(read_only=True) as cat:
        kinds = [r[0] for r in cat.execute("SELECT kind FROM integrity_alerts").rows]
    assert kinds.count("config_rejected") == 2


def test_applied_dynamic_limits_reach_a_running_collector(archive_root):
    cfg = archive_root.parent / "cfg.json"
    cfg.write_text(json.dumps({"Storage": {"Quotas": {
        "Dynamic": {"Enabled": True},
        "PerSymbol": {"AAPL": {"MaxBytes": 10**9, "Enforcement": "HardLimit"}}}}}))
    archive = Archive.init(archive_root, config=cfg)
    w = archive.writer("alpaca")
    for i in range(20):
        w.append(trade(i + 1, START + i * 1000))
    w.flush()
    limits = archive_root / "_catalog" / "quota_limits.json"
    _write_atomic(limits, json.dumps({"limits": {"PerSymbol.AAPL": {"max_bytes": _hot_bytes(archive_root, "AAPL")}}}))
    _wait_reloads(archive, 1)
    with pytest.raises(QuotaExceededError) as err:
        w.append(trade(21, START + 21 * 1000))
    assert err.value.limit == _hot_bytes(archive_root, "AAPL")
    _write_atomic(limits, "not json")                  # a broken file: alert, the dynamic limit stays
    deadline = time.monotonic() + 5
    while not _alerts(archive_root, "config_rejected"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert _alerts(archive_root, "config_rejected")[0]["file"] == "_catalog/quota_limits.json"
    with pytest.raises(QuotaExceededError):
        w.append(trade(21, START + 21 * 1000))
    limits.unlink()                          # (a broken file also stops catalog syncs: quota_mirror)
    archive.close()


def test_reload_settings_for_long_lived_processes(archive_root):
    archive = Archive.init(archive_root)
    assert archive.reload_settings() is False
    _set_storage(archive_root, Integrity={"MaxSequenceGap": 5})
    assert archive.reload_settings() is True
    assert archive.settings.storage.integrity.max_sequence_gap == 5
    _write_atomic(_config_path(archive_root), "{")
    from mdcsql.errors import ConfigError
    with pytest.raises(ConfigError, match="not valid JSON"):
        archive.reload_settings()
    assert archive.settings.storage.integrity.max_sequence_gap == 5


def test_running_mdcsql_collect_picks_up_a_hard_limit(archive_root):
    """A real `mdcsql collect` process: a HardLimit for AAPL added while it runs refuses AAPL's
    later events (the summary and the exit status say so) while MSFT keeps being collected."""
    subprocess.run([PYTHON, "-m", "mdcsql", "init", str(archive_root)], check=True, env=python_env(),
                   capture_output=True)
    proc = subprocess.Popen([PYTHON, "-m", "mdcsql", "collect", str(archive_root), "--source", "sim",
                             "--symbols", "AAPL,MSFT", "--duration", "7s", "--rate", "2000",
                             "--start", "2024-01-02", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=python_env())
    deadline = time.monotonic() + 30
    while not list((archive_root / "live").rglob("*.jsonl")):    # collecting
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else ""
        time.sleep(0.05)
    time.sleep(1.0)
    _set_storage(archive_root, Quotas={"PerSymbol": {"AAPL": {"MaxBytes": 1, "Enforcement": "HardLimit"}}})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    summary = json.loads(out)
    assert summary["refused"] > 0 and list(summary["refusals"]) == ["PerSymbol.AAPL"]
    assert summary["failed"] == []                       # the source itself did not fail
    refused = [e for e in quota_events(archive_root) if e["kind"] == "refused"]
    assert refused and refused[0]["scope"] == "PerSymbol.AAPL"
    events = stored_events(archive_root)
    assert len(events) == summary["events"]
    first = min(e["ts"] for e in events)
    last = {s: max(e["ts"] for e in events if e["symbol"] == s) for s in ("AAPL", "MSFT")}
    # AAPL stopped about a second after the change (2-3 s into the 7 s run); MSFT went on to the end
    assert last["AAPL"] - first < 0.7 * (last["MSFT"] - first)


def quote(seq, ts, symbol="AAPL", source="alpaca"):
    return {"type": "BboQuote", "symbol": symbol, "source": source, "ts": ts, "seq": seq,
            "bid_price": "187.10", "bid_size": "100", "ask_price": "187.12", "ask_size": "200"}


def test_drop_oldest_added_at_runtime_deletes_catalog_and_own_sealed_files(archive_root):
    """DropOldest arriving at runtime deletes the oldest sealed files first: one from an earlier
    run (known from the catalog), then one this collector sealed itself."""
    archive = Archive.init(archive_root)
    with archive:
        w = archive.writer("alpaca")
        for i in range(50):
            w.append(quote(i + 1, START + i * 1000))                  # day 0: sealed, in the catalog
    archive = Archive.open(archive_root)
    w = archive.writer("alpaca")
    for i in range(50):
        w.append(quote(100 + i, START + DAY + i * 1000))              # day 1: sealed by this process
    w.append(quote(200, START + 2 * DAY))                             # day 2 opens: day 1 is sealed
    w.flush()
    sealed = sorted((archive_root / "live").rglob("*.jsonl.gz"))
    assert len(sealed) == 2
    sizes = sum(p.stat().st_size for p in sealed)
    line = _hot_bytes(archive_root, "AAPL")
    cap = sizes + line * 31
    _set_storage(archive_root, Quotas={"PerSymbol": {"AAPL": {"MaxBytes": cap, "Enforcement": "DropOldest"}}})
    _wait_reloads(archive, 1)
    for i in range(1, 31 + (sizes // line) - 1):
        w.append(quote(200 + i, START + 2 * DAY + i * 1000))
    archive.close()
    dropped = [e["path"] for e in quota_events(archive_root) if e["kind"] == "dropped"]
    assert [Path(p).name for p in dropped] == [p.name for p in sealed]      # oldest first
    assert not any(p.exists() for p in sealed)
