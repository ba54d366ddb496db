"""Hierarchical quotas (design: "Capacity Limits & Quotas"): configuration, usage, status, enforcement.

A quota scope is the whole archive (``Global``), one source, asset class, symbol or event type
(``PerSource.<id>`` …). ``PerSymbol.default`` gives every symbol without an entry of its own the
same limits — each symbol separately, not all of them together. A scope has up to three limits:
MaxBytes (stored bytes of every file in every tier), MaxFiles and MaxEventsPerDay (events whose
ts falls on one UTC day), and one Enforcement for all three; unset Enforcement means ``Warn``.

Usage comes from the catalog's ``files`` table (one GROUPING SETS query), never from walking the
tree. The write path (:mod:`mdcsql.lifecycle.quota_usage`) takes that snapshot when it starts and
adds what it writes; ``mdcsql quota status`` and ``mdcsql quota enforce`` read the catalog as of a
date. Every warning, cleanup request, refusal and deletion is a line of
``_catalog/quota_events.jsonl`` (mirrored into the catalog's ``quota_events`` table).

Applied dynamic limits (:mod:`mdcsql.lifecycle.dynamic_quotas`) live in
``_catalog/quota_limits.json`` and replace the configured MaxBytes of the scopes they name while
``Storage.Quotas.Dynamic.Enabled`` is true.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from mdcsql.errors import MdcsqlError
from mdcsql.ingest.integrity import append_jsonl, read_jsonl
from mdcsql.ingest.seal import utc_now_iso
from mdcsql.layout import CATALOG_DIR
from mdcsql.sql import load_sql

__all__ = ["QuotaExceededError", "Limit", "QuotaPlan", "Usage", "classification", "log_event",
           "quota_events", "status", "enforce", "scope_label", "LEVELS", "SECTIONS",
           "DEFAULT_ENFORCEMENT", "EVENTS_FILE", "LIMITS_FILE", "NS_PER_DAY"]

LEVELS = ("global", "source", "asset_class", "symbol", "type")
SECTIONS = {"global": "Global", "source": "PerSource", "asset_class": "PerAssetClass",
            "symbol": "PerSymbol", "type": "PerEventType"}
DIMENSIONS = {"bytes": "MaxBytes", "files": "MaxFiles", "events": "MaxEventsPerDay"}
DEFAULT_ENFORCEMENT = "Warn"
DEFAULT_SYMBOL = "default"
EVENTS_FILE = "quota_events.jsonl"
LIMITS_FILE = "quota_limits.json"
NS_PER_DAY = 86_400_000_000_000
_EPOCH = date(1970, 1, 1)


class QuotaExceededError(MdcsqlError):
    """A HardLimit (or a DropOldest that found nothing it may delete) refused events."""

    def __init__(self, message: str, *, scope: str, dimension: str, limit: int, usage: int) -> None:
        self.scope, self.dimension, self.limit, self.usage = scope, dimension, limit, usage
        super().__init__(message)


def scope_label(level: str, name: str) -> str:
    return SECTIONS[level] if level == "global" else f"{SECTIONS[level]}.{name}"


def day_text(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).isoformat()


@dataclass(frozen=True)
class Limit:
    """The limits of one scope, resolved (PerSymbol.default expanded, dynamic MaxBytes applied)."""

    level: str
    name: str
    max_bytes: int | None
    max_files: int | None
    max_events_per_day: int | None
    enforcement: str
    from_default: bool = False          # a symbol limited by PerSymbol.default
    configured_max_bytes: int | None = None   # before a dynamic limit replaced it

    @property
    def label(self) -> str:
        return scope_label(self.level, self.name) + (" (default)" if self.from_default else "")

    def value(self, dim: str) -> int | None:
        return {"bytes": self.max_bytes, "files": self.max_files, "events": self.max_events_per_day}[dim]

    def matches(self, source: str, asset_class: str, symbol: str, etype: str) -> bool:
        return self.level == "global" or self.name == {"source": source, "asset_class": asset_class,
                                                        "symbol": symbol, "type": etype}[self.level]

    def to_dict(self) -> dict:
        return {"scope": self.label, "level": self.level, "name": self.name,
                "max_bytes": self.max_bytes, "max_files": self.max_files,
                "max_events_per_day": self.max_events_per_day, "enforcement": self.enforcement,
                "configured_max_bytes": self.configured_max_bytes}


class QuotaPlan:
    """Every configured scope's limits, with applied dynamic limits; cheap lookups by scope."""

    def __init__(self, quotas, dynamic: dict[str, int] | None = None) -> None:
        self.quotas = quotas
        self.dynamic = dict(dynamic or {})
        self._explicit: dict[tuple[str, str], object] = {}
        self._default_symbol = None
        self.has_drop_oldest = False
        if quotas is None:
            return
        if quotas.global_ is not None:
            self._explicit[("global", "")] = quotas.global_
        for level in ("source", "asset_class", "symbol", "type"):
            for name, quota in (getattr(quotas, f"per_{level if level != 'type' else 'event_type'}") or {}).items():
                if level == "symbol" and name == DEFAULT_SYMBOL:
                    self._default_symbol = quota
                else:
                    self._explicit[(level, name)] = quota
        self.has_drop_oldest = any(q.enforcement == "DropOldest" for q in self._quotas())

    def _quotas(self):
        yield from self._explicit.values()
        if self._default_symbol is not None:
            yield self._default_symbol

    @classmethod
    def for_archive(cls, root: Path, settings) -> "QuotaPlan":
        quotas = settings.storage.quotas
        dynamic = None
        if quotas is not None and quotas.dynamic is not None and quotas.dynamic.enabled:
            dynamic = applied_dynamic_limits(root)
        return cls(quotas, dynamic)

    @property
    def configured(self) -> bool:
        return bool(self._explicit) or self._default_symbol is not None

    def limit(self, level: str, name: str) -> Limit | None:
        quota = self._explicit.get((level, name))
        from_default = False
        if quota is None and level == "symbol" and self._default_symbol is not None:
            quota, from_default = self._default_symbol, True
        if quota is None:
            return None
        max_bytes = quota.max_bytes
        dynamic = self.dynamic.get(scope_label(level, name))
        if dynamic is not None:
            max_bytes = dynamic
        if max_bytes is None and quota.max_files is None and quota.max_events_per_day is None:
            return None
        return Limit(level, name, max_bytes, quota.max_files, quota.max_events_per_day,
                     quota.enforcement or DEFAULT_ENFORCEMENT, from_default, quota.max_bytes)

    def limits_of(self, source: str, asset_class: str, symbol: str, etype: str) -> list[Limit]:
        """The limits an event of this stream counts against, global first."""
        names = {"global": "", "source": source, "asset_class": asset_class, "symbol": symbol, "type": etype}
        return [lim for lim in (self.limit(level, names[level]) for level in LEVELS) if lim is not None]

    def expanded(self, seen_symbols) -> list[Limit]:
        """Every scope with a limit: the explicit ones, and one per symbol of `seen_symbols`
        that falls under PerSymbol.default."""
        out = [self.limit(level, name) for level, name in self._explicit]
        if self._default_symbol is not None:
            out += [self.limit("symbol", s) for s in sorted(set(seen_symbols))
                    if ("symbol", s) not in self._explicit]
        return [lim for lim in out if lim is not None]


def applied_dynamic_limits(root: Path) -> dict[str, int]:
    """MaxBytes per scope label from ``_catalog/quota_limits.json`` (empty when none applied)."""
    path = Path(root) / CATALOG_DIR / LIMITS_FILE
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text())
        return {label: int(entry["max_bytes"]) for label, entry in doc.get("limits", {}).items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MdcsqlError(f"{path}: not a quota limits document ({exc}); delete it or rerun "
                          "mdcsql quota rebalance --apply") from None


def classification(settings, etype: str) -> str:
    """The type's classification as the policy engine sees it (Storage.Policies.<Type>.Classification,
    else its default: Trade is Critical, Heartbeat Transient, others Standard). Critical is never deleted."""
    from mdcsql.lifecycle.policy import effective_policies
    return effective_policies(settings, [etype])[etype].classification


# ---- usage from the catalog ------------------------------------------------------------------

@dataclass
class Usage:
    """Files, bytes and events per UTC day of every scope, as the catalog knows them."""

    bytes: dict[tuple[str, str], int] = field(default_factory=dict)
    files: dict[tuple[str, str], int] = field(default_factory=dict)
    events: dict[tuple[str, str, int], int] = field(default_factory=dict)
    symbols: set[str] = field(default_factory=set)
    window_bytes: dict[tuple[str, str], int] = field(default_factory=dict)
    last_ns: dict[tuple[str, str], int | None] = field(default_factory=dict)

    @classmethod
    def from_catalog(cls, catalog, *, as_of: datetime | None = None, day: int | None = None,
                     since: datetime | None = None) -> "Usage":
        """One query (quota_usage.sql); `day` keeps only that UTC day's event counts, `since` fills
        the activity window used by dynamic quotas."""
        usage = cls()
        params = {"as_of": _naive(as_of), "day": day, "since": _naive(since)}
        for level, name, by_day, d, files, nbytes, events, window, last_ns in catalog.execute(
                load_sql("queries/quota_usage.sql"), params).rows:
            if by_day:
                usage.events[(level, name, int(d))] = int(events)
                continue
            usage.bytes[(level, name)] = int(nbytes)
            usage.files[(level, name)] = int(files)
            usage.window_bytes[(level, name)] = int(window)
            usage.last_ns[(level, name)] = last_ns
            if level == "symbol":
                usage.symbols.add(name)
        return usage

    def subtract(self, row: dict) -> None:
        """Forget one deleted file (a row of quota_candidates.sql) in every scope it counted in."""
        for level in LEVELS:
            key = (level, "" if level == "global" else row[level])
            self.bytes[key] = self.bytes.get(key, 0) - (row["size_bytes"] or 0)
            self.files[key] = self.files.get(key, 0) - 1
            if row.get("day") is not None and (*key, row["day"]) in self.events:
                self.events[(*key, row["day"])] -= row["event_count"]

    def of(self, limit: Limit, dim: str, day: int | None = None) -> int:
        key = (limit.level, limit.name)
        if dim == "events":
            return self.events.get((*key, day), 0)
        return (self.bytes if dim == "bytes" else self.files).get(key, 0)


def _naive(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(timezone.utc).replace(tzinfo=None)


def as_of_day(as_of: datetime | None) -> int:
    moment = as_of or datetime.now(timezone.utc)
    return (moment.astimezone(timezone.utc).date() - _EPOCH).days


# ---- the events log ---------------------------------------------------------------------------

def log_event(root: Path, kind: str, limit: Limit | None, dimension: str | None, *, usage: int | None = None,
              origin: str = "write", **extra) -> dict:
    """One line of ``_catalog/quota_events.jsonl``: warn | cleanup_requested | refused | dropped |
    drop_skipped | over_limit."""
    record = {"at": utc_now_iso(), "kind": kind, "origin": origin}
    if limit is not None:
        record.update(scope=limit.label, level=limit.level, name=limit.name,
                      enforcement=limit.enforcement)
    if dimension is not None:
        record.update(dimension=DIMENSIONS[dimension], limit=limit.value(dimension) if limit else None,
                      usage=usage)
    record.update({k: v for k, v in extra.items() if v is not None})
    return append_jsonl(Path(root) / CATALOG_DIR / EVENTS_FILE, record)


def quota_events(root: Path) -> list[dict]:
    return read_jsonl(Path(root) / CATALOG_DIR / EVENTS_FILE)


# ---- status and the lifecycle job ---------------------------------------------------------------

def _open_catalog(archive):
    archive.sync_catalog()
    return archive.catalog()


def status(archive, *, as_of: datetime | None = None) -> dict:
    """Usage against every limit as of `as_of` (default now): one row per scope and limit."""
    from mdcsql.ingest.integrity import policies, stale_streams
    plan = QuotaPlan.for_archive(archive.root, archive.settings)
    day = as_of_day(as_of)
    with _open_catalog(archive) as cat:
        usage = Usage.from_catalog(cat, as_of=as_of, day=day)
        now_ns = int((as_of or datetime.now(timezone.utc)).timestamp() * 1e9)
        stale = stale_streams(cat, archive.settings, as_of_ns=now_ns)
    rows = []
    for limit, dim, cap, used in _measured(plan, usage, day):
        rows.append({**limit.to_dict(), "dimension": DIMENSIONS[dim], "limit": cap, "usage": used,
                     "pct": round(100.0 * used / cap, 2), "over": used > cap,
                     "day": day_text(day) if dim == "events" else None})
    requests = [e for e in quota_events(archive.root) if e.get("kind") == "cleanup_requested"]
    return {"as_of": (as_of or datetime.now(timezone.utc)).isoformat(), "configured": plan.configured,
            "default_enforcement": DEFAULT_ENFORCEMENT,
            "dynamic_limits": plan.dynamic, "quotas": rows, "over": [r for r in rows if r["over"]],
            "cleanup_requests": len(requests), "stale_streams": stale,
            "integrity": {t: p.to_dict() for t, p in policies(archive.settings).items()}}


def _measured(plan: QuotaPlan, usage: Usage, day: int):
    """(limit, dimension, cap, usage) of every limit of every scope; usage read when yielded, so
    deletions made for earlier scopes are seen by later ones."""
    for limit in plan.expanded(usage.symbols):
        for dim in ("bytes", "files", "events"):
            cap = limit.value(dim)
            if cap is not None:
                yield limit, dim, cap, usage.of(limit, dim, day)


def enforce(archive, *, as_of: datetime | None = None, dry_run: bool = False,
            actor: str | None = None) -> dict:
    """The lifecycle job: apply every scope's enforcement to usage as of `as_of`.

    SoftLimit and DropOldest scopes over MaxBytes / MaxFiles lose their oldest sealed files of a
    non-Critical type until under the limit (each through ``remove_files``: holds and WORM are
    respected, every deletion logged). Warn scopes are reported and logged; HardLimit scopes are
    reported (their writers stay refused until usage falls); MaxEventsPerDay is reported only —
    deleting other days' files cannot undo a day's events.
    """
    plan = QuotaPlan.for_archive(archive.root, archive.settings)
    day = as_of_day(as_of)
    actions: list[dict] = []
    with _open_catalog(archive) as cat:
        usage = Usage.from_catalog(cat, as_of=as_of, day=day)
        candidates = load_candidates(cat, archive.settings, as_of=as_of) if plan.configured else []
    origin = "enforce"
    deleted: set[str] = set()
    for limit, dim, cap, used in _measured(plan, usage, day):
        if used <= cap:
            continue
        action = {"scope": limit.label, "dimension": DIMENSIONS[dim], "limit": cap, "usage": used,
                  "enforcement": limit.enforcement, "deleted": [], "action": "report"}
        actions.append(action)
        if dim == "events" or limit.enforcement in ("Warn", "HardLimit"):
            action["action"] = {"Warn": "warned", "HardLimit": "writes refused until under the limit"}.get(
                limit.enforcement, "reported (a day's events cannot be undone by deleting files)")
            if not dry_run:
                log_event(archive.root, "over_limit", limit, dim, usage=used, origin=origin,
                          day=day_text(day) if dim == "events" else None)
            continue
        action["action"] = "would delete oldest" if dry_run else "deleted oldest"
        for cand in [c for c in candidates if c["path"] not in deleted and limit.matches(
                c["source"], c["asset_class"], c["symbol"], c["type"])]:
            if used <= cap:
                break
            if not dry_run:
                reason = (f"quota {limit.label} {DIMENSIONS[dim]} {cap} ({limit.enforcement}): "
                          f"usage {used}")
                try:
                    remove_one(archive.root, cand["path"], reason=reason, actor=actor,
                               settings=archive.settings)
                except MdcsqlError as exc:
                    log_event(archive.root, "drop_skipped", limit, dim, usage=used, origin=origin,
                              path=cand["path"], error=str(exc))
                    action.setdefault("skipped", []).append({"path": cand["path"], "error": str(exc)})
                    continue
                log_event(archive.root, "dropped", limit, dim, usage=used, origin=origin,
                          path=cand["path"], bytes=cand["size_bytes"])
            deleted.add(cand["path"])
            action["deleted"].append(cand["path"])
            usage.subtract(cand)
            used = usage.of(limit, dim, day)
        action["usage_after"] = used
        action["under_limit"] = used <= cap
    if deleted and not dry_run:
        archive.sync_catalog(paths=sorted(deleted))
    return {"as_of": (as_of or datetime.now(timezone.utc)).isoformat(), "dry_run": dry_run,
            "actions": actions, "deleted": sorted(deleted)}


def load_candidates(catalog, settings, *, as_of: datetime | None = None) -> list[dict]:
    """Sealed files of non-Critical types, oldest data first: what DropOldest may delete."""
    critical: dict[str, bool] = {}
    out = []
    for row in catalog.execute(load_sql("queries/quota_candidates.sql"), {"as_of": _naive(as_of)}).dicts():
        etype = row["type"]
        if etype not in critical:
            critical[etype] = classification(settings, etype) == "Critical"
        if not critical[etype]:
            out.append(row)
    return out


def remove_one(root: Path, relpath: str, *, reason: str, actor: str | None = None, settings=None) -> None:
    """Delete one data file through the lifecycle's single removal path (holds, WORM, log)."""
    try:
        from mdcsql.lifecycle.removal import remove_files
    except ImportError:                       # pragma: no cover - the removal module ships with lifecycle
        raise MdcsqlError("cannot delete for a quota: mdcsql.lifecycle.removal is missing") from None
    remove_files(Path(root), [relpath], action="quota", reason=reason, actor=actor or "mdcsql quota",
                 settings=settings, missing_ok=True)
