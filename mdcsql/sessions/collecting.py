"""Collection inside a session: ``with collecting(archive) as session: collect(archive, sources, …)``.

``collecting`` picks the session, makes it Active for this process, and ends it when the block
ends — sealed, statistics from the files, report written — even on Ctrl-C:

- no ``name``: joins the archive's Active (detached) session if there is one, else creates and
  starts a new one (``2026-01-03-regular``: today's UTC date);
- ``name`` = an existing session's id (or a not-final session's name): Scheduled → started,
  Paused → resumed, Active and detached → joined; a final one is an error;
- ``name`` that matches nothing: a new session with that name (id ``<date>-<slug of name>``).

How the block ends decides the outcome of a session the block started or resumed:

=====================================  ==================================================
normal exit                            Completed (or what ``handle.finish_as`` asked for)
``KeyboardInterrupt`` (Ctrl-C)         Cancelled — Completed for a Continuous session, whose
                                       normal end *is* being stopped; re-raised
any other exception                    Failed, the exception in the note; re-raised
=====================================  ==================================================

A session the block only joined stays Active (detached) for the next run; the outcome is
recorded in its history. ``mdcsql.collect.collect`` catches Ctrl-C itself and returns
``interrupted=True``: :func:`collect` below turns that into the same outcome.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

from mdcsql.collect import stop_on_signals
from mdcsql.errors import MdcsqlError
from mdcsql.sessions import manager
from mdcsql.sessions.model import TERMINAL, SessionState, SessionType, parse_state, parse_type
from mdcsql.sessions.store import REPORT

__all__ = ["SessionHandle", "collecting", "collect", "interrupted_state"]


@dataclass
class SessionHandle:
    """What ``collecting`` yields: the session being collected into, and how it should end."""

    archive: object
    session_id: str
    type: SessionType
    joined: bool                               # True: joined a detached Active session
    outcome: SessionState | None = None        # None: decided by how the block ends
    note: str | None = None
    report: dict | None = field(default=None, repr=False)   # the final report, after the block

    @property
    def session(self):
        return manager.get(self.archive, self.session_id)

    def finish_as(self, state, note: str | None = None) -> None:
        """End the session as ``state`` (Completed, Failed or Cancelled) when the block exits normally."""
        state = parse_state(state)
        if state not in TERMINAL:
            raise MdcsqlError(f"a session ends as Completed, Failed or Cancelled, not {state}")
        self.outcome, self.note = state, note


def interrupted_state(stype) -> SessionState:
    """Ctrl-C ends a Continuous session normally (Completed); any other type is Cancelled."""
    return SessionState.COMPLETED if parse_type(stype) == SessionType.CONTINUOUS else SessionState.CANCELLED


def _open(archive, name, stype, tags, symbols, categories, metadata, config) -> SessionHandle:
    store = manager.store_of(archive)
    archive.ingestor()                        # the write lock first: one collector per archive
    manager.recover(archive)
    active = [s for s in store.all() if s.state == SessionState.ACTIVE]
    if active:
        current = active[0]
        if name is not None and name not in (current.session_id, current.name):
            raise MdcsqlError(f"session {current.session_id} is Active; end or pause it first "
                              f"(mdcsql session end {archive.root} {current.session_id}), or collect into it")
        if store.held(current.session_id) is not None:
            raise MdcsqlError(f"this process is already collecting into session {current.session_id}")
        manager.attach(archive, current.session_id)
        return SessionHandle(archive, current.session_id, current.type, joined=True)
    existing = manager.find(store, name) if name is not None else None
    if existing is not None:
        if existing.state == SessionState.SCHEDULED:
            manager.start(archive, existing.session_id)
        elif existing.state == SessionState.PAUSED:
            manager.resume(archive, existing.session_id)
        else:
            raise MdcsqlError(f"session {existing.session_id} is {existing.state}; collect into a new "
                              "session (another name)")
        return SessionHandle(archive, existing.session_id, existing.type, joined=False)
    session = manager.create(archive, name=name, type=stype, symbols=symbols, tags=tags,
                             categories=categories, metadata=metadata, config=config)
    manager.start(archive, session.session_id)
    return SessionHandle(archive, session.session_id, session.type, joined=False)


def _finish(handle: SessionHandle, state: SessionState, note: str | None) -> None:
    """Seal and end (or detach); a second Ctrl-C meanwhile is held back until this is done."""
    with stop_on_signals():
        if handle.joined:
            manager.detach(handle.archive, handle.session_id,
                           note=f"collector detached: {note or state}")
        else:
            manager.end(handle.archive, handle.session_id, state=state, note=note)
        handle.report = manager.store_of(handle.archive).read_output(handle.session_id, REPORT)


@contextmanager
def collecting(archive, name: str | None = None, type: str = "Custom", tags=(), symbols=(), *,
               categories=(), metadata: dict | None = None, config: dict | None = None):
    """Create/start (or resume, or join) a session for the block; end it when the block ends.

    :param archive: an open :class:`mdcsql.archive.Archive`; this process becomes its writer.
    :param name: a session id or name (see the module docstring); None: automatic.
    :param type: Daily, Weekly, Monthly, Custom or Continuous (for a new session).
    :param tags: / :param symbols: / :param categories: / :param metadata: / :param config: of a
        new session (``config`` may hold ``timezone`` and ``market_hours`` for the report).
    :yields: a :class:`SessionHandle`; after the block ``handle.report`` is the final report.
    """
    handle = _open(archive, name, type, tags, symbols, categories, metadata, config)
    try:
        yield handle
    except KeyboardInterrupt:
        _finish(handle, interrupted_state(handle.type), "interrupted (Ctrl-C)")
        raise
    except BaseException as exc:
        try:
            _finish(handle, SessionState.FAILED, f"{exc.__class__.__name__}: {exc}")
        except Exception as during:       # the write path itself may be what failed
            exc.add_note(f"ending session {handle.session_id} failed too: {during}")
        raise
    _finish(handle, handle.outcome or SessionState.COMPLETED, handle.note)


def collect(archive, sources, *, session: str | None = None, type: str = "Custom", tags=(), symbols=(),
            categories=(), metadata: dict | None = None, config: dict | None = None, **kwargs) -> dict:
    """:func:`mdcsql.collect.collect` inside :func:`collecting`: the collect summary plus
    ``session`` (its id) and ``session_report``. An interrupted run ends as ``interrupted_state``,
    a run where a source failed as Failed.

    Example: ``collect(archive, [SimSource(["AAPL"])], session="q1-run", tags=["Q1"], events=10_000)``
    """
    from mdcsql.collect import collect as run
    with collecting(archive, session, type, tags, symbols, categories=categories, metadata=metadata,
                    config=config) as handle:
        summary = run(archive, sources, **kwargs)
        if summary["failed"]:
            handle.finish_as(SessionState.FAILED, f"source(s) failed: {', '.join(summary['failed'])}")
        elif summary["interrupted"]:
            handle.finish_as(interrupted_state(handle.type), "interrupted (Ctrl-C)")
    return {**summary, "session": handle.session_id, "session_report": handle.report}
