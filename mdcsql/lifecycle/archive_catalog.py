"""The archive catalog (design "Data Catalog for Perpetual Data"): one entry per file under
``_archive/<reason>/``, kept in ``_archive/<reason lowercase>/manifest.json``.

Each reason's manifest is ``{"catalog": {"version": "1.0", "entries": [...]}, "signature": ...}``
with the design's entry keys exactly (id, path, type, symbols, date_range{start,end}, event_count,
size_bytes, checksum "sha256:…", created_at, archive_reason, retention_until, immutable,
schema_version) plus ``worm`` — the WORM record: when the lock engaged, in which mode, and every
retention change (who, when, from, to, override reason). Keeping the lock inside the signed
manifest makes retention tamper-evident: editing ``retention_until`` breaks the signature.

Writers (the tier migration landing a file in ``_archive/``, WORM locking and extension, removal)
go through :func:`add_entry` / :func:`update_entry` / :func:`remove_entry`, which serialise on a
lock file and rewrite the manifest atomically (signed when ``Storage.Catalog.SignManifests``).
"""

from __future__ import annotations

import fcntl
import json
import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Callable

import duckdb
import pyarrow as pa

from mdcsql.config_sections import ARCHIVE_REASONS
from mdcsql.durable import atomic_write_json, read_json
from mdcsql.errors import IntegrityError, MdcsqlError, NotFoundError
from mdcsql.layout import ARCHIVE_ROOT, CATALOG_DIR
from mdcsql.lifecycle import signing
from mdcsql.lifecycle.instants import add_years, iso, naive, parse_day, parse_instant, to_ns
from mdcsql.sql import load_sql

__all__ = ["CATALOG_VERSION", "ENTRY_SCHEMA_VERSION", "ReasonManifest", "settings_of", "reason_of",
           "manifest_path", "load_manifests", "entries_by_path", "find_entry", "add_entry",
           "update_entry", "remove_entry", "verify", "refresh"]

CATALOG_VERSION = "1.0"
ENTRY_SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
_LOCK = "archive_catalog.lock"
_SIDECAR = ".manifest.json"
_REASON_DIRS = {r.lower(): r for r in ARCHIVE_REASONS}


@dataclass
class ReasonManifest:
    """One ``_archive/<reason>/manifest.json`` as read, with its signature's status."""

    reason: str
    relpath: str                       # _archive/<reason>/manifest.json
    doc: dict
    signature_problem: str | None      # None: valid (or not required and absent)
    entries: list[dict] = field(default_factory=list)


def settings_of(root):
    from mdcsql.archive import Archive
    return Archive.open(root).settings


def reason_of(relpath: str) -> str:
    """The archive reason of a path ``_archive/<reason lowercase>/...`` (canonical spelling)."""
    parts = PurePosixPath(relpath).parts
    if len(parts) < 3 or parts[0] != ARCHIVE_ROOT or parts[1] not in _REASON_DIRS or ".." in parts:
        raise MdcsqlError(f"{relpath!r} is not a file of the archive tier: expected "
                          f"{ARCHIVE_ROOT}/<reason>/..., reason one of "
                          + ", ".join(_REASON_DIRS))
    return _REASON_DIRS[parts[1]]


def manifest_path(root, reason: str) -> Path:
    return Path(root) / ARCHIVE_ROOT / reason.lower() / MANIFEST_NAME


def _empty() -> dict:
    return {"catalog": {"version": CATALOG_VERSION, "entries": []}}


def _read(root, reason: str, settings, key) -> ReasonManifest:
    path = manifest_path(root, reason)
    rel = f"{ARCHIVE_ROOT}/{reason.lower()}/{MANIFEST_NAME}"
    if not path.exists():
        return ReasonManifest(reason, rel, _empty(), None, [])
    try:
        doc = read_json(path)
        entries = doc["catalog"]["entries"]
        if not isinstance(entries, list):
            raise TypeError("entries is not a list")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return ReasonManifest(reason, rel, _empty(), f"unreadable archive manifest ({exc})", [])
    problem = None
    if doc.get("signature") is not None or signing.signing_required(settings):
        problem = signing.check(doc["catalog"], doc.get("signature"), key)
    return ReasonManifest(reason, rel, doc, problem, entries)


def load_manifests(root, settings=None) -> list[ReasonManifest]:
    """Every reason's manifest that exists, signatures checked."""
    settings = settings or settings_of(root)
    key = signing.signing_key(root, settings)
    return [_read(root, r, settings, key) for r in ARCHIVE_REASONS if manifest_path(root, r).exists()]


def entries_by_path(root, settings=None) -> dict[str, tuple[dict, ReasonManifest]]:
    return {e["path"]: (e, m) for m in load_manifests(root, settings) for e in m.entries}


def find_entry(root, path_or_id: str, settings=None) -> dict:
    """The entry of an archive path or entry id. :raises NotFoundError: none."""
    for m in load_manifests(root, settings):
        for e in m.entries:
            if path_or_id in (e.get("path"), e.get("id")):
                return e
    raise NotFoundError(f"no archive catalog entry for {path_or_id!r} (see: mdcsql archive list)")


@contextmanager
def _locked(root):
    lock = Path(root) / CATALOG_DIR / _LOCK
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(root, reason: str, entries: list[dict], settings) -> None:
    catalog = {"version": CATALOG_VERSION, "entries": sorted(entries, key=lambda e: e["path"])}
    doc = {"catalog": catalog}
    if signing.signing_required(settings):
        doc["signature"] = signing.sign(catalog, signing.require_key(root, settings))
    atomic_write_json(manifest_path(root, reason), doc)


def _modify(root, reason: str, settings, change: Callable[[list[dict]], list[dict]]) -> None:
    """Read-modify-write one reason manifest under the lock; refuses to build on a manifest whose
    signature does not verify (that would launder a tampered one)."""
    key = signing.signing_key(root, settings)
    with _locked(root):
        current = _read(root, reason, settings, key)
        if current.signature_problem and manifest_path(root, reason).exists():
            raise IntegrityError(f"{current.relpath}: {current.signature_problem}; "
                                 "not changing it (run: mdcsql archive verify)")
        _write(root, reason, change(list(current.entries)), settings)


def _sidecar_meta(data: Path) -> dict:
    side = data.with_name(data.name + _SIDECAR)
    if side.is_file():
        try:
            return read_json(side)
        except (OSError, ValueError):
            return {}
    return {}


def _file_stats(data: Path) -> dict:
    """Count, time range and symbols of a Parquet or JSONL file without a manifest (DuckDB)."""
    sql = load_sql("queries/archive_file_stats_parquet.sql" if data.name.endswith(".parquet")
                   else "queries/archive_file_stats_jsonl.sql")
    con = duckdb.connect()
    try:
        count, first, last, symbols, types = con.execute(sql, {"file": str(data)}).fetchall()[0]
    except duckdb.Error as exc:
        raise MdcsqlError(f"{data}: cannot read its events to describe it ({str(exc).splitlines()[0]}); "
                          "give type, symbols, date range and count explicitly") from None
    finally:
        con.close()
    return {"event_count": count, "first_ts": to_ns(first), "last_ts": to_ns(last), "symbols": symbols or [],
            "type": types[0] if types and len(types) == 1 else None}


def _day(ns) -> str | None:
    """The UTC day (YYYY-MM-DD) of a nanosecond timestamp."""
    if ns is None:
        return None
    return datetime.fromtimestamp(int(ns) // 1_000_000_000, tz=timezone.utc).date().isoformat()


def _policy(settings, type_: str | None):
    policies = settings.storage.policies or {}
    return policies.get(type_) if type_ else None


def _default_immutable(settings, type_: str | None, reason: str) -> bool:
    arch = settings.storage.archive
    if arch is not None and arch.immutable is not None:
        return arch.immutable
    policy = _policy(settings, type_)
    return bool(policy and policy.classification == "Critical") or reason in ("Regulatory", "Compliance", "Legal")


_UNSET = object()


def add_entry(root, path: str, *, type: str | None = None, symbols=None, date_range: dict | None = None,
              event_count: int | None = None, created_at=None, retention_until=_UNSET,
              immutable: bool | None = None, schema_version: int = ENTRY_SCHEMA_VERSION,
              settings=None) -> dict:
    """Record (or refresh) the archive catalog entry of a file that has landed in ``_archive/``.

    ``path`` is relative to the archive root, ``_archive/<reason lowercase>/...``; the reason is
    taken from it. Size and checksum are computed from the file; type, symbols, date range and
    event count come from the arguments, else the file's sidecar manifest, else the file itself.
    ``retention_until`` defaults to created_at + ``Storage.Archive.MinRetentionYears`` (None: kept
    indefinitely); ``immutable`` to ``Storage.Archive.Immutable``, else true for Critical data and
    the Regulatory, Compliance and Legal reasons. Re-adding a path keeps its id; a WORM-locked
    entry whose bytes changed is refused (IntegrityError). Returns the entry.
    """
    from mdcsql.ingest.seal import sha256_file
    settings = settings or settings_of(root)
    reason = reason_of(path)
    data = Path(root) / path
    if not data.is_file():
        raise NotFoundError(f"no archive file {path} under {root}")
    digest, size = sha256_file(data)
    meta = _sidecar_meta(data)
    if not meta and (type is None or symbols is None or date_range is None or event_count is None):
        meta = _file_stats(data)
    type = type or meta.get("type")
    if symbols is None:
        symbols = meta.get("symbols") or ([meta["symbol"]] if meta.get("symbol") else [])
    if date_range is None:
        date_range = {"start": _day(meta.get("first_ts")), "end": _day(meta.get("last_ts"))}
    for k in ("start", "end"):
        parse_day(date_range.get(k), what=f"date_range.{k}")
    created = parse_instant(created_at, what="created_at")
    if retention_until is _UNSET:
        years = settings.storage.archive.min_retention_years if settings.storage.archive else None
        retention_until = add_years(created, years) if years else None
    entry = {
        "id": str(uuid.uuid4()), "path": path, "type": type, "symbols": sorted(set(symbols)),
        "date_range": {"start": date_range.get("start"), "end": date_range.get("end")},
        "event_count": event_count if event_count is not None else meta.get("event_count"),
        "size_bytes": size, "checksum": f"sha256:{digest}", "created_at": iso(created),
        "archive_reason": reason,
        "retention_until": iso(parse_instant(retention_until, what="retention_until"))
        if retention_until is not None else None,
        "immutable": _default_immutable(settings, type, reason) if immutable is None else bool(immutable),
        "schema_version": schema_version,
        "worm": {"locked_at": None, "mode": None, "history": []},
    }

    def change(entries: list[dict]) -> list[dict]:
        for i, old in enumerate(entries):
            if old["path"] == path:
                if (old.get("worm") or {}).get("locked_at") and old["checksum"] != entry["checksum"]:
                    raise IntegrityError(f"{path} is WORM-locked since {old['worm']['locked_at']} and its "
                                         f"bytes changed ({old['checksum']} -> {entry['checksum']})")
                entry.update(id=old["id"], created_at=old["created_at"], worm=old.get("worm") or entry["worm"],
                             retention_until=old["retention_until"] if retention_until is _UNSET
                             else entry["retention_until"])
                entries[i] = entry
                return entries
        return entries + [entry]

    _modify(root, reason, settings, change)
    return entry


def update_entry(root, path: str, change: Callable[[dict], dict], *, settings=None) -> dict:
    """Replace the entry of ``path`` by ``change(entry)`` (under the lock); returns the new one."""
    settings = settings or settings_of(root)
    out = {}

    def apply(entries: list[dict]) -> list[dict]:
        for i, e in enumerate(entries):
            if e["path"] == path:
                entries[i] = out["entry"] = change(json.loads(json.dumps(e)))
                return entries
        raise NotFoundError(f"no archive catalog entry for {path!r}")

    _modify(root, reason_of(path), settings, apply)
    return out["entry"]


def remove_entry(root, path: str, *, settings=None) -> bool:
    """Drop the entry of a removed archive file (the guard allowed it). True if there was one."""
    settings = settings or settings_of(root)
    found = []

    def apply(entries: list[dict]) -> list[dict]:
        kept = [e for e in entries if e["path"] != path]
        found.append(len(kept) != len(entries))
        return kept

    if manifest_path(root, reason_of(path)).exists():
        _modify(root, reason_of(path), settings, apply)
    return bool(found and found[0])


def verify(root, settings=None) -> list[str]:
    """Every problem of the archive catalog: bad signatures, missing files, size or checksum
    mismatches. Empty when everything verifies."""
    from mdcsql.ingest.seal import sha256_file
    settings = settings or settings_of(root)
    problems = []
    for m in load_manifests(root, settings):
        if m.signature_problem:
            problems.append(f"{m.relpath}: {m.signature_problem}")
        for e in m.entries:
            data = Path(root) / e["path"]
            if not data.is_file():
                problems.append(f"{e['path']}: file missing (entry {e['id']})")
                continue
            digest, size = sha256_file(data)
            if f"sha256:{digest}" != e.get("checksum"):
                problems.append(f"{e['path']}: checksum sha256:{digest} != catalog {e.get('checksum')}")
            elif size != e.get("size_bytes"):
                problems.append(f"{e['path']}: {size} bytes != catalog {e.get('size_bytes')}")
    return problems


# ---- the catalog tables --------------------------------------------------------------------------

_ENTRY_SCHEMA = pa.schema([
    ("id", pa.string()), ("path", pa.string()), ("type", pa.string()), ("symbols", pa.list_(pa.string())),
    ("date_start", pa.date32()), ("date_end", pa.date32()), ("event_count", pa.int64()),
    ("size_bytes", pa.int64()), ("checksum", pa.string()), ("created_at", pa.timestamp("us")),
    ("archive_reason", pa.string()), ("retention_until", pa.timestamp("us")), ("immutable", pa.bool_()),
    ("schema_version", pa.int32()), ("locked_at", pa.timestamp("us")), ("worm_mode", pa.string()),
    ("manifest_path", pa.string()), ("signed", pa.bool_())])
_CHANGE_SCHEMA = pa.schema([
    ("entry_id", pa.string()), ("path", pa.string()), ("changed_at", pa.timestamp("us")),
    ("changed_by", pa.string()),
    ("old_until", pa.timestamp("us")), ("new_until", pa.timestamp("us")), ("kind", pa.string()),
    ("override_reason", pa.string())])


def refresh(catalog, *, forget: bool) -> None:
    """Mirror every reason manifest into ``archive_entries`` and ``archive_retention_changes``."""
    try:
        settings = settings_of(catalog.root)
    except NotFoundError:
        return
    entries, changes = [], []
    for m in load_manifests(catalog.root, settings):
        for e in m.entries:
            worm = e.get("worm") or {}
            dr = e.get("date_range") or {}
            entries.append({
                "id": e["id"], "path": e["path"], "type": e.get("type"), "symbols": e.get("symbols"),
                "date_start": parse_day(dr.get("start"), what="date_range.start"),
                "date_end": parse_day(dr.get("end"), what="date_range.end"),
                "event_count": e.get("event_count"), "size_bytes": e.get("size_bytes"),
                "checksum": e.get("checksum"), "created_at": naive(e.get("created_at")),
                "archive_reason": e["archive_reason"], "retention_until": naive(e.get("retention_until")),
                "immutable": bool(e.get("immutable")), "schema_version": e.get("schema_version"),
                "locked_at": naive(worm.get("locked_at")), "worm_mode": worm.get("mode"),
                "manifest_path": m.relpath, "signed": m.doc.get("signature") is not None})
            for h in worm.get("history") or ():
                changes.append({"entry_id": e["id"], "path": e["path"], "changed_at": naive(h["at"]),
                                "changed_by": h["by"], "old_until": naive(h.get("from")),
                                "new_until": naive(h.get("to")), "kind": h["kind"],
                                "override_reason": h.get("override_reason")})
    catalog.execute(load_sql("queries/archive_clear.sql"))
    if entries:
        catalog._with_table("incoming_archive_entries", pa.Table.from_pylist(entries, schema=_ENTRY_SCHEMA),
                            "queries/archive_entries_insert.sql")
    if changes:
        catalog._with_table("incoming_archive_changes", pa.Table.from_pylist(changes, schema=_CHANGE_SCHEMA),
                            "queries/archive_changes_insert.sql")

