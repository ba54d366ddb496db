"""Session types, states and the one table of legal state transitions.

A collection session groups everything one stretch of collection wrote (design: "Collection
Session Management"). Its record is `sessions/<session_id>/manifest.json`; :class:`Session` is
that record in memory. States change only along :data:`TRANSITIONS`; anything else raises
:class:`SessionStateError` naming the session, both states and the legal ones.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import StrEnum

from mdcsql.errors import MdcsqlError

__all__ = ["SessionType", "SessionState", "TRANSITIONS", "TERMINAL", "SessionStateError", "SessionHeldError",
           "Session",
           "check_transition", "parse_type", "parse_state", "validate_id", "slug", "now_iso",
           "parse_iso", "MANIFEST_VERSION"]

MANIFEST_VERSION = 1


class SessionType(StrEnum):
    DAILY = "Daily"            # one trading day
    WEEKLY = "Weekly"          # a trading week (Mon-Fri)
    MONTHLY = "Monthly"        # a calendar month
    CUSTOM = "Custom"          # a user-defined range
    CONTINUOUS = "Continuous"  # ongoing until stopped


class SessionState(StrEnum):
    SCHEDULED = "Scheduled"    # created, waiting to start
    ACTIVE = "Active"          # every event written now belongs to it
    PAUSED = "Paused"          # temporarily stopped: events written now belong to no session
    COMPLETED = "Completed"    # finished normally
    FAILED = "Failed"          # ended with errors (or its collector died)
    CANCELLED = "Cancelled"    # stopped by the operator before its natural end


S = SessionState
#: the legal transitions: state -> states it may move to (docs/sessions.md shows the same table)
TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    S.SCHEDULED: frozenset({S.ACTIVE, S.CANCELLED}),
    S.ACTIVE: frozenset({S.PAUSED, S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.PAUSED: frozenset({S.ACTIVE, S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}
TERMINAL = frozenset(s for s, to in TRANSITIONS.items() if not to)
del S


class SessionStateError(MdcsqlError):
    """A state change that the transition table does not allow."""


class SessionHeldError(MdcsqlError):
    """Another running process collects into the session."""


def check_transition(session_id: str, current: SessionState, target: SessionState) -> None:
    """:raises SessionStateError: ``current -> target`` is not in :data:`TRANSITIONS`."""
    current, target = SessionState(current), SessionState(target)
    allowed = TRANSITIONS[current]
    if target not in allowed:
        legal = ", ".join(sorted(allowed)) if allowed else f"none: {current} is final"
        raise SessionStateError(f"session {session_id} is {current}; it cannot become {target} "
                                f"(legal from {current}: {legal})")


def _parse_enum(enum, text: str, what: str):
    for member in enum:
        if str(text).lower() == member.value.lower():
            return member
    raise MdcsqlError(f"unknown session {what} {text!r}; choose one of {', '.join(m.value for m in enum)}")


def parse_type(text) -> SessionType:
    """``'daily'`` -> ``SessionType.DAILY`` (case-insensitive). :raises MdcsqlError: unknown."""
    return _parse_enum(SessionType, text, "type")


def parse_state(text) -> SessionState:
    """``'active'`` -> ``SessionState.ACTIVE`` (case-insensitive). :raises MdcsqlError: unknown."""
    return _parse_enum(SessionState, text, "state")


_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def validate_id(session_id: str) -> str:
    """A session id is also a folder name: ``[A-Za-z0-9][A-Za-z0-9._-]*``, at most 128, no ``..``.

    :raises MdcsqlError: anything else (invariant 6: no path from raw user strings).
    """
    if not isinstance(session_id, str) or not _ID.fullmatch(session_id) or ".." in session_id:
        raise MdcsqlError(f"invalid session id {session_id!r}: use letters, digits, '.', '_' and '-' "
                          "(starting with a letter or digit, at most 128 characters)")
    return session_id


def slug(text: str) -> str:
    """``'Q1 earnings: AAPL'`` -> ``'q1-earnings-aapl'`` (empty when nothing usable is left)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80]


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str | None) -> datetime | None:
    """``'2026-01-03T14:30:00.000000Z'`` (or any ISO text with offset) -> aware UTC datetime."""
    if text is None:
        return None
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


@dataclass
class Session:
    """One session's record: the content of ``sessions/<session_id>/manifest.json``."""

    session_id: str
    name: str
    type: SessionType
    state: SessionState = SessionState.SCHEDULED
    created_at: str = field(default_factory=now_iso)
    started_at: str | None = None        # first time it became Active
    ended_at: str | None = None          # when it reached a final state
    symbols: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    notes: str | None = None
    merged_from: list[str] = field(default_factory=list)   # a merge: its file set is fixed
    intervals: list[dict] = field(default_factory=list)    # Active stretches: {"started", "ended"}
    history: list[dict] = field(default_factory=list)      # every state change: {"state", "at", "pid", "note"}
    statistics: dict = field(default_factory=dict)         # computed from the files' manifests
    files: list[dict] = field(default_factory=list)        # the session's sealed files
    updated_at: str = field(default_factory=now_iso)

    @property
    def active_seconds(self) -> float:
        """Time spent Active (pauses excluded); an open stretch counts up to now."""
        total = 0.0
        now = datetime.now(timezone.utc)
        for iv in self.intervals:
            start, end = parse_iso(iv["started"]), parse_iso(iv.get("ended")) or now
            total += max(0.0, (end - start).total_seconds())
        return total

    def transition(self, target: SessionState, *, note: str | None = None, pid: int | None = None,
                   at: str | None = None) -> None:
        """Move to ``target`` (checked against :data:`TRANSITIONS`), keeping intervals and history.

        ``at`` (ISO UTC) dates the change when it happened earlier than now (a dead collector's
        last heartbeat)."""
        check_transition(self.session_id, self.state, target)
        at = at or now_iso()
        if target == SessionState.ACTIVE:
            self.started_at = self.started_at or at
            self.intervals.append({"started": at, "ended": None})
        elif self.state == SessionState.ACTIVE and self.intervals and self.intervals[-1]["ended"] is None:
            self.intervals[-1]["ended"] = at
        if target in TERMINAL:
            self.ended_at = at
        self.state = target
        self.history.append({"state": target.value, "at": at, "pid": pid, "note": note})

    def to_dict(self) -> dict:
        doc = {"session_manifest_version": MANIFEST_VERSION, **asdict(self)}
        doc["type"], doc["state"] = self.type.value, self.state.value
        return doc

    @classmethod
    def from_dict(cls, doc: dict) -> "Session":
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in doc.items() if k in known}
        values["type"] = parse_type(values["type"])
        values["state"] = parse_state(values.get("state", "Scheduled"))
        return cls(**values)

    def summary(self) -> dict:
        """The short form listed in ``sessions/index.json`` and by ``session list``."""
        st = self.statistics or {}
        return {"session_id": self.session_id, "name": self.name, "type": self.type.value,
                "state": self.state.value, "created_at": self.created_at, "started_at": self.started_at,
                "ended_at": self.ended_at, "symbols": list(self.symbols), "tags": list(self.tags),
                "categories": list(self.categories), "files": len(self.files),
                "total_events": st.get("total_events", 0), "quality_score": st.get("quality_score"),
                "merged_from": list(self.merged_from)}
