"""Export history (``_catalog/exports.jsonl``), incremental watermarks and cron schedules.

Every completed export appends one record to ``ROOT/_catalog/exports.jsonl`` (the archive's
append-only journal helper: fsync'd, torn lines skipped). The record keeps the request, files,
counts and, per event type, a watermark: ``max_ts`` / ``sealed_at`` of the catalogued files it
read and, for incremental exports, ``marks`` — the latest ts written per (symbol, source).

Incremental rule (``--incremental NAME``): a run exports, per (symbol, source), the rows with
``previous mark < ts <= mark at the start of this run`` (pairs never exported before: everything up
to their mark). Rows arriving later with a ts at or below a recorded mark (late data) are not
picked up; a plain export of that range covers them.

Schedules (``--schedule CRON``) are stored in ``ROOT/_catalog/export_schedules.json`` with the
export definition; :func:`schedules` shows each one's next run (croniter). Running them at those
times is the scheduler's job (ops issue), which calls :func:`mdcsql.export.exporter.run_export`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from mdcsql.durable import atomic_write_json, read_json
from mdcsql.errors import MdcsqlError
from mdcsql.lifecycle import journal
from mdcsql.layout import CATALOG_DIR

__all__ = ["HISTORY", "SCHEDULES_FILE", "append", "records", "last_run", "previous_marks", "save_schedule",
           "schedules", "next_run"]

HISTORY = "exports"
SCHEDULES_FILE = "export_schedules.json"


def append(root: Path, record: dict) -> None:
    journal.append(journal.journal_path(root, HISTORY), record)


def records(root: Path) -> list[dict]:
    """Every recorded export, oldest first (unreadable lines are skipped)."""
    recs, _offset, _problems = journal.read(journal.journal_path(root, HISTORY))
    return recs


def last_run(root: Path, name: str) -> dict | None:
    """The latest record of incremental export ``name``."""
    runs = [r for r in records(root) if r.get("incremental") == name]
    return runs[-1] if runs else None


def previous_marks(record: dict | None) -> dict[str, dict[tuple[str, str], int]]:
    """type -> {(symbol, source): last ts ns} of a history record."""
    out: dict[str, dict[tuple[str, str], int]] = {}
    for etype, wm in ((record or {}).get("watermark") or {}).items():
        out[etype] = {(s, src): int(ns) for s, src, ns in wm.get("marks") or []}
    return out


def _schedules_path(root: Path) -> Path:
    return Path(root) / CATALOG_DIR / SCHEDULES_FILE


def next_run(cron: str, after: datetime | None = None) -> datetime:
    from croniter import croniter
    base = after or datetime.now(timezone.utc)
    if not croniter.is_valid(cron):
        raise MdcsqlError(f"--schedule {cron!r} is not a cron expression (e.g. '0 6 * * *': daily at 06:00 UTC)")
    return croniter(cron, base).get_next(datetime)


def save_schedule(root: Path, name: str, cron: str, request: dict) -> dict:
    """Store (or replace) schedule ``name``: the design's ExportSchedule(Name, CronExpression,
    Template, Incremental, Destinations)."""
    nxt = next_run(cron)
    path = _schedules_path(root)
    doc = read_json(path) if path.exists() else {"schedules": {}}
    entry = {"name": name, "cron": cron, "template": request, "incremental": bool(request.get("incremental")),
             "destinations": [request.get("destination")],
             "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    doc["schedules"][name] = entry
    atomic_write_json(path, doc)
    return entry | {"next_run": nxt.strftime("%Y-%m-%dT%H:%M:%SZ")}


def schedules(root: Path) -> list[dict]:
    """Stored schedules with their next run (UTC)."""
    path = _schedules_path(root)
    if not path.exists():
        return []
    try:
        entries = read_json(path)["schedules"]
    except (ValueError, KeyError, TypeError) as exc:
        raise MdcsqlError(f"{path}: unreadable export schedules ({exc})") from None
    return [e | {"next_run": next_run(e["cron"]).strftime("%Y-%m-%dT%H:%M:%SZ")} for e in entries.values()]
