"""Capacity forecasting (mdcsql.lifecycle.capacity, `mdcsql capacity`) on real simulator archives.

The archive is collected with the simulator on three data days; every manifest's ``created_at``
is then set to the morning after its data day (as a collector sealing overnight would), and the
catalog rebuilt from the tree. Expected figures are computed here from the manifests on disk,
with the least-squares slopes written out by hand.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from archive_contents import data_files
from conftest import PYTHON, python_env
from mdcsql.archive import Archive
from mdcsql.catalog import Catalog
from mdcsql.ingest.seal import MANIFEST_SUFFIX
from mdcsql.lifecycle.capacity import CapacityError, forecast, parse_as_of, parse_horizon
from test_cli import mdcsql

DAYS = [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)]


def manifests(root: Path) -> list[tuple[Path, dict]]:
    out = []
    for dirpath, _dirs, files in os.walk(root / "live"):
        for name in files:
            if name.endswith(MANIFEST_SUFFIX):
                p = Path(dirpath) / name
                out.append((p, json.loads(p.read_text())))
    return sorted(out)


def arrival(period: str) -> datetime:
    """When the test pretends a data day's files arrived: 06:00 UTC the next morning."""
    return datetime.combine(date.fromisoformat(period) + timedelta(days=1), datetime.min.time()) \
        + timedelta(hours=6)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("capacity") / "data"
    mdcsql("init", root)
    mdcsql("collect", root, "--symbols", "AAPL,MSFT", "--events", 2000, "--seed", 1, "--start", "2024-01-02")
    mdcsql("collect", root, "--symbols", "AAPL", "--events", 3000, "--seed", 2, "--start", "2024-01-03",
           "--views", "sim,sim-b")
    mdcsql("collect", root, "--symbols", "AAPL,MSFT,SPY", "--events", 4000, "--seed", 3, "--start", "2024-01-04")
    for path, m in manifests(root):
        m["created_at"] = arrival(m["period"]).isoformat() + "Z"
        path.write_text(json.dumps(m))
    Archive.open(root).rebuild_catalog()
    return root


@pytest.fixture
def archive(built, tmp_path) -> Path:
    """A private copy, for tests that change the settings."""
    root = tmp_path / "data"
    shutil.copytree(built, root, symlinks=True)
    return root


def configure(root: Path, storage: dict) -> None:
    """Change the archive's settings as an operator would (read by every forecast)."""
    path = root / "_catalog" / "config.json"
    doc = json.loads(path.read_text())
    doc.setdefault("Storage", {}).update(storage)
    path.write_text(json.dumps(doc))


def added_by_day(root: Path, *, clock) -> dict[date, dict]:
    out: dict[date, dict] = {}
    for _p, m in manifests(root):
        d = out.setdefault(clock(m), {"bytes": 0, "files": 0, "events": 0})
        d["bytes"] += m["size_bytes"]
        d["files"] += 1
        d["events"] += m["event_count"]
    return out


def by_arrival(m) -> date:
    return arrival(m["period"]).date()


def by_period(m) -> date:
    return date.fromisoformat(m["period"])


# ------------------------------------------------------------------ figures

def test_usage_growth_and_projection_match_the_manifests(built):
    ms = [m for _p, m in manifests(built)]
    add = added_by_day(built, clock=by_arrival)
    a, b, c = (add[d + timedelta(days=1)]["bytes"] for d in DAYS)
    assert len(add) == 3 and a and b and c

    fc = forecast(built, as_of="2024-01-05", horizon_days=90)
    assert fc.forecast_date == "2024-01-05T23:59:59.999999Z"
    assert fc.current_usage_bytes == sum(m["size_bytes"] for m in ms) == a + b + c
    assert fc.current_files == len(ms)
    assert fc.current_events == sum(m["event_count"] for m in ms)
    # cumulative usage at midnights Jan 3, 4, 5 and at the end of Jan 5: 0, a, a+b, a+b+c at x = 0..3
    # slope = Σ(x - 1.5)·y / Σ(x - 1.5)² = (1.5a + 2b + 1.5c) / 5
    growth = (1.5 * a + 2 * b + 1.5 * c) / 5
    assert fc.growth_rate_per_day == pytest.approx(growth, rel=1e-6)
    assert fc.projected_usage_bytes == pytest.approx(a + b + c + 90 * growth, rel=1e-6)
    assert fc.history_days == pytest.approx(3, abs=1e-6)
    files = [add[d + timedelta(days=1)]["files"] for d in DAYS]
    assert fc.growth_files_per_day == pytest.approx((1.5 * files[0] + 2 * files[1] + 1.5 * files[2]) / 5)

    by_source = {}
    for m in ms:
        by_source[m["source"]] = by_source.get(m["source"], 0) + m["size_bytes"]
    assert fc.breakdown_by_source == by_source and set(by_source) == {"sim", "sim-b"}
    # sim-b arrived only on Jan 4: its window starts that midnight; points 0 and ~2 days
    sim_b = next(r for r in fc.usage["by_source"] if r["source"] == "sim-b")
    assert sim_b["growth_bytes_per_day"] == pytest.approx(by_source["sim-b"] / 2, rel=1e-6)
    assert {r["tier"]: r["bytes"] for r in fc.usage["by_tier"]} == {"hot": a + b + c}
    by_type = {}
    for m in ms:
        by_type[m["type"]] = by_type.get(m["type"], 0) + m["event_count"]
    assert {r["type"]: r["events"] for r in fc.usage["by_type"]} == by_type
    assert {r["symbol"] for r in fc.usage["by_symbol"]} == {"AAPL", "MSFT", "SPY"}
    assert fc.limits == [] and fc.alerts == [] and fc.estimated_full_date is None
    assert any("3.0 day(s)" in n for n in fc.notes)           # under a week of history


def test_window_limits_the_fit_to_recent_days(built):
    add = added_by_day(built, clock=by_arrival)
    c = add[date(2024, 1, 5)]["bytes"]
    fc = forecast(built, as_of="2024-01-05", window_days=1)
    # one day: usage a+b at Jan 5 00:00 and a+b+c at its end -> c per day
    assert fc.growth_rate_per_day == pytest.approx(c, rel=1e-6)
    assert fc.current_usage_bytes == sum(v["bytes"] for v in add.values())


def test_as_of_counts_only_files_created_by_then(built):
    add = added_by_day(built, clock=by_arrival)
    a, b = add[date(2024, 1, 3)]["bytes"], add[date(2024, 1, 4)]["bytes"]
    fc = forecast(built, as_of="2024-01-04")
    assert fc.current_usage_bytes == a + b
    assert fc.growth_rate_per_day == pytest.approx((a + b) / 2, rel=1e-6)   # points 0, a, a+b at 0, 1, 2
    # 06:00 arrivals: 05:59:59 does not see that morning's files, 06:00 (inclusive) does
    assert forecast(built, as_of="2024-01-04T05:59:59Z").current_usage_bytes == a
    assert forecast(built, as_of="2024-01-04T06:00:00Z").current_usage_bytes == a + b
    assert forecast(built, as_of="2024-01-04T08:00:00+02:00").current_usage_bytes == a + b
    assert forecast(built, as_of=date(2024, 1, 2)).current_usage_bytes == 0
    empty = forecast(built, as_of="2024-01-02")
    assert (empty.current_files, empty.growth_rate_per_day, empty.breakdown_by_source) == (0, 0, {})
    # reproducible: same as-of, same figures
    assert forecast(built, as_of="2024-01-04").to_dict() == fc.to_dict()


def test_period_basis_uses_the_data_days(built):
    add = added_by_day(built, clock=by_period)
    a, b, c = (add[d]["bytes"] for d in DAYS)
    fc = forecast(built, as_of="2024-01-04", basis="period")
    assert fc.current_usage_bytes == a + b + c                   # created basis would see a + b only
    assert fc.growth_rate_per_day == pytest.approx((1.5 * a + 2 * b + 1.5 * c) / 5, rel=1e-6)
    assert fc.basis == "period"


def test_a_catalog_can_be_passed_instead_of_a_root(built):
    with Catalog.open(built, read_only=True) as cat:
        direct = forecast(cat, as_of="2024-01-05")
    assert direct.to_dict() == forecast(built, as_of="2024-01-05").to_dict()


def test_an_open_hot_file_counts_from_its_mtime(archive):
    a = Archive.open(archive)
    w = a.writer("alpaca")
    w.append_many([{"type": "Trade", "symbol": "IBM", "source": "alpaca", "ts": "2024-01-06T15:00:00Z", "seq": i,
                    "price": "150.00", "size": 1, "side": "buy"} for i in range(1, 51)])
    w.flush()
    a.close(seal=False)
    [hot] = [p for p in (archive / "live").rglob("*.jsonl")]         # no manifest: no created_at
    fc = forecast(archive)
    assert fc.breakdown_by_source["alpaca"] == hot.stat().st_size
    assert fc.uncounted_files == 1 and any("no event count" in n for n in fc.notes)
    assert "alpaca" not in forecast(archive, as_of="2024-01-05").breakdown_by_source


# ------------------------------------------------------------------ limits and alerts

def test_full_date_against_the_global_quota(archive):
    base = forecast(archive, as_of="2024-01-05")
    g = base.growth_rate_per_day
    quota = int(base.current_usage_bytes + 10.5 * g)       # reached 10.5 days after as-of
    configure(archive, {"Quotas": {"Global": {"MaxBytes": quota, "Enforcement": "SoftLimit"}}})
    fc = forecast(archive, as_of="2024-01-05", horizon_days=30, threshold_pct=80)
    [lim] = fc.limits
    assert (lim.limit, lim.scope, lim.metric, lim.enforcement) == \
        ("Storage.Quotas.Global.MaxBytes", "total", "bytes", "SoftLimit")
    assert lim.limit_value == quota and lim.current == base.current_usage_bytes
    assert lim.days_left == pytest.approx((quota - base.current_usage_bytes) / g, rel=1e-6)
    assert lim.days_left == pytest.approx(10.5, abs=1e-3)
    assert fc.estimated_full_date.startswith("2024-01-16T11:59")     # Jan 5 23:59:59.999999 + 10.5 days
    assert fc.first_full_limit == "Storage.Quotas.Global.MaxBytes"
    assert lim.current_pct == pytest.approx(100 * base.current_usage_bytes / quota)
    assert lim.projected_pct > 100
    [alert] = fc.alerts
    assert alert.level == ("current" if lim.current_pct >= 80 else "projected")
    assert alert.limit == "Storage.Quotas.Global.MaxBytes" and "2024-01-16" in alert.message
    # GetCapacityAlerts: a threshold above every projection gives none
    assert fc.capacity_alerts(lim.projected_pct + 1) == []


def test_every_kind_of_limit_and_its_alert(archive):
    base = forecast(archive, as_of="2024-01-05")
    src = base.breakdown_by_source
    aapl = next(r for r in base.usage["by_symbol"] if r["symbol"] == "AAPL")
    configure(archive, {
        "MaxTotalMegabytes": 1024,                                      # 1 GiB: far away
        "Quotas": {"PerSource": {"sim-b": {"MaxBytes": src["sim-b"] // 2, "Enforcement": "DropOldest"},
                                 "sim": {"MaxFiles": 1000}},
                   "PerSymbol": {"default": {"MaxBytes": 10 * 2 ** 20}, "AAPL": {"MaxBytes": aapl["bytes"] * 2}},
                   "PerEventType": {"Trade": {"MaxEventsPerDay": 100}}},
        "Tiering": {"Enabled": True, "Tiers": [{"Name": "hot", "MaxSizeGb": 0.001}, "warm", "cold", "archive"]},
    })
    fc = forecast(archive, as_of="2024-01-05", horizon_days=90, threshold_pct=80)
    rows = {(lim.limit, lim.key): lim for lim in fc.limits}
    assert set(rows) == {
        ("Storage.Quotas.PerSource.sim-b.MaxBytes", "sim-b"), ("Storage.Quotas.PerSource.sim.MaxFiles", "sim"),
        ("Storage.Quotas.PerSymbol.AAPL.MaxBytes", "AAPL"), ("Storage.Quotas.PerSymbol.default.MaxBytes", "MSFT"),
        ("Storage.Quotas.PerSymbol.default.MaxBytes", "SPY"), ("Storage.Quotas.PerEventType.Trade.MaxEventsPerDay", "Trade"),
        ("Storage.MaxTotalMegabytes", None), ("Storage.Tiering.Tiers[0].MaxSizeGb", "hot")}
    over = rows[("Storage.Quotas.PerSource.sim-b.MaxBytes", "sim-b")]
    assert over.current == src["sim-b"] and over.days_left == 0 and over.full_date == fc.forecast_date
    assert rows[("Storage.MaxTotalMegabytes", None)].limit_value == 2 ** 30
    hot = rows[("Storage.Tiering.Tiers[0].MaxSizeGb", "hot")]
    assert hot.limit_value == pytest.approx(0.001 * 2 ** 30) and hot.current == base.current_usage_bytes
    files = rows[("Storage.Quotas.PerSource.sim.MaxFiles", "sim")]
    assert files.metric == "files" and files.current == sum(
        1 for _p, m in manifests(archive) if m["source"] == "sim")
    trade = rows[("Storage.Quotas.PerEventType.Trade.MaxEventsPerDay", "Trade")]
    t = {}
    for _p, m in manifests(archive):
        if m["type"] == "Trade":
            t[by_arrival(m)] = t.get(by_arrival(m), 0) + m["event_count"]
    ta, tb, tc = (t[d + timedelta(days=1)] for d in DAYS)
    assert trade.metric == "events_per_day" and trade.days_left is None
    assert trade.current == pytest.approx((1.5 * ta + 2 * tb + 1.5 * tc) / 5, rel=1e-6)    # fitted Trade events/day
    assert fc.estimated_full_date == fc.forecast_date             # sim-b is over its quota already
    levels = {(a.limit, a.key): a.level for a in fc.alerts}
    assert levels[("Storage.Quotas.PerSource.sim-b.MaxBytes", "sim-b")] == "exceeded"
    assert levels[("Storage.Quotas.PerEventType.Trade.MaxEventsPerDay", "Trade")] == "exceeded"
    assert ("Storage.MaxTotalMegabytes", None) not in levels
    assert ("Storage.Quotas.PerSymbol.default.MaxBytes", "MSFT") not in levels
    expected_hot = "current" if hot.current_pct >= 80 else "projected" if hot.projected_pct >= 80 else None
    assert levels.get(("Storage.Tiering.Tiers[0].MaxSizeGb", "hot")) == expected_hot
    assert fc.alerts[0].level == "exceeded"                      # most urgent first


def test_filesystem_free_space_is_a_limit_of_now(built):
    fc = forecast(built)
    [disk] = [lim for lim in fc.limits if lim.scope == "filesystem"]
    du = shutil.disk_usage(built)
    assert disk.limit_value == pytest.approx(du.used + du.free, rel=0.01)
    assert disk.current == pytest.approx(du.used, rel=0.05)
    assert fc.growth_rate_per_day == 0                          # nothing arrived in the last 28 days
    assert disk.days_left is None
    assert all(lim.scope != "filesystem" for lim in forecast(built, as_of="2024-01-05").limits)
    assert any(lim.scope == "filesystem" for lim in forecast(built, as_of="2024-01-05", include_disk=True).limits)


def test_a_tier_on_another_filesystem_gets_its_own_row(archive, tmp_path):
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(archive).st_dev:
        pytest.skip("no second filesystem (/dev/shm) on this machine")
    elsewhere = Path(tempfile.mkdtemp(dir=shm, prefix="mdcsql-capacity-"))
    try:
        configure(archive, {"Tiering": {"Enabled": True, "Tiers": ["hot", {"Name": "warm", "Path": str(elsewhere)},
                                                                   "cold", "archive"]}})
        disks = {lim.key: lim for lim in forecast(archive).limits if lim.scope == "filesystem"}
        assert len(disks) == 2 and "/dev/shm" in disks
        du = shutil.disk_usage(shm)
        assert disks["/dev/shm"].limit_value == pytest.approx(du.used + du.free, rel=0.01)
    finally:
        shutil.rmtree(elsewhere)


# ------------------------------------------------------------------ the command

def test_cli_json_has_the_storage_forecast_shape(archive):
    configure(archive, {"Quotas": {"Global": {"MaxBytes": 10 ** 6}}})
    out = json.loads(mdcsql("capacity", archive, "--as-of", "2024-01-05", "--horizon", "12w", "--json").stdout)
    for key in ("forecast_date", "current_usage_bytes", "projected_usage_bytes", "growth_rate_per_day",
                "estimated_full_date", "breakdown_by_source", "limits", "alerts", "usage", "horizon_days"):
        assert key in out, key
    assert out["horizon_days"] == 84 and out["forecast_date"] == "2024-01-05T23:59:59.999999Z"
    lib = forecast(archive, as_of="2024-01-05", horizon_days=84).to_dict()
    assert out == json.loads(json.dumps(lib))
    assert out["limits"][0]["limit"] == "Storage.Quotas.Global.MaxBytes"
    assert set(out["limits"][0]) >= {"limit", "scope", "key", "metric", "limit_value", "current", "current_pct",
                                     "growth_per_day", "projected", "projected_pct", "days_left", "full_date"}


def test_cli_table_and_fail_on_alert(archive):
    configure(archive, {"Quotas": {"PerSource": {"sim": {"MaxBytes": 1000}}}})
    proc = mdcsql("capacity", archive, "--as-of", "2024-01-05")
    assert "capacity forecast as of 2024-01-05" in proc.stdout
    assert "Storage.Quotas.PerSource.sim.MaxBytes" in proc.stdout and "ALERT exceeded" in proc.stdout
    failed = mdcsql("capacity", archive, "--as-of", "2024-01-05", "--fail-on-alert", check=False)
    assert failed.returncode == 1
    assert mdcsql("capacity", archive, "--as-of", "2024-01-02", "--fail-on-alert").returncode == 0


def test_capacity_runs_beside_a_collector(tmp_path):
    """Invariant 4: a forecast is a reader; it works while a collector writes, and does not stop it."""
    root = tmp_path / "data"
    proc = subprocess.Popen([PYTHON, "-m", "mdcsql", "collect", str(root), "--duration", "8s", "--rate", "3000",
                             "--start", "2024-01-15", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=python_env())
    try:
        deadline = time.monotonic() + 60
        while not list((root / "live").rglob("*.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.2)
        while True:     # the collector's catalog syncer records a new file within moments
            out = json.loads(mdcsql("capacity", root, "--json").stdout)
            if out["current_files"] >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert out["current_files"] >= 1 and out["current_usage_bytes"] > 0
    finally:
        stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert json.loads(stdout)["events"] > 0
    after = forecast(root)
    assert after.current_usage_bytes == sum(p.stat().st_size for p in data_files(root))


@pytest.mark.parametrize("args, needle", [
    (["--as-of", "yesterday"], "--as-of"),
    (["--as-of", "2024-02-30"], "--as-of"),
    (["--horizon", "90x"], "--horizon"),
    (["--horizon", "0d"], "--horizon"),
    (["--threshold-pct", "-5"], "--threshold-pct"),
    (["--window", "0"], "--window"),
    (["--basis", "mtime"], "--basis"),
])
def test_cli_bad_values_are_usage_errors(built, args, needle):
    proc = mdcsql("capacity", built, *args, check=False)
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr


def test_cli_not_an_archive(tmp_path):
    proc = mdcsql("capacity", tmp_path, check=False)
    assert proc.returncode == 1 and "not an mdcsql archive" in proc.stderr and "Traceback" not in proc.stderr


def test_library_arguments_are_checked(built):
    assert parse_horizon("90d") == 90 and parse_horizon("2w") == 14 and parse_horizon("1y") == 365
    assert parse_horizon("48h") == 2 and parse_horizon(30) == 30
    assert parse_as_of("2024-01-15") == datetime(2024, 1, 15, 23, 59, 59, 999999)
    assert parse_as_of("2024-01-15T18:00:00+01:00") == datetime(2024, 1, 15, 17)
    for bad in ({"as_of": "soon"}, {"horizon_days": "-3d"}, {"horizon_days": 0}, {"threshold_pct": 0},
                {"threshold_pct": float("nan")}, {"window_days": 0}, {"basis": "mtime"}):
        with pytest.raises(CapacityError):
            forecast(built, **bad)
