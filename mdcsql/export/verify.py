"""``mdcsql export verify DIR``: the design's IExportVerifier — checksums and completeness.

1. Checksums: every file listed in ``export_metadata.json`` exists with its SHA-256 and size;
   ``checksums.sha256`` matches ``checksums.manifest``; a file in the directory that the
   metadata does not list is reported too.
2. Read back: the files are counted again (events per type, symbol and UTC day) with the format's
   reader and compared with the counts recorded at export time.
3. Against the archive: the recorded request is selected again from the catalog (same symbols,
   types, range, sources, dedupe and, for incremental runs, the same watermarks) and its counts
   compared with the files': each (symbol, day) with fewer or more events, each symbol and day
   that the archive has and the export lacks. Exports with transforms (bars, alignment) change
   the rows, so step 3 is skipped for them (said in the notes).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mdcsql.errors import MdcsqlError
from mdcsql.export import metadata
from mdcsql.export.request import ExportRequest

__all__ = ["VerificationResult", "verify_export"]


@dataclass
class VerificationResult:
    """The design's VerificationResult(IsValid, ExpectedEvents, ActualEvents, MissingSymbols,
    MissingDates, Issues), plus notes on what could not be checked."""

    is_valid: bool
    expected_events: int | None
    actual_events: int
    missing_symbols: list[str] = field(default_factory=list)
    missing_dates: list[str] = field(default_factory=list)
    issues: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _flat(counts_doc: dict) -> dict[str, dict[tuple[str, str], int]]:
    return {t: {(s, d): int(n) for s, by_day in per.items() for d, n in by_day.items()}
            for t, per in (counts_doc or {}).items()}


def _check_files(export_dir: Path, meta: dict, issues: list[str]) -> None:
    listed = set()
    for entry in meta["checksums"]["files"]:
        path = export_dir / entry["path"]
        listed.add(entry["path"])
        if not path.is_file():
            issues.append(f"missing file {entry['path']}")
            continue
        if path.stat().st_size != entry.get("bytes", path.stat().st_size):
            issues.append(f"{entry['path']}: {path.stat().st_size} bytes, the metadata says {entry['bytes']}")
        if metadata.sha256_file(path) != entry["sha256"]:
            issues.append(f"{entry['path']}: SHA-256 differs from the metadata (the file changed)")
    manifest = export_dir / metadata.CHECKSUMS_FILE
    if not manifest.is_file():
        issues.append(f"missing file {metadata.CHECKSUMS_FILE}")
    elif meta["checksums"].get("manifest") != "sha256:" + metadata.sha256_file(manifest):
        issues.append(f"{metadata.CHECKSUMS_FILE}: SHA-256 differs from checksums.manifest")
    for dirpath, _dirs, names in os.walk(export_dir):
        for name in names:
            rel = (Path(dirpath) / name).relative_to(export_dir).as_posix()
            if rel not in listed and rel not in (metadata.METADATA_FILE, metadata.CHECKSUMS_FILE):
                issues.append(f"unexpected file {rel} (not in the metadata)")


def _compare(label: str, expected: dict, actual: dict, issues: list[str]) -> None:
    for key in sorted(set(expected) | set(actual)):
        e, a = expected.get(key, 0), actual.get(key, 0)
        if e != a:
            issues.append(f"{label} {key[0]} {key[1]}: expected {e} events, the export has {a}")


def verify_export(export_dir, *, root=None) -> VerificationResult:
    """Verify export directory ``export_dir`` against archive ``root`` (default: the archive the
    metadata names). Never raises for a damaged export: every problem is an issue."""
    from mdcsql.export.formats import FORMATS, resolve_format
    from mdcsql.export.selection import Selection, prepare_connection
    export_dir = Path(export_dir)
    meta = metadata.read(export_dir)
    issues: list[str] = []
    notes: list[str] = []
    _check_files(export_dir, meta, issues)
    recorded = _flat(meta.get("counts"))
    spec = FORMATS[resolve_format(meta["format_details"]["format"])]
    actual: dict[str, dict] = {}
    by_type: dict[str, list[Path]] = {}
    for entry in meta["checksums"]["files"]:
        if entry.get("event_type") and (export_dir / entry["path"]).is_file():
            by_type.setdefault(entry["event_type"], []).append(export_dir / entry["path"])
    for etype in recorded:
        if spec.count is None:
            actual[etype] = recorded[etype]
            continue
        try:
            actual[etype] = spec.count(sorted(by_type.get(etype, [])), etype)
        except Exception as exc:           # a damaged file: the format's reader says why
            issues.append(f"{etype}: the files cannot be read back ({str(exc).strip().splitlines()[0]})")
            actual[etype] = {}
        _compare(f"{etype} (recorded at export)", recorded[etype], actual[etype], issues)
    if spec.count is None:
        notes.append(f"{spec.name} has no reader: counts are those recorded at export time")
    actual_events = sum(sum(c.values()) for c in actual.values())

    request = ExportRequest.from_dict(meta["request"])
    archive = root or meta.get("source_archive")
    expected_events = None
    missing_symbols: set[str] = set()
    missing_dates: set[str] = set()
    if request.transforms:
        notes.append("the export applied transforms: its rows are not the archive's, completeness not compared")
    elif archive is None:
        notes.append("no archive given (--root) nor recorded: completeness not compared")
    else:
        from mdcsql.catalog import Catalog
        marks = (meta.get("incremental_marks") or {})
        with Catalog.open(archive, read_only=True) as cat:
            con = cat._connection()
            prepare_connection(con)
            expected_events = 0
            for etype in request.types:
                bound = marks.get(etype)
                sel = Selection(request, etype, None if bound is None else [tuple(m) for m in bound])
                expected = sel.expected_counts(con)
                expected_events += sum(expected.values())
                got = actual.get(etype, {})
                _compare(etype, expected, got, issues)
                have_symbols = {s for s, _d in got}
                for s, d in expected:
                    if s not in have_symbols:
                        missing_symbols.add(s)
                    elif (s, d) not in got:
                        missing_dates.add(d)
        for s in sorted(missing_symbols):
            issues.append(f"missing symbol {s}: the archive has events of it in the requested range")
        for d in sorted(missing_dates):
            issues.append(f"missing date {d}: the archive has events of that day the export lacks")
    return VerificationResult(is_valid=not issues, expected_events=expected_events, actual_events=actual_events,
                              missing_symbols=sorted(missing_symbols), missing_dates=sorted(missing_dates),
                              issues=issues, notes=notes)


def check_dir(path) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise MdcsqlError(f"{path} is not a directory")
    return p
