"""The single removal path: every delete of a data file goes through :func:`remove_files`.

Order, per batch: the guard (:func:`mdcsql.lifecycle.guard.check_removable`, all-or-nothing:
holds, WORM, approvals; a refusal is logged and raises ProtectedError) → per file: the deletion
record is appended to ``_catalog/deletions.jsonl`` and fsync'd (intent before the irreversible
step, so no file can vanish without its record) → the data file, then its sidecar manifest, are
unlinked and the directory fsync'd → the archive catalog entry is dropped (archive files) → the
catalog's ``files`` rows are dropped and ``deletions`` mirrors the new records. A crash after the
record and before the unlink leaves a record of a file still present: rerunning the removal
finishes it (with ``missing_ok`` a caller's rerun converges); the catalog is derived, so a crash
before its update is repaired by the next sync.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from mdcsql.durable import fsync_dir
from mdcsql.errors import ArchiveLockedError, MdcsqlError, NotFoundError
from mdcsql.layout import ARCHIVE_ROOT
from mdcsql.lifecycle import archive_catalog, guard, journal
from mdcsql.lifecycle.instants import iso, naive, utc_now

__all__ = ["DELETIONS", "Removed", "remove_files", "refresh"]

DELETIONS = "deletions"      # _catalog/deletions.jsonl
_MANIFEST = ".manifest.json"


@dataclass(frozen=True)
class Removed:
    """What one remove_files call did."""

    records: list[dict]          # the deletion records appended, one per file
    missing: list[str]           # paths already absent (only with missing_ok)


def remove_files(archive_or_root, relpaths, *, action: str, reason: str, actor: str | None = None,
                 override: guard.Override | None = None, missing_ok: bool = False, as_of=None,
                 catalog=None, settings=None) -> Removed:
    """Delete data files (and their manifests) after the guard allowed it, recording each deletion.

    :param relpaths: paths relative to the archive root, or catalog ``files`` rows (dicts).
    :param action: who is deleting, for the record: retention | quota | compaction | migration |
        consolidation | manual | ...
    :param reason: why, in words (the policy or the person's reason); required.
    :param override: lifts a governance-mode WORM lock (logged), see guard.Override.
    :param missing_ok: a path already gone is skipped (its catalog row still dropped) instead of
        raising NotFoundError — for jobs that rerun after a crash.
    :param catalog: a read-write Catalog the caller already holds; otherwise one is opened briefly
        (when another process holds it, the next sync catches up).
    :raises ProtectedError: a file is held, WORM-protected or lacks approvals (nothing removed).
    :raises NotFoundError: a path does not exist (nothing removed), unless ``missing_ok``.
    """
    if not reason or not str(reason).strip():
        raise MdcsqlError("a removal needs a reason (--reason)")
    root, settings = guard._root_and_settings(archive_or_root, settings)
    items = [relpaths] if isinstance(relpaths, (str, dict)) else list(relpaths)
    if not items:
        return Removed([], [])
    actor = actor or guard.default_actor()
    metas = guard.check_removable(root, items, action=action, actor=actor, override=override,
                                  as_of=as_of, settings=settings)
    present, missing = [], []
    for meta in metas:
        data = root / meta["path"]
        if data.is_file() or data.with_name(data.name + _MANIFEST).is_file():
            present.append(meta)
        elif missing_ok:
            missing.append(meta["path"])
        else:
            raise NotFoundError(f"{meta['path']}: no such file under {root} (nothing was removed)")
    records = []
    for meta in present:
        rec = _record(meta, action=action, reason=str(reason).strip(), actor=actor, override=override)
        journal.append(journal.journal_path(root, DELETIONS), rec)
        data = root / meta["path"]
        for p in (data, data.with_name(data.name + _MANIFEST)):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        fsync_dir(data.parent)
        if meta["path"].startswith(ARCHIVE_ROOT + "/") and meta.get("archive_entry"):
            archive_catalog.remove_entry(root, meta["path"], settings=settings)
        records.append(rec)
    _update_catalog(root, [m["path"] for m in metas], catalog)
    return Removed(records, missing)


def _record(meta: dict, *, action: str, reason: str, actor: str, override) -> dict:
    entry = meta.get("archive_entry") or {}
    sha = meta.get("sha256") or (entry.get("checksum") or "").removeprefix("sha256:") or None
    symbols = meta.get("symbols")
    return {"at": iso(utc_now()), "action": action, "reason": reason, "actor": actor,
            "path": meta["path"], "tier": meta.get("tier"),
            "symbol": meta.get("symbol") or (",".join(symbols) if symbols else None),
            "type": meta.get("type"), "source": meta.get("source"),
            "size_bytes": meta.get("size_bytes", entry.get("size_bytes")),
            "event_count": meta.get("event_count", entry.get("event_count")), "sha256": sha,
            "approved_by": list(override.approved_by) if override and meta.get("overridden") else [],
            "override_by": override.by if override and meta.get("overridden") else None,
            "override_reason": override.reason if override and meta.get("overridden") else None}


def _update_catalog(root: Path, paths: list[str], catalog) -> None:
    if catalog is not None:
        _drop_rows(catalog, paths)
        return
    from mdcsql.catalog import Catalog
    try:
        with Catalog.open(root, timeout=5.0) as cat:
            _drop_rows(cat, paths)
    except ArchiveLockedError:
        pass                  # the catalog is derived: the next sync drops the rows and mirrors the log


def _drop_rows(cat, paths: list[str]) -> None:
    with cat.write_lock("remove_files"), cat.transaction():
        cat._with_table("catalog_gone", pa.table({"path": pa.array(paths, pa.string())}),
                        "queries/catalog_files_delete.sql")
        refresh(cat, forget=False)
        guard.refresh(cat, forget=False)
        archive_catalog.refresh(cat, forget=False)


_SCHEMA = pa.schema([("seq", pa.int64()), ("recorded_at", pa.timestamp("us")), ("action", pa.string()),
                     ("reason", pa.string()), ("actor", pa.string()), ("path", pa.string()),
                     ("tier", pa.string()), ("symbol", pa.string()), ("type", pa.string()),
                     ("source", pa.string()), ("size_bytes", pa.int64()), ("event_count", pa.int64()),
                     ("sha256", pa.string()), ("approved_by", pa.list_(pa.string())),
                     ("override_by", pa.string()), ("override_reason", pa.string())])


def _rows(seq: int, rec: dict) -> list[dict]:
    return [{**{k: rec.get(k) for k in _SCHEMA.names}, "seq": seq, "recorded_at": naive(rec.get("at")),
             "approved_by": rec.get("approved_by") or []}]


def refresh(catalog, *, forget: bool) -> None:
    """Mirror ``_catalog/deletions.jsonl`` into ``deletions`` (new records; all with ``forget``)."""
    journal.mirror(catalog, name=DELETIONS, schema=_SCHEMA, to_rows=_rows,
                   clear_sql="queries/removal_deletions_clear.sql",
                   insert_sql="queries/removal_deletions_insert.sql", forget=forget)
