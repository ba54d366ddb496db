"""Tree scan -> file rows: what the ``files`` table should hold, derived from the tree alone.

``scan_tree`` walks each tier root with ``os.scandir`` (no symlinked directories, ``*.tmp``
ignored), pairs every file with its sidecar manifest found in the same directory listing, and
stats both: (size, mtime, manifest mtime) is the change signature, so an unchanged file costs two
``stat`` calls and nothing else. ``file_row`` turns one parsed file into a ``files`` row: identity from the path
(``layout.parse``), statistics from the manifest, the stored size from the file itself. The row
depends only on the tree, so syncing and rebuilding give identical rows (invariant 1) — except
``indexed_at``, which the caller sets.

States: ``sealed`` (a readable manifest), ``open`` (uncompressed, no manifest: a hot file still
being appended to), ``orphan`` (compressed without a manifest, or with an unreadable one).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timedelta, timezone
from pathlib import Path

from mdcsql.layout import TIER_DIRS, TIER_ROOTS, FileMeta, parse_period_label
from mdcsql.lifecycle.tiers import ARCHIVE_DIR, label_start_ns, parse_any

__all__ = ["MANIFEST_SUFFIX", "TMP_SUFFIX", "TIER_OF_ROOT", "Found", "Scan", "scan_tree",
           "scan_paths", "file_row", "FILE_COLUMNS"]

MANIFEST_SUFFIX = ".manifest.json"   # contract with mdcsql.ingest.seal
TMP_SUFFIX = ".tmp"
#: tier of each hot tier root directory (warm / cold / archive files say theirs in the path)
TIER_OF_ROOT = {"live": "hot", "historical": "hot"}
#: directories the scan walks: every tier's tier roots, and the archive tier
SCAN_BASES = tuple(f"{d}/{r}" if d else r for d in TIER_DIRS.values() for r in TIER_ROOTS) + (ARCHIVE_DIR,)
#: directories of _archive/ that hold no data files (hold notices)
_ARCHIVE_SKIP = {"legal_holds"}

#: the files table's columns, in table order
FILE_COLUMNS = (
    "path", "tier", "root", "state", "format", "codec", "compression_level", "symbol", "type",
    "source", "asset_class", "partition", "period", "period_start", "part", "size_bytes",
    "raw_bytes", "sha256", "raw_sha256", "event_count", "first_seq", "last_seq", "first_ts",
    "last_ts", "gap_count", "gaps", "duplicates_dropped", "ts_clock", "created_at", "sealed_at",
    "schema_version", "session_id", "mtime_ns", "manifest_mtime_ns", "indexed_at",
)


@dataclass(slots=True)
class Found:
    """One data file of the layout: what its path says, and its (and its manifest's) stat."""

    meta: FileMeta
    size: int
    mtime_ns: int
    manifest_mtime_ns: int | None   # None: no sidecar manifest

    @property
    def relpath(self) -> str:
        return self.meta.relpath

    @property
    def signature(self) -> tuple:
        return (self.size, self.mtime_ns, self.manifest_mtime_ns)


@dataclass
class Scan:
    #: candidate data file -> signature (size, mtime_ns, manifest mtime_ns or None). Paths are not
    #: parsed here: sync parses only those it has not indexed with this signature already.
    files: dict[str, tuple] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, what is wrong)

    def found(self, rel: str, layout) -> Found:
        """Parse one scanned path. :raises ValueError: not a data file of ``layout``."""
        size, mtime_ns, manifest_mtime_ns = self.files[rel]
        return Found(parse_any(rel, layout), size, mtime_ns, manifest_mtime_ns)


def scan_tree(root: Path, tier_roots=SCAN_BASES) -> Scan:
    """Every candidate data file under the tier roots of ``root`` with its change signature.

    A tier directory that is a symbolic link (a tier mounted from its own path) is followed;
    links below it are not. In ``_archive/`` only ``.parquet`` files are candidates.

    Never raises for odd content: manifests without their data file, unlistable directories and
    symlinks go to ``problems``; whether a candidate is a data file is decided by the caller
    (``Scan.found``).
    """
    scan = Scan()
    files = scan.files
    root = Path(root)
    for tier_root in tier_roots:
        base = root / tier_root
        if not base.is_dir():
            continue
        stack = [(str(base), tier_root + "/")]
        while stack:
            directory, prefix = stack.pop()
            try:
                entries = list(os.scandir(directory))
            except OSError as exc:
                scan.problems.append((prefix.rstrip("/"), f"cannot list directory: {exc.strerror}"))
                continue
            data, manifests = [], {}
            in_archive = prefix.startswith(ARCHIVE_DIR + "/")
            for entry in entries:
                name = entry.name
                if in_archive and (prefix == ARCHIVE_DIR + "/" and name in _ARCHIVE_SKIP
                                   or not (name.endswith(".parquet") or name.endswith(".parquet" + MANIFEST_SUFFIX)
                                           or entry.is_dir(follow_symlinks=False))):
                    continue
                if entry.is_symlink():
                    scan.problems.append((prefix + name, "symbolic link ignored (not followed)"))
                elif entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, prefix + name + "/"))
                elif name.endswith(TMP_SUFFIX):
                    continue
                elif name.endswith(MANIFEST_SUFFIX):
                    manifests[name[:-len(MANIFEST_SUFFIX)]] = entry
                else:
                    data.append(entry)
            for entry in data:
                manifest = manifests.pop(entry.name, None)
                try:
                    st = entry.stat(follow_symlinks=False)
                    mst = manifest.stat(follow_symlinks=False).st_mtime_ns if manifest else None
                except FileNotFoundError:     # removed while we looked: the next sync sees it gone
                    continue
                files[prefix + entry.name] = (st.st_size, st.st_mtime_ns, mst)
            for name in manifests:
                scan.problems.append((prefix + name + MANIFEST_SUFFIX, "manifest without its data file"))
    return scan


def scan_paths(root: Path, relpaths, tier_roots=SCAN_BASES) -> Scan:
    """Like :func:`scan_tree`, for just these relative paths (those absent are simply missing
    from ``Scan.files``). Paths outside the tier roots, or with ``.``/``..`` components, are
    reported as problems and skipped."""
    scan = Scan()
    for rel in relpaths:
        parts = rel.split("/") if isinstance(rel, str) else []
        if len(parts) < 2 or not any(rel.startswith(b + "/") for b in tier_roots) \
                or any(p in ("", ".", "..") for p in parts):
            scan.problems.append((str(rel), "not a relative path under a tier root"))
            continue
        if rel.endswith((TMP_SUFFIX, MANIFEST_SUFFIX)):
            continue
        path = os.path.join(root, rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if not os.path.isfile(path) or os.path.islink(path):
            continue
        try:
            mst = os.lstat(path + MANIFEST_SUFFIX).st_mtime_ns
        except FileNotFoundError:
            mst = None
        scan.files[rel] = (st.st_size, st.st_mtime_ns, mst)
    return scan


# --------------------------------------------------------------------------- rows

_INT_FIELDS = ("compression_level", "raw_bytes", "event_count", "first_seq", "last_seq", "first_ts",
               "last_ts", "gap_count", "duplicates_dropped", "schema_version")
_STR_FIELDS = ("sha256", "raw_sha256", "ts_clock", "session_id")
_EPOCH = datetime(1970, 1, 1)
_IDENTITY = ("symbol", "type", "source", "asset_class", "codec", "part")


def _utc(text) -> datetime | None:
    """An ISO-8601 time as a naive UTC datetime (offsets applied)."""
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt


@lru_cache(maxsize=16_384)
def _period_start(period: str, partition: str) -> datetime | None:
    try:
        ns = parse_period_label(period, partition)
    except ValueError:
        return None
    return None if ns is None else _EPOCH + timedelta(microseconds=ns // 1000)


@lru_cache(maxsize=4096)
def _archive_start(label: str) -> datetime | None:
    ns = label_start_ns(label)
    return None if ns is None else _EPOCH + timedelta(microseconds=ns // 1000)


def file_row(root: Path, found: Found, layout, *, problems: list | None = None) -> dict:
    """The ``files`` row of one scanned data file (``indexed_at`` left None).

    Manifest values that are missing or of the wrong type become NULL and are reported in
    ``problems``; a manifest that disagrees with its path is reported, and the path wins for the
    identity columns (it is what the views' globs select on).
    """
    problems = problems if problems is not None else []
    meta, key = found.meta, found.meta.key
    rel = meta.relpath
    row = dict.fromkeys(FILE_COLUMNS)
    parquet = meta.codec == "parquet"
    if meta.tier == "archive":
        from mdcsql.lifecycle.tiers import granularity_of
        partition, start = granularity_of(key.period), _archive_start(key.period)
    else:
        partition, start = layout.partition, _period_start(key.period, layout.partition)
    row.update(
        path=rel, tier=meta.tier, root=key.root, format="parquet" if parquet else "jsonl",
        codec=meta.codec, symbol=key.symbol, type=key.type, source=key.source,
        asset_class=key.asset_class, partition=partition, period=key.period or None,
        period_start=start, part=meta.part,
        size_bytes=found.size, mtime_ns=found.mtime_ns, manifest_mtime_ns=found.manifest_mtime_ns,
    )
    if found.manifest_mtime_ns is None:
        if meta.codec == "none":
            row.update(state="open", raw_bytes=found.size)
        else:
            row["state"] = "orphan"
            problems.append((rel, "compressed data file without a manifest"))
        return row
    try:
        with open(os.path.join(root, rel + MANIFEST_SUFFIX), "rb") as f:
            m = json.loads(f.read())
        if not isinstance(m, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        row["state"] = "orphan"
        problems.append((rel + MANIFEST_SUFFIX, f"unreadable manifest: {exc}"))
        return row
    row["state"] = "sealed"
    for name in _INT_FIELDS:
        value = m.get(name)
        if value is not None and (type(value) is not int):
            problems.append((rel, f"manifest field {name!r} is not an integer: {value!r}"))
            value = None
        row[name] = value
    for name in _STR_FIELDS:
        value = m.get(name)
        if value is not None and not isinstance(value, str):
            problems.append((rel, f"manifest field {name!r} is not a string: {value!r}"))
            value = None
        row[name] = value
    gaps = m.get("gaps")
    row["gaps"] = None if gaps is None else json.dumps(gaps, separators=(",", ":"))
    for name in ("created_at", "sealed_at"):
        value = m.get(name)
        try:
            row[name] = None if value is None else _utc(value)
        except (TypeError, ValueError):
            problems.append((rel, f"manifest field {name!r} is not an ISO-8601 time: {value!r}"))
    # the manifest describes this very file: report disagreements
    if m.get("path") not in (None, rel):
        problems.append((rel, f"manifest names another path: {m.get('path')!r}"))
    if parquet:       # the codec column holds the Parquet compression, from the manifest
        row["codec"] = m.get("codec") if isinstance(m.get("codec"), str) else "zstd"
    for name in _IDENTITY:
        if parquet and name == "codec":
            continue
        if name in m and m[name] != row[name]:
            problems.append((rel, f"manifest {name} {m[name]!r} != path's {row[name]!r}"))
    if "period" in m and (m["period"] or None) != row["period"]:
        problems.append((rel, f"manifest period {m['period']!r} != path's {key.period!r}"))
    if m.get("size_bytes") is not None and m.get("size_bytes") != found.size:
        problems.append((rel, f"file has {found.size} bytes, manifest says {m.get('size_bytes')}"))
    if m.get("partition") not in (None, partition):
        problems.append((rel, f"manifest partition {m['partition']!r} != archive's {layout.partition!r}"))
    return row
