"""Collection sessions on real archives with really collected data.

Numbers in reports are checked against independent counts read back from the stored files
(archive_contents), never against the code's own counters.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import textwrap
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from archive_contents import data_files, events_in
from conftest import PYTHON, REPO, python_env
from mdcsql import sessions
from mdcsql.archive import Archive
from mdcsql.collect import collect
from mdcsql.errors import MdcsqlError
from mdcsql.ingest.seal import MANIFEST_SUFFIX, open_decompressed
from mdcsql.sessions import SessionState, SessionStateError, TRANSITIONS
from mdcsql.sessions.model import Session, SessionType
from mdcsql.sessions.report import human_bytes
from mdcsql.sources.sim import SimSource

START = 1_705_276_800 * 10**9        # 2024-01-15T00:00:00Z
DAY = 86_400 * 10**9
S = SessionState

#: the design's session_report example ("Collection Session Management", §3), verbatim
DESIGN_REPORT = json.loads("""
{
  "session_report": {
    "session_id": "2026-01-03-regular",
    "name": "Regular Trading Session - 2026-01-03",
    "type": "Daily",
    "timing": {"started": "2026-01-03T09:30:00-05:00", "ended": "2026-01-03T16:00:00-05:00", "duration": "6h 30m 00s"},
    "coverage": {"symbols": 50, "trading_days": 1, "market_hours": "09:30-16:00 ET"},
    "volume": {"total_events": 12500000, "trades": 8000000, "quotes": 4000000, "l2_snapshots": 500000,
               "raw_bytes": "2.5 GB", "compressed_bytes": "320 MB", "compression_ratio": "7.8x"},
    "quality": {"overall_score": 0.998, "gaps_detected": 0, "gaps_auto_filled": 0, "sequence_errors": 0,
                "symbols_complete": 50, "symbols_with_issues": 0},
    "files": {"count": 150, "all_verified": true, "manifest_path": "sessions/2026-01-03/manifest.json"},
    "notes": "Clean session, no issues detected"
  }
}
""")


def mdcsql(*args, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([PYTHON, "-m", "mdcsql", *map(str, args)], capture_output=True, text=True,
                          env=python_env(), timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"mdcsql {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def shape(doc):
    """Keys and nesting (in order) of a JSON document, values dropped."""
    if isinstance(doc, dict):
        return [(k, shape(v)) for k, v in doc.items()]
    return None


def manifests_of(root: Path, session_id: str | None) -> list[dict]:
    """Sealed files' manifests carrying `session_id`, read straight from the tree."""
    out = []
    for p in data_files(root):
        mp = p.with_name(p.name + MANIFEST_SUFFIX)
        if mp.exists():
            m = json.loads(mp.read_text())
            if m["session_id"] == session_id:
                out.append(m)
    return out


def independent_counts(root: Path, session_id: str) -> dict:
    """Counts of the session's events by reading and decompressing its files."""
    events, raw, stored, files = Counter(), 0, 0, 0
    symbols = set()
    for m in manifests_of(root, session_id):
        path = root / m["path"]
        with open_decompressed(path) as f:
            raw += len(f.read())
        stored += path.stat().st_size
        files += 1
        for e in events_in(path):
            events[e["type"]] += 1
            symbols.add(e["symbol"])
    return {"events": events, "raw": raw, "stored": stored, "files": files, "symbols": symbols}


def sim(symbols, seed, day=0, **kw) -> SimSource:
    return SimSource(symbols, seed=seed, start_ns=START + day * DAY, **kw)


# ------------------------------------------------------------------------------ the state machine
ALL_PAIRS = [(a, b) for a in S for b in S]


@pytest.mark.parametrize("current,target", ALL_PAIRS, ids=[f"{a}->{b}" for a, b in ALL_PAIRS])
def test_transition_table_allows_exactly_the_legal_moves(current, target):
    s = Session("t", "t", SessionType.CUSTOM, state=current)
    if target in TRANSITIONS[current]:
        s.transition(target)
        assert s.state == target and s.history[-1]["state"] == target.value
    else:
        with pytest.raises(SessionStateError, match=f"is {current}; it cannot become {target}"):
            s.transition(target)
        assert s.state == current


def _drive(archive, sid: str, state: SessionState) -> None:
    """Bring a fresh (Scheduled) session to `state` through the operations."""
    path = {S.SCHEDULED: [], S.ACTIVE: ["start"], S.PAUSED: ["start", "pause"],
            S.COMPLETED: ["start", "end"], S.FAILED: ["start", "fail"], S.CANCELLED: ["cancel"]}[state]
    for step in path:
        _apply(archive, sid, step)


def _apply(archive, sid: str, op: str):
    if op == "fail":
        return sessions.end(archive, sid, state="Failed")
    if op == "cancel":
        return sessions.end(archive, sid, state="Cancelled")
    if op == "end":
        return sessions.end(archive, sid)
    return getattr(sessions, op)(archive, sid)


_OPS_TO = {S.ACTIVE: ["start", "resume"], S.PAUSED: ["pause"], S.COMPLETED: ["end"], S.FAILED: ["fail"],
           S.CANCELLED: ["cancel"]}


def test_operations_make_every_legal_transition_and_refuse_every_illegal_one(tmp_path):
    archive = Archive.init(tmp_path / "a")
    n = 0
    try:
        for current in S:
            for target, ops in _OPS_TO.items():
                for op in ops:
                    n += 1
                    sid = sessions.create(archive, session_id=f"s{n}").session_id
                    _drive(archive, sid, current)
                    legal = target in TRANSITIONS[current] and not (
                        (op == "start" and current != S.SCHEDULED) or (op == "resume" and current != S.PAUSED))
                    if legal:
                        assert _apply(archive, sid, op).state == target
                        assert sessions.get(archive, sid).state == target       # as stored
                    else:
                        with pytest.raises(MdcsqlError, match=f"session {sid} is {current}"):
                            _apply(archive, sid, op)
                        assert sessions.get(archive, sid).state == current
                    if sessions.get(archive, sid).state in (S.ACTIVE, S.PAUSED):
                        sessions.end(archive, sid, state="Cancelled")           # one Active at a time
    finally:
        archive.close()


def test_one_active_session_per_archive(tmp_path):
    with Archive.init(tmp_path / "a") as archive:
        a = sessions.create(archive, session_id="a").session_id
        b = sessions.create(archive, session_id="b").session_id
        sessions.start(archive, a)
        with pytest.raises(MdcsqlError, match="session a is Active; pause or end it first"):
            sessions.start(archive, b)
        sessions.pause(archive, a)
        sessions.start(archive, b)
        with pytest.raises(MdcsqlError, match="session b is Active"):
            sessions.resume(archive, a)
        sessions.end(archive, b)
        sessions.resume(archive, a)
        sessions.end(archive, a)


def test_invalid_ids_types_and_states_are_clear_errors(tmp_path):
    with Archive.init(tmp_path / "a") as archive:
        for bad in ("../x", "a/b", "", ".hidden", "x" * 200):
            with pytest.raises(MdcsqlError, match="invalid session id"):
                sessions.create(archive, session_id=bad)
        with pytest.raises(MdcsqlError, match="unknown session type 'Hourly'"):
            sessions.create(archive, type="Hourly")
        with pytest.raises(MdcsqlError, match="no session 'nope'"):
            sessions.start(archive, "nope")
        sessions.create(archive, session_id="dup")
        with pytest.raises(MdcsqlError, match="already exists"):
            sessions.create(archive, session_id="dup")


# ------------------------------------------------------------------------------ collected sessions
@pytest.fixture(scope="module")
def two_sessions(tmp_path_factory):
    """An archive with two collected sessions: s1 (AAPL, MSFT; tag Q1) and s2 (MSFT, SPY; Daily, tag Q2)."""
    root = tmp_path_factory.mktemp("two") / "archive"
    archive = Archive.init(root)
    with sessions.collecting(archive, "first run", tags=["Q1"], symbols=["AAPL", "MSFT"]) as h1:
        collect(archive, [sim(["AAPL", "MSFT"], seed=1)], events=12_000)
    with sessions.collecting(archive, "second run", type="Daily", tags=["Q2"], symbols=["MSFT", "SPY"],
                             categories=["Regular"]) as h2:
        collect(archive, [sim(["MSFT", "SPY"], seed=2, day=1)], events=8_000)
    return archive, h1, h2


def test_collecting_names_and_ends_the_session(two_sessions):
    archive, h1, h2 = two_sessions
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert h1.session_id == f"{today}-first-run" and h2.session_id == f"{today}-second-run"
    s1 = sessions.get(archive, h1.session_id)
    assert s1.state == S.COMPLETED and s1.name == "first run" and s1.tags == ["Q1"]
    assert [h["state"] for h in s1.history] == ["Scheduled", "Active", "Completed"]
    assert s1.started_at <= s1.ended_at
    # every event written belongs to a session: no file without one
    assert manifests_of(archive.root, None) == []
    assert not [p for p in data_files(archive.root) if p.name.endswith(".jsonl")]      # all sealed


def test_report_has_exactly_the_designs_shape_and_counts_from_the_files(two_sessions):
    archive, h1, h2 = two_sessions
    report = json.loads((archive.root / "sessions" / h1.session_id / "report.json").read_text())
    assert report == h1.report
    assert shape(report) == shape(DESIGN_REPORT)
    r = report["session_report"]
    counts = independent_counts(archive.root, h1.session_id)
    ev = counts["events"]
    assert r["volume"]["total_events"] == sum(ev.values()) == 12_000
    assert (r["volume"]["trades"], r["volume"]["quotes"], r["volume"]["l2_snapshots"]) == \
        (ev["Trade"], ev["BboQuote"], ev["L2Snapshot"])
    assert r["volume"]["raw_bytes"] == human_bytes(counts["raw"])
    assert r["volume"]["compressed_bytes"] == human_bytes(counts["stored"])
    assert r["volume"]["compression_ratio"] == f"{counts['raw'] / counts['stored']:.1f}x"
    assert r["coverage"]["symbols"] == len(counts["symbols"]) == 2
    assert r["coverage"]["trading_days"] == 1
    assert r["files"] == {"count": counts["files"], "all_verified": True,
                          "manifest_path": f"sessions/{h1.session_id}/manifest.json"}
    assert r["quality"] == {"overall_score": 1.0, "gaps_detected": 0, "gaps_auto_filled": 0,
                            "sequence_errors": 0, "symbols_complete": 2, "symbols_with_issues": 0}
    assert r["notes"] == "Clean session, no issues detected"
    assert r["type"] == "Custom" and r["name"] == "first run"
    stats = sessions.get(archive, h1.session_id).statistics
    assert stats["events_by_type"] == dict(sorted(ev.items()))
    assert stats["total_bytes"] == counts["raw"] and stats["total_bytes_compressed"] == counts["stored"]
    assert set(stats["events_by_symbol"]) == {"AAPL", "MSFT"} and stats["events_by_source"] == {"sim": 12_000}
    # the session manifest lists exactly those files, with their checksums and counts
    listed = {f["path"]: f for f in sessions.get(archive, h1.session_id).files}
    for m in manifests_of(archive.root, h1.session_id):
        assert (listed[m["path"]]["sha256"], listed[m["path"]]["event_count"]) == (m["sha256"], m["event_count"])
    index = json.loads((archive.root / "sessions" / "index.json").read_text())
    assert [s["session_id"] for s in index["sessions"]][:2] == [h1.session_id, h2.session_id]


def test_sha256sum_checks_the_session_folder(two_sessions):
    archive, h1, h2 = two_sessions
    for h in (h1, h2):
        folder = archive.root / "sessions" / h.session_id
        lines = (folder / "checksums.sha256").read_text().splitlines()
        assert lines and all(re.fullmatch(r"[0-9a-f]{64}  \.\./\.\./live/.+\.jsonl\.gz", l) for l in lines)
        proc = subprocess.run(["sha256sum", "-c", "checksums.sha256"], cwd=folder, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert proc.stdout.count(": OK") == len(lines) == len(sessions.get(archive, h.session_id).files)


def test_compare_shows_the_differences(two_sessions):
    archive, h1, h2 = two_sessions
    doc = sessions.compare(archive, h1.session_id, h2.session_id)
    assert doc["symbols"] == {"only_in_a": ["AAPL"], "only_in_b": ["SPY"], "in_both": ["MSFT"]}
    c1, c2 = (independent_counts(archive.root, h.session_id)["events"] for h in (h1, h2))
    for etype in ("Trade", "BboQuote", "L2Snapshot"):
        assert doc["events_by_type"][etype] == {"a": c1[etype], "b": c2[etype], "difference": c2[etype] - c1[etype]}
    assert doc["totals"]["total_events"] == {"a": 12_000, "b": 8_000, "difference": -4_000}
    assert doc["quality"]["overall_score"]["difference"] == 0
    assert doc["files"]["shared"] == 0 and doc["files"]["only_in_a"] == len(sessions.get(archive, h1.session_id).files)
    cli = json.loads(mdcsql("session", "compare", archive.root, h1.session_id, h2.session_id, "--json").stdout)
    assert cli == json.loads(json.dumps(doc))


def test_merge_makes_a_session_with_the_union_and_leaves_the_sources_alone(two_sessions):
    archive, h1, h2 = two_sessions
    folders = [archive.root / "sessions" / h.session_id for h in (h1, h2)]
    before = {p: p.read_bytes() for f in folders for p in sorted(f.iterdir())}
    merged = sessions.merge(archive, [h1.session_id, h2.session_id], name="Q1+Q2", session_id="merged-q")
    assert merged.state == S.COMPLETED and merged.merged_from == [h1.session_id, h2.session_id]
    paths = {f["path"] for f in merged.files}
    assert paths == {m["path"] for h in (h1, h2) for m in manifests_of(archive.root, h.session_id)}
    assert merged.statistics["total_events"] == 20_000
    assert merged.symbols == ["AAPL", "MSFT", "SPY"] and merged.tags == ["Q1", "Q2"]
    assert merged.type == SessionType.CUSTOM          # Custom + Daily
    assert {p: p.read_bytes() for f in folders for p in sorted(f.iterdir())} == before
    assert sessions.verify(archive, "merged-q").ok
    report = json.loads((archive.root / "sessions" / "merged-q" / "report.json").read_text())
    assert shape(report) == shape(DESIGN_REPORT) and report["session_report"]["volume"]["total_events"] == 20_000
    with pytest.raises(MdcsqlError, match="at least two"):
        sessions.merge(archive, [h1.session_id])


def test_list_filters_by_state_tag_and_date(two_sessions):
    archive, h1, h2 = two_sessions
    sessions.create(archive, session_id="later", tags=["Q1"])
    try:
        ids = lambda **kw: {r["session_id"] for r in sessions.list_sessions(archive, **kw)}   # noqa: E731
        assert {h1.session_id, h2.session_id} <= ids(state="Completed")
        assert "later" not in ids(state="Completed") and ids(state="Scheduled") == {"later"}
        assert ids(state="Active") == set()
        assert h1.session_id in ids(tag="Q1") and "later" in ids(tag="Q1") and h2.session_id not in ids(tag="Q1")
        assert ids(tag=["Q1", "Q2"]) == {"merged-q"} and ids(tag=["Q1", "nope"]) == set()
        assert h2.session_id in ids(category="Regular") and h1.session_id not in ids(category="Regular")
        today = datetime.now(timezone.utc).date()
        assert {h1.session_id, h2.session_id, "later"} <= ids(since=str(today), until=str(today))
        assert ids(since=str(today + timedelta(days=1))) == set()
        assert ids(until=str(today - timedelta(days=1))) == set()
        rows = json.loads(mdcsql("session", "list", archive.root, "--state", "completed", "--tag", "Q2",
                                 "--json").stdout)
        assert h2.session_id in {r["session_id"] for r in rows} and h1.session_id not in {r["session_id"] for r in rows}
        assert next(r for r in rows if r["session_id"] == h2.session_id)["total_events"] == 8_000
        # the catalog's mirror holds the files of each session
        with archive.catalog(read_only=True) as cat:
            n = cat.execute("SELECT count(*) FROM session_files WHERE session_id = ?", [h1.session_id]).rows[0][0]
        assert n == len(sessions.get(archive, h1.session_id).files)
    finally:
        shutil.rmtree(archive.root / "sessions" / "later")
        sessions.list_sessions(archive)            # forget it in the catalog again


def test_catalog_rebuild_restores_sessions(two_sessions, tmp_path):
    archive, h1, h2 = two_sessions
    root = tmp_path / "copy"
    shutil.copytree(archive.root, root)
    copy = Archive.open(root)
    sessions.list_sessions(copy)                    # up to date
    query = "SELECT * FROM sessions ORDER BY session_id"
    files_query = "SELECT * FROM session_files ORDER BY session_id, path"
    with copy.catalog(read_only=True) as cat:
        before, before_files = cat.execute(query).rows, cat.execute(files_query).rows
    assert {h1.session_id, h2.session_id} <= {r[0] for r in before}
    (root / "_catalog" / "catalog.duckdb").unlink()
    mdcsql("catalog", "rebuild", root)
    with copy.catalog(read_only=True) as cat:
        assert cat.execute(query).rows == before
        assert cat.execute(files_query).rows == before_files
        row = cat.execute("SELECT state, total_events, tags FROM sessions WHERE session_id = ?",
                          [h1.session_id]).rows[0]
    assert row == ("Completed", 12_000, ["Q1"])


# ------------------------------------------------------------------------------ verify
def test_session_verify_catches_a_changed_byte_and_a_missing_file(tmp_path):
    root = tmp_path / "a"
    archive = Archive.init(root)
    with sessions.collecting(archive, "v") as h:
        collect(archive, [sim(["AAPL", "MSFT"], seed=3)], events=3_000)
    folder = root / "sessions" / h.session_id
    assert mdcsql("session", "verify", root, h.session_id).returncode == 0
    victim = root / sessions.get(archive, h.session_id).files[0]["path"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    proc = mdcsql("session", "verify", root, h.session_id, "--json", check=False)
    assert proc.returncode == 1
    problems = json.loads(proc.stdout)["problems"]
    assert {p["problem"] for p in problems} >= {"checksum"} and {p["path"] for p in problems} == \
        {victim.relative_to(root).as_posix()}
    assert subprocess.run(["sha256sum", "-c", "--quiet", "checksums.sha256"], cwd=folder,
                          capture_output=True).returncode != 0
    victim.unlink()
    proc = mdcsql("session", "verify", root, h.session_id, check=False)
    assert proc.returncode == 1 and "missing:" in proc.stderr and victim.name in proc.stderr
    assert sessions.report(archive, h.session_id, refresh_now=True)["session_report"]["files"]["all_verified"] is False


# ------------------------------------------------------------------------------ quality
def _trade(symbol, seq, ts):
    return {"type": "Trade", "symbol": symbol, "ts": ts, "seq": seq, "price": "10.00", "size": 1}


def test_quality_counts_gaps_sequence_errors_and_duplicates_from_the_manifests(tmp_path):
    archive = Archive.init(tmp_path / "a")
    with sessions.collecting(archive, "gappy", symbols=["AAPL", "MSFT", "TSLA"]) as h:
        w = archive.writer("feed")
        for seq in [*range(1, 11), 5, *range(15, 21)]:          # 11..14 missing, 5 repeated
            w.append(_trade("AAPL", seq, START + seq * 10**9))
        for seq in range(1, 6):                                   # day 1: 1..5, day 2: 8..10
            w.append(_trade("MSFT", seq, START + seq * 10**9))
        for seq in range(8, 11):
            w.append(_trade("MSFT", seq, START + DAY + seq * 10**9))
        w.flush()
    q = json.loads((tmp_path / "a" / "sessions" / h.session_id / "quality.json").read_text())
    assert (q["gaps_within_files"], q["gaps_between_files"], q["gaps_detected"]) == (1, 1, 2)
    assert q["missing_events"] == 4 + 2 and q["duplicates_dropped"] == 1 and q["sequence_errors"] == 0
    assert q["symbols_complete"] == [] and set(q["symbols_with_issues"]) == {"AAPL", "MSFT", "TSLA"}
    assert q["symbols_with_issues"]["TSLA"] == ["no events"]
    events = 16 + 8
    assert q["overall_score"] == round(events / (events + 6) * (2 / 3), 4)
    r = h.report["session_report"]
    assert r["quality"]["gaps_detected"] == 2 and r["quality"]["symbols_with_issues"] == 3
    assert "6 missing event(s)" in r["notes"] and "no events for TSLA" in r["notes"]
    assert r["coverage"]["trading_days"] == 2


def test_a_later_part_that_rewinds_is_a_sequence_error(tmp_path):
    archive = Archive.init(tmp_path / "a")
    with sessions.collecting(archive, "rewind") as h:
        w = archive.writer("feed")
        for seq in range(1, 6):
            w.append(_trade("AAPL", seq, START + seq * 10**9))
        archive.seal()                                            # part 1 sealed
        archive.close()
        w = archive.writer("feed")                                # a restarted collector: dedupe state is new
        for seq in range(3, 9):
            w.append(_trade("AAPL", seq, START + 100 * 10**9 + seq))
        w.flush()
    q = json.loads((tmp_path / "a" / "sessions" / h.session_id / "quality.json").read_text())
    assert q["sequence_errors"] == 1 and q["sequence_error_details"][0]["first_seq"] == 3
    assert q["components"]["sequence_integrity"] == 0.0
    assert len(manifests_of(tmp_path / "a", h.session_id)) == 2   # the reopened write path kept the session


# ------------------------------------------------------------------------------ pause, join, outcomes
def test_events_written_while_paused_belong_to_no_session(tmp_path):
    with Archive.init(tmp_path / "a") as archive:
        sid = sessions.create(archive, session_id="p", symbols=["AAPL"]).session_id
        sessions.start(archive, sid)
        w = archive.writer("feed")
        for seq in range(1, 4):
            w.append(_trade("AAPL", seq, START + seq * 10**9))
        sessions.pause(archive, sid)
        for seq in range(4, 6):
            w.append(_trade("AAPL", seq, START + seq * 10**9))
        sessions.resume(archive, sid)
        for seq in range(6, 10):
            w.append(_trade("AAPL", seq, START + seq * 10**9))
        s = sessions.end(archive, sid)
    assert s.statistics["total_events"] == 7 == sum(m["event_count"] for m in manifests_of(tmp_path / "a", sid))
    assert sum(m["event_count"] for m in manifests_of(tmp_path / "a", None)) == 2
    assert len(s.intervals) == 2 and all(iv["ended"] for iv in s.intervals)
    assert [h["state"] for h in s.history] == ["Scheduled", "Active", "Paused", "Active", "Completed"]
    q = json.loads((tmp_path / "a" / "sessions" / sid / "quality.json").read_text())
    assert q["gaps_between_files"] == 1 and q["missing_events"] == 2      # 4..5 went to no session


def test_a_collector_joins_a_session_started_from_the_cli(tmp_path):
    root = tmp_path / "a"
    Archive.init(root)
    sid = json.loads(mdcsql("session", "create", root, "--id", "day1", "--type", "daily", "--symbols", "AAPL",
                            "--tag", "Q1", "--json").stdout)["session_id"]
    assert mdcsql("session", "start", root, sid).stdout.startswith("day1: Active Daily session")
    for run in range(2):                         # two collector runs join it
        archive = Archive.open(root)
        with sessions.collecting(archive) as h:
            collect(archive, [sim(["AAPL"], seed=10 + run, day=run)], events=1_000)
        assert h.joined and h.session_id == sid and sessions.get(archive, sid).state == S.ACTIVE
    shown = json.loads(mdcsql("session", "show", root, sid, "--json").stdout)
    assert shown["holder"]["status"] == "none" and shown["state"] == "Active"
    out = mdcsql("session", "end", root, sid, "--note", "day done").stdout
    assert "Completed" in out and "2,000 events" in out
    r = json.loads(mdcsql("session", "report", root, sid, "--json").stdout)["session_report"]
    assert r["volume"]["total_events"] == 2_000 == sum(independent_counts(root, sid)["events"].values())
    assert r["notes"].startswith("day done")
    proc = mdcsql("session", "pause", root, sid, check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("error: session day1 is Completed; it cannot become Paused")


def test_block_outcomes_exception_ctrl_c_and_continuous(tmp_path):
    with Archive.init(tmp_path / "a") as archive:
        def run(name, exc, **kw):
            with pytest.raises(type(exc)):
                with sessions.collecting(archive, name, **kw) as h:
                    archive.writer(name).append(_trade("AAPL", 1, START))       # a source per run: no duplicate
                    raise exc
            return sessions.get(archive, h.session_id), h
        failed, _ = run("boom", RuntimeError("disk on fire"))
        assert failed.state == S.FAILED and failed.statistics["total_events"] == 1
        assert failed.history[-1]["note"] == "RuntimeError: disk on fire"
        cancelled, h = run("stopped", KeyboardInterrupt())
        assert cancelled.state == S.CANCELLED and cancelled.statistics["total_events"] == 1
        assert h.report["session_report"]["notes"].startswith("interrupted (Ctrl-C)")
        continuous, _ = run("ticker", KeyboardInterrupt(), type="Continuous")
        assert continuous.state == S.COMPLETED
        assert not [p for p in data_files(tmp_path / "a") if p.name.endswith(".jsonl")]


def test_a_seal_that_fails_at_the_end_marks_the_session_failed(tmp_path, monkeypatch):
    from mdcsql.ingest.writer import Ingestor
    archive = Archive.init(tmp_path / "a")
    with pytest.raises(OSError, match="disk full"):
        with sessions.collecting(archive, "unlucky") as h:
            archive.writer("feed").append(_trade("AAPL", 1, START))

            def boom(self, **kw):
                raise OSError("disk full")
            monkeypatch.setattr(Ingestor, "seal", boom)
    monkeypatch.undo()
    s = sessions.get(archive, h.session_id)
    assert s.state == S.FAILED and s.history[-1]["note"] == "sealing failed: OSError: disk full"
    assert not (tmp_path / "a" / "sessions" / h.session_id / "HOLDER").exists()
    archive.close()


def test_automatic_ids_are_dated_and_unique(tmp_path):
    with Archive.init(tmp_path / "a") as archive:
        ids = []
        for _ in range(3):
            with sessions.collecting(archive) as h:
                pass
            ids.append(h.session_id)
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert ids == [f"{today}-regular", f"{today}-regular-2", f"{today}-regular-3"]
    assert sessions.get(archive, ids[0]).name == f"Regular Trading Session - {today}"


# ------------------------------------------------------------------------------ crashes and Ctrl-C
_COLLECTOR = textwrap.dedent("""
    import sys
    from mdcsql.archive import Archive
    from mdcsql.collect import collect
    from mdcsql import sessions
    from mdcsql.sources.sim import SimSource
    root, mode = sys.argv[1], sys.argv[2]
    archive = Archive.open(root)
    src = [SimSource(["AAPL", "MSFT", "BRK/B"], seed=5, start_ns={start}, rate=3000)]
    ack = lambda a: print(f"ACK {{a.events}}", flush=True)
    if mode == "plumbing":
        with_session = sessions.collect(archive, src, session="ctrl-c run", seconds=60, on_ack=ack,
                                        symbols=["AAPL", "MSFT", "BRK/B"])
        print("DONE", with_session["session"], with_session["interrupted"], flush=True)
    else:
        with sessions.collecting(archive, "doomed", symbols=["AAPL", "MSFT", "BRK/B"]) as h:
            print("SESSION", h.session_id, flush=True)
            collect(archive, src, seconds=60, on_ack=ack)
""").format(start=START)


def _spawn(tmp_path, root, mode):
    script = tmp_path / "collector.py"
    script.write_text(_COLLECTOR)
    proc = subprocess.Popen([PYTHON, str(script), str(root), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=python_env(), text=True)
    lines: list[str] = []
    acked = threading.Event()

    def reader():
        for line in proc.stdout:
            lines.append(line.strip())
            if line.startswith("ACK") and int(line.split()[1]) > 3_000:
                acked.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    assert acked.wait(60), f"collector did not get going: {proc.stderr.read() if proc.poll() is not None else lines}"
    return proc, lines, thread


def test_kill_9_with_an_active_session_is_marked_failed_at_the_next_start(tmp_path):
    root = tmp_path / "a"
    Archive.init(root)
    proc, lines, _ = _spawn(tmp_path, root, "session")
    time.sleep(0.7)
    seen = list(lines)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    sid = next(l.split()[1] for l in seen if l.startswith("SESSION"))
    acked = max(int(l.split()[1]) for l in seen if l.startswith("ACK"))
    archive = Archive.open(root)
    shown = sessions.show(archive, sid)
    assert shown["state"] == "Active" and shown["holder"]["status"] == "stale"
    with sessions.collecting(archive, "after") as h:            # the next start
        pass
    dead = sessions.get(archive, sid)
    assert dead.state == S.FAILED and "died while the session was Active" in dead.history[-1]["note"]
    assert dead.ended_at <= datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    stored = independent_counts(root, sid)
    total = sum(stored["events"].values())
    assert total >= acked                                      # nothing acknowledged is lost
    assert dead.statistics["total_events"] == total           # exact counts from the files
    assert sum(len(events_in(p)) for p in data_files(root)) == total          # every event is the session's
    assert dead.statistics["events_by_type"] == dict(sorted(stored["events"].items()))
    assert h.report["session_report"]["volume"]["total_events"] == 0
    report = json.loads((root / "sessions" / sid / "report.json").read_text())["session_report"]
    assert report["volume"]["total_events"] == total and report["files"]["all_verified"] is True
    assert sessions.verify(archive, sid).ok
    assert not (root / "sessions" / sid / "HOLDER").exists()
    archive.close()
    assert mdcsql("verify", root).returncode == 0


def test_ctrl_c_ends_the_session_cleanly(tmp_path):
    root = tmp_path / "a"
    Archive.init(root)
    proc, lines, reader = _spawn(tmp_path, root, "plumbing")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 0, proc.stderr.read()
    reader.join(10)
    done = lines[-1].split()
    assert done[0] == "DONE" and done[2] == "True"
    sid = done[1]
    archive = Archive.open(root)
    s = sessions.get(archive, sid)
    assert s.state == S.CANCELLED and s.name == "ctrl-c run"
    assert not [p for p in data_files(root) if p.name.endswith(".jsonl")]          # sealed
    total = sum(independent_counts(root, sid)["events"].values())
    assert total > 3_000 and s.statistics["total_events"] == total
    report = json.loads((root / "sessions" / sid / "report.json").read_text())["session_report"]
    assert report["volume"]["total_events"] == total and report["notes"].startswith("interrupted (Ctrl-C)")
    assert not (root / "sessions" / sid / "HOLDER").exists()


# ------------------------------------------------------------------------------ tags, docs
def test_tag_categories_and_metadata(tmp_path):
    root = tmp_path / "a"
    with Archive.init(root) as archive:
        sessions.create(archive, session_id="t", tags=["A"])
    mdcsql("session", "tag", root, "t", "B", "C", "--remove", "A", "--category", "Regular", "--meta", "desk=eq",
           "--meta", "note=x")
    mdcsql("session", "tag", root, "t", "--meta", "note=")
    s = sessions.get(Archive.open(root), "t")
    assert (s.tags, s.categories, s.metadata) == (["B", "C"], ["Regular"], {"desk": "eq"})
    rows = sessions.list_sessions(Archive.open(root), tag="C")
    assert [r["session_id"] for r in rows] == ["t"] and rows[0]["metadata"] == {"desk": "eq"}


def test_docs_show_the_real_transition_table_and_report_shape():
    doc = (REPO / "docs" / "sessions.md").read_text()
    table = re.search(r"\| From \| May become \|\n\|[-| ]+\|\n((?:\|.*\|\n)+)", doc).group(1)
    documented = {}
    for row in table.strip().splitlines():
        state, targets = [c.strip() for c in row.strip("|").split("|")]
        documented[S(state.strip("`"))] = {S(t.strip("` ")) for t in targets.split(",") if t.strip() not in ("—", "")}
    assert documented == {k: set(v) for k, v in TRANSITIONS.items()}
    example = json.loads(re.search(r"### report\.json\n.*?```json\n(.*?)```", doc, re.S).group(1))
    assert shape(example) == shape(DESIGN_REPORT)
