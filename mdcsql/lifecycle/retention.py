"""Retention: delete what the policy engine says has reached its end of life.

The decisions come from ``policy.decide`` ("delete": past ``RetentionDays``, or past the last tier
of a type without an archive tier); Critical data never gets such a decision. Each file goes
through ``removal.remove_files`` on its own, so a file held or WORM-locked since the plan was made
is refused (and logged) without stopping the others.
"""

from __future__ import annotations

from datetime import datetime

from mdcsql.lifecycle.guard import ProtectedError
from mdcsql.lifecycle.migrate import plan
from mdcsql.lifecycle.removal import remove_files
from mdcsql.lifecycle.transition import lifecycle_lock, recover_transitions

__all__ = ["apply_retention"]


def apply_retention(archive, *, as_of: datetime, dry_run: bool = False) -> dict:
    """Delete (or with ``dry_run`` list) every file due for deletion. Returns
    ``{"as_of", "deleted": [{path, reason, size_bytes}], "protected": [...], "bytes"}``."""
    deleted, protected = [], []
    with lifecycle_lock(archive.root, what="retention"):
        recover_transitions(archive.root)
        p = plan(archive, as_of=as_of)
        sizes = {}
        with archive.catalog(read_only=True, timeout=60) as cat:
            for path, size in cat.execute("SELECT path, size_bytes FROM files").rows:
                sizes[path] = size or 0
        due = []
        for d in p.decisions:
            if d.action == "protected" and d.target_tier is None:
                protected.append({"path": d.path, "reason": d.reason})
            if d.action == "delete":
                due.append({"path": d.path, "reason": d.reason, "size_bytes": sizes.get(d.path, 0)})
        if dry_run or not due:
            deleted = due
        else:
            with archive.catalog(timeout=60) as cat:
                try:        # one batch (the plan left protected files out) ...
                    for reason in sorted({i["reason"] for i in due}):
                        batch = [i for i in due if i["reason"] == reason]
                        remove_files(archive.root, [i["path"] for i in batch], action="retention",
                                     reason=reason, missing_ok=True, as_of=as_of,
                                     settings=archive.settings, catalog=cat)
                        deleted += batch
                except ProtectedError:   # ... unless a hold arrived since: then file by file
                    for item in due:
                        if item in deleted:
                            continue
                        try:
                            remove_files(archive.root, [item["path"]], action="retention",
                                         reason=item["reason"], missing_ok=True, as_of=as_of,
                                         settings=archive.settings, catalog=cat)
                        except ProtectedError as exc:
                            protected.append({"path": item["path"], "reason": str(exc)})
                        else:
                            deleted.append(item)
    return {"as_of": as_of.isoformat(), "deleted": deleted, "protected": protected,
            "bytes": sum(d["size_bytes"] for d in deleted)}
