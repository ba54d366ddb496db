"""The guard: may these files be removed (deleted, moved, modified)? Asked before every removal.

Every delete of a data file — retention, quota DropOldest, compaction and migration source
removal, by hand — goes through :func:`mdcsql.lifecycle.removal.remove_files`, which calls
:func:`check_removable` first; code that moves or rewrites archived files calls it directly.
A file is protected when

- an active legal hold covers it (path prefix/glob, symbol, type, source, date range) — no
  override lifts a hold: release it first (``mdcsql hold release``);
- it is an archive entry under WORM retention (``retention_until`` in the future or None): in
  compliance mode nothing lifts it; in governance mode an :class:`Override` (who, why) does, with
  the approvals of every ``Storage.Archive.ApproversForDelete`` person;
- its archive manifest's signature does not verify (its retention cannot be trusted).

A refusal names every protected path and why, raises :class:`ProtectedError`, and is appended
(fsync'd) to ``_catalog/refusals.jsonl`` — mirrored into the ``refusals`` table — before raising.
The check is all-or-nothing: one protected file refuses the whole batch, so a job never half-runs.
"""

from __future__ import annotations

import getpass
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path, PurePosixPath

import pyarrow as pa

from mdcsql.durable import read_json
from mdcsql.errors import MdcsqlError
from mdcsql.layout import ARCHIVE_ROOT, CATALOG_DIR
from mdcsql.lifecycle import archive_catalog, holds, journal, worm
from mdcsql.lifecycle.instants import day_end, day_start, iso, naive, parse_instant, to_ns, utc_now

__all__ = ["Override", "Protection", "ProtectedError", "REFUSALS", "OVERRIDES", "check_removable",
           "find_protections",
           "describe_file", "refuse", "refresh", "default_actor"]

REFUSALS = "refusals"        # _catalog/refusals.jsonl
OVERRIDES = "overrides"      # _catalog/overrides.jsonl: governance locks lifted by an override
_META_KEYS = ("symbol", "symbols", "type", "source", "asset_class", "tier", "first_ts", "last_ts",
              "event_count", "size_bytes", "sha256", "period")


@dataclass(frozen=True)
class Override:
    """An explicit, logged decision to lift a governance-mode WORM protection: who, why, and the
    approvers who agreed (``Storage.Archive.ApproversForDelete`` must all be among them)."""

    by: str
    reason: str
    approved_by: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.by or not str(self.by).strip():
            raise MdcsqlError("an override needs who decides it (--by)")
        if not self.reason or not str(self.reason).strip():
            raise MdcsqlError("an override needs a reason (--override-reason)")
        object.__setattr__(self, "approved_by", tuple(a.strip() for a in self.approved_by if a.strip()))


@dataclass(frozen=True)
class Protection:
    """Why one path may not be removed."""

    path: str
    kind: str                       # hold | worm | approvers | signature
    detail: str
    hold_id: str | None = None
    retention_until: str | None = None


class ProtectedError(MdcsqlError):
    """A removal touched protected files; ``protections`` lists every path and why. Logged."""

    def __init__(self, protections: list[Protection], *, action: str) -> None:
        self.protections = protections
        self.action = action
        by_path: dict[str, list[str]] = {}
        for p in protections:
            by_path.setdefault(p.path, []).append(p.detail)
        text = " | ".join(f"{path}: " + "; ".join(why) for path, why in by_path.items())
        super().__init__(f"refused ({action}) — {len(by_path)} protected file(s), attempt logged in "
                         f"{CATALOG_DIR}/{REFUSALS}.jsonl: {text}")


def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:          # no user name in this environment (containers)
        return "unknown"


def _root_and_settings(archive_or_root, settings):
    """(root, settings) of an Archive or a root path (``Path.root`` is "/": test the type)."""
    from mdcsql.archive import Archive
    if isinstance(archive_or_root, Archive):
        return archive_or_root.root, settings or archive_or_root.settings
    root = Path(archive_or_root)
    return root, settings or archive_catalog.settings_of(root)


def _clean(rel) -> str:
    text = str(rel).replace("\\", "/")
    parts = PurePosixPath(text).parts
    if not text or text.startswith("/") or ".." in parts or "." in parts:
        raise MdcsqlError(f"{rel!r}: give a path relative to the archive root (no leading '/', no '..')")
    if text.startswith(holds.HOLDS_DIR + "/") or text.startswith(CATALOG_DIR + "/") or (
            len(parts) == 3 and parts[0] == ARCHIVE_ROOT and parts[2] == archive_catalog.MANIFEST_NAME):
        raise MdcsqlError(f"{text}: not a data file (hold notices, the catalog and archive manifests "
                          "are never removed this way)")
    return text


def _first_ns(d: date) -> int:
    return to_ns(day_start(d))


def _last_ns(d: date) -> int:
    """The last nanosecond of UTC day ``d``."""
    return to_ns(day_end(d)) - 1


def describe_file(root, item, *, entries: dict, layout=None) -> dict:
    """Metadata for matching holds: a catalog ``files`` row as given, or for a relative path its
    sidecar manifest, archive entry, or what its path says (files are the truth)."""
    meta = dict(item) if isinstance(item, dict) else {"path": item}
    meta["path"] = _clean(meta["path"])
    data = Path(root) / meta["path"]
    side = data.with_name(data.name + ".manifest.json")
    if side.is_file():
        try:
            doc = read_json(side)
            for k in _META_KEYS:
                if meta.get(k) is None and doc.get(k) is not None:
                    meta[k] = doc[k]
        except (OSError, ValueError):
            pass
    if not meta.get("symbol") and not meta.get("symbols"):
        for k, v in _from_path(meta["path"], layout).items():
            meta.setdefault(k, v)
    entry = entries.get(meta["path"])
    if entry is not None:
        e = entry[0]
        dr = e.get("date_range") or {}
        meta.setdefault("symbols", e.get("symbols"))
        meta.setdefault("type", e.get("type"))
        if meta.get("first_ts") is None and dr.get("start"):
            meta["first_ts"] = _first_ns(date.fromisoformat(dr["start"]))
        if meta.get("last_ts") is None and dr.get("end"):
            meta["last_ts"] = _last_ns(date.fromisoformat(dr["end"]))
    if meta["path"].startswith(ARCHIVE_ROOT + "/"):
        meta.setdefault("tier", "archive")
    return meta


def _from_path(rel: str, layout) -> dict:
    if layout is None:
        return {}
    try:
        from mdcsql.lifecycle.tiers import label_range, parse_any
        fm = parse_any(rel, layout)
    except (ImportError, ValueError):
        return {}
    out = {"symbol": fm.key.symbol, "type": fm.key.type, "source": fm.key.source,
           "asset_class": fm.key.asset_class, "tier": fm.tier}
    try:
        span = label_range(fm.key.period) if fm.key.period else None
    except (ValueError, TypeError, AttributeError):
        span = None
    if span:
        out["first_ts"], out["last_ts"] = _first_ns(span[0]), _first_ns(span[1]) - 1
    return out


def find_protections(archive_or_root, rows_or_paths, *, override: Override | None = None, as_of=None,
                     settings=None) -> tuple[list[dict], list[Protection]]:
    """What protects each file, without logging or raising — for dry runs and plans
    (``policy explain``, ``tier plan``). Returns (metadata of every file, protections); each
    metadata dict has ``archive_entry`` (or None) and ``overridden`` (a governance lock that
    ``override`` lifts). A job that acts calls :func:`check_removable` instead (it logs)."""
    root, settings = _root_and_settings(archive_or_root, settings)
    as_of = parse_instant(as_of)
    items = [rows_or_paths] if isinstance(rows_or_paths, (str, dict)) else list(rows_or_paths)
    entries = archive_catalog.entries_by_path(root, settings)
    from mdcsql.archive import Archive
    layout = Archive(root, settings).layout
    metas = [describe_file(root, i, entries=entries, layout=layout) for i in items]
    active = holds.active_holds(root)
    pol = worm.worm_policy(settings)
    approvers = list((settings.storage.archive.approvers_for_delete or []) if settings.storage.archive else [])
    found: list[Protection] = []
    for meta in metas:
        path = meta["path"]
        for h in active:
            if h.covers(meta):
                found.append(Protection(path, "hold", f"legal hold {h.hold_id} ({h.reason}; {h.describe()})",
                                        hold_id=h.hold_id))
        entry = entries.get(path)
        meta["archive_entry"] = entry[0] if entry else None
        meta["overridden"] = False
        if entry is None:
            continue
        e, manifest = entry
        if manifest.signature_problem:
            found.append(Protection(path, "signature", f"{manifest.relpath}: {manifest.signature_problem}"))
            continue
        w = worm.protection(e, pol, as_of)
        if w is None:
            continue
        until = f"until {w['until']}" if w["until"] else "indefinitely (no retention_until)"
        if w["mode"] == "compliance":
            found.append(Protection(path, "worm", f"WORM compliance lock {until}; nothing lifts it",
                                    retention_until=w["until"]))
        elif override is None:
            found.append(Protection(path, "worm", f"WORM governance lock {until}; needs an override "
                                    "(who and why) and the configured approvals", retention_until=w["until"]))
        else:
            missing = [a for a in approvers if a not in override.approved_by]
            if missing:
                found.append(Protection(path, "approvers", f"WORM governance lock {until}: the override "
                                        f"lacks the approval of {', '.join(missing)} (--approved-by)",
                                        retention_until=w["until"]))
            else:
                meta["overridden"] = True
                meta["retention_until"] = w["until"]
    return metas, found


def check_removable(archive_or_root, rows_or_paths, *, action: str, actor: str | None = None,
                    override: Override | None = None, as_of=None, settings=None) -> list[dict]:
    """Raise :class:`ProtectedError` (after logging it) if any of the files may not be removed.

    :param rows_or_paths: catalog ``files`` rows (dicts with at least ``path``) or relative paths.
    :param action: what the caller is doing, for the logs: ``retention``, ``quota``, ``compaction``,
        ``migration``, ``manual``, ``modify``...
    :param override: lifts governance-mode WORM protection (never a hold, never compliance).
    :param as_of: the instant retention is judged at (default now).
    :returns: the metadata of every file (see :func:`find_protections`).
    """
    if not action or not str(action).strip():
        raise MdcsqlError("check_removable needs an action (retention, quota, compaction, manual, ...)")
    root, settings = _root_and_settings(archive_or_root, settings)
    metas, found = find_protections(root, rows_or_paths, override=override, as_of=as_of, settings=settings)
    if found:
        refuse(root, found, action=action, actor=actor, override=override)
    lifted = [{"path": m["path"], "retention_until": m["retention_until"]} for m in metas if m["overridden"]]
    if lifted:
        journal.append(journal.journal_path(root, OVERRIDES),
                       {"at": iso(utc_now()), "action": action, "actor": actor or default_actor(),
                        "override": asdict(override), "paths": lifted})
    return metas


def refuse(root, protections: list[Protection], *, action: str, actor: str | None = None,
           override: Override | None = None):
    """Log a refused attempt (fsync'd) and raise :class:`ProtectedError`."""
    journal.append(journal.journal_path(root, REFUSALS),
                   {"at": iso(utc_now()), "action": action, "actor": actor or default_actor(),
                    "override": asdict(override) if override else None,
                    "protections": [asdict(p) for p in protections]})
    raise ProtectedError(protections, action=action)


_SCHEMA = pa.schema([("seq", pa.int64()), ("recorded_at", pa.timestamp("us")), ("action", pa.string()),
                     ("actor", pa.string()), ("path", pa.string()), ("kind", pa.string()),
                     ("hold_id", pa.string()), ("retention_until", pa.timestamp("us")),
                     ("detail", pa.string())])


def _rows(seq: int, rec: dict) -> list[dict]:
    return [{"seq": seq, "recorded_at": naive(rec.get("at")), "action": rec.get("action"), "actor": rec.get("actor"),
             "path": p.get("path"), "kind": p.get("kind"), "hold_id": p.get("hold_id"),
             "retention_until": naive(p.get("retention_until")), "detail": p.get("detail")}
            for p in rec.get("protections") or ()]


def refresh(catalog, *, forget: bool) -> None:
    """Mirror ``_catalog/refusals.jsonl`` into ``refusals`` (new records; all with ``forget``)."""
    journal.mirror(catalog, name=REFUSALS, schema=_SCHEMA, to_rows=_rows,
                   clear_sql="queries/removal_refusals_clear.sql",
                   insert_sql="queries/removal_refusals_insert.sql", forget=forget)
