"""The write path's limits hook: quotas and the per-stream integrity checks, at a few ns per event.

`Archive.ingestor()` builds one :class:`WriteLimits` (or none, when no quota is configured and
no type's integrity policy checks anything on write) from a snapshot of the catalog's usage, and
hands it to the Ingestor. Each stream (source, asset class, symbol, type) with a limit or an
integrity check gets a :class:`StreamBudget` that its hot files share. When the policy files
change, :mod:`mdcsql.lifecycle.policy_reload` builds a new one and re-attaches the open files.

Per event the Ingestor only decrements two counters of the budget and compares ts with a window
(inlined in ``Ingestor._add``). The counters are a *lease*: bytes and events already charged to
every scope of the stream, sized as a quarter of the tightest scope's remaining room (at most
1 MiB / 65536 events) — so a lease never carries a scope past its limit, and the crossing is
seen at the exact event. Only when a lease runs out, the event's UTC day leaves the lease's day
(MaxEventsPerDay) or its ts goes backwards (EnforceMonotonicity) does :meth:`WriteLimits.slow`
run: it returns the unused lease, checks the event against every scope and applies the scope's
enforcement, then grants a new lease.

Enforcement when an event does not fit (after taking back other streams' unused leases):
Warn logs a warning (once per crossing) and goes on; SoftLimit does the same and records a
``cleanup_requested`` event for ``mdcsql quota enforce``; HardLimit raises
:class:`QuotaExceededError` (nothing of the event is stored; every earlier event stays, other
scopes keep writing); DropOldest deletes the scope's oldest sealed files of non-Critical types
through ``remove_files`` until the event fits — and refuses like HardLimit when nothing it may
delete is left, and for MaxEventsPerDay (deleting files of other days cannot make room in this one).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from mdcsql.errors import MdcsqlError
from mdcsql.ingest.integrity import IntegrityPolicy, gap_alert, policy_for, refuse_out_of_order
from mdcsql.lifecycle.quotas import (DIMENSIONS, NS_PER_DAY, Limit, QuotaExceededError, QuotaPlan, Usage,
                                     classification, day_text, load_candidates, log_event, remove_one)

__all__ = ["WriteLimits", "StreamBudget", "build_write_limits"]

log = logging.getLogger("mdcsql.quota")

CAP_BYTES = 1 << 20          # largest lease (bytes): one slow-path call per MiB at most
CAP_EVENTS = 1 << 16
INF = 1 << 62


class ScopeState:
    """Usage of one limited scope in this process: the catalog snapshot plus charged leases."""

    __slots__ = ("limit", "bytes", "files", "events", "crossed", "budgets")

    def __init__(self, limit: Limit, usage: Usage) -> None:
        self.limit = limit
        key = (limit.level, limit.name)
        self.bytes = usage.bytes.get(key, 0)
        self.files = usage.files.get(key, 0)
        self.events = {d: n for (lv, nm, d), n in usage.events.items() if (lv, nm) == key}
        self.crossed: set[tuple] = set()      # limits already reported as crossed (once per crossing)
        self.budgets: list[StreamBudget] = []

    def used(self, dim: str, day: int | None) -> int:
        if dim == "events":
            return self.events.get(day, 0)
        return self.bytes if dim == "bytes" else self.files


class StreamBudget:
    """What the Ingestor checks per event of one stream (fields read inline by ``_add``)."""

    __slots__ = ("key", "scopes", "bytes_left", "events_left", "lo_ts", "hi_ts", "last_ts", "day",
                 "per_day", "monotonic", "max_gap", "policy")

    def __init__(self, key: tuple, scopes: list[ScopeState], policy: IntegrityPolicy) -> None:
        self.key = key                         # (source, asset_class, symbol, type)
        self.scopes = scopes
        self.policy = policy
        self.bytes_left = 0 if scopes else INF
        self.events_left = 0 if scopes else INF
        self.lo_ts, self.hi_ts, self.last_ts = -INF, INF, -INF
        self.day: int | None = None
        self.per_day = any(s.limit.max_events_per_day for s in scopes)
        self.monotonic = policy.enforce_monotonicity
        self.max_gap = INF if policy.max_sequence_gap is None else policy.max_sequence_gap


class WriteLimits:
    """The hook object the Ingestor calls (under its mutex) on the rare paths."""

    def __init__(self, root: Path, settings, plan: QuotaPlan, usage: Usage,
                 candidates: list[dict] | None = None) -> None:
        self.root = Path(root)
        self.settings = settings
        self.plan = plan
        self.usage = usage
        self.candidates = list(candidates or [])       # DropOldest: sealed, non-Critical, oldest first
        self._scopes: dict[tuple[str, str], ScopeState] = {}
        self._budgets: dict[tuple, StreamBudget | None] = {}
        self._critical: dict[str, bool] = {}
        self._lock = threading.Lock()                  # usage: slow path vs. seals (committer thread)
        self.quarantined: list[dict] = []
        self.refused = 0
        self.dropped: list[str] = []
        self.dropped_rows: list[dict] = []             # the candidates deleted (a policy reload recounts)
        self.gap_alerts = 0

    # ---- streams -------------------------------------------------------------------------------
    def opened(self, source: str, asset_class: str, symbol: str, etype: str, relpath: str) -> StreamBudget | None:
        """A hot file opens: the stream's budget (None: nothing to check), after MaxFiles."""
        budget = self._stream_budget((source, asset_class, symbol, etype))
        if budget is None or not budget.scopes:
            return budget
        with self._lock:
            for scope in budget.scopes:
                self._fit(scope, "files", 1, None, budget, f"a new file {relpath}")
            for scope in budget.scopes:
                scope.files += 1
        return budget

    def attach(self, hot) -> StreamBudget | None:
        """The budget of a hot file already open when the limits were reloaded (its file is
        already counted; the stream's last ts carries over for EnforceMonotonicity)."""
        budget = self._stream_budget(tuple(hot.stream[1:]))
        old = hot.budget
        if budget is not None and old is not None and old.last_ts > budget.last_ts:
            budget.last_ts = old.last_ts
            if budget.monotonic and not budget.scopes:
                budget.lo_ts = old.last_ts
        return budget

    def _stream_budget(self, key: tuple) -> StreamBudget | None:
        if key not in self._budgets:
            self._budgets[key] = self._budget(key)
        return self._budgets[key]

    def _budget(self, key: tuple) -> StreamBudget | None:
        policy = policy_for(self.settings, key[3])
        scopes = []
        for limit in self.plan.limits_of(*key):
            state = self._scopes.get((limit.level, limit.name))
            if state is None:
                state = self._scopes[(limit.level, limit.name)] = ScopeState(limit, self.usage)
            scopes.append(state)
        if not scopes and not policy.on_write_path:
            return None
        budget = StreamBudget(key, scopes, policy)
        for scope in scopes:
            scope.budgets.append(budget)
        return budget

    # ---- the slow path ---------------------------------------------------------------------------
    def slow(self, hot, event: dict, line: bytes) -> None:
        """A lease ran out, the day changed or ts went backwards: check this event, renew the lease.

        The event's bytes and count were already taken off the lease by the caller.
        :raises OutOfOrderError: EnforceMonotonicity and ts < the stream's last ts (quarantined).
        :raises QuotaExceededError: a HardLimit (or DropOldest with nothing to delete) refuses it.
        """
        b: StreamBudget = hot.budget
        n, ts = len(line), event["ts"]
        if b.monotonic and ts < b.last_ts and not _is_duplicate(hot.state, event):
            b.bytes_left += n
            b.events_left += 1
            refuse_out_of_order(self.root, hot.relpath, event, line, b.last_ts, self.quarantined)
        if not b.scopes:                     # integrity only: no lease to renew
            b.bytes_left = b.events_left = INF
            return
        with self._lock:
            self._settle(b, n, 1)
            day = ts // NS_PER_DAY if b.per_day else None
            what = f"a {event['type']} event of {event['symbol']} from {event['source']} at ts {ts}"
            for scope in b.scopes:
                self._fit(scope, "bytes", n, day, b, what)
                self._fit(scope, "events", 1, day, b, what)
            self._grant(b, n, 1, day)
        if b.per_day:
            b.lo_ts = max(day * NS_PER_DAY, b.last_ts)
            b.hi_ts = (day + 1) * NS_PER_DAY
        else:
            b.lo_ts = b.last_ts if b.monotonic else -INF

    def table(self, hot, part, nbytes: int) -> None:
        """The batch path: check a whole table part of one stream (refused as a whole)."""
        b: StreamBudget = hot.budget
        ts = part.column("ts").to_numpy()
        if b.monotonic and len(ts):
            back = np.flatnonzero(np.diff(ts, prepend=max(b.last_ts, int(ts[0]))) < 0)
            if len(back):
                from mdcsql import events as ev
                row = int(back[0])
                refuse_out_of_order(self.root, hot.relpath, part.slice(row, 1).to_pylist()[0],
                                    ev.encode_table(part), int(ts[row - 1]) if row else b.last_ts,
                                    self.quarantined)
        if b.max_gap < INF and part.column("seq").null_count == 0 and part.num_rows > 1:
            seqs = part.column("seq").to_numpy()
            for i in np.flatnonzero(np.diff(seqs) - 1 > b.max_gap):
                self.gap(hot, int(seqs[i]) + 1, int(seqs[i + 1]) - 1)
        if b.scopes:
            with self._lock:
                self._settle(b, 0, 0)
                days = np.unique(ts // NS_PER_DAY, return_counts=True) if b.per_day else ([None], [len(ts)])
                what = f"{len(ts)} {b.key[3]} events of {b.key[2]} from {b.key[0]} (one table)"
                for scope in b.scopes:
                    self._fit(scope, "bytes", nbytes, None, b, what)
                    for day, count in zip(*days):
                        self._fit(scope, "events", int(count), None if day is None else int(day), b, what)
                for scope in b.scopes:
                    scope.bytes += nbytes
                    for day, count in zip(*days):
                        if day is not None:
                            scope.events[int(day)] = scope.events.get(int(day), 0) + int(count)
            b.lo_ts, b.hi_ts = -INF, INF          # leases are empty: the next event takes the slow path
        if len(ts):
            b.last_ts = max(b.last_ts, int(ts.max()))

    def gap(self, hot, first_missing: int, last_missing: int) -> None:
        """A seq jump larger than MaxSequenceGap: an alert record (the events are stored)."""
        self.gap_alerts += 1
        gap_alert(self.root, hot.relpath, hot.budget.key, first_missing, last_missing, hot.budget.max_gap)

    def sealed(self, manifests: list[dict]) -> None:
        """Files sealed: their bytes now count compressed; DropOldest may delete them later."""
        with self._lock:
            for m in manifests:
                key = (m["source"], m["asset_class"], m["symbol"], m["type"])
                budget = self._budgets.get(key)
                for scope in budget.scopes if budget is not None else ():
                    scope.bytes -= (m.get("raw_bytes") or 0) - (m.get("size_bytes") or 0)
                if self.plan.has_drop_oldest and not self._is_critical(m["type"]):
                    first = m.get("first_ts")
                    self.candidates.append({
                        "path": m["path"], "source": m["source"], "asset_class": m["asset_class"],
                        "symbol": m["symbol"], "type": m["type"], "size_bytes": m.get("size_bytes") or 0,
                        "event_count": m.get("event_count") or 0,
                        "day": first // NS_PER_DAY if isinstance(first, int) else None})

    # ---- internals (self._lock held) ----------------------------------------------------------
    def _settle(self, b: StreamBudget, n: int, k: int) -> None:
        """Give back the unused part of the stream's lease (and the `n` bytes / `k` events of the
        event being checked, already taken off it)."""
        back_bytes, back_events = b.bytes_left + n, b.events_left + k
        for scope in b.scopes:
            scope.bytes -= back_bytes
            if b.day is not None:
                scope.events[b.day] = scope.events.get(b.day, 0) - back_events
        b.bytes_left = b.events_left = 0

    def _reclaim(self, scope: ScopeState, keep: StreamBudget) -> None:
        for other in scope.budgets:
            if other is not keep and (other.bytes_left > 0 or other.events_left > 0):
                self._settle(other, 0, 0)

    def _fit(self, scope: ScopeState, dim: str, amount: int, day: int | None, b: StreamBudget,
             what: str) -> None:
        """Make `amount` fit in the scope's `dim` limit, or apply its enforcement."""
        limit = scope.limit
        cap = limit.value(dim)
        if cap is None:
            return
        mark = (dim, day) if dim == "events" else (dim,)
        if scope.used(dim, day) + amount <= cap:
            scope.crossed.discard(mark)                 # under again: the next crossing is reported
            return
        self._reclaim(scope, b)
        if scope.used(dim, day) + amount <= cap:
            return
        used = scope.used(dim, day)
        first = mark not in scope.crossed
        scope.crossed.add(mark)
        day_note = day_text(day) if day is not None else None
        enforcement = limit.enforcement
        if enforcement in ("Warn", "SoftLimit"):
            if first:
                log.warning("quota %s %s %d crossed (usage %d + %d): %s", limit.label, DIMENSIONS[dim],
                            cap, used, amount, enforcement)
                log_event(self.root, "warn" if enforcement == "Warn" else "cleanup_requested", limit, dim,
                          usage=used + amount, day=day_note)
            return
        if enforcement == "DropOldest" and dim != "events" and self._drop_oldest(scope, dim, amount):
            scope.crossed.discard(mark)
            return
        self.refused += 1
        if first:
            log_event(self.root, "refused", limit, dim, usage=used, day=day_note, event=what)
        unit = {"bytes": "bytes", "files": "files", "events": f"events on {day_note}"}[dim]
        why = (" and DropOldest found no sealed file of a non-Critical type it may delete (held and "
               "WORM-locked files are kept)"
               if enforcement == "DropOldest" and dim != "events" else "")
        raise QuotaExceededError(
            f"quota exceeded: {limit.label} {DIMENSIONS[dim]} is {cap} {unit} ({enforcement}); usage "
            f"is {used}, and {what} needs {amount} more{why}. Refused; everything stored before is "
            f"kept and other scopes keep writing. Free space (mdcsql quota enforce), or raise the limit",
            scope=limit.label, dimension=DIMENSIONS[dim], limit=cap, usage=used)

    def _drop_oldest(self, scope: ScopeState, dim: str, amount: int) -> bool:
        """Delete the scope's oldest deletable sealed files until `amount` fits; True if it does."""
        limit = scope.limit
        cap = limit.value(dim)
        for cand in list(self.candidates):
            if scope.used(dim, None) + amount <= cap:
                return True
            if not limit.matches(cand["source"], cand["asset_class"], cand["symbol"], cand["type"]):
                continue
            self.candidates.remove(cand)
            reason = f"quota {limit.label} {DIMENSIONS[dim]} {cap} (DropOldest): usage {scope.used(dim, None)}"
            try:
                remove_one(self.root, cand["path"], reason=reason, actor="mdcsql ingest", settings=self.settings)
            except MdcsqlError as exc:          # held, WORM-locked, gone: never deleted, next one
                log_event(self.root, "drop_skipped", limit, dim, usage=scope.used(dim, None),
                          path=cand["path"], error=str(exc))
                continue
            log_event(self.root, "dropped", limit, dim, usage=scope.used(dim, None), path=cand["path"],
                      bytes=cand["size_bytes"])
            self.dropped.append(cand["path"])
            self.dropped_rows.append(cand)
            for other in self._scopes.values():
                if other.limit.matches(cand["source"], cand["asset_class"], cand["symbol"], cand["type"]):
                    other.bytes -= cand["size_bytes"] or 0
                    other.files -= 1
                    if cand.get("day") is not None and cand["day"] in other.events:
                        other.events[cand["day"]] -= cand["event_count"]
        return scope.used(dim, None) + amount <= cap

    def _grant(self, b: StreamBudget, n: int, k: int, day: int | None) -> None:
        """Charge a new lease (at least this event) to every scope of the stream."""
        room_b = room_e = INF
        for scope in b.scopes:
            lim = scope.limit
            if lim.max_bytes is not None and ("bytes",) not in scope.crossed:
                room_b = min(room_b, lim.max_bytes - scope.bytes)
            if lim.max_events_per_day is not None and ("events", day) not in scope.crossed:
                room_e = min(room_e, lim.max_events_per_day - scope.events.get(day, 0))
        lease_b = max(n, min(room_b, max(min(CAP_BYTES, room_b // 4), n)))
        lease_e = max(k, min(room_e, max(min(CAP_EVENTS, room_e // 4), k)))
        for scope in b.scopes:
            scope.bytes += lease_b
            if day is not None:
                scope.events[day] = scope.events.get(day, 0) + lease_e
        b.bytes_left, b.events_left, b.day = lease_b - n, lease_e - k, day

    def _is_critical(self, etype: str) -> bool:
        if etype not in self._critical:
            self._critical[etype] = classification(self.settings, etype) == "Critical"
        return self._critical[etype]


def _is_duplicate(state, event: dict) -> bool:
    """Would dedupe drop this event? (Then it is not out of order: it is dropped as a duplicate.)"""
    seq = event["seq"]
    if seq is None or state is None or state.lo is None or not state.lo <= seq <= state.hi:
        return False
    return not any(a <= seq <= b for a, b in state.gaps)


def build_write_limits(archive) -> WriteLimits | None:
    """The hook for `archive`'s Ingestor, or None when there is nothing to check on write."""
    settings = archive.settings
    plan = QuotaPlan.for_archive(archive.root, settings)
    from mdcsql.ingest.integrity import policies
    if not plan.configured and not any(p.on_write_path for p in policies(settings).values()):
        return None
    usage, candidates = Usage(), []
    if plan.configured:
        with _catalog_for_snapshot(archive) as cat:
            usage = Usage.from_catalog(cat)
            if plan.has_drop_oldest:
                candidates = load_candidates(cat, settings)
    return WriteLimits(archive.root, settings, plan, usage, candidates)


def _catalog_for_snapshot(archive):
    """The catalog for the start-up snapshot: read-write briefly, or read-only beside readers that
    hold it (an analyst's shell must not keep a collector from starting)."""
    from mdcsql.errors import ArchiveLockedError
    try:
        return archive.catalog(timeout=2.0)
    except ArchiveLockedError:
        return archive.catalog(read_only=True, timeout=10.0)
