"""Policy changes on a running collector: quotas and the integrity policy, applied within a second.

A :class:`PolicyReloader` thread (started by ``Archive.ingestor()``) looks at
``_catalog/config.json`` and ``_catalog/quota_limits.json`` once per second — their mtime_ns and
size; nothing is done per event — and when either changed, validates the new settings and swaps
the Ingestor's limits hook (:class:`~mdcsql.lifecycle.quota_usage.WriteLimits`) between two
commits (``Ingestor.swap_limits``). The events that follow are checked against the new Quotas,
classifications and Integrity settings; open hot files keep being written.

Usage stays exact across a reload: the new hook's usage is a *baseline* without this process's
files (the start-up catalog snapshot; or, when the collector started with no quota, a fresh
snapshot with the catalog's rows of this process's files taken out) plus what this process wrote,
counted from the Ingestor itself — its sealed manifests and its unsealed hot files' committed and
pending bytes and events — minus what its DropOldest deleted.

A file that fails validation (not JSON, an unknown key or value, a malformed quota_limits.json) is
not applied: the collector keeps its settings, logs a warning and appends one ``config_rejected``
alert (file, key, error) to ``_catalog/alerts.jsonl``; the next change of the file is tried again.
Layout settings (naming, partitioning, codec, sync) are read at start only.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from mdcsql.errors import ArchiveLockedError, MdcsqlError
from mdcsql.ingest.integrity import policies, record_alert
from mdcsql.layout import CATALOG_DIR
from mdcsql.lifecycle.quota_usage import WriteLimits, _catalog_for_snapshot
from mdcsql.lifecycle.quotas import LEVELS, LIMITS_FILE, NS_PER_DAY, QuotaPlan, Usage, load_candidates
from mdcsql.sql import load_sql

__all__ = ["PolicyReloader", "file_signature", "POLL_SECONDS"]

log = logging.getLogger("mdcsql.policy")

POLL_SECONDS = 1.0


def file_signature(path: Path) -> tuple[int, int] | None:
    """(mtime_ns, size) of a file, None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


class _Rejected(Exception):
    def __init__(self, file: str, error: Exception) -> None:
        super().__init__(str(error))
        self.file, self.error = file, error


class PolicyReloader(threading.Thread):
    """Watches the policy files of one archive and re-arms its running Ingestor's limits."""

    def __init__(self, archive, ingestor, *, interval: float = POLL_SECONDS) -> None:
        from mdcsql.archive import CONFIG_FILE
        super().__init__(name="mdcsql-policy-reload", daemon=True)
        self.archive, self.ingestor, self.interval = archive, ingestor, interval
        self.config_name = CONFIG_FILE
        self.files = [archive.root / CATALOG_DIR / CONFIG_FILE, archive.root / CATALOG_DIR / LIMITS_FILE]
        limits = ingestor.limits
        # what the running limits were built from; the first poll compares the files with it
        plan = limits.plan if limits is not None else QuotaPlan.for_archive(archive.root, archive.settings)
        self._fingerprint = (archive.settings.to_dict(), plan.dynamic)
        self._seen: list | None = None
        self.baseline: Usage | None = limits.usage if limits is not None and limits.plan.configured else None
        self._own_dropped: set[str] = set()      # this process's sealed files its DropOldest deleted
        self._stats: WriteLimits | None = limits  # counters carried from one hook to the next
        self._halt = threading.Event()
        self.reloads = 0
        self.rejected = 0

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.poll()

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=30)

    # ---- one look at the files ------------------------------------------------------------------
    def poll(self) -> bool:
        """Apply the policy files if they changed; True when new limits were swapped in. Never raises."""
        seen = [file_signature(p) for p in self.files]
        if seen == self._seen:
            return False
        try:
            changed = self.reload()
        except ArchiveLockedError as exc:        # the catalog is busy: tried again next second
            log.info("policy reload deferred: %s", exc)
            return False
        except _Rejected as exc:
            self._seen = seen
            self._alert("config_rejected", exc.file, exc.error)
            return False
        except Exception as exc:                 # never take the collector down
            self._seen = seen
            self._alert("policy_reload_failed", None, exc)
            return False
        self._seen = seen
        return changed

    def _alert(self, kind: str, file: str | None, error: Exception) -> None:
        self.rejected += 1
        text = str(error)
        key = text.split(":", 1)[0] if text.startswith("Storage.") else None
        log.warning("policy change not applied (%s%s): %s; the collector keeps its settings",
                    f"_catalog/{file}" if file else "reload", f", {key}" if key else "", text)
        try:
            record_alert(self.archive.root, kind, file=f"{CATALOG_DIR}/{file}" if file else None, key=key,
                         error=text, action="not applied; the running collector keeps its previous settings")
        except OSError as exc:
            log.error("cannot record the alert: %s", exc)

    def reload(self) -> bool:
        """Read and validate both files; swap in new limits when they differ from the running ones.

        :raises _Rejected: a file failed validation (nothing applied).
        :raises ArchiveLockedError: a catalog snapshot was needed and the catalog is busy.
        """
        from mdcsql.archive import read_settings
        root = self.archive.root
        try:
            settings = read_settings(root)
        except MdcsqlError as exc:
            raise _Rejected(self.config_name, exc) from None
        try:
            plan = QuotaPlan.for_archive(root, settings)
        except MdcsqlError as exc:
            raise _Rejected(LIMITS_FILE, exc) from None
        fingerprint = (settings.to_dict(), plan.dynamic)
        if fingerprint == self._fingerprint:
            return False
        checks = plan.configured or any(p.on_write_path for p in policies(settings).values())
        snapshot, candidates = None, []
        if checks and ((plan.configured and self.baseline is None) or plan.has_drop_oldest):
            snapshot, candidates = self._from_catalog(settings, plan)
        self.ingestor.swap_limits(lambda hots: self._build(hots, settings, plan, checks, snapshot, candidates))
        self.archive.settings = settings
        self._fingerprint = fingerprint
        self.reloads += 1
        log.info("policy reloaded: %s", "quotas and integrity checks re-armed" if checks else "nothing to check on write")
        return True

    # ---- building the new hook (the Ingestor's locks held: no commit, no append in between) ----
    def _build(self, hots: list, settings, plan: QuotaPlan, checks: bool, snapshot: Usage | None,
               candidates: list[dict]) -> WriteLimits | None:
        old = self.ingestor.limits
        fresh = self.baseline is None             # a snapshot taken just now (no drops to replay)
        baseline = snapshot if fresh else _copy(self.baseline)
        own_sealed = {m["path"]: m for m in self.ingestor.sealed}
        own_dropped = set(self._own_dropped)
        for cand in (old.dropped_rows if old is not None else ()):
            if cand["path"] in own_sealed:
                own_dropped.add(cand["path"])
            elif not fresh:
                _count(baseline, cand, -1)
        new = None
        if checks:
            usage = _copy(baseline) if plan.configured and baseline is not None else Usage()
            for path, m in own_sealed.items():
                if path not in own_dropped:
                    _count(usage, {**m, "day": _day(m.get("first_ts"))}, 1)
            for hot in hots:
                _, source, asset_class, symbol, etype = hot.stream
                _count(usage, {"source": source, "asset_class": asset_class, "symbol": symbol, "type": etype,
                               "size_bytes": hot.written_bytes + sum(map(len, hot.pending)),
                               "event_count": hot.written + hot.pending_events,
                               "day": None if hot.period_end is None else (hot.period_end - 1) // NS_PER_DAY}, 1)
            gone = set(old.dropped if old is not None else ()) | own_dropped
            new = WriteLimits(self.archive.root, settings, plan, usage,
                              [c for c in candidates if c["path"] not in gone])
            if plan.has_drop_oldest:             # this process's sealed files the catalog may not list yet
                listed = {c["path"] for c in candidates}
                new.sealed([m for p, m in own_sealed.items() if p not in listed and p not in gone])
            stats = old if old is not None else self._stats
            if stats is not None:
                new.refused, new.gap_alerts = stats.refused, stats.gap_alerts
                new.quarantined, new.dropped = stats.quarantined, stats.dropped
        # committed only now: a failed build leaves everything as it was
        self.baseline, self._own_dropped = baseline, own_dropped
        self._stats = old if old is not None else self._stats
        return new

    def _from_catalog(self, settings, plan: QuotaPlan) -> tuple[Usage | None, list[dict]]:
        """A fresh usage baseline without this process's files (when none yet) and DropOldest's
        candidates, in one catalog session."""
        with _catalog_for_snapshot(self.archive) as cat:
            usage = None
            if plan.configured and self.baseline is None:
                usage = Usage.from_catalog(cat)
                # listed after the snapshot: every file of ours it can hold is named
                rows = cat.execute(load_sql("queries/policy_reload_own_files.sql"),
                                   {"paths": self._own_paths()}).dicts()
                for row in rows:
                    _count(usage, row, -1)
            candidates = load_candidates(cat, settings) if plan.has_drop_oldest else []
        return usage, candidates

    def _own_paths(self) -> list[str]:
        """Every data-file path this process's files had: open, being sealed, sealed (and the hot
        path a sealed file had before)."""
        layout = self.archive.layout
        paths = set(self.ingestor.open_files())
        for m in list(self.ingestor.sealed):
            paths.add(m["path"])
            try:
                meta = layout.parse(m["path"])
                paths.add(layout.relpath(meta.key, codec="none", part=meta.part))
            except ValueError:
                continue
        return sorted(paths)


def _day(first_ts) -> int | None:
    return first_ts // NS_PER_DAY if isinstance(first_ts, int) else None


def _copy(usage: Usage) -> Usage:
    return Usage(bytes=dict(usage.bytes), files=dict(usage.files), events=dict(usage.events))


def _count(usage: Usage, row: dict, sign: int) -> None:
    """Add (sign 1) or take out (-1) one file in every scope it counts in."""
    for level in LEVELS:
        key = (level, "" if level == "global" else row[level])
        usage.bytes[key] = usage.bytes.get(key, 0) + sign * (row.get("size_bytes") or 0)
        usage.files[key] = usage.files.get(key, 0) + sign
        if row.get("day") is not None:
            k = (*key, int(row["day"]))
            usage.events[k] = usage.events.get(k, 0) + sign * (row.get("event_count") or 0)
