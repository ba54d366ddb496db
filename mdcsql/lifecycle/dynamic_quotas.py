"""Dynamic quotas (design: "Dynamic Quota Allocation"): propose MaxBytes limits from usage, apply them.

``Storage.Quotas.Dynamic``: Enabled (default false: proposals only), EvaluationPeriod (default
"1d": the activity window looked at, and how often a scheduler should run the rebalance),
MinReservePct (default 10: percent of the capacity always kept free), OverprovisionFactor
(default 0.2: a scope may burst to its configured MaxBytes × (1 + factor)), StealFromInactive
(default false: scopes with no data in the window give their unused room to active ones).

The evaluation, per scope with a MaxBytes (the Global one and every PerSource / PerAssetClass /
PerSymbol / PerEventType scope, PerSymbol.default expanded to the symbols seen):

1. Global: the capacity is the configured Global MaxBytes, bounded by what the disk can still
   hold while keeping MinReservePct of it free; a Global limit above that is lowered.
2. Inactive scopes (no data in the window), with StealFromInactive: lowered to their usage; the
   room they free goes to the pool of their level.
3. Active scopes whose usage plus one more window of growth would cross their limit: raised to
   cover that growth, at most to configured × (1 + OverprovisionFactor), out of the level's pool
   (stolen room + the overprovision allowance), never beyond the room the reserve leaves.
4. Scopes with an applied dynamic limit that no longer need it: back to the configured limit.

Applied limits are written to ``_catalog/quota_limits.json`` (the truth; mirrored into the
catalog's ``quota_limits`` table) and used by the next write path and by ``quota status``.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

from mdcsql.durable import atomic_write_json
from mdcsql.errors import MdcsqlError
from mdcsql.layout import CATALOG_DIR
from mdcsql.lifecycle.quotas import LIMITS_FILE, QuotaPlan, Usage, applied_dynamic_limits, log_event, scope_label

__all__ = ["evaluate", "apply", "DEFAULTS"]

DEFAULTS = {"enabled": False, "evaluation_period": "1d", "min_reserve_pct": 10.0,
            "overprovision_factor": 0.2, "steal_from_inactive": False}


def _settings(quotas) -> dict:
    dyn = quotas.dynamic if quotas is not None else None
    out = dict(DEFAULTS)
    if dyn is not None:
        out.update({k: getattr(dyn, k) for k in DEFAULTS if getattr(dyn, k) is not None})
    return out


def evaluate(archive, *, as_of: datetime | None = None, disk: tuple[int, int] | None = None) -> dict:
    """Proposals (each with its reason) for the scopes' MaxBytes as of `as_of` (default now).

    :param disk: (total, free) bytes of the archive's filesystem; measured when None.
    """
    from mdcsql.lifecycle.instants import duration_seconds
    quotas = archive.settings.storage.quotas
    cfg = _settings(quotas)
    as_of = as_of or datetime.now(timezone.utc)
    window = duration_seconds(cfg["evaluation_period"], what="Storage.Quotas.Dynamic.EvaluationPeriod")
    since = as_of - timedelta(seconds=window)
    current = QuotaPlan(quotas, applied_dynamic_limits(archive.root))
    configured = QuotaPlan(quotas)
    archive.sync_catalog()
    with archive.catalog() as cat:
        usage = Usage.from_catalog(cat, as_of=as_of, since=since)
    total, free = disk or _disk(archive.root)
    reserve_pct, factor = cfg["min_reserve_pct"], cfg["overprovision_factor"]
    used_global = usage.bytes.get(("global", ""), 0)
    disk_room = used_global + free - int(total * reserve_pct / 100)     # archive size keeping the reserve
    proposals: list[dict] = []

    def propose(limit, proposed: int, reason: str) -> None:
        was = limit.max_bytes
        if proposed != was:
            proposals.append({"scope": scope_label(limit.level, limit.name), "level": limit.level,
                              "name": limit.name, "current": was, "configured": limit.configured_max_bytes,
                              "proposed": proposed, "usage": usage.bytes.get((limit.level, limit.name), 0),
                              "window_bytes": usage.window_bytes.get((limit.level, limit.name), 0),
                              "reason": reason})

    glob = current.limit("global", "")
    capacity = disk_room
    if glob is not None and glob.max_bytes is not None:
        conf = glob.configured_max_bytes or glob.max_bytes
        target = max(used_global, min(conf, disk_room))
        capacity = target
        if target < conf:
            propose(glob, target, f"the disk keeps {reserve_pct:g}% free ({int(total * reserve_pct / 100)} "
                                  f"bytes of {total}): the archive may grow to {disk_room} bytes")
        else:
            propose(glob, conf, "back to the configured limit: the disk's reserve allows it")
    room = max(0, capacity - used_global)        # what the whole archive may still add

    by_level: dict[str, list] = {}
    for limit in current.expanded(usage.symbols):
        if limit.level != "global" and limit.max_bytes is not None:
            by_level.setdefault(limit.level, []).append(limit)
    for level, limits in by_level.items():
        pool = 0
        pressured = []
        for limit in limits:
            key = (limit.level, limit.name)
            used, active = usage.bytes.get(key, 0), usage.window_bytes.get(key, 0)
            conf = configured.limit(limit.level, limit.name).max_bytes or limit.max_bytes
            pool += int(conf * factor)
            if active == 0 and cfg["steal_from_inactive"] and used < limit.max_bytes:
                last = usage.last_ns.get(key)
                seen = (datetime.fromtimestamp(last / 1e9, tz=timezone.utc).isoformat()
                        if last is not None else "never")
                pool += limit.max_bytes - used
                propose(limit, used, f"inactive: no data in the last {cfg['evaluation_period']} "
                                     f"(newest event {seen}); its {limit.max_bytes - used} unused bytes "
                                     f"go to active {level} scopes")
            elif used + active > limit.max_bytes:
                pressured.append((used + active - limit.max_bytes, limit, used, active, conf))
            elif limit.max_bytes != conf and used + active <= conf:
                propose(limit, conf, f"back to the configured limit: usage {used} + {active} bytes per "
                                     f"{cfg['evaluation_period']} fits in it")
        for need, limit, used, active, conf in sorted(pressured, key=lambda p: -p[0]):
            ceiling = int(conf * (1 + factor))
            grant = min(used + active, ceiling) - limit.max_bytes
            grant = min(grant, pool, room)
            if grant <= 0:
                proposals.append({"scope": scope_label(limit.level, limit.name), "level": limit.level,
                                  "name": limit.name, "current": limit.max_bytes, "configured": conf,
                                  "proposed": limit.max_bytes, "usage": used, "window_bytes": active,
                                  "reason": f"would cross its limit within {cfg['evaluation_period']} "
                                            f"({used} + {active} bytes) but no room is left "
                                            f"(burst ceiling {ceiling}, pool {pool}, reserve room {room})"})
                continue
            pool -= grant
            propose(limit, limit.max_bytes + grant,
                    f"active: {active} bytes in the last {cfg['evaluation_period']}, usage {used} would "
                    f"cross {limit.max_bytes} within one period; raised by {grant} (burst ceiling "
                    f"{ceiling} = configured × {1 + factor:g})")
    return {"as_of": as_of.isoformat(), "enabled": bool(cfg["enabled"]), "settings": cfg,
            "disk": {"total": total, "free": free}, "reserve_bytes": int(total * reserve_pct / 100),
            "capacity": capacity, "usage": used_global, "proposals": proposals}


def apply(archive, evaluation: dict) -> dict:
    """Persist the proposals as the limits in effect (only with Dynamic.Enabled = true)."""
    if not evaluation["enabled"]:
        raise MdcsqlError("dynamic quotas are not enabled (Storage.Quotas.Dynamic.Enabled); the "
                          "proposals were shown, nothing was applied")
    path = Path(archive.root) / CATALOG_DIR / LIMITS_FILE
    doc = json.loads(path.read_text()) if path.exists() else {"limits": {}}
    limits = doc.get("limits", {})
    for p in evaluation["proposals"]:
        if p["proposed"] == p["current"]:
            continue
        if p["proposed"] == p["configured"]:
            limits.pop(p["scope"], None)
        else:
            limits[p["scope"]] = {"max_bytes": p["proposed"], "configured": p["configured"],
                                  "reason": p["reason"], "as_of": evaluation["as_of"]}
        log_event(archive.root, "dynamic_limit", None, None, origin="rebalance", scope=p["scope"],
                  max_bytes=p["proposed"], previous=p["current"], reason=p["reason"])
    doc = {"applied_at": datetime.now(timezone.utc).isoformat(), "as_of": evaluation["as_of"],
           "limits": dict(sorted(limits.items()))}
    atomic_write_json(path, doc)
    return doc


def _disk(root: Path) -> tuple[int, int]:
    usage = shutil.disk_usage(root)
    return usage.total, usage.free

