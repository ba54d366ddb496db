"""Policy engine, tier migration (hot -> warm -> cold -> archive), retention: real archives,
real files, real kill -9.

The data set: 30 days x 3 symbols x (Trade, BboQuote, Heartbeat), written through the archive's
own write path, one sealed file per symbol, type and day.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import PYTHON, python_env
from mdcsql.archive import Archive
from mdcsql.layout import CATALOG_DIR, DAY_NS
from mdcsql.lifecycle.migrate import migrate, plan
from mdcsql.lifecycle.retention import apply_retention

DAY0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
T0 = int(DAY0.timestamp()) * 1_000_000_000
SYMBOLS = ("AAPL", "BRK/B")
POLICIES = {
    "Tiering": {"Enabled": True},
    "Policies": {
        "Trade": {"Classification": "Critical", "HotTierDays": 2, "WarmTierDays": 7, "ColdTierDays": 20,
                  "ArchiveTier": "perpetual"},
        "BboQuote": {"Classification": "Standard", "HotTierDays": 1, "WarmTierDays": 5, "ColdTierDays": 15},
        "Heartbeat": {"Classification": "Transient", "HotTierDays": 1, "WarmTierDays": 0, "ColdTierDays": 0},
    },
}
VIEW_CHECKS = {
    "trades": "SELECT count(*) AS n, sum(hash(ts, recv_ts, symbol, source, seq, price, size, side, venue)) AS h FROM trades",
    "bbo_quotes": "SELECT count(*) AS n, sum(hash(ts, symbol, seq, bid_price, bid_size, ask_price, ask_size)) AS h FROM bbo_quotes",
}


def _events(day: int, symbol: str, n: int = 40):
    base = T0 + day * DAY_NS + 14 * 3600 * 1_000_000_000
    for i in range(n):
        ts = base + i * 1_500_000_017
        seq = day * 1000 + i + 1
        yield {"type": "Trade", "symbol": symbol, "ts": ts, "seq": seq, "price": f"{100 + day}.{i:02d}25",
               "size": str(1 + i % 7), "side": "buy" if i % 2 else "sell", "venue": "XNAS"}
        yield {"type": "BboQuote", "symbol": symbol, "ts": ts + 1, "seq": seq, "bid_price": f"{99 + day}.5",
               "bid_size": "3", "ask_price": f"{100 + day}.0001", "ask_size": "4"}
    yield {"type": "Heartbeat", "symbol": symbol, "ts": base, "seq": day + 1, "status": "ok"}


def build(root: Path, days: int = 30, extra: dict | None = None) -> Archive:
    root.mkdir(parents=True, exist_ok=True)
    cfg = root.parent / f"{root.name}-config.json"
    cfg.write_text(json.dumps({"Storage": {**POLICIES, **(extra or {})}}))
    archive = Archive.init(root, config=cfg)
    writer = archive.writer("sim")
    for day in range(days):
        for symbol in SYMBOLS:
            writer.append_many(list(_events(day, symbol)))
    archive.close()
    archive = Archive.open(root)
    archive.sync_catalog(timeout=60)
    return archive


def view_checks(archive) -> dict:
    with archive.catalog(read_only=True, timeout=60) as cat:
        return {v: cat.execute(q).rows[0] for v, q in VIEW_CHECKS.items()}


def at(day: float) -> datetime:
    return datetime.fromtimestamp((T0 + day * DAY_NS) / 1e9, tz=timezone.utc)


@pytest.fixture(scope="module")
def thirty(tmp_path_factory) -> Path:
    """The 30-day archive, built once; tests copy it."""
    root = tmp_path_factory.mktemp("lc") / "a"
    build(root)
    return root


@pytest.fixture(scope="module")
def week(tmp_path_factory) -> Path:
    """A 6-day archive for the migration and crash tests (same policies)."""
    root = tmp_path_factory.mktemp("lc6") / "a"
    build(root, days=6)
    return root


def copy_of(thirty: Path, tmp_path: Path) -> Archive:
    import shutil
    dst = tmp_path / "a"
    shutil.copytree(thirty, dst, symlinks=True)
    return Archive.open(dst)


def test_explain_gives_every_file_a_decision_and_a_reason(thirty, tmp_path):
    archive = copy_of(thirty, tmp_path)
    p = plan(archive, as_of=at(31))
    with archive.catalog(read_only=True) as cat:
        paths = {r[0] for r in cat.execute("SELECT path FROM files").rows}
    assert {d.path for d in p.decisions} == paths and len(paths) == 30 * len(SYMBOLS) * 3
    assert all(d.reason for d in p.decisions)
    by = {(d.type, d.action, d.target_tier) for d in p.decisions}
    # Trade (Critical, 2/7/20 days, perpetual): the oldest consolidate into the archive, the
    # youngest stay hot; never deleted
    assert ("Trade", "migrate", "archive") in by and ("Trade", "migrate", "cold") in by
    assert ("Trade", "migrate", "warm") in by and ("Trade", "keep", None) in by
    assert not any(d.type == "Trade" and d.action == "delete" for d in p.decisions)
    # BboQuote (Standard, no archive): past 15 days -> deleted, with the reason
    deleted = [d for d in p.decisions if d.action == "delete"]
    assert {d.type for d in deleted} == {"BboQuote", "Heartbeat"}
    assert all("no archive tier" in d.reason for d in deleted if d.type == "BboQuote")
    # Heartbeat (Transient, 1 day, no warm/cold): all are over a day old at day 31
    hb = [d for d in p.decisions if d.type == "Heartbeat"]
    assert sum(d.action == "delete" for d in hb) == len(SYMBOLS) * 30
    # nothing changed on disk
    assert plan(archive, as_of=at(31)).steps and view_checks(archive) == view_checks(Archive.open(thirty))


def test_explain_cli_json_and_as_of(thirty, tmp_path):
    archive = copy_of(thirty, tmp_path)
    out = subprocess.run([PYTHON, "-m", "mdcsql", "policy", "explain", str(archive.root), "--as-of",
                          "2024-01-05", "--json"], capture_output=True, text=True, env=python_env())
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["as_of"].startswith("2024-01-05")
    row = next(d for d in doc["decisions"] if d["path"] == "live/AAPL/Trade/2024-01-01~sim~equity.jsonl.gz")
    assert row["action"] == "migrate" and row["target_tier"] == "warm" and "hot limit 2 days" in row["reason"]
    bad = subprocess.run([PYTHON, "-m", "mdcsql", "policy", "explain", str(archive.root), "--as-of", "yesterday"],
                         capture_output=True, text=True, env=python_env())
    assert bad.returncode != 0 and "--as-of" in bad.stderr


def test_migration_through_every_tier_keeps_every_view_identical(week, tmp_path):
    archive = copy_of(week, tmp_path)
    before = view_checks(archive)
    for day in (4, 8, 25, 40, 400):       # hot -> warm -> cold -> archive -> yearly file
        _, result = migrate(archive, as_of=at(day), parallel=2)
        assert result.steps_failed == 0, result.errors
        assert view_checks(archive) == before, f"views changed after migrating at day {day}"
    with archive.catalog(read_only=True) as cat:
        tiers = dict(cat.execute("SELECT tier, count(*) FROM files WHERE type = 'Trade' GROUP BY tier").rows)
        archived = cat.execute("SELECT path, partition FROM files WHERE tier = 'archive'").rows
        lineage = cat.execute("SELECT count(*), count(DISTINCT transition_id) FROM lineage").rows[0]
    assert tiers == {"archive": 2}         # one yearly file per symbol
    assert sorted(archived) == [(f"_archive/regulatory/live/Trade/{s}/2024~sim~equity.parquet", "Yearly")
                                for s in ("AAPL", "BRK%2FB")]
    assert lineage[0] > 0 and lineage[1] > 0
    # the catalog is derived: a rebuild from the tree gives the same files and lineage
    with archive.catalog() as cat:
        files_before = cat.execute("SELECT * EXCLUDE (indexed_at) FROM files ORDER BY path").rows
        lin_before = cat.execute("SELECT * FROM lineage ORDER BY seq, input_path, output_path").rows
        cat.rebuild(archive.layout)
        assert cat.execute("SELECT * EXCLUDE (indexed_at) FROM files ORDER BY path").rows == files_before
        assert cat.execute("SELECT * FROM lineage ORDER BY seq, input_path, output_path").rows == lin_before
    # an archive-tier file is typed Parquet that keeps ts to the ns and exact prices
    import pyarrow.parquet as pq
    t = pq.read_table(archive.root / archived[0][0])
    assert str(t.schema.field("ts").type) == "timestamp[ns, tz=UTC]" or "timestamp[ns" in str(t.schema.field("ts").type)
    with archive.catalog(read_only=True) as cat:
        assert cat.execute("SELECT price FROM trades WHERE symbol = 'AAPL' ORDER BY ts LIMIT 1").rows[0][0] \
            .normalize() == __import__("decimal").Decimal("100.0025")


def test_migration_is_idempotent_and_dry_run_changes_nothing(week, tmp_path):
    archive = copy_of(week, tmp_path)
    p, r = migrate(archive, as_of=at(12), dry_run=True)
    assert p.steps and r.steps_done == 0
    with archive.catalog(read_only=True) as cat:
        assert cat.execute("SELECT count(*) FROM files WHERE tier <> 'hot'").rows[0][0] == 0
    migrate(archive, as_of=at(12))
    again, r2 = migrate(archive, as_of=at(12))
    assert again.steps == [] and r2.steps_done == 0


@pytest.mark.parametrize("point", ["before_journal", "after_journal", "after_swap", "after_lineage",
                                   "mid_delete"])
def test_kill_9_mid_migration_then_rerun_keeps_every_event_exactly_once(week, tmp_path, point):
    archive = copy_of(week, tmp_path)
    before = view_checks(archive)
    env = {**python_env(), "MDCSQL_FAULT": point}
    proc = subprocess.run([PYTHON, "-m", "mdcsql", "tier", "migrate", str(archive.root), "--as-of", "2025-02-01"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == -9, (proc.returncode, proc.stderr[-2000:])
    rerun = subprocess.run([PYTHON, "-m", "mdcsql", "tier", "migrate", str(archive.root), "--as-of", "2025-02-01"],
                           capture_output=True, text=True, env=python_env(), timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    archive = Archive.open(archive.root)
    archive.sync_catalog(timeout=60)
    assert view_checks(archive) == before
    assert not list((archive.root / CATALOG_DIR / "transitions").glob("*.json"))
    assert not [p for p in archive.root.rglob("*.lc.tmp")]
    out = subprocess.run([PYTHON, "-m", "mdcsql", "verify", str(archive.root)], capture_output=True, text=True,
                         env=python_env())
    assert out.returncode == 0, out.stdout + out.stderr


def test_retention_deletes_only_what_policy_says_and_never_critical_or_held(thirty, tmp_path):
    from mdcsql.lifecycle import holds
    archive = copy_of(thirty, tmp_path)
    holds.add_hold(archive.root, "CASE-1", reason="litigation", symbols=["BRK/B"], type="BboQuote", by="legal")
    report = apply_retention(archive, as_of=at(31), dry_run=True)
    assert report["deleted"] and all(d["path"].split("/")[2] in ("BboQuote", "Heartbeat") for d in report["deleted"])
    assert any("BRK%2FB/BboQuote" in d["path"] for d in report["protected"])
    report = apply_retention(archive, as_of=at(31))
    with archive.catalog(read_only=True) as cat:
        left = dict(cat.execute("SELECT type, count(*) FROM files GROUP BY type").rows)
        deletions = cat.execute("SELECT count(*) FROM deletions WHERE action = 'retention'").rows[0][0]
    assert left["Trade"] == 30 * len(SYMBOLS)           # Critical: never deleted
    assert deletions == len(report["deleted"]) > 0
    assert (archive.root / "live/BRK%2FB/BboQuote/2024-01-01~sim~equity.jsonl.gz").exists()   # held
    assert not (archive.root / "live/AAPL/BboQuote/2024-01-01~sim~equity.jsonl.gz").exists()


def test_policy_changes_apply_to_the_next_job_without_a_restart(thirty, tmp_path):
    archive = copy_of(thirty, tmp_path)
    cfg = archive.root / CATALOG_DIR / "config.json"
    first = {d.path: d.action for d in plan(Archive.open(archive.root), as_of=at(31)).decisions}
    doc = json.loads(cfg.read_text())
    doc["Storage"]["Policies"]["BboQuote"]["Classification"] = "Critical"
    cfg.write_text(json.dumps(doc))
    second = {d.path: d.action for d in plan(Archive.open(archive.root), as_of=at(31)).decisions}
    changed = [p for p in first if first[p] != second[p]]
    assert changed and all("BboQuote" in p and second[p] == "keep" for p in changed)


def test_a_tier_with_its_own_path_is_mounted_into_the_tree(tmp_path):
    cold = tmp_path / "other-disk" / "cold"
    archive = build(tmp_path / "a", days=4,
                    extra={"Tiering": {"Enabled": True, "Tiers": ["hot", "warm",
                                                                   {"Name": "cold", "Path": str(cold)}, "archive"]}})
    from mdcsql.lifecycle.tiers import mount_tiers
    mount_tiers(archive.root, archive.settings)
    before = view_checks(archive)
    migrate(archive, as_of=at(12))
    assert (archive.root / "cold").is_symlink() and list(cold.rglob("*.parquet"))
    assert view_checks(archive) == before


def test_a_collector_starting_after_a_killed_migration_finishes_it_and_loses_nothing(week, tmp_path):
    """The collector's own crash recovery must not take a transition's tmp outputs for debris."""
    archive = copy_of(week, tmp_path)
    before = view_checks(archive)
    env = {**python_env(), "MDCSQL_FAULT": "after_journal"}
    proc = subprocess.run([PYTHON, "-m", "mdcsql", "tier", "migrate", str(archive.root), "--as-of", "2024-01-09"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == -9
    assert list((archive.root / CATALOG_DIR / "transitions").glob("*.json"))
    rec = subprocess.run([PYTHON, "-m", "mdcsql", "recover", str(archive.root)], capture_output=True, text=True,
                         env=python_env(), timeout=300)
    assert rec.returncode == 0, rec.stderr
    assert not list((archive.root / CATALOG_DIR / "transitions").glob("*.json"))
    archive = Archive.open(archive.root)
    archive.sync_catalog(timeout=60)
    assert view_checks(archive) == before


def test_per_type_compression_of_a_tier_overrides_the_tiers_codec(tmp_path):
    policies = json.loads(json.dumps(POLICIES["Policies"]))
    policies["BboQuote"]["Compression"] = {"Warm": "zstd-3", "Cold": "snappy"}
    archive = build(tmp_path / "a", days=3, extra={"Policies": policies})
    before = view_checks(archive)
    migrate(archive, as_of=at(5))           # BboQuote: hot -> warm, Trade: hot -> warm
    with archive.catalog(read_only=True) as cat:
        codecs = dict(cat.execute("SELECT type, list_distinct(list(codec)) FROM files WHERE tier = 'warm' "
                                  "GROUP BY type").rows)
    assert codecs == {"BboQuote": ["zstd"], "Trade": ["gzip"]}
    migrate(archive, as_of=at(10))
    with archive.catalog(read_only=True) as cat:
        cold = dict(cat.execute("SELECT type, any_value(codec) FROM files WHERE tier = 'cold' GROUP BY type").rows)
    assert cold == {"BboQuote": "snappy", "Trade": "zstd"}
    assert view_checks(archive) == before


def test_lifecycle_run_does_every_step_in_order(week, tmp_path):
    archive = copy_of(week, tmp_path)
    before = view_checks(archive)
    dry = subprocess.run([PYTHON, "-m", "mdcsql", "lifecycle", "run", str(archive.root), "--as-of", "2024-01-30",
                          "--dry-run", "--json"], capture_output=True, text=True, env=python_env(), timeout=300)
    assert dry.returncode == 0, dry.stderr
    steps = [s["step"] for s in json.loads(dry.stdout)["steps"]]
    assert steps == ["recover", "retention", "quotas", "migrate", "compact"]
    assert view_checks(archive) == before
    out = subprocess.run([PYTHON, "-m", "mdcsql", "lifecycle", "run", str(archive.root), "--as-of", "2024-01-30"],
                         capture_output=True, text=True, env=python_env(), timeout=300)
    assert out.returncode == 0, out.stderr
    assert "retention:" in out.stdout and "migrate:" in out.stdout
    archive = Archive.open(archive.root)
    with archive.catalog(read_only=True) as cat:
        left = dict(cat.execute("SELECT type, list_distinct(list(tier)) FROM files GROUP BY type").rows)
    # at day 29: BboQuote and Heartbeat (no archive tier) are gone, Trade is archived (its ISO week is over)
    assert left == {"Trade": ["archive"]}
    assert view_checks(archive)["trades"] == before["trades"]


def test_per_type_hot_compression_seals_each_type_with_its_codec(tmp_path):
    policies = json.loads(json.dumps(POLICIES["Policies"]))
    policies["BboQuote"]["Compression"] = {"Hot": "zstd-3"}
    policies["Heartbeat"]["Compression"] = {"Hot": "none"}
    archive = build(tmp_path / "a", days=2, extra={"Policies": policies})
    with archive.catalog(read_only=True) as cat:
        codecs = dict(cat.execute("SELECT type, list_distinct(list(codec)) FROM files WHERE state = 'sealed' "
                                  "GROUP BY type").rows)
        levels = dict(cat.execute("SELECT type, any_value(compression_level) FROM files GROUP BY type").rows)
    assert codecs == {"BboQuote": ["zstd"], "Trade": ["gzip"], "Heartbeat": ["none"]}
    assert levels["BboQuote"] == 3
    assert view_checks(archive)["bbo_quotes"][0] == 2 * len(SYMBOLS) * 40


def test_the_commands_of_docs_lifecycle_md_run_as_written(week, tmp_path):
    """Every `$ mdcsql ...` line of docs/lifecycle.md, on a copy of the 6-day archive as ./data."""
    import re
    import shlex
    archive = copy_of(week, tmp_path)
    (tmp_path / "data").symlink_to(archive.root)
    text = (Path(__file__).parent.parent / "docs" / "lifecycle.md").read_text()
    lines = [re.sub(r"\s+#.*$", "", m) for m in re.findall(r"^\$ (mdcsql .+)$", text, flags=re.M)]
    assert len(lines) >= 5
    for line in lines:
        args = shlex.split(line)[1:]
        out = subprocess.run([PYTHON, "-m", "mdcsql", *args], capture_output=True, text=True, cwd=tmp_path,
                             env=python_env(), timeout=300)
        assert out.returncode == 0, f"{line}: {out.stderr}"
    with Archive.open(archive.root).catalog(read_only=True) as cat:   # the migrate line really ran
        assert cat.execute("SELECT count(*) FROM files WHERE tier <> 'hot'").rows[0][0] > 0
