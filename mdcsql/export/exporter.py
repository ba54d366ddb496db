"""Run one export: select → write (a registered format) → read back → metadata → rename → record.

Atomicity: everything is written into ``DEST/.NAME.partial-ID/`` while ``DEST/.NAME.partial-ID.lock``
is held (``flock``). Only when every file, ``checksums.sha256`` and ``export_metadata.json`` are
written and fsync'd is the directory renamed to ``DEST/NAME`` (then the history record is
appended). A crash leaves only the partial directory, never a ``DEST/NAME`` without its metadata;
the next export to ``DEST`` removes partial directories whose lock nobody holds.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from mdcsql.durable import fsync_dir
from mdcsql.errors import MdcsqlError
from mdcsql.export import history, metadata
from mdcsql.export.formats import ExportContext, get_format
from mdcsql.export.request import ExportRequest
from mdcsql.export.selection import prepare_connection, selections
from mdcsql.sql import load_sql

__all__ = ["ExportResult", "run_export", "clean_partials", "PARTIAL_MARK"]

PARTIAL_MARK = ".partial-"


@dataclass
class ExportResult:
    export_id: str
    path: Path
    format: str
    events: int
    bytes: int
    files: list[str]
    counts: dict
    seconds: float
    incremental: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def _utc(ts: datetime | None = None) -> str:
    return (ts or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _try_lock(path: Path):
    """An fd holding an exclusive flock on ``path``, or None when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def clean_partials(dest: Path) -> list[str]:
    """Remove partial exports under ``dest`` left by crashed runs (their lock is free)."""
    removed = []
    if not dest.is_dir():
        return removed
    for lock in sorted(dest.glob(f".*{PARTIAL_MARK}*.lock")):
        fd = _try_lock(lock)
        if fd is None:
            continue                                   # a running export
        try:
            partial = lock.with_name(lock.name[:-len(".lock")])
            if partial.exists():
                shutil.rmtree(partial)
                removed.append(partial.name)
            lock.unlink(missing_ok=True)
        finally:
            os.close(fd)
    for partial in dest.glob(f".*{PARTIAL_MARK}*"):    # a crash between mkdir and the lock file
        if partial.is_dir() and not partial.with_name(partial.name + ".lock").exists():
            shutil.rmtree(partial, ignore_errors=True)
            removed.append(partial.name)
    return removed


def _counts_doc(per_type: dict[str, dict[tuple[str, str], int]]) -> dict:
    out: dict = {}
    for etype, counts in per_type.items():
        by_symbol: dict = {}
        for (symbol, day), n in sorted(counts.items()):
            by_symbol.setdefault(symbol, {})[day] = n
        out[etype] = by_symbol
    return out


def _quality(con, request: ExportRequest, etype: str) -> dict:
    r = request
    row = con.execute(load_sql("queries/export_quality.sql"),
                      {"types": [etype], "symbols": r.symbols or None, "sources": r.sources or None,
                       "start_ns": r.start_ns, "end_ns": r.end_ns}).fetchone()
    keys = ("events", "gaps", "missing", "duplicates_dropped", "files", "latest_sealed_at", "latest_ts_ns")
    return dict(zip(keys, row))


def _quality_summary(per_type: dict[str, dict]) -> dict:
    events = sum(int(q["events"]) for q in per_type.values())
    missing = sum(int(q["missing"]) for q in per_type.values())
    completeness = round(events / (events + missing), 6) if events + missing else None
    return {"overall_score": completeness, "completeness": completeness, "gaps_filled": 0,
            "outliers_present": None,
            "gaps": sum(int(q["gaps"]) for q in per_type.values()), "missing_events": missing,
            "duplicates_dropped": sum(int(q["duplicates_dropped"]) for q in per_type.values()),
            "basis": "catalogued files read: sequence gaps and ingest duplicates (no outlier detection yet)"}


def _incremental_marks(con, sels, previous: dict) -> tuple[dict, dict]:
    """Per type: the marks to bind (symbol, source, prev, new) and the marks to record."""
    bind, record = {}, {}
    for sel in sels:
        old = previous.get(sel.event_type, {})
        latest = sel.latest(con)
        bind[sel.event_type] = [(s, src, old.get((s, src)), ns) for s, src, ns in latest
                                if old.get((s, src)) is None or ns > old[(s, src)]]
        merged = dict(old)
        for s, src, ns in latest:
            merged[(s, src)] = max(ns, merged.get((s, src), ns))
        record[sel.event_type] = sorted([s, src, ns] for (s, src), ns in merged.items())
    return bind, record


def run_export(root, request: ExportRequest, *, progress: Callable[[int], None] | None = None,
               catalog=None) -> ExportResult:
    """Export ``request`` from archive ``root`` (see the module docstring for the guarantees)."""
    from mdcsql.catalog import Catalog
    started = time.monotonic()
    root = Path(root).resolve()
    spec = get_format(request.format)
    created = datetime.now(timezone.utc)
    export_id = str(uuid.uuid4())
    name = request.name or (f"{request.incremental}-{created:%Y%m%dT%H%M%SZ}-{export_id[:8]}" if request.incremental
                            else f"{spec.name.lower()}-{created:%Y%m%dT%H%M%SZ}-{export_id[:8]}")
    dest = Path(request.destination).resolve()
    if dest == root or root in dest.parents and dest.parts[len(root.parts)] != "exports":
        raise MdcsqlError(f"--dest {dest} is inside the archive; export outside it (or under ROOT/exports/)")
    final = dest / name
    if final.exists():
        raise MdcsqlError(f"{final} already exists; choose another --name or --dest")
    dest.mkdir(parents=True, exist_ok=True)
    notes = [f"removed the partial export {p} of an interrupted run" for p in clean_partials(dest)]
    partial = dest / f".{name}{PARTIAL_MARK}{export_id[:8]}"
    lock_fd = _try_lock(partial.with_name(partial.name + ".lock"))
    own_catalog = catalog is None
    cat = Catalog.open(root, read_only=True) if own_catalog else catalog
    try:
        partial.mkdir()
        con = cat._connection()
        request.check_against(cat)
        prepare_connection(con)
        previous = history.previous_marks(history.last_run(root, request.incremental)) if request.incremental else {}
        sels = selections(request)
        recorded_marks: dict = {}
        if request.incremental:
            bind, recorded_marks = _incremental_marks(con, sels, previous)
            sels = selections(request, bind)
        ctx = ExportContext(catalog=cat, con=con, root=root, request=request, out_dir=partial,
                            progress=progress or (lambda n: None), notes=notes)
        typed: dict[str, list[Path]] = {}
        counts: dict[str, dict] = {}
        for sel in sels:
            if request.transforms:
                sel = _transformed(ctx, sel)
            typed[sel.event_type] = [Path(p) for p in spec.write(ctx, sel)]
            if sel.event_type in ctx.counts:                  # the writer tallied what it wrote
                counts[sel.event_type] = ctx.counts[sel.event_type]
            elif spec.count is not None:
                counts[sel.event_type] = spec.count(typed[sel.event_type], sel.event_type)
            else:
                counts[sel.event_type] = sel.expected_counts(con)
                ctx.notes.append(f"{spec.name} files are not read back: {sel.event_type} counts are the archive's")
        if spec.finish is not None:
            spec.finish(ctx, sels)
        from mdcsql.export.loaders import finish_loaders, wants_loaders
        if wants_loaders(request):        # the profile's post_export: load.py, load.R, notebook
            finish_loaders(ctx, sels)
        quality = {t: _quality(con, request, t) for t in request.types}
        counts_doc = _counts_doc(counts)
        entries = metadata.file_entries(partial, typed, counts_doc)
        rel_typed = {t: [Path(p).relative_to(partial).as_posix() for p in ps] for t, ps in typed.items()}
        loader = ctx.loader_code or metadata.default_loader_code(spec.name, rel_typed)
        sealed = [q["latest_sealed_at"] for q in quality.values() if q["latest_sealed_at"] is not None]
        version = f"v{max(sealed):%Y.%m.%d}" if sealed else "v0"
        doc = metadata.build(
            export_id=export_id, created_at=_utc(created), archive_version=version, request=request.to_dict(),
            format_name=spec.name, compression=ctx.compression(spec), partitioning=ctx.details.get("partitioning", []),
            files=entries, counts=counts_doc, quality=_quality_summary(quality), loader_code=loader,
            notes=ctx.notes, extra={"source_archive": str(root), "incremental": request.incremental,
                                    "incremental_marks": {s.event_type: [list(m) for m in s.marks] for s in sels
                                                          if getattr(s, "marks", None) is not None} or None})
        metadata.write(partial, doc)
        os.rename(partial, final)
        fsync_dir(dest)
    except BaseException:
        if lock_fd is not None:
            shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        if own_catalog:
            cat.close()
        if lock_fd is not None:
            partial.with_name(partial.name + ".lock").unlink(missing_ok=True)
            os.close(lock_fd)
    events = doc["export_metadata"]["data_coverage"]["total_events"]
    watermark = {t: {"max_ts_ns": q["latest_ts_ns"], "sealed_at": _utc(q["latest_sealed_at"]) if q["latest_sealed_at"] else None,
                     "events": sum(counts[t].values()), **({"marks": recorded_marks[t]} if t in recorded_marks else {})}
                 for t, q in quality.items()}
    result = ExportResult(export_id=export_id, path=final, format=spec.name, events=events,
                          bytes=doc["export_metadata"]["data_coverage"]["total_bytes"],
                          files=[e["path"] for e in entries], counts=counts_doc,
                          seconds=time.monotonic() - started, incremental=request.incremental, notes=ctx.notes)
    history.append(root, {"id": export_id, "name": name, "incremental": request.incremental,
                          "created_at": _utc(created), "path": str(final), "format": spec.name,
                          "request": request.to_dict(), "files": result.files, "events": events,
                          "bytes": result.bytes, "watermark": watermark, "seconds": round(result.seconds, 3)})
    return result


def _transformed(ctx: ExportContext, sel):
    try:
        from mdcsql.export import transforms
    except ImportError:
        raise MdcsqlError("transforms were requested but mdcsql.export.transforms is not available") from None
    return transforms.apply(ctx, sel, ctx.request.transforms)
