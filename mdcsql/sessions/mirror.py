"""The catalog's copy of the sessions: tables ``sessions`` and ``session_files`` (migration 002).

Derived from ``sessions/*/manifest.json`` alone (invariant 1). :func:`mirror_sessions` upserts the
sessions whose manifest changed since the catalog last saw it (by the manifest's SHA-256), drops
those whose folder is gone, and with ``forget=True`` (a catalog rebuild) re-reads every one.
Call it through :meth:`mdcsql.catalog.Catalog.sync_sessions`, which holds the catalog's write lock.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from mdcsql.layout import SESSIONS_DIR
from mdcsql.sessions.model import Session, parse_iso
from mdcsql.sessions.store import MANIFEST
from mdcsql.sql import load_sql

__all__ = ["mirror_sessions", "session_row"]


def _naive(iso: str | None):
    dt = parse_iso(iso)
    return None if dt is None else dt.replace(tzinfo=None)


def session_row(session: Session, manifest_sha256: str) -> dict:
    st = session.statistics or {}
    return {
        "session_id": session.session_id, "name": session.name, "type": session.type.value,
        "state": session.state.value, "created_at": _naive(session.created_at),
        "started_at": _naive(session.started_at), "ended_at": _naive(session.ended_at),
        "active_seconds": st.get("duration_seconds"), "symbols": list(session.symbols),
        "tags": list(session.tags), "categories": list(session.categories),
        "metadata": json.dumps(session.metadata, sort_keys=True), "config": json.dumps(session.config, sort_keys=True),
        "merged_from": list(session.merged_from), "file_count": len(session.files),
        "total_events": st.get("total_events", 0), "size_bytes": st.get("total_bytes_compressed", 0),
        "raw_bytes": st.get("total_bytes", 0), "gaps_detected": st.get("gaps_detected", 0),
        "sequence_errors": st.get("sequence_errors", 0), "duplicates_dropped": st.get("duplicates_dropped", 0),
        "quality_score": st.get("quality_score"), "notes": session.notes,
        "updated_at": _naive(session.updated_at), "manifest_sha256": manifest_sha256,
    }


def _on_disk(root: Path) -> dict[str, tuple[str, bytes]]:
    """session_id -> (sha256, bytes) of every sessions/<id>/manifest.json."""
    out = {}
    base = root / SESSIONS_DIR
    if base.is_dir():
        for entry in os.scandir(base):
            path = Path(entry.path) / MANIFEST
            if entry.is_dir() and path.is_file():
                data = path.read_bytes()
                out[entry.name] = (hashlib.sha256(data).hexdigest(), data)
    return out


def mirror_sessions(catalog, *, forget: bool = False) -> int:
    """Bring the session tables in line with the tree; return how many sessions were (re)written.

    An unreadable manifest is skipped (its old row, if any, stays until it is readable again).
    """
    disk = _on_disk(catalog.root)
    known = {} if forget else {r[0]: r[1] for r in catalog.execute(load_sql("queries/session_signatures.sql")).rows}
    rows, files = [], []
    for sid, (sha, data) in sorted(disk.items()):
        if known.get(sid) == sha:
            continue
        try:
            session = Session.from_dict(json.loads(data))
        except (ValueError, KeyError, TypeError):
            continue
        if session.session_id != sid:
            continue
        rows.append(session_row(session, sha))
        files.append((sid, [f["path"] for f in session.files]))
    gone = [] if forget else sorted(set(known) - set(disk))
    if not (rows or gone or forget):
        return 0
    with catalog.transaction():
        if forget:
            catalog.execute(load_sql("queries/session_forget_all.sql"))
        for sid in gone:
            catalog.execute(load_sql("queries/session_files_clear.sql"), {"session_id": sid})
            catalog.execute(load_sql("queries/session_delete.sql"), {"session_id": sid})
        for row in rows:
            catalog.execute(load_sql("queries/session_upsert.sql"), row)
        for sid, paths in files:
            catalog.execute(load_sql("queries/session_files_clear.sql"), {"session_id": sid})
            if paths:
                catalog.execute(load_sql("queries/session_files_insert.sql"), {"session_id": sid, "paths": paths})
    return len(rows) + len(gone)
