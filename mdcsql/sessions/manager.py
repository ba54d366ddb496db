"""Session lifecycle and queries: create, start, pause, resume, end, recover, tag, show, list, report.

The rules (docs/sessions.md has the long form):

- **One Active session per archive.** While it is Active, every file the write path seals in a
  process that collects into it carries its ``session_id`` (``Ingestor.session_id``, copied into
  each manifest at seal). Starting, pausing and ending seal the hot files first, so no file mixes
  sessions. Starting takes the archive's write lock: a session begins at a clean boundary.
- **Holders.** The process that collects into an Active session holds ``sessions/<id>/HOLDER``
  (flock + heartbeat). ``own``: it started the session and ends it (``collecting``); ``attach``:
  it joined a session started elsewhere (``mdcsql session start``) and leaves it Active when done.
  An Active session without a holder is *detached*: the next collector attaches to it.
- **Crashes.** A HOLDER nobody locks means its process died. The next start (``start``, ``resume``,
  ``collecting``, ``recover``) seals the dead collector's recovered hot files into that session,
  then marks an ``own`` session Failed (ended at its last heartbeat) and leaves an ``attach``
  session Active for the next run — in both cases with counts from the files.
- **Statistics** come only from the sealed files' manifests (:mod:`mdcsql.sessions.report`).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from mdcsql.catalog.indexer import scan_tree
from mdcsql.durable import read_json
from mdcsql.errors import ArchiveLockedError, MdcsqlError, NotFoundError
from mdcsql.ingest.seal import MANIFEST_SUFFIX, sha256_file
from mdcsql.sessions.model import (TERMINAL, Session, SessionHeldError, SessionState, SessionStateError,
                                   check_transition, now_iso, parse_iso, parse_state, parse_type, slug,
                                   validate_id)
from mdcsql.sessions.report import checksums_text, file_entry, quality, session_report, statistics
from mdcsql.sessions.store import MANIFEST, REPORT, SessionStore
from mdcsql.sql import load_sql

__all__ = ["create", "start", "pause", "resume", "end", "attach", "detach", "recover", "tag", "get", "show",
           "list_sessions", "report", "store_of", "refresh", "session_manifests", "mirror", "rebuild"]

ACTIVE = SessionState.ACTIVE
_SCAN_SLACK = timedelta(seconds=60)     # a manifest sealed for a session is younger than its start


def store_of(archive) -> SessionStore:
    return SessionStore(archive.root)


# ---- the write path ------------------------------------------------------------------------------
def _live_ingestor(archive):
    """The archive's open write path in this process, or None (never opens one)."""
    return getattr(archive, "_ingestor", None)


def _bind(archive, session_id: str | None) -> None:
    """Stamp ``session_id`` on what the archive's write path seals from now on in this process — the
    open one and any the archive opens later (``collect()`` closes the archive when it stops, and a
    second run in the same session reopens it)."""
    ing = _live_ingestor(archive)
    if ing is not None:
        ing.session_id = session_id
    archive.__dict__.pop("ingestor", None)
    if session_id is None:
        return
    opener = type(archive).ingestor

    def ingestor():
        ing = opener(archive)
        ing.session_id = session_id
        return ing

    archive.ingestor = ingestor


def _seal_own(archive) -> None:
    """Seal this process's open hot files (they carry the currently bound session)."""
    ing = _live_ingestor(archive)
    if ing is not None:
        ing.seal()


# ---- computing from the files ----------------------------------------------------------------------
def session_manifests(root, session: Session, *, scan: bool) -> list[dict]:
    """The manifests of the session's sealed files.

    ``scan``: find them in the tree — every manifest younger than the session's start whose
    ``session_id`` is this session's. Otherwise (a final or merged session: a fixed set) read the
    manifests of the files its record lists; missing ones are skipped (``verify`` reports them).
    """
    out = []
    if scan and not session.merged_from:
        if session.started_at is None:
            return []
        since = (parse_iso(session.started_at) - _SCAN_SLACK).timestamp() * 1e9
        for rel, (_size, _mtime, manifest_mtime) in scan_tree(root).files.items():
            if manifest_mtime is None or manifest_mtime < since:
                continue
            try:
                m = read_json(root / (rel + MANIFEST_SUFFIX))
            except (OSError, ValueError):
                continue
            if m.get("session_id") == session.session_id and m.get("path") == rel:
                out.append(m)
    else:
        for entry in session.files:
            try:
                out.append(read_json(root / (entry["path"] + MANIFEST_SUFFIX)))
            except (OSError, ValueError):
                continue
    return sorted(out, key=lambda m: m["path"])


def _all_stored_match(root, session: Session, manifests: list[dict]) -> bool:
    """Every listed file is present and its stored bytes hash to its manifest's sha256."""
    if len(manifests) != len(session.files):
        return False
    for m in manifests:
        path = root / m["path"]
        if not path.exists():
            return False
        sha, size = sha256_file(path)
        if (sha, size) != (m["sha256"], m["size_bytes"]):
            return False
    return True


def refresh(archive, store: SessionStore, session: Session, *, scan: bool) -> dict:
    """Recompute statistics, quality, report and checksums from the files; write the session folder.
    Call with the store lock held. Returns the report."""
    root = archive.root
    manifests = session_manifests(root, session, scan=scan)
    if scan and not session.merged_from:
        session.files = [file_entry(m) for m in manifests]
    q = quality(manifests, expected_symbols=session.symbols)
    session.statistics = statistics(manifests, active_seconds=session.active_seconds, quality_doc=q)
    rep = session_report(session, manifests, session.statistics, q,
                         all_verified=_all_stored_match(root, session, manifests),
                         manifest_path=store.relpath(session.session_id, MANIFEST))
    store.folder(session.session_id).mkdir(parents=True, exist_ok=True)
    store.write_outputs(session.session_id, report=rep,
                        quality={"session_id": session.session_id, "computed_at": now_iso(), **q},
                        checksums=checksums_text(manifests))
    store.save(session)
    return rep


def mirror(archive, *, timeout: float = 2.0) -> bool:
    """Bring the catalog's session tables up to date; best effort (False when the catalog is busy:
    the next change, ``session list`` or a rebuild catches up — the files are the truth)."""
    try:
        with archive.catalog(timeout=timeout) as cat:
            cat.sync_sessions()
        return True
    except ArchiveLockedError:
        return False


def rebuild(catalog) -> int:
    """Restore every session into ``catalog`` from ``sessions/*/manifest.json`` (what
    ``Catalog.rebuild`` does)."""
    return catalog.sync_sessions(forget=True)


# ---- lifecycle ---------------------------------------------------------------------------------------
def _new_id(store: SessionStore, name: str | None, suffix: str = "regular") -> str:
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    base = f"{date}-{slug(name) if name and slug(name) else suffix}"[:120]
    sid, n = base, 1
    while store.exists(sid) or store.folder(sid).exists():
        n += 1
        sid = f"{base}-{n}"
    return sid


def create(archive, *, name: str | None = None, type: str = "Custom", session_id: str | None = None,
           symbols=(), tags=(), categories=(), metadata: dict | None = None, config: dict | None = None,
           notes: str | None = None) -> Session:
    """Create a Scheduled session; without ``session_id`` one is made from today's UTC date and the
    name (``2026-01-03-regular`` when there is no name either).

    :raises MdcsqlError: the id exists or is not a valid folder name; unknown type.
    """
    stype = parse_type(type)
    store = store_of(archive)
    with store.locked():
        sid = validate_id(session_id) if session_id is not None else _new_id(store, name)
        if store.exists(sid):
            raise MdcsqlError(f"session {sid} already exists in {archive.root}; choose another id")
        date = sid[:10] if session_id is None else datetime.now(timezone.utc).strftime("%Y-%m-%d")
        session = Session(sid, name or f"Regular Trading Session - {date}", stype,
                          symbols=sorted(set(symbols)), tags=_unique(tags), categories=_unique(categories),
                          metadata=dict(metadata or {}), config=dict(config or {}), notes=notes)
        session.history.append({"state": session.state.value, "at": session.created_at, "pid": os.getpid(),
                                "note": None})
        refresh(archive, store, session, scan=False)
    mirror(archive)
    return session


def _unique(items) -> list[str]:
    return list(dict.fromkeys(str(i) for i in items if str(i)))


def _active_other_than(store: SessionStore, session_id: str) -> None:
    for other in store.all():
        if other.state == ACTIVE and other.session_id != session_id:
            raise MdcsqlError(f"session {other.session_id} is Active; pause or end it first "
                              "(one Active session per archive)")


def _activate(archive, session_id: str, *, detach: bool) -> Session:
    store = store_of(archive)
    validate_id(session_id)
    ing = archive.ingestor()                  # the write lock: nobody else writes meanwhile
    recover(archive)
    with store.locked():
        session = store.load(session_id)
        check_transition(session_id, session.state, ACTIVE)
        _active_other_than(store, session_id)
    ing.session_id = None
    ing.seal(orphans=True)                    # what was written before belongs to no session
    with store.locked():
        session = store.load(session_id)
        check_transition(session_id, session.state, ACTIVE)
        _active_other_than(store, session_id)
        holder = None if detach else store.hold(session_id, mode="own")
        try:
            session.transition(ACTIVE, pid=os.getpid(),
                               note="detached: the next collector joins it" if detach else None)
            refresh(archive, store, session, scan=True)
        except BaseException:
            if holder is not None:
                holder.release()
            raise
    if not detach:
        _bind(archive, session_id)
    mirror(archive)
    return session


def start(archive, session_id: str, *, detach: bool = False) -> Session:
    """Scheduled -> Active: seal every hot file, then stamp the session on all that is sealed next.

    The calling process holds the session until ``pause``/``end`` (or dies: see ``recover``). With
    ``detach`` (``mdcsql session start``) nobody holds it: the next collector attaches to it.
    """
    _expect(archive, session_id, SessionState.SCHEDULED, "started", "resume it instead")
    return _activate(archive, session_id, detach=detach)


def resume(archive, session_id: str, *, detach: bool = False) -> Session:
    """Paused -> Active (same as ``start`` otherwise)."""
    _expect(archive, session_id, SessionState.PAUSED, "resumed", "start it instead")
    return _activate(archive, session_id, detach=detach)


def _expect(archive, session_id: str, state: SessionState, verb: str, other_hint: str) -> None:
    current = store_of(archive).load(session_id).state
    check_transition(session_id, current, ACTIVE)
    if current != state:
        raise SessionStateError(f"session {session_id} is {current}; only a {state} session can be {verb} "
                                f"({other_hint})")


def _release(archive, store: SessionStore, session_id: str) -> None:
    """Before leaving Active: refuse another live holder, seal this process's files, let go."""
    status = store.holder_status(session_id)
    if status.status == "stale":
        recover(archive)
    elif status.status == "live":
        raise SessionHeldError(f"session {session_id} is being collected by pid {status.pid}; stop that "
                          f"collector first (Ctrl-C ends its session cleanly), then retry")
    elif status.status == "mine":
        try:
            _seal_own(archive)
        finally:
            _bind(archive, None)
            store.held(session_id).release()


def _leave(archive, session_id: str, target: SessionState, note: str | None) -> Session:
    """Seal and move to ``target``. If sealing fails (the write path is broken), the session
    becomes Failed with the reason, and the error is raised."""
    store = store_of(archive)
    with store.locked():
        session = store.load(session_id)
        check_transition(session_id, session.state, target)
    failure = None
    try:
        _release(archive, store, session_id)
    except (ArchiveLockedError, SessionHeldError):
        raise                                 # nothing was sealed or released: nothing changes
    except Exception as exc:
        failure = exc
    with store.locked():
        session = store.load(session_id)
        if failure is not None:
            target = SessionState.FAILED
            note = f"sealing failed: {failure.__class__.__name__}: {failure}" + (f" ({note})" if note else "")
        check_transition(session_id, session.state, target)
        session.transition(target, pid=os.getpid(), note=note)
        refresh(archive, store, session, scan=True)
    mirror(archive)
    if failure is not None:
        raise failure
    return session


def pause(archive, session_id: str, *, note: str | None = None) -> Session:
    """Active -> Paused: seal, stop stamping; events written while paused belong to no session."""
    return _leave(archive, session_id, SessionState.PAUSED, note)


def end(archive, session_id: str, *, state: str | SessionState = SessionState.COMPLETED,
        note: str | None = None) -> Session:
    """Active or Paused -> ``state`` (Completed, Failed or Cancelled): seal, then write the final
    statistics, report, quality and checksums from the files."""
    target = parse_state(state)
    if target not in TERMINAL:
        raise MdcsqlError(f"a session ends as Completed, Failed or Cancelled, not {target}")
    return _leave(archive, session_id, target, note)


def attach(archive, session_id: str) -> Session:
    """Join an Active, detached session: seal what is open, hold it, stamp it on what is sealed next."""
    store = store_of(archive)
    ing = archive.ingestor()
    recover(archive)
    with store.locked():
        session = store.load(session_id)
        if session.state != ACTIVE:
            raise MdcsqlError(f"session {session_id} is {session.state}; only an Active session can be joined")
    ing.session_id = None
    ing.seal(orphans=True)
    with store.locked():
        session = store.load(session_id)
        store.hold(session_id, mode="attach")
        session.history.append({"state": ACTIVE.value, "at": now_iso(), "pid": os.getpid(),
                                "note": "collector attached"})
        store.save(session)
    _bind(archive, session_id)
    return session


def detach(archive, session_id: str, *, note: str | None = None) -> Session:
    """Seal and let go of a session this process holds, leaving it Active (detached)."""
    store = store_of(archive)
    if store.held(session_id) is None:
        raise MdcsqlError(f"this process does not hold session {session_id}")
    try:
        _seal_own(archive)
    finally:
        _bind(archive, None)
        store.held(session_id).release()
    with store.locked():
        session = store.load(session_id)
        session.history.append({"state": session.state.value, "at": now_iso(), "pid": os.getpid(),
                                "note": note or "collector detached"})
        refresh(archive, store, session, scan=True)
    mirror(archive)
    return session


def recover(archive) -> list[Session]:
    """Find Active sessions whose collector died (stale HOLDER); seal its recovered hot files into
    the session; mark an ``own`` session Failed at its last heartbeat, leave an ``attach`` one
    Active (detached). Returns the sessions handled. Opens the write path only when needed."""
    store = store_of(archive)
    stale = [(s, store.holder_status(s.session_id)) for s in store.all() if s.state == ACTIVE]
    stale = [(s, st) for s, st in stale if st.status == "stale"]
    if not stale:
        return []
    ing = archive.ingestor()
    ing.seal()                                # this process's own files keep their session
    handled = []
    for session, status in stale:
        previous = ing.session_id
        ing.session_id = session.session_id
        try:
            ing.seal(orphans=True)            # the dead collector's hot files, replayed from its WAL
        finally:
            ing.session_id = previous
        pid, beat = status.info.get("pid"), status.info.get("last_heartbeat")
        with store.locked():
            session = store.load(session.session_id)
            if session.state == ACTIVE:
                if status.info.get("mode") == "attach":
                    session.history.append({"state": ACTIVE.value, "at": now_iso(), "pid": os.getpid(),
                                            "note": f"collector pid {pid} died (last heartbeat {beat}); "
                                                    "its files were sealed into the session, which stays Active"})
                else:
                    session.transition(SessionState.FAILED, pid=os.getpid(), at=beat,
                                       note=f"collector pid {pid} died while the session was Active "
                                            f"(last heartbeat {beat}); its files were sealed into the session")
            store.clear_stale(session.session_id)
            refresh(archive, store, session, scan=True)
        handled.append(session)
    mirror(archive)
    return handled


def tag(archive, session_id: str, *, add=(), remove=(), categories=(), remove_categories=(),
        metadata: dict | None = None) -> Session:
    """Add/remove tags and categories, set custom metadata (a value of None removes the key)."""
    store = store_of(archive)
    with store.locked():
        session = store.load(session_id)
        session.tags = [t for t in _unique([*session.tags, *add]) if t not in set(remove)]
        session.categories = [c for c in _unique([*session.categories, *categories])
                              if c not in set(remove_categories)]
        for k, v in (metadata or {}).items():
            if v is None:
                session.metadata.pop(k, None)
            else:
                session.metadata[str(k)] = v
        store.save(session)
    mirror(archive)
    return session


# ---- queries ---------------------------------------------------------------------------------------
def get(archive, session_id: str) -> Session:
    return store_of(archive).load(session_id)


def show(archive, session_id: str) -> dict:
    """The session record plus who holds it (``none``/``mine``/``live``/``stale``) and its folder."""
    store = store_of(archive)
    session = store.load(session_id)
    status = store.holder_status(session_id)
    return {**session.to_dict(), "holder": {"status": status.status, **status.info},
            "folder": store.relpath(session_id, "")}


def _when(text, name: str, *, end_of_day: bool = False) -> datetime | None:
    if text is None:
        return None
    if isinstance(text, datetime):
        dt = text
    else:
        try:
            dt = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError:
            raise MdcsqlError(f"{name}: {text!r} is not a date (YYYY-MM-DD) or ISO time") from None
        if end_of_day and len(str(text)) == 10:
            dt += timedelta(days=1)
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt


def list_sessions(archive, *, state=None, tag=None, category: str | None = None,
                  since=None, until=None) -> list[dict]:
    """Sessions from the catalog (brought up to date from the tree first), newest first.

    :param state: only this state. :param tag: a tag or a list of tags: only sessions carrying
        all of them. :param category: only sessions in this category.
    :param since: / :param until: dates (``YYYY-MM-DD``, UTC; ``until`` is inclusive of that day)
        or ISO times: sessions whose span overlaps them.
    """
    import json as _json
    tags = [tag] if isinstance(tag, str) else list(tag or ()) or None
    params = {"state": parse_state(state).value if state else None, "tags": tags, "category": category,
              "since": _when(since, "since"), "until": _when(until, "until", end_of_day=True),
              "now": datetime.now(timezone.utc).replace(tzinfo=None)}
    sql = load_sql("queries/session_list.sql")
    try:
        with archive.catalog(timeout=10) as cat:
            cat.sync_sessions()
            rows = cat.execute(sql, params).dicts()
    except ArchiveLockedError:                # a reader holds it: read what it has
        with archive.catalog(read_only=True, timeout=30) as cat:
            rows = cat.execute(sql, params).dicts()
    for r in rows:
        for k in ("created_at", "started_at", "ended_at"):
            if r[k] is not None:
                r[k] = r[k].replace(tzinfo=timezone.utc).isoformat(timespec="seconds")
        r["metadata"] = _json.loads(r["metadata"]) if r["metadata"] else {}
    return rows


def report(archive, session_id: str, *, refresh_now: bool = False) -> dict:
    """The ``session_report`` document. Recomputed from the files when asked, when the session is
    not final yet, or when ``report.json`` is missing; otherwise read from ``report.json``."""
    store = store_of(archive)
    session = store.load(session_id)
    current = store.read_output(session_id, REPORT)
    if current is not None and not refresh_now and session.state in TERMINAL:
        return current
    with store.locked():
        session = store.load(session_id)
        rep = refresh(archive, store, session, scan=session.state not in TERMINAL)
    mirror(archive)
    return rep


def find(store: SessionStore, name: str) -> Session | None:
    """A session by id, else the one not-final session with this name."""
    try:
        return store.load(validate_id(name))
    except (NotFoundError, MdcsqlError):
        pass
    matches = [s for s in store.all() if s.name == name and s.state not in TERMINAL]
    if len(matches) > 1:
        raise MdcsqlError(f"{len(matches)} sessions are named {name!r}: "
                          f"{', '.join(s.session_id for s in matches)}; use the id")
    return matches[0] if matches else None
