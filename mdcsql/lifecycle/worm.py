"""WORM (write once, read many) for the archive tier (design "WORM Support", WormConfig).

An archive entry becomes locked ``Storage.Worm.LockDelay`` after it was created (landed in
``_archive/``; DESIGN answer 3: nothing is WORM while it is still written). From then on, until its
``retention_until`` (None: indefinitely), the guard refuses to modify, move or delete it, and
:func:`lock_due` has made the file and its sidecar manifest read-only on disk (``chmod a-w``).
The lock is recorded in the entry's ``worm`` record inside the signed archive manifest — the lock
time (creation + delay, so reruns with the same ``--as-of`` give the same result) and the mode in
force then. A compliance lock stays compliance even if the setting later says governance.

Retention may be extended (``Storage.Worm.AllowExtend``, default true), never shortened in
compliance mode; in governance mode shortening needs an :class:`~mdcsql.lifecycle.guard.Override`
(who and why), which is written into the entry's history.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from mdcsql.errors import ConfigError
from mdcsql.lifecycle import archive_catalog
from mdcsql.lifecycle.instants import duration_seconds, from_iso, iso, parse_instant

__all__ = ["WormPolicy", "worm_policy", "is_locked", "lock_mode", "protection", "lock_due", "extend",
           "make_read_only"]

MODES = ("governance", "compliance")


@dataclass(frozen=True)
class WormPolicy:
    enabled: bool
    lock_delay: timedelta
    allow_extend: bool
    mode: str


def worm_policy(settings) -> WormPolicy:
    """``Storage.Worm`` (or ``Storage.Archive.Worm: true``) with defaults: delay 0, extend allowed,
    governance mode."""
    w, a = settings.storage.worm, settings.storage.archive
    enabled = bool((w and w.enabled) or (a and a.worm))
    delay = duration_seconds(w.lock_delay if w else None, what="Storage.Worm.LockDelay")
    return WormPolicy(enabled=enabled, lock_delay=timedelta(seconds=delay),
                      allow_extend=True if w is None or w.allow_extend is None else w.allow_extend,
                      mode=(w.compliance_mode if w and w.compliance_mode else "governance"))


def _lock_time(entry: dict, pol: WormPolicy) -> datetime:
    return from_iso(entry["created_at"]) + pol.lock_delay


def is_locked(entry: dict, pol: WormPolicy, as_of) -> bool:
    """Locked when the lock was applied, or (WORM enabled) its delay has elapsed by ``as_of`` (a
    datetime, naive = UTC, or text) — the guard does not wait for :func:`lock_due` to have run."""
    if (entry.get("worm") or {}).get("locked_at"):
        return True
    return pol.enabled and bool(entry.get("immutable")) and _lock_time(entry, pol) <= parse_instant(as_of)


def lock_mode(entry: dict, pol: WormPolicy) -> str:
    return (entry.get("worm") or {}).get("mode") or pol.mode


def protection(entry: dict, pol: WormPolicy, as_of) -> dict | None:
    """``{"until", "mode", "locked_at"}`` while the entry is under WORM retention at ``as_of``."""
    as_of = parse_instant(as_of)
    if not entry.get("immutable") or not is_locked(entry, pol, as_of):
        return None
    until = from_iso(entry.get("retention_until"))
    if until is not None and as_of >= until:
        return None
    return {"until": entry.get("retention_until"), "mode": lock_mode(entry, pol),
            "locked_at": (entry.get("worm") or {}).get("locked_at") or iso(_lock_time(entry, pol))}


def make_read_only(path: Path) -> bool:
    """``chmod a-w`` on a file (and its sidecar manifest); True if a bit changed."""
    changed = False
    for p in (path, path.with_name(path.name + ".manifest.json")):
        if p.is_file():
            mode = stat.S_IMODE(p.stat().st_mode)
            if mode & 0o222:
                os.chmod(p, mode & ~0o222)
                changed = True
    return changed


def lock_due(root, as_of=None, *, settings=None) -> list[str]:
    """Apply every lock whose delay has elapsed at ``as_of`` (default now): read-only bits on the
    file and its manifest, ``worm.locked_at``/``mode`` in the entry. Already-locked files get their
    read-only bits back if someone restored them. Returns the paths locked by this call.

    :raises ConfigError: WORM is not enabled (``Storage.Worm.Enabled``).
    """
    settings = settings or archive_catalog.settings_of(root)
    pol = worm_policy(settings)
    if not pol.enabled:
        raise ConfigError("WORM is not enabled: set Storage.Worm.Enabled (or Storage.Archive.Worm) to true")
    as_of = parse_instant(as_of)
    locked = []
    for path, (entry, _manifest) in sorted(archive_catalog.entries_by_path(root, settings).items()):
        worm = entry.get("worm") or {}
        if worm.get("locked_at"):
            make_read_only(Path(root) / path)
            continue
        if not entry.get("immutable") or _lock_time(entry, pol) > as_of:
            continue
        make_read_only(Path(root) / path)

        def lock(e: dict) -> dict:
            w = e.setdefault("worm", {"history": []})
            w.update(locked_at=iso(_lock_time(e, pol)), mode=pol.mode)
            w.setdefault("history", [])
            return e

        archive_catalog.update_entry(root, path, lock, settings=settings)
        locked.append(path)
    return locked


def extend(root, path_or_id: str, until, *, by: str, override=None, now=None, settings=None) -> dict:
    """Set an entry's ``retention_until`` to ``until`` (None or "never": indefinitely).

    Later than now → an extension (allowed unless ``AllowExtend`` is false). Earlier → shortening:
    refused in compliance mode, allowed in governance mode only with ``override`` (its who/why are
    kept in the entry's history). Refusals raise ProtectedError and are logged like every other.
    """
    from mdcsql.lifecycle.guard import Protection, refuse
    if not by or not str(by).strip():
        raise ConfigError("changing retention needs --by (who changes it)")
    settings = settings or archive_catalog.settings_of(root)
    pol = worm_policy(settings)
    entry = archive_catalog.find_entry(root, path_or_id, settings)
    path = entry["path"]
    new = None if until is None or str(until).lower() in ("never", "none", "indefinite") else \
        parse_instant(until, what="--until")
    old = from_iso(entry.get("retention_until"))
    if new == old:
        return entry
    longer = new is None or (old is not None and new > old)
    why = None
    if longer and not pol.allow_extend:
        why = "Storage.Worm.AllowExtend is false: retention cannot be changed"
    elif not longer:
        mode = lock_mode(entry, pol)
        span = f"{entry.get('retention_until') or 'indefinite'} to {iso(new)}"
        if mode == "compliance":
            why = f"compliance mode: retention can never be shortened ({span})"
        elif override is None:
            why = f"governance mode: shortening retention ({span}) needs an override (who and why)"
    if why:
        refuse(root, [Protection(path, "worm", why, retention_until=entry.get("retention_until"))],
               action="retention-change", actor=by)
    record = {"at": iso(parse_instant(now)), "by": str(by).strip(), "kind": "extend" if longer else "shorten",
              "from": entry.get("retention_until"), "to": iso(new),
              "override_reason": None if longer else override.reason}
    if not longer and override.by != record["by"]:
        record["override_by"] = override.by

    def apply(e: dict) -> dict:
        e["retention_until"] = iso(new)
        w = e.setdefault("worm", {"locked_at": None, "mode": None})
        w.setdefault("history", []).append(record)
        return e

    return archive_catalog.update_entry(root, path, apply, settings=settings)
