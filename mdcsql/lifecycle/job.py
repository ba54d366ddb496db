"""The whole lifecycle in one job, in the order that keeps it cheap and safe.

1. finish interrupted transitions (``transition.recover_transitions``);
2. retention — deleting first means nothing is converted only to be deleted;
3. quota enforcement (SoftLimit / DropOldest clean-ups);
4. tier migration (hot -> warm -> cold -> archive, with archive consolidation);
5. compaction of what is left small;
6. WORM locks whose delay elapsed (when ``Storage.Worm.Enabled``).

Each step takes the lifecycle lock itself and re-plans from the tree, so a step sees what the one
before it did. ``mdcsql lifecycle run`` is what a scheduler (cron, ``Storage.Tiering.MigrationSchedule``)
calls; ``--dry-run`` shows every step's plan and changes nothing.
"""

from __future__ import annotations

from datetime import datetime

__all__ = ["run_lifecycle"]


def run_lifecycle(archive, *, as_of: datetime, dry_run: bool = False, parallel: int = 1) -> dict:
    """Run every lifecycle step; returns one report per step (``{"step": ..., ...}``)."""
    from mdcsql.lifecycle import compaction, quotas
    from mdcsql.lifecycle.migrate import migrate
    from mdcsql.lifecycle.retention import apply_retention
    from mdcsql.lifecycle.transition import lifecycle_lock, recover_transitions
    out = []
    with lifecycle_lock(archive.root, what="lifecycle run"):
        out.append({"step": "recover", **recover_transitions(archive.root)})
    out.append({"step": "retention", **apply_retention(archive, as_of=as_of, dry_run=dry_run)})
    out.append({"step": "quotas", **quotas.enforce(archive, as_of=as_of, dry_run=dry_run)})
    plan, result = migrate(archive, as_of=as_of, parallel=parallel, dry_run=dry_run)
    out.append({"step": "migrate", "planned": [s.to_dict() for s in plan.steps], **result.to_dict()})
    res = compaction.compact(archive.root, as_of=as_of, dry_run=dry_run)
    out.append({"step": "compact", **(res if isinstance(res, dict) else _as_dict(res))})
    worm = archive.settings.storage.worm
    if worm is not None and worm.enabled and not dry_run:
        from mdcsql.lifecycle.worm import lock_due
        out.append({"step": "worm", "locked": lock_due(archive.root, as_of, settings=archive.settings)})
    return {"as_of": as_of.isoformat(), "dry_run": dry_run, "steps": out}


def _as_dict(obj) -> dict:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    from dataclasses import asdict, is_dataclass
    return asdict(obj) if is_dataclass(obj) else {"result": str(obj)}
