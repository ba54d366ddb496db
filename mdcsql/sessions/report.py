"""Statistics, quality and the session report — computed only from what was really written.

Input is the list of the session's sealed files' manifests (``*.manifest.json`` beside each data
file): never an in-memory counter. Everything here is a pure function of those manifests (plus
the session record for names and timing), so recomputing gives the same numbers.

Quality (``quality.json``, docs/sessions.md explains each field):

- *gaps*: the missing seq ranges inside each file (its manifest's ``gaps``) plus the jumps between
  consecutive files of one stream (source, symbol, type): ``next.first_seq > prev.last_seq + 1``;
- *sequence errors*: consecutive files of one stream **and period** whose seqs go backwards or
  repeat (``next.first_seq <= prev.last_seq``) — a later part re-delivering or rewinding. A stream
  whose seq restarts in a new period is a reset, not an error;
- *duplicates dropped*: the writer's count (each manifest's ``duplicates_dropped``);
- ``overall_score = completeness × symbol_coverage × sequence_integrity`` where completeness =
  events / (events + missing seqs), symbol_coverage = symbols with events / symbols expected
  (the session's ``symbols`` plus those seen), sequence_integrity = 1 − errors / file boundaries
  checked. 1.0 is a clean session; each factor is in [0, 1].
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mdcsql.errors import MdcsqlError
from mdcsql.sessions.model import Session, parse_iso

__all__ = ["FILE_FIELDS", "file_entry", "statistics", "quality", "session_report", "checksums_text",
           "human_bytes", "human_duration"]

#: what the session manifest keeps of each file's manifest
FILE_FIELDS = ("path", "symbol", "type", "source", "period", "part", "sha256", "size_bytes", "raw_bytes",
               "event_count", "first_seq", "last_seq", "first_ts", "last_ts", "gap_count",
               "duplicates_dropped", "session_id")
_REPORT_TYPES = {"Trade": "trades", "BboQuote": "quotes", "L2Snapshot": "l2_snapshots"}
_MAX_DETAILS = 1000


def file_entry(manifest: dict) -> dict:
    return {k: manifest.get(k) for k in FILE_FIELDS}


def _stream(m: dict) -> tuple:
    return (m.get("source"), m.get("symbol"), m.get("type"))


def statistics(manifests: list[dict], *, active_seconds: float, quality_doc: dict) -> dict:
    """The design's SessionStatistics, from the files' manifests (bytes: raw = JSONL, compressed = stored)."""
    events = sum(m["event_count"] for m in manifests)
    raw = sum(m["raw_bytes"] for m in manifests)
    stored = sum(m["size_bytes"] for m in manifests)
    by = {dim: (Counter(), Counter(), Counter()) for dim in ("symbol", "type", "source")}
    for m in manifests:
        for dim, (ev, rb, sb) in by.items():
            ev[m[dim]] += m["event_count"]
            rb[m[dim]] += m["raw_bytes"]
            sb[m[dim]] += m["size_bytes"]
    first = min((m["first_ts"] for m in manifests if m.get("first_ts") is not None), default=None)
    last = max((m["last_ts"] for m in manifests if m.get("last_ts") is not None), default=None)
    out = {
        "file_count": len(manifests), "total_events": events, "total_bytes": raw,
        "total_bytes_compressed": stored,
        "compression_ratio": round(raw / stored, 3) if stored else None,
    }
    for dim, (ev, rb, sb) in by.items():
        out[f"events_by_{dim}"] = dict(sorted(ev.items()))
        out[f"raw_bytes_by_{dim}"] = dict(sorted(rb.items()))
        out[f"compressed_bytes_by_{dim}"] = dict(sorted(sb.items()))
    out.update({
        "gaps_detected": quality_doc["gaps_detected"], "gaps_filled": quality_doc["gaps_auto_filled"],
        "missing_events": quality_doc["missing_events"], "sequence_errors": quality_doc["sequence_errors"],
        "duplicates_dropped": quality_doc["duplicates_dropped"], "quality_score": quality_doc["overall_score"],
        "duration_seconds": round(active_seconds, 3),
        "events_per_second": round(events / active_seconds, 3) if active_seconds > 0 else None,
        "bytes_per_second": round(raw / active_seconds, 3) if active_seconds > 0 else None,
        "first_event_ts": first, "last_event_ts": last,
    })
    return out


def quality(manifests: list[dict], *, expected_symbols=()) -> dict:
    """The measured quality summary of ``quality.json`` (see the module docstring)."""
    issues: dict[str, list[str]] = defaultdict(list)
    gaps, seq_errors = [], []
    within = between = missing = 0
    by_stream: dict[tuple, list[dict]] = defaultdict(list)
    for m in manifests:
        by_stream[_stream(m)].append(m)
        for lo, hi in m.get("gaps") or ():
            within += 1
            missing += hi - lo + 1
            gaps.append({"source": m["source"], "symbol": m["symbol"], "type": m["type"], "from_seq": lo,
                         "to_seq": hi, "where": "in file", "path": m["path"]})
    boundaries = 0
    for (source, symbol, etype), files in by_stream.items():
        files.sort(key=lambda m: (m.get("first_ts") or 0, m.get("period") or "", m.get("part") or 1))
        for prev, nxt in zip(files, files[1:]):
            if prev.get("last_seq") is None or nxt.get("first_seq") is None:
                continue
            boundaries += 1
            if nxt["first_seq"] > prev["last_seq"] + 1:
                between += 1
                missing += nxt["first_seq"] - prev["last_seq"] - 1
                gaps.append({"source": source, "symbol": symbol, "type": etype, "from_seq": prev["last_seq"] + 1,
                             "to_seq": nxt["first_seq"] - 1, "where": "between files",
                             "path": nxt["path"]})
            elif nxt["first_seq"] <= prev["last_seq"] and nxt.get("period") == prev.get("period"):
                seq_errors.append({"source": source, "symbol": symbol, "type": etype,
                                   "previous_last_seq": prev["last_seq"], "first_seq": nxt["first_seq"],
                                   "path": nxt["path"], "previous_path": prev["path"]})
    for g in gaps:
        issues[g["symbol"]].append(f"{g['type']} seq {g['from_seq']}..{g['to_seq']} missing ({g['where']})")
    for e in seq_errors:
        issues[e["symbol"]].append(f"{e['type']} seq went back from {e['previous_last_seq']} "
                                   f"to {e['first_seq']} ({e['path']})")
    seen = sorted({m["symbol"] for m in manifests})
    expected = sorted(set(expected_symbols) | set(seen))
    for s in expected:
        if s not in seen:
            issues[s].append("no events")
    events = sum(m["event_count"] for m in manifests)
    completeness = events / (events + missing) if events + missing else 1.0
    coverage = len(seen) / len(expected) if expected else 1.0
    integrity = 1.0 - len(seq_errors) / boundaries if boundaries else 1.0
    score = round(completeness * coverage * integrity, 4)
    return {
        "quality_version": 1,
        "overall_score": score,
        "components": {"completeness": round(completeness, 6), "symbol_coverage": round(coverage, 6),
                       "sequence_integrity": round(integrity, 6)},
        "events": events, "missing_events": missing,
        "gaps_detected": within + between, "gaps_within_files": within, "gaps_between_files": between,
        "gaps_auto_filled": 0,
        "sequence_errors": len(seq_errors), "file_boundaries_checked": boundaries,
        "duplicates_dropped": sum(m.get("duplicates_dropped") or 0 for m in manifests),
        "files_without_seq": sum(1 for m in manifests if m.get("first_seq") is None),
        "symbols_expected": expected,
        "symbols_complete": [s for s in seen if s not in issues],
        "symbols_with_issues": {s: issues[s][:20] for s in sorted(issues)},
        "gaps": gaps[:_MAX_DETAILS], "sequence_error_details": seq_errors[:_MAX_DETAILS],
        "details_truncated": len(gaps) > _MAX_DETAILS or len(seq_errors) > _MAX_DETAILS,
    }


def human_bytes(n: int) -> str:
    """``2_500_000_000`` -> ``'2.5 GB'``; ``320_000_000`` -> ``'320 MB'`` (decimal units)."""
    value, unit = float(n), "B"
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            break
        value /= 1000
    if unit == "B":
        return f"{int(n)} B"
    return f"{value:.0f} {unit}" if value >= 100 else f"{value:.1f} {unit}"


def human_duration(seconds: float) -> str:
    """``23400`` -> ``'6h 30m 00s'``."""
    s = int(round(seconds))
    return f"{s // 3600}h {s % 3600 // 60:02d}m {s % 60:02d}s"


def _zone(session: Session):
    name = (session.config or {}).get("timezone") or "UTC"
    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError):
        raise MdcsqlError(f"session {session.session_id}: unknown timezone {name!r} in its config "
                          "(use an IANA name such as America/New_York)") from None


def _local(iso: str | None, zone) -> str | None:
    dt = parse_iso(iso)
    return None if dt is None else dt.astimezone(zone).isoformat(timespec="seconds")


def _trading_days(manifests: list[dict], zone) -> int:
    days = set()
    for m in manifests:
        if m.get("first_ts") is None:
            continue
        a = datetime.fromtimestamp(m["first_ts"] / 1e9, timezone.utc).astimezone(zone).date()
        b = datetime.fromtimestamp(m["last_ts"] / 1e9, timezone.utc).astimezone(zone).date()
        days.update(a.fromordinal(o) for o in range(a.toordinal(), b.toordinal() + 1))
    return len(days)


def _market_hours(session: Session, manifests: list[dict], zone, zone_name: str) -> str | None:
    configured = (session.config or {}).get("market_hours")
    if configured:
        return str(configured)
    firsts = [m["first_ts"] for m in manifests if m.get("first_ts") is not None]
    if not firsts:
        return None
    lo = datetime.fromtimestamp(min(firsts) / 1e9, timezone.utc).astimezone(zone)
    hi = datetime.fromtimestamp(max(m["last_ts"] for m in manifests if m.get("last_ts") is not None) / 1e9,
                                timezone.utc).astimezone(zone)
    return f"{lo:%H:%M}-{hi:%H:%M} {'UTC' if zone_name == 'UTC' else hi.tzname()}"


def _notes(session: Session, q: dict) -> str:
    """The session's own notes, the reason for its current state (if one was given), then what the
    files show."""
    parts = [session.notes] if session.notes else []
    reason = next((h.get("note") for h in reversed(session.history) if h.get("state") == session.state.value), None)
    if reason and reason not in parts:
        parts.append(reason)
    problems = []
    if q["gaps_detected"]:
        problems.append(f"{q['gaps_detected']} gap(s), {q['missing_events']} missing event(s)")
    if q["sequence_errors"]:
        problems.append(f"{q['sequence_errors']} sequence error(s)")
    if q["duplicates_dropped"]:
        problems.append(f"{q['duplicates_dropped']} duplicate(s) dropped")
    absent = [s for s, why in q["symbols_with_issues"].items() if why == ["no events"]]
    flawed = [s for s in q["symbols_with_issues"] if s not in absent]
    if absent:
        problems.append(f"no events for {', '.join(absent[:10])}")
    if flawed:
        problems.append(f"issues in {', '.join(flawed[:10])}")
    parts.append("; ".join(problems) if problems else "Clean session, no issues detected")
    return ". ".join(parts)


def session_report(session: Session, manifests: list[dict], stats: dict, q: dict, *,
                   all_verified: bool, manifest_path: str) -> dict:
    """The design's ``session_report`` document — exactly its keys and nesting."""
    zone, zone_name = _zone(session)
    by_type = stats["events_by_type"]
    return {"session_report": {
        "session_id": session.session_id,
        "name": session.name,
        "type": session.type.value,
        "timing": {
            "started": _local(session.started_at, zone),
            "ended": _local(session.ended_at, zone),
            "duration": human_duration(stats["duration_seconds"]),
        },
        "coverage": {
            "symbols": len(stats["events_by_symbol"]),
            "trading_days": _trading_days(manifests, zone),
            "market_hours": _market_hours(session, manifests, zone, zone_name),
        },
        "volume": {
            "total_events": stats["total_events"],
            **{key: by_type.get(etype, 0) for etype, key in _REPORT_TYPES.items()},
            "raw_bytes": human_bytes(stats["total_bytes"]),
            "compressed_bytes": human_bytes(stats["total_bytes_compressed"]),
            "compression_ratio": f"{stats['compression_ratio']:.1f}x" if stats["compression_ratio"] else None,
        },
        "quality": {
            "overall_score": q["overall_score"],
            "gaps_detected": q["gaps_detected"],
            "gaps_auto_filled": q["gaps_auto_filled"],
            "sequence_errors": q["sequence_errors"],
            "symbols_complete": len(q["symbols_complete"]),
            "symbols_with_issues": len(q["symbols_with_issues"]),
        },
        "files": {
            "count": len(manifests),
            "all_verified": all_verified,
            "manifest_path": manifest_path,
        },
        "notes": _notes(session, q),
    }}


def checksums_text(manifests: list[dict]) -> str:
    """``sha256sum`` format, each path relative to ``sessions/<id>/`` (``../../live/…``)."""
    return "".join(f"{m['sha256']}  ../../{m['path']}\n" for m in sorted(manifests, key=lambda m: m["path"]))
