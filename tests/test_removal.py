"""The single removal path: remove_files records every deletion (fsync'd journal, then the table),
deletes data file and manifest, drops the catalog rows; bad input is refused; the catalog's
holds / deletions / refusals / archive tables are rebuilt identically from the tree; kill -9 in the
middle of removals never loses a deletion record.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap

import pytest

from conftest import PYTHON, python_env
from helpers_perpetual import KEY_ENV, archive_file, clone, files_rows, filled_archive, journal, mdcsql, table_rows
from mdcsql.errors import MdcsqlError, NotFoundError
from mdcsql.lifecycle import archive_catalog, holds, worm
from mdcsql.lifecycle import journal as jr
from mdcsql.lifecycle.guard import Override, ProtectedError
from mdcsql.lifecycle.removal import remove_files

PLAN = [(sym, t, day, "sim") for sym in ("AAPL", "MSFT", "IBM") for t in ("Trade", "BboQuote")
        for day in range(5)]                                        # 30 files


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root, rows = filled_archive(tmp_path_factory.mktemp("removal"), PLAN)
    assert len(rows) == 30
    return root


@pytest.fixture
def root(template, tmp_path):
    return clone(template, tmp_path)


def test_remove_files_records_deletes_and_drops_the_rows(root):
    rows = files_rows(root)
    target = rows[0]
    done = remove_files(root, [target], action="quota", reason="DropOldest: per_symbol AAPL over 1 MB",
                        actor="quota job")
    assert not (root / target["path"]).exists() and not (root / (target["path"] + ".manifest.json")).exists()
    [rec] = journal(root, "deletions")
    assert rec == done.records[0]
    assert {k: rec[k] for k in ("path", "action", "actor", "symbol", "type", "source", "tier", "sha256",
                                "size_bytes", "event_count")} == {
        "path": target["path"], "action": "quota", "actor": "quota job", "symbol": target["symbol"],
        "type": target["type"], "source": "sim", "tier": "hot", "sha256": target["sha256"],
        "size_bytes": target["size_bytes"], "event_count": 3}
    assert [r["path"] for r in files_rows(root)] == [r["path"] for r in rows[1:]]
    [row] = table_rows(root, "deletions", "seq")
    assert row[0] == 1 and row[5] == target["path"] and row[3] == "DropOldest: per_symbol AAPL over 1 MB"


@pytest.mark.parametrize("paths, kwargs, error, message", [
    (["live/NOPE/Trade/2024-01-15~sim~equity.jsonl.gz"], {}, NotFoundError, "nothing was removed"),
    (["../outside.jsonl"], {}, MdcsqlError, "relative to the archive root"),
    (["/etc/passwd"], {}, MdcsqlError, "relative to the archive root"),
    (["_archive/legal_holds/case_1/hold_notice.json"], {}, MdcsqlError, "not a data file"),
    (["_archive/regulatory/manifest.json"], {}, MdcsqlError, "not a data file"),
    (["_catalog/deletions.jsonl"], {}, MdcsqlError, "not a data file"),
    (["live/AAPL/Trade/2024-01-15~sim~equity.jsonl.gz"], {"reason": " "}, MdcsqlError, "needs a reason"),
    (["live/AAPL/Trade/2024-01-15~sim~equity.jsonl.gz"], {"action": ""}, MdcsqlError, "needs an action"),
])
def test_bad_removals_are_refused_before_anything_is_deleted(root, paths, kwargs, error, message):
    good = "live/MSFT/Trade/2024-01-15~sim~equity.jsonl.gz"
    with pytest.raises(error, match=message):
        remove_files(root, [good, *paths], **{"action": "manual", "reason": "r", **kwargs})
    assert (root / good).exists() and journal(root, "deletions") == []


def test_missing_ok_lets_a_rerun_converge(root):
    rel = "live/IBM/Trade/2024-01-16~sim~equity.jsonl.gz"
    remove_files(root, [rel], action="retention", reason="r")
    again = remove_files(root, [rel], action="retention", reason="r", missing_ok=True)
    assert again.records == [] and again.missing == [rel]
    assert len(journal(root, "deletions")) == 1


def test_a_torn_journal_line_is_skipped_and_never_glued_to_the_next_record(root):
    log = root / "_catalog/deletions.jsonl"
    log.write_bytes(b'{"at": "2024-01-01T00:00:00Z", "path": "x", "act')           # crash mid-append
    remove_files(root, ["live/IBM/Trade/2024-01-17~sim~equity.jsonl.gz"], action="retention", reason="r")
    records, offset, problems = jr.read(log)
    assert [r["path"] for r in records] == ["live/IBM/Trade/2024-01-17~sim~equity.jsonl.gz"]
    assert offset == log.stat().st_size and len(problems) == 1
    assert [r[5] for r in table_rows(root, "deletions", "seq")] == ["live/IBM/Trade/2024-01-17~sim~equity.jsonl.gz"]


def test_rebuild_restores_holds_deletions_refusals_and_archive_tables_identically(root, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "k")
    holds.add_hold(root, "case_1", reason="inquiry", symbols=["AAPL"], date_from="2024-01-16", by="alice")
    holds.add_hold(root, "case_2", reason="old", paths=["live/IBM"], by="alice")
    holds.release_hold(root, "case_2", by="bob", reason="closed")
    with pytest.raises(ProtectedError):
        remove_files(root, ["live/AAPL/Trade/2024-01-17~sim~equity.jsonl.gz"], action="retention", reason="r")
    remove_files(root, ["live/IBM/Trade/2024-01-15~sim~equity.jsonl.gz",
                        "live/AAPL/Trade/2024-01-15~sim~equity.jsonl.gz"], action="retention", reason="r")
    rel = archive_file(root, reason="historical", sidecar=True)
    archive_catalog.add_entry(root, rel, created_at="2024-02-01", immutable=True)
    worm.extend(root, rel, "2050-01-01", by="ops", override=Override("ops", "policy"))
    mdcsql("catalog", "rebuild", root, env={KEY_ENV: "k"})              # every derived table filled
    tables = {"legal_holds": "hold_id", "deletions": "seq", "refusals": "seq, path",
              "archive_entries": "id", "archive_retention_changes": "entry_id, changed_at"}
    before = {t: table_rows(root, t, o) for t, o in tables.items()}
    assert [len(v) for v in before.values()] == [2, 2, 1, 1, 1]

    os.remove(root / "_catalog/catalog.duckdb")
    mdcsql("catalog", "rebuild", root, env={KEY_ENV: "k"})
    assert {t: table_rows(root, t, o) for t, o in tables.items()} == before


CHILD = textwrap.dedent("""
    import sys
    from mdcsql.lifecycle.removal import remove_files
    root, paths = sys.argv[1], sys.argv[2:]
    for p in paths:
        remove_files(root, [p], action="retention", reason="crash test")
        print(p, flush=True)
""")


@pytest.mark.parametrize("after", [1, 6, 13])
def test_kill_9_during_removals_never_loses_a_deletion_record(root, after):
    paths = [r["path"] for r in files_rows(root)]
    proc = subprocess.Popen([PYTHON, "-c", CHILD, str(root), *paths], stdout=subprocess.PIPE, text=True,
                            env=python_env())
    for _ in range(after):
        assert proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    recorded = {r["path"] for r in journal(root, "deletions")}
    gone = {p for p in paths if not (root / p).exists()}
    assert len(gone) >= after and gone <= recorded                 # nothing vanished without its record
    remove_files(root, paths, action="retention", reason="rerun", missing_ok=True)
    assert not any((root / p).exists() for p in paths)
    assert {r["path"] for r in journal(root, "deletions")} == set(paths)
    assert files_rows(root) == []
