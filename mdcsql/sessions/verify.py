"""Verify one session: recompute checksums and counts of its files against their manifests and the
session's own record (file list, statistics, ``checksums.sha256``).

Reuses :mod:`mdcsql.verify` (its report shape and the one-pass decompress-hash-count helper), so
``mdcsql session verify`` and ``mdcsql verify`` agree on what a problem is.
"""

from __future__ import annotations

from mdcsql.durable import read_json
from mdcsql.ingest.seal import MANIFEST_SUFFIX, sha256_file
from mdcsql.sessions.manager import session_manifests, store_of
from mdcsql.sessions.model import TERMINAL
from mdcsql.sessions.report import checksums_text
from mdcsql.sessions.store import CHECKSUMS
from mdcsql.verify import VerifyReport, _raw_digest

__all__ = ["verify"]


def verify(archive, session_id: str, *, on_progress=None) -> VerifyReport:
    """Every file the session lists: present, stored bytes = its manifest and the session's entry,
    decompressed bytes and event count = its manifest; the session's totals and checksums file =
    its files; and (not merged) no sealed file of the session left out of its list."""
    root = archive.root
    store = store_of(archive)
    session = store.load(session_id)
    report = VerifyReport()

    def problem(path: str, kind: str, detail: str) -> None:
        report.problems.append({"path": path, "problem": kind, "detail": detail})

    listed = {f["path"]: f for f in session.files}
    for rel, entry in sorted(listed.items()):
        path = root / rel
        if not path.exists():
            problem(rel, "missing", "listed in the session, not in the tree")
            continue
        try:
            m = read_json(root / (rel + MANIFEST_SUFFIX))
        except (OSError, ValueError):
            problem(rel, "manifest", "the file's manifest is missing or unreadable")
            continue
        sha, size = sha256_file(path)
        report.files_checked += 1
        report.bytes_checked += size
        if sha != m["sha256"] or sha != entry["sha256"]:
            problem(rel, "checksum", f"sha256 {sha[:12]}… != manifest {m['sha256'][:12]}… / session {entry['sha256'][:12]}…")
        if size != m["size_bytes"]:
            problem(rel, "size", f"{size} bytes != manifest {m['size_bytes']}")
        if m.get("event_count") != entry.get("event_count"):
            problem(rel, "session", f"manifest says {m.get('event_count')} events, the session recorded "
                                    f"{entry.get('event_count')}")
        if not session.merged_from and m.get("session_id") != session_id:
            problem(rel, "session", f"the file's manifest names session {m.get('session_id')!r}")
        try:
            raw_sha, _raw_size, lines = _raw_digest(path)
        except Exception as exc:     # a corrupt compressed stream is a finding, not a crash
            problem(rel, "unreadable", f"cannot decompress: {exc}")
        else:
            report.events_checked += lines
            if raw_sha != m["raw_sha256"]:
                problem(rel, "content", "decompressed bytes differ from the manifest's raw_sha256")
            if lines != m["event_count"]:
                problem(rel, "count", f"{lines} events != manifest {m['event_count']}")
        if on_progress:
            on_progress(report.files_checked)
    stats = session.statistics or {}
    recorded = sum(f.get("event_count") or 0 for f in session.files)
    if stats.get("total_events", 0) != recorded:
        problem(store.relpath(session_id, "manifest.json"), "statistics",
                f"total_events {stats.get('total_events')} != {recorded} in its files")
    sums = store.folder(session_id) / CHECKSUMS
    if not sums.exists() or sums.read_text() != checksums_text(session.files):
        problem(store.relpath(session_id, CHECKSUMS), "checksums", "missing or not the session's file list")
    if not session.merged_from and session.state in TERMINAL:
        for m in session_manifests(root, session, scan=True):
            if m["path"] not in listed:
                problem(m["path"], "unlisted", "sealed for this session but missing from its file list "
                                               "(run: mdcsql session report ROOT ID --refresh)")
    return report
