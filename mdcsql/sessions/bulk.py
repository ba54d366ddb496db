"""Operations over several sessions: compare two, merge several into a new one."""

from __future__ import annotations

import os
from collections import Counter

from mdcsql.errors import MdcsqlError
from mdcsql.sessions.manager import _new_id, _unique, mirror, refresh, session_manifests, store_of
from mdcsql.sessions.model import TERMINAL, Session, SessionState, SessionType, now_iso, validate_id
from mdcsql.sessions.report import quality

__all__ = ["compare", "merge"]

_QUALITY_KEYS = ("overall_score", "gaps_detected", "missing_events", "sequence_errors", "duplicates_dropped")


def _diff(a, b) -> dict:
    return {"a": a, "b": b, "difference": None if a is None or b is None else round(b - a, 6)}


def _by(a: dict, b: dict) -> dict:
    return {k: _diff(a.get(k, 0), b.get(k, 0)) for k in sorted(set(a) | set(b))}


def compare(archive, a: str, b: str) -> dict:
    """Differences between sessions ``a`` and ``b``: symbols, counts by type / symbol / source,
    totals, quality, and which files they share (``difference`` is b − a)."""
    store = store_of(archive)
    sa, sb = store.load(a), store.load(b)
    qa, qb = (quality(session_manifests(archive.root, s, scan=False), expected_symbols=s.symbols)
              for s in (sa, sb))
    ta, tb = sa.statistics or {}, sb.statistics or {}
    sym_a, sym_b = set(ta.get("events_by_symbol", {})), set(tb.get("events_by_symbol", {}))
    fa, fb = {f["path"] for f in sa.files}, {f["path"] for f in sb.files}
    return {
        "a": sa.summary(), "b": sb.summary(),
        "symbols": {"only_in_a": sorted(sym_a - sym_b), "only_in_b": sorted(sym_b - sym_a),
                    "in_both": sorted(sym_a & sym_b)},
        "events_by_type": _by(ta.get("events_by_type", {}), tb.get("events_by_type", {})),
        "events_by_symbol": _by(ta.get("events_by_symbol", {}), tb.get("events_by_symbol", {})),
        "events_by_source": _by(ta.get("events_by_source", {}), tb.get("events_by_source", {})),
        "totals": {k: _diff(ta.get(k), tb.get(k)) for k in (
            "total_events", "file_count", "total_bytes", "total_bytes_compressed", "compression_ratio",
            "duration_seconds", "events_per_second")},
        "quality": {**{k: _diff(qa[k], qb[k]) for k in _QUALITY_KEYS},
                    "symbols_with_issues": {"a": sorted(qa["symbols_with_issues"]),
                                            "b": sorted(qb["symbols_with_issues"])}},
        "files": {"shared": len(fa & fb), "only_in_a": len(fa - fb), "only_in_b": len(fb - fa)},
    }


def merge(archive, session_ids, *, name: str | None = None, session_id: str | None = None,
          tags=()) -> Session:
    """A new session whose files are the union of the given sessions' files; those stay untouched.

    The sessions must be final (Completed, Failed or Cancelled). The merged session is created
    Completed (it collects nothing); its type is theirs when they agree, else Custom; symbols,
    tags and categories are unions; its active time is the sum of theirs.
    """
    ids = list(dict.fromkeys(session_ids))
    if len(ids) < 2:
        raise MdcsqlError("merge needs at least two different sessions")
    store = store_of(archive)
    with store.locked():
        sources = [store.load(validate_id(s)) for s in ids]
        for s in sources:
            if s.state not in TERMINAL:
                raise MdcsqlError(f"session {s.session_id} is {s.state}; merge only final sessions "
                                  "(end it first)")
        sid = validate_id(session_id) if session_id is not None else _new_id(store, name, suffix="merged")
        if store.exists(sid):
            raise MdcsqlError(f"session {sid} already exists in {archive.root}; choose another id")
        files = {}
        for s in sources:
            for f in s.files:
                files.setdefault(f["path"], f)
        types = {s.type for s in sources}
        at = now_iso()
        merged = Session(
            sid, name or f"Merge of {', '.join(ids)}", types.pop() if len(types) == 1 else SessionType.CUSTOM,
            state=SessionState.COMPLETED,
            started_at=min((s.started_at for s in sources if s.started_at), default=None),
            ended_at=max((s.ended_at for s in sources if s.ended_at), default=None),
            symbols=sorted({x for s in sources for x in s.symbols}),
            tags=_unique([*(t for s in sources for t in s.tags), *tags]),
            categories=_unique(c for s in sources for c in s.categories),
            metadata={k: v for s in sources for k, v in s.metadata.items()},
            merged_from=ids, intervals=[iv for s in sources for iv in s.intervals],
            files=[files[p] for p in sorted(files)],
            history=[{"state": SessionState.COMPLETED.value, "at": at, "pid": os.getpid(),
                      "note": f"merged from {', '.join(ids)}"}])
        refresh(archive, store, merged, scan=False)
    mirror(archive)
    return merged
