"""Legal holds: notices are the truth; a held path or symbol/date range cannot be deleted by
retention, quotas or hand; every refused attempt is logged; releasing lifts the hold.

Real archives filled through the write path, the real guard and removal path, the real CLI.
"""

from __future__ import annotations

import json

import pytest

from helpers_perpetual import clone, files_rows, filled_archive, journal, mdcsql, table_rows
from mdcsql.errors import MdcsqlError, NotFoundError
from mdcsql.lifecycle import holds
from mdcsql.lifecycle.guard import ProtectedError, check_removable
from mdcsql.lifecycle.removal import remove_files

PLAN = [("AAPL", "Trade", 0, "sim"), ("AAPL", "Trade", 3, "sim"), ("AAPL", "BboQuote", 0, "sim"),
        ("MSFT", "Trade", 0, "sim"), ("MSFT", "BboQuote", 3, "alpaca")]
AAPL_T15 = "live/AAPL/Trade/2024-01-15~sim~equity.jsonl.gz"
AAPL_T18 = "live/AAPL/Trade/2024-01-18~sim~equity.jsonl.gz"
AAPL_Q15 = "live/AAPL/BboQuote/2024-01-15~sim~equity.jsonl.gz"
MSFT_T15 = "live/MSFT/Trade/2024-01-15~sim~equity.jsonl.gz"
MSFT_Q18 = "live/MSFT/BboQuote/2024-01-18~alpaca~equity.jsonl.gz"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    root, rows = filled_archive(tmp_path_factory.mktemp("holds"), PLAN)
    assert [r["path"] for r in rows] == sorted([AAPL_T15, AAPL_T18, AAPL_Q15, MSFT_T15, MSFT_Q18])
    return root


@pytest.fixture
def root(template, tmp_path):
    return clone(template, tmp_path)


def held(root, **scope) -> set[str]:
    """Which files of the catalog the hold would protect (placed, asked, released)."""
    h = holds.add_hold(root, "probe", reason="probe", **scope)
    try:
        return {r["path"] for r in files_rows(root) if h.covers(r)}
    finally:
        holds.release_hold(root, "probe", by="t", reason="probe done")
        (root / holds.HOLDS_DIR / "probe" / holds.NOTICE_FILE).unlink()     # test-only cleanup


def test_a_held_symbol_cannot_be_deleted_by_retention_and_release_lifts_it(root):
    holds.add_hold(root, "case_12345", reason="SEC inquiry", symbols=["AAPL"], by="alice")
    notice = json.loads((root / "_archive/legal_holds/case_12345/hold_notice.json").read_text())
    assert notice["scope"]["symbols"] == ["AAPL"] and notice["created_by"] == "alice"

    with pytest.raises(ProtectedError) as exc:
        remove_files(root, [MSFT_T15, AAPL_T15, AAPL_Q15], action="retention", reason="RetentionDays 30",
                     actor="retention job")
    msg = str(exc.value)
    assert AAPL_T15 in msg and AAPL_Q15 in msg and "case_12345" in msg and MSFT_T15 not in msg
    assert {p.path for p in exc.value.protections} == {AAPL_T15, AAPL_Q15}
    # all or nothing: the unheld MSFT file of the same batch is still there too
    for rel in (MSFT_T15, AAPL_T15, AAPL_Q15):
        assert (root / rel).exists() and (root / (rel + ".manifest.json")).exists()
    assert journal(root, "deletions") == []

    [refusal] = journal(root, "refusals")
    assert refusal["action"] == "retention" and refusal["actor"] == "retention job"
    assert {(p["path"], p["kind"], p["hold_id"]) for p in refusal["protections"]} == {
        (AAPL_T15, "hold", "case_12345"), (AAPL_Q15, "hold", "case_12345")}

    released = holds.release_hold(root, "case_12345", by="bob", reason="inquiry closed")
    assert not released.active
    done = remove_files(root, [AAPL_T15], action="retention", reason="RetentionDays 30")
    assert not (root / AAPL_T15).exists() and not (root / (AAPL_T15 + ".manifest.json")).exists()
    assert [r["path"] for r in done.records] == [AAPL_T15]
    # the notice stays, with who released it, when and why
    notice = json.loads((root / "_archive/legal_holds/case_12345/hold_notice.json").read_text())
    assert notice["released_by"] == "bob" and notice["release_reason"] == "inquiry closed"
    assert notice["released_at"] and notice["created_by"] == "alice"


def test_hand_deletion_through_the_cli_is_refused_logged_and_allowed_after_release(root):
    mdcsql("hold", "add", root, "--id", "case_9", "--reason", "litigation", "--path", "live/AAPL/Trade",
           "--by", "alice")
    proc = mdcsql("rm", root, AAPL_T18, "--reason", "cleanup", "--by", "mallory", check=False)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "case_9" in proc.stderr and AAPL_T18 in proc.stderr
    assert (root / AAPL_T18).exists()
    [refusal] = journal(root, "refusals")
    assert refusal["actor"] == "mallory" and refusal["action"] == "manual"

    listed = json.loads(mdcsql("hold", "list", root, "--json").stdout)
    assert [h["hold_id"] for h in listed] == ["case_9"] and listed[0]["scope"]["paths"] == ["live/AAPL/Trade"]

    mdcsql("hold", "release", root, "case_9", "--by", "bob", "--reason", "settled")
    assert json.loads(mdcsql("hold", "list", root, "--json").stdout) == []
    assert [h["hold_id"] for h in json.loads(mdcsql("hold", "list", root, "--json", "--all").stdout)] == ["case_9"]
    out = mdcsql("rm", root, AAPL_T18, "--reason", "cleanup", "--by", "mallory").stdout
    assert f"deleted {AAPL_T18}" in out and not (root / AAPL_T18).exists()
    [deletion] = journal(root, "deletions")
    assert (deletion["path"], deletion["actor"], deletion["reason"], deletion["action"]) == (
        AAPL_T18, "mallory", "cleanup", "manual")

    # the tables mirror the files: refusal, release, deletion
    assert [(r[4], r[5], r[6], r[3]) for r in table_rows(root, "refusals", "seq")] == [
        (AAPL_T18, "hold", "case_9", "mallory")]
    [h] = table_rows(root, "legal_holds", "hold_id")
    assert h[0] == "case_9" and h[13] is False and h[11] == "bob"
    assert [r[5] for r in table_rows(root, "deletions", "seq")] == [AAPL_T18]
    assert AAPL_T18 not in {r["path"] for r in files_rows(root)}


def test_scope_matching_paths_globs_type_source_and_dates(root):
    assert held(root, paths=["live/AAPL"]) == {AAPL_T15, AAPL_T18, AAPL_Q15}
    assert held(root, paths=["live/AAP"]) == set()                          # a prefix is whole components
    assert held(root, paths=["live/*/Trade/*"]) == {AAPL_T15, AAPL_T18, MSFT_T15}
    assert held(root, type="BboQuote") == {AAPL_Q15, MSFT_Q18}
    assert held(root, source="alpaca") == {MSFT_Q18}
    assert held(root, date_from="2024-01-16") == {AAPL_T18, MSFT_Q18}
    assert held(root, date_to="2024-01-15") == {AAPL_T15, AAPL_Q15, MSFT_T15}
    assert held(root, date_from="2024-01-16", date_to="2024-01-17") == set()
    assert held(root, symbols=["AAPL", "MSFT"], type="Trade", date_to="2024-01-15") == {AAPL_T15, MSFT_T15}


def test_a_held_path_given_as_text_is_matched_from_its_manifest(root):
    holds.add_hold(root, "h1", reason="r", symbols=["MSFT"], date_from="2024-01-18", date_to="2024-01-18")
    with pytest.raises(ProtectedError):
        check_removable(root, [MSFT_Q18], action="quota")
    assert check_removable(root, [MSFT_T15], action="quota")[0]["path"] == MSFT_T15


@pytest.mark.parametrize("kwargs, message", [
    ({"hold_id": "../x"}, "hold id"),
    ({"symbols": []}, "needs a scope"),
    ({"reason": " "}, "needs a reason"),
    ({"date_from": "2024-02-30"}, "not a date"),
    ({"date_from": "2024-03-01", "date_to": "2024-02-01"}, "is after"),
    ({"type": "Trades"}, "not an event type"),
    ({"paths": ["/etc"]}, "relative to the archive root"),
    ({"paths": ["live/../.."]}, "relative to the archive root"),
])
def test_bad_holds_are_refused_with_a_clear_error(root, kwargs, message):
    args = {"hold_id": "case_1", "reason": "r", "symbols": ["AAPL"], **kwargs}
    with pytest.raises(MdcsqlError, match=message):
        holds.add_hold(root, args.pop("hold_id"), **args)
    assert not (root / "_archive/legal_holds/case_1").exists() or kwargs.get("hold_id")


def test_ids_are_never_reused_and_release_needs_who_and_why(root):
    holds.add_hold(root, "case_1", reason="r", symbols=["AAPL"])
    with pytest.raises(MdcsqlError, match="exists already"):
        holds.add_hold(root, "case_1", reason="other", symbols=["MSFT"])
    with pytest.raises(MdcsqlError, match="--by"):
        holds.release_hold(root, "case_1", by="", reason="x")
    holds.release_hold(root, "case_1", by="bob", reason="done")
    with pytest.raises(MdcsqlError, match="released already"):
        holds.release_hold(root, "case_1", by="bob", reason="again")
    with pytest.raises(MdcsqlError, match="exists already \\(released"):
        holds.add_hold(root, "case_1", reason="r", symbols=["AAPL"])
    with pytest.raises(NotFoundError):
        holds.release_hold(root, "nope", by="bob", reason="x")
    proc = mdcsql("hold", "add", root, "--id", "case_2", "--reason", "r", check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("error: ") and "needs a scope" in proc.stderr


def test_find_protections_explains_without_logging_or_raising(root):
    from mdcsql.lifecycle.guard import find_protections
    holds.add_hold(root, "h2", reason="audit", paths=["live/MSFT"])
    metas, found = find_protections(root, [MSFT_T15, AAPL_T15])
    assert [m["path"] for m in metas] == [MSFT_T15, AAPL_T15]
    assert [(p.path, p.kind, p.hold_id) for p in found] == [(MSFT_T15, "hold", "h2")]
    assert journal(root, "refusals") == []
