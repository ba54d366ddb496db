"""Ingest existing JSONL archives (canonical or the C# collector's), plain, gzip or zstd.

Good lines go through the same write path as live events (WAL, dedupe, partitions); every bad
line is kept in `_quarantine/` with a report naming file, line, field and reason, and counted.
Nothing already stored is touched by bad input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mdcsql import events as ev
from mdcsql.errors import InputError, NotFoundError
from mdcsql.ingest.recovery import quarantine

BATCH = 5_000


@dataclass
class IngestReport:
    files: int = 0
    events_read: int = 0
    events_written: int = 0
    duplicates_dropped: int = 0
    errors: list[dict] = field(default_factory=list)
    quarantined: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {"files": self.files, "events_read": self.events_read, "events_written": self.events_written,
                "duplicates_dropped": self.duplicates_dropped, "bad_lines": len(self.errors),
                "errors": self.errors, "quarantined": self.quarantined, "ok": self.ok}


def ingest_files(archive, paths: list, *, source: str | None = None, root: str = "historical",
                 asset_class: str = "equity",
                 on_progress: Callable[[Path, int], None] | None = None) -> IngestReport:
    """Append every good event of `paths` to the archive; quarantine and report every bad line."""
    report = IngestReport()
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise NotFoundError(f"no such file: {', '.join(missing)}")
    ingestor = archive.ingestor()
    dup_before = ingestor.duplicates_dropped
    for path in map(Path, paths):
        report.files += 1
        bad_raw: list[bytes] = []
        bad: list[dict] = []
        batch: list[dict] = []
        for line_no, item, raw in ev.iter_file(path, source=source):
            if isinstance(item, InputError):
                bad.append({"file": str(path), "line": item.line or line_no, "field": item.field,
                            "reason": item.reason})
                bad_raw.append(raw if raw.endswith(b"\n") else raw + b"\n")
                continue
            report.events_read += 1
            batch.append(item)
            if len(batch) >= BATCH:
                ingestor.append_many(batch, root=root, asset_class=asset_class, normalized=True)
                batch.clear()
                if on_progress:
                    on_progress(path, report.events_read)
        if batch:
            ingestor.append_many(batch, root=root, asset_class=asset_class, normalized=True)
        if on_progress:
            on_progress(path, report.events_read)
        if bad:
            report.errors.extend(bad)
            report.quarantined.append(quarantine(archive.root, f"ingest-{path.name}", b"".join(bad_raw), {
                "file": str(path), "reason": "bad input lines", "lines": bad}))
    ingestor.flush()
    report.duplicates_dropped = ingestor.duplicates_dropped - dup_before
    report.events_written = report.events_read - report.duplicates_dropped
    return report


def format_error(err: dict) -> str:
    field_part = f" (field '{err['field']}')" if err.get("field") else ""
    return f"{err['file']}:{err['line']}: {err['reason']}{field_part}"


def report_json(report: IngestReport) -> str:
    return json.dumps(report.to_dict(), indent=2)
