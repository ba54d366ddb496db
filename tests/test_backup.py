"""Backup and restore (mdcsql.lifecycle.backup) on real archives built with the simulator.

Incremental by checksum, restore byte-identical with a consistent catalog, verify catches a bad
object, retention never drops an object a kept backup needs, patterns, and kill -9 mid-backup.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import PYTHON, python_env
from mdcsql.archive import Archive
from mdcsql.catalog import Catalog
from mdcsql.catalog.views import VIEW_TYPES
from mdcsql.lifecycle.backup import Target, compile_pattern, next_run, run_backup
from mdcsql.lifecycle.backup_store import BackupError

DAYS = ("2024-01-02", "2024-01-03", "2024-01-04")


def mdcsql(*args, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([PYTHON, "-m", "mdcsql", *map(str, args)], capture_output=True, text=True,
                          env=python_env(), timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"mdcsql {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def collect(root: Path, day: str, events: int = 3000, symbols: str = "AAPL,MSFT") -> None:
    mdcsql("collect", root, "--source", "sim", "--symbols", symbols, "--events", events, "--start", day)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, str]:
    """sha256 of every regular file under root (symlinked tier directories followed)."""
    out = {}
    for dirpath, _, names in os.walk(root, followlinks=True):
        for n in names:
            p = Path(dirpath) / n
            out[p.relative_to(root).as_posix()] = sha(p)
    return out


def views_digest(root: Path) -> dict[str, str]:
    """A checksum of each event view's full, ordered result."""
    out = {}
    with Catalog.open(root, read_only=True) as cat:
        for view in VIEW_TYPES:
            res = cat.query(f"SELECT * FROM {view} ORDER BY ALL")
            out[view] = hashlib.sha256(repr(res.rows).encode()).hexdigest() + f":{len(res.rows)}"
    return out


def init_with(root: Path, tmp_path: Path, backup: dict) -> None:
    cfg = tmp_path / f"{root.name}.json"
    cfg.write_text(json.dumps({"Storage": {"Backup": backup}}))
    mdcsql("init", root, "--config", cfg)


@pytest.fixture(scope="module")
def base_archive(tmp_path_factory) -> Path:
    """Two simulated days, sealed; copied (mtimes kept) by each test that changes it."""
    root = tmp_path_factory.mktemp("base") / "arch"
    for day in DAYS[:2]:
        collect(root, day)
    return root


@pytest.fixture
def archive(base_archive, tmp_path) -> Path:
    root = tmp_path / "arch"
    shutil.copytree(base_archive, root, symlinks=True)
    return root


def manifest(target: Path, backup_id: str) -> dict:
    return json.loads((target / "backups" / f"{backup_id}.json").read_bytes())


def run_json(root: Path, *args) -> dict:
    (result,) = json.loads(mdcsql("backup", "run", root, *args, "--json").stdout)      # one target
    assert result["ok"] and result["next_run"] is None or result["next_run"].startswith("20")
    return result


# ---------------------------------------------------------------------------------------------

def test_second_backup_copies_only_new_and_changed_files_and_restore_is_byte_identical(archive, tmp_path):
    target = tmp_path / "bk"
    first = run_json(archive, "--target", target)
    m1 = manifest(target, first["id"])
    paths1 = {f["path"]: f["sha256"] for f in m1["files"]}
    assert first["totals"]["new_objects"] == len(set(paths1.values())) > 30
    # every data file and its manifest, the catalog exports, the sessions; never WAL/duckdb/locks
    data = [p for p in paths1 if p.startswith("live/") and p.endswith(".jsonl.gz")]
    assert len(data) == 16 and all(p + ".manifest.json" in paths1 for p in data)
    assert {"_catalog/config.json", "_catalog/sources.json", "_catalog/manifest.json"} <= set(paths1)
    assert any(p.startswith("sessions/") and p.endswith("/manifest.json") for p in paths1)
    assert not [p for p in paths1 if p.startswith("_wal/") or "catalog.duckdb" in p or p.endswith(("LOCK", ".lock"))]
    # the object store holds exactly the source bytes
    for p, digest in paths1.items():
        assert sha(archive / p) == digest == sha(target / "objects" / digest[:2] / digest)

    collect(archive, DAYS[2])                          # a third day: new files, changed exports
    before = tree(archive)
    (dry,) = json.loads(mdcsql("backup", "run", archive, "--target", target, "--dry-run", "--json").stdout)
    assert dry["dry_run"] and len(list((target / "backups").glob("*.json"))) == 1
    assert len(list((target / "objects").glob("*/*"))) == len(set(paths1.values()))
    assert any(DAYS[2] in p for p in dry["would_copy"])
    assert not any(DAYS[0] in p or DAYS[1] in p for p in dry["would_copy"])
    second = run_json(archive, "--target", target)
    m2 = manifest(target, second["id"])
    assert m2["parent"] == first["id"]
    paths2 = {f["path"]: f["sha256"] for f in m2["files"]}
    changed = {p for p, d in paths2.items() if paths1.get(p) != d}
    new_contents = {paths2[p] for p in changed} - set(paths1.values())
    assert any(DAYS[2] in p for p in changed) and not any(DAYS[0] in p or DAYS[1] in p for p in changed)
    assert second["totals"]["new_objects"] == len(new_contents)
    # the 16 unchanged data files and their manifests are not even read again
    assert 32 <= second["totals"]["reused_files"] <= len(paths2) - len(changed)
    assert len(list((target / "objects").glob("*/*"))) == len(set(paths1.values()) | set(paths2.values()))

    dest = tmp_path / "restored"
    out = mdcsql("backup", "restore", "--target", target, second["id"], dest).stdout
    assert "catalog rebuilt with 24 data file(s)" in out
    restored = tree(dest)
    for f in m2["files"]:
        assert restored[f["path"]] == before[f["path"]] == f["sha256"], f["path"]
        assert (dest / f["path"]).stat().st_mtime_ns == f["mtime_ns"]
    assert set(restored) - set(paths2) <= {"_catalog/catalog.duckdb", "_catalog/catalog.duckdb.wal"}
    assert views_digest(dest) == views_digest(archive)
    assert mdcsql("verify", dest).returncode == 0

    # the first backup restores the first state: two days only
    old = tmp_path / "restored-old"
    mdcsql("backup", "restore", "--target", target, first["id"], old)
    assert not list(old.rglob(f"*{DAYS[2]}*")) and len(list(old.rglob(f"*{DAYS[1]}*.jsonl.gz"))) == 8
    assert mdcsql("verify", old).returncode == 0

    # a restored archive is a working archive: collect into it
    collect(dest, "2024-01-05", events=500)
    assert mdcsql("verify", dest).returncode == 0


def test_verify_names_a_corrupted_and_a_missing_object(archive, tmp_path):
    target = tmp_path / "bk"
    first = run_json(archive, "--target", target)
    assert mdcsql("backup", "verify", "--target", target).returncode == 0
    files = manifest(target, first["id"])["files"]
    bad, gone = files[0], files[5]
    obj = target / "objects" / bad["sha256"][:2] / bad["sha256"]
    os.chmod(obj, 0o644)
    raw = bytearray(obj.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    obj.write_bytes(bytes(raw))
    (target / "objects" / gone["sha256"][:2] / gone["sha256"]).unlink()
    proc = mdcsql("backup", "verify", "--target", target, first["id"], check=False)
    assert proc.returncode == 1
    assert f"{bad['path']}: sha256 " in proc.stderr and f"{gone['path']}: missing" in proc.stderr
    report = json.loads(mdcsql("backup", "verify", "--target", target, "--json", check=False).stdout)
    assert {p["path"] for p in report["problems"]} == {bad["path"], gone["path"]}
    # a restore of it says which files it could not bring back, and brings back the rest
    proc = mdcsql("backup", "restore", "--target", target, "latest", tmp_path / "r", check=False)
    assert proc.returncode == 1 and bad["path"] in proc.stderr and gone["path"] in proc.stderr
    assert (tmp_path / "r" / files[1]["path"]).is_file() and not (tmp_path / "r" / bad["path"]).exists()


def test_retention_prunes_old_backups_but_no_object_a_kept_backup_needs(tmp_path):
    root, target = tmp_path / "arch", tmp_path / "bk"
    init_with(root, tmp_path, {"Enabled": True, "Schedule": "0 0 * * *", "RetentionBackups": 2,
                               "Targets": [{"Type": "local", "Path": str(target)}]})
    ids = []
    for day in DAYS:
        collect(root, day, events=1000)
        ids.append(run_json(root)["id"])
    kept = [d["id"] for d in Target(target).manifests()]
    assert kept == ids[1:]
    wanted = {f["sha256"] for i in kept for f in manifest(target, i)["files"]}
    stored = {p.name for p in (target / "objects").glob("*/*")}
    assert stored == wanted                            # superseded exports collected, nothing else
    first_day = [f for f in manifest(target, kept[0])["files"] if DAYS[0] in f["path"]]
    assert first_day and all(f["sha256"] in stored for f in first_day)   # day 1 is in both kept backups
    assert mdcsql("backup", "verify", "--root", root).returncode == 0
    assert "schedule 0 0 * * * (UTC): next run " in mdcsql("backup", "list", "--root", root).stdout
    # the catalog mirrors the log: three backups, the first pruned; a rebuild gives the same rows
    q = "SELECT backup_id, state, parent FROM backups ORDER BY created_at"
    rows = json.loads(mdcsql("sql", root, q, "--format", "json").stdout)
    assert [(r["backup_id"], r["state"]) for r in rows] == [(ids[0], "pruned"), (ids[1], "kept"), (ids[2], "kept")]
    assert rows[2]["parent"] == ids[1]
    mdcsql("catalog", "rebuild", root)
    assert json.loads(mdcsql("sql", root, q, "--format", "json").stdout) == rows


def test_include_and_exclude_patterns(tmp_path):
    root, target = tmp_path / "arch", tmp_path / "bk"
    init_with(root, tmp_path, {"Targets": [{"Type": "local", "Path": str(target)}],
                               "IncludePatterns": ["*.jsonl.gz", "*.parquet"],
                               "ExcludePatterns": ["live/MSFT/**", "**/L2Snapshot/*", "sessions/*/report.json",
                                                   "**/_temp/*", "_catalog/config.json"]})
    collect(root, DAYS[0], events=1000, symbols="AAPL,MSFT")
    (root / "_archive" / "_temp").mkdir()
    (root / "_archive" / "_temp" / "scratch.json").write_text("{}")
    paths = {f["path"] for f in manifest(target, run_json(root)["id"])["files"]}
    data = {p for p in paths if p.endswith(".jsonl.gz")}
    assert data == {f"live/AAPL/{t}/{DAYS[0]}~sim~equity.jsonl.gz" for t in ("Trade", "BboQuote", "OrderFlow")}
    assert all(p + ".manifest.json" in paths for p in data)
    assert not [p for p in paths if "MSFT" in p or "/L2Snapshot/" in p or p.endswith("report.json") or "_temp" in p]
    assert "_catalog/config.json" in paths            # needed by any restore: never excluded
    assert any(p.endswith("/manifest.json") and p.startswith("sessions/") for p in paths)


@pytest.mark.parametrize("pattern, path, hit", [
    ("*.jsonl", "live/AAPL/Trade/2024-01-02~sim~equity.jsonl", True),
    ("*.jsonl", "live/AAPL/Trade/2024-01-02~sim~equity.jsonl.gz", False),
    ("*.jsonl", "current.jsonl", True),
    ("**/current.jsonl", "current.jsonl", True),
    ("**/current.jsonl", "live/a/b/current.jsonl", True),
    ("**/current.jsonl", "live/a/b/not-current.jsonl", False),
    ("**/_temp/*", "x/_temp/f.json", True),
    ("**/_temp/*", "_temp/f.json", True),
    ("**/_temp/*", "x/_temp/y/f.json", False),
    ("live/**", "live/AAPL/Trade/f.jsonl", True),
    ("live/", "live/AAPL/Trade/f.jsonl", True),
    ("live/*", "live/AAPL/Trade/f.jsonl", False),
    ("live/AAPL/Trade/2024-01-0?~*", "live/AAPL/Trade/2024-01-02~sim~equity.jsonl.gz", True),
    ("[!a]*.json", "sessions/s/b.json", True),
    ("[!a]*.json", "sessions/s/a.json", False),
])
def test_pattern_semantics(pattern, path, hit):
    assert bool(compile_pattern(pattern).match(path)) is hit


def test_open_hot_files_wal_and_temporary_files_are_not_backed_up(archive, tmp_path):
    (archive / "_catalog" / "something.json.tmp").write_text("half")
    a = Archive.open(archive)
    w = a.writer("sim")
    w.append({"type": "Trade", "symbol": "IBM", "ts": 1704326400 * 10**9, "seq": 1, "price": "1.5", "size": "2"})
    w.flush()
    try:
        assert list((archive / "live" / "IBM").rglob("*.jsonl"))       # an open hot file exists
        (res,) = run_backup(a, target=tmp_path / "bk")
    finally:
        a.close()
    paths = {f["path"] for f in res.manifest["files"]}
    assert [s["path"] for s in res.manifest["skipped"]] == ["live/IBM/Trade/2024-01-04~sim~equity.jsonl"]
    assert "run mdcsql seal first" in res.manifest["skipped"][0]["reason"]
    assert not [p for p in paths if p.startswith(("_wal/", "live/IBM")) or p.endswith(".tmp") or "duckdb" in p]


def test_next_run_and_object_storage_targets(tmp_path):
    assert next_run("0 0 * * *", datetime(2024, 1, 2, 5, tzinfo=timezone.utc)) == \
        datetime(2024, 1, 3, tzinfo=timezone.utc)
    assert next_run("30 2 * * 1", datetime(2024, 1, 2, tzinfo=timezone.utc)) == \
        datetime(2024, 1, 8, 2, 30, tzinfo=timezone.utc)
    root, target = tmp_path / "arch", tmp_path / "bk"
    init_with(root, tmp_path, {"Schedule": "0 0 * * *", "Enabled": False, "Targets": [
        {"Type": "local", "Path": str(target)},
        {"Type": "s3", "Bucket": "mdc-backups", "Region": "us-east-1", "StorageClass": "GLACIER_IR"}]})
    collect(root, DAYS[0], events=300)
    proc = mdcsql("backup", "run", root, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]            # one line, no traceback
    assert "s3://mdc-backups: not supported yet: object storage comes with the scale-out issue" in proc.stderr
    assert len(Target(target).manifests()) == 1                                 # the local one was done
    out = mdcsql("backup", "run", root, "--target", tmp_path / "other").stdout   # --target overrides
    assert "next run" in out and "Enabled is false" in out


def test_bad_requests_get_clear_errors(archive, tmp_path):
    target = tmp_path / "bk"
    first = run_json(archive, "--target", target)
    dest = tmp_path / "full"
    dest.mkdir()
    (dest / "x").write_text("keep me")
    proc = mdcsql("backup", "restore", "--target", target, first["id"], dest, check=False)
    assert proc.returncode == 1 and "is not empty" in proc.stderr and "--force" in proc.stderr
    mdcsql("backup", "restore", "--target", target, first["id"], dest, "--force")
    assert (dest / "x").read_text() == "keep me" and (dest / "_catalog" / "config.json").is_file()
    for bad_id, msg in (("../../etc/passwd", "is not a backup id"), ("20200101T000000Z-abcdef", "no backup")):
        proc = mdcsql("backup", "restore", "--target", target, bad_id, tmp_path / "n", check=False)
        assert proc.returncode == 1 and msg in proc.stderr and "Traceback" not in proc.stderr
    proc = mdcsql("backup", "run", archive, "--target", archive / "inside", check=False)
    assert proc.returncode == 1 and "inside the archive" in proc.stderr
    assert mdcsql("backup", "run", archive, check=False).stderr.startswith("error: no backup target")
    # a tampered manifest cannot write outside the destination
    m = manifest(target, first["id"])
    m["files"][0]["path"] = "../escaped"
    (target / "backups" / f"{first['id']}.json").write_text(json.dumps(m))
    proc = mdcsql("backup", "restore", "--target", target, first["id"], tmp_path / "t", check=False)
    assert proc.returncode == 1 and "unsafe path" in proc.stderr and not (tmp_path / "escaped").exists()
    with pytest.raises(BackupError):
        run_backup(Archive.open(archive), target=archive)
    proc = mdcsql("backup", "list", "--target", tmp_path / "nothing-here", check=False)
    assert proc.returncode == 1 and "no backup target at" in proc.stderr
    with Target(target):                       # one process at a time on a target
        proc = mdcsql("backup", "run", archive, "--target", target, check=False)
        assert proc.returncode == 1 and "is in use by another mdcsql backup" in proc.stderr
        proc = mdcsql("backup", "verify", "--target", target, check=False)
        assert proc.returncode == 1 and "is being written" in proc.stderr


def _objects_all_intact(target: Path) -> None:
    """Every object under its final name hashes to that name; every manifest's objects exist."""
    for obj in (target / "objects").glob("*/*"):
        assert sha(obj) == obj.name, f"partial object {obj} under its final name"
    assert Target(target).verify().ok


def test_kill_9_mid_backup_leaves_no_manifest_with_missing_objects(tmp_path, base_archive):
    root = tmp_path / "arch"
    shutil.copytree(base_archive, root, symlinks=True)
    collect(root, DAYS[2], events=20000, symbols="AAPL,MSFT,SPY,IBM,QQQ")
    target = tmp_path / "bk"
    killed_mid_run = 0
    for after_objects in (1, 8, 25):
        shutil.rmtree(target, ignore_errors=True)
        proc = subprocess.Popen([PYTHON, "-m", "mdcsql", "backup", "run", str(root), "--target", str(target)],
                                env=python_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if (target / "objects").is_dir() and sum(1 for _ in (target / "objects").glob("*/*")) >= after_objects:
                break
            time.sleep(0.0005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if not list((target / "backups").glob("*.json")):
            killed_mid_run += 1
            assert list((target / "tmp").iterdir()) or list((target / "objects").glob("*/*"))
        _objects_all_intact(target)
        second = run_json(root, "--target", target)              # rerun converges
        _objects_all_intact(target)
        assert not list((target / "tmp").iterdir())                # leftovers of the crash cleaned
        m = manifest(target, second["id"])
        for f in m["files"]:                                       # (the run's own log line and the
            if not f["path"].startswith("_catalog/"):              # catalog sync after it change _catalog/)
                assert sha(root / f["path"]) == f["sha256"], f["path"]
    assert killed_mid_run >= 2, "the backup finished before every kill: make the archive bigger"
    dest = tmp_path / "restored"
    mdcsql("backup", "restore", "--target", target, "latest", dest)
    assert views_digest(dest) == views_digest(root)
    assert mdcsql("verify", dest).returncode == 0


def test_every_tier_is_backed_up_and_restored_with_a_mounted_tier_directory(tmp_path):
    """Hot, warm (JSONL.gz) and cold (Parquet) files, the cold tier mounted from another directory."""
    root, target = tmp_path / "arch", tmp_path / "bk"
    cfg = tmp_path / "tiers.json"
    cfg.write_text(json.dumps({"Storage": {"Tiering": {"Enabled": True}}}))
    mdcsql("init", root, "--config", cfg)
    for day in DAYS[:2]:
        collect(root, day, events=1000)
    mdcsql("tier", "migrate", root, "--as-of", "2024-04-15")          # > 90 days: cold
    collect(root, "2024-04-05", events=1000)
    mdcsql("tier", "migrate", root, "--as-of", "2024-04-20")          # > 7 days: warm
    collect(root, "2024-04-19", events=500, symbols="AAPL")            # stays hot
    elsewhere = tmp_path / "cold-disk"
    shutil.move(root / "cold", elsewhere)                              # what a tier mount looks like
    (root / "cold").symlink_to(elsewhere, target_is_directory=True)
    mdcsql("catalog", "rebuild", root)
    paths = {f["path"] for f in manifest(target, run_json(root, "--target", target)["id"])["files"]}
    tiers = {p.split("/")[0] for p in paths if p.endswith((".jsonl.gz", ".parquet")) and not p.startswith("_catalog")}
    assert tiers == {"live", "warm", "cold"}
    assert len([p for p in paths if p.startswith("cold/") and p.endswith(".parquet")]) == 16
    assert all(p + ".manifest.json" in paths for p in paths if p.startswith(("warm/", "cold/")) and
               not p.endswith(".manifest.json"))
    dest = tmp_path / "restored"
    mdcsql("backup", "restore", "--target", target, "latest", dest)
    assert not (dest / "cold").is_symlink()
    for p in paths:
        if not p.startswith("_catalog/"):
            assert sha(dest / p) == sha(root / p), p
    assert views_digest(dest) == views_digest(root)
    assert mdcsql("verify", dest).returncode == 0


def test_a_transition_a_crash_left_half_done_is_finished_before_the_backup(tmp_path):
    """tier migrate killed after its swap: both copies exist; the backup (under the lifecycle lock)
    rolls the transition forward first, so it holds each file once and restores a consistent tree."""
    root, target = tmp_path / "arch", tmp_path / "bk"
    cfg = tmp_path / "tiers.json"
    cfg.write_text(json.dumps({"Storage": {"Tiering": {"Enabled": True}}}))
    mdcsql("init", root, "--config", cfg)
    collect(root, DAYS[0], events=1000)
    env = {**python_env(), "MDCSQL_FAULT": "after_swap"}
    proc = subprocess.run([PYTHON, "-m", "mdcsql", "tier", "migrate", str(root), "--as-of", "2024-04-15"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert list((root / "_catalog" / "transitions").glob("*.json"))         # decided, not finished
    paths = {f["path"] for f in manifest(target, run_json(root, "--target", target)["id"])["files"]}
    assert not [p for p in paths if p.startswith("_catalog/transitions/")]
    stems = [p.removeprefix("cold/").rsplit("~", 1)[0] for p in paths
             if p.startswith(("live/", "cold/")) and p.endswith((".jsonl.gz", ".parquet"))]
    assert len(stems) == len(set(stems)) == 8 and any(p.startswith("cold/") for p in paths)
    dest = tmp_path / "restored"
    mdcsql("backup", "restore", "--target", target, "latest", dest)
    assert views_digest(dest) == views_digest(root)
    assert mdcsql("verify", dest).returncode == 0


def test_a_sealed_file_that_differs_from_its_manifest_is_backed_up_as_found_and_reported(archive, tmp_path):
    bad = archive / "live" / "MSFT" / "Trade" / f"{DAYS[1]}~sim~equity.jsonl.gz"
    raw = bytearray(bad.read_bytes())
    raw[-10] ^= 0xFF                                          # bit rot: same size, other bytes
    bad.write_bytes(bytes(raw))
    proc = mdcsql("backup", "run", archive, "--target", tmp_path / "bk", "--json", check=False)
    assert proc.returncode == 1
    assert f"problem: " not in proc.stdout
    (res,) = json.loads(proc.stdout)
    rel = bad.relative_to(archive).as_posix()
    assert [p["path"] for p in res["problems"]] == [rel] and "differs from its sealed manifest" in res["problems"][0]["problem"]
    entry = next(f for f in manifest(tmp_path / "bk", res["id"])["files"] if f["path"] == rel)
    assert entry["sha256"] == sha(bad)                        # what the tree holds, so a restore is faithful
    proc = mdcsql("backup", "run", archive, "--target", tmp_path / "bk", check=False)
    assert proc.returncode == 1 and f"problem: {rel}: sha256" in proc.stderr   # reported again, not hidden by reuse
