"""Collection sessions (design: "Collection Session Management"; docs/sessions.md).

Example::

    from mdcsql.archive import Archive
    from mdcsql.collect import collect
    from mdcsql import sessions
    from mdcsql.sources.sim import SimSource

    archive = Archive.open("data")
    with sessions.collecting(archive, "Q1 run", type="Daily", tags=["Q1-2026"]) as s:
        collect(archive, [SimSource(["AAPL", "MSFT"])], events=10_000)
    s.report["session_report"]["volume"]["total_events"]      # 10000, counted from the files
"""

from mdcsql.sessions.bulk import compare, merge
from mdcsql.sessions.collecting import SessionHandle, collect, collecting, interrupted_state
from mdcsql.sessions.manager import (attach, create, detach, end, get, list_sessions, pause, rebuild, recover,
                                     report, resume, show, start, tag)
from mdcsql.sessions.model import (TERMINAL, TRANSITIONS, Session, SessionState, SessionStateError, SessionType,
                                   check_transition)
from mdcsql.sessions.verify import verify

__all__ = ["Session", "SessionType", "SessionState", "SessionStateError", "TRANSITIONS", "TERMINAL",
           "check_transition", "create", "start", "pause", "resume", "end", "attach", "detach", "recover",
           "tag", "get", "show", "list_sessions", "report", "verify", "compare", "merge", "rebuild",
           "collecting", "collect", "SessionHandle", "interrupted_state"]
