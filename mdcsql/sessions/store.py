"""The session folder: ``ROOT/sessions/<session_id>/`` and ``ROOT/sessions/index.json``.

Files are the truth (invariant 1); the catalog mirrors them (see :mod:`mdcsql.sessions.mirror`).

- ``manifest.json``     the session record (:class:`~mdcsql.sessions.model.Session`) with its file list
- ``report.json``       the design's ``session_report`` document
- ``quality.json``      the measured quality summary
- ``checksums.sha256``  ``sha256sum -c`` input, paths relative to the session folder
- ``HOLDER``            present while a process collects into the session (flock held; see below)
- ``../index.json``     one summary line per session, rewritten on every change

Every change is read-modify-write under ``sessions/.lock`` (an exclusive ``flock``), so a CLI
command and a collector never interleave their updates; each file is written atomically.

The holder file: a process that collects into an Active session keeps ``HOLDER`` open with an
exclusive ``flock``. The kernel drops the lock when the process dies, so a ``HOLDER`` file that
nobody locks means its collector was killed: the next start finds it (``stale``).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mdcsql.durable import atomic_write, atomic_write_json, read_json
from mdcsql.errors import MdcsqlError, NotFoundError
from mdcsql.layout import SESSIONS_DIR
from mdcsql.sessions.model import Session, SessionHeldError, now_iso, validate_id

__all__ = ["SessionStore", "Holder", "HolderStatus", "MANIFEST", "REPORT", "QUALITY", "CHECKSUMS",
           "HOLDER", "INDEX"]

MANIFEST, REPORT, QUALITY, CHECKSUMS = "manifest.json", "report.json", "quality.json", "checksums.sha256"
HOLDER, INDEX, STORE_LOCK = "HOLDER", "index.json", ".lock"
HEARTBEAT_S = 2.0

# holders taken by this process, by holder-file path: the same process asking again sees "mine"
_HELD: dict[str, "Holder"] = {}


@dataclass
class HolderStatus:
    """Who collects into a session: ``none`` (nobody), ``mine`` (this process), ``live`` (another
    running process) or ``stale`` (its holder died without releasing)."""

    status: str
    info: dict

    @property
    def pid(self) -> int | None:
        return self.info.get("pid")


class Holder:
    """This process's claim on an Active session: the flock'ed ``HOLDER`` file, touched every
    :data:`HEARTBEAT_S` seconds so that, once its process is dead, the file's mtime tells when."""

    def __init__(self, path: Path, fd: int, info: dict) -> None:
        self.path, self._fd, self.info = path, fd, info
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name="mdcsql-session-heartbeat", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                os.utime(self._fd)
            except OSError:
                return

    def release(self) -> None:
        """Clean release: remove the file, then drop the lock (a crash instead leaves it stale)."""
        if self._fd < 0:
            return
        self._stop.set()
        self._beat.join(timeout=5)
        try:
            self.path.unlink(missing_ok=True)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1
            _HELD.pop(str(self.path), None)


class SessionStore:
    """Reads and writes the session folders of one archive root."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.dir = self.root / SESSIONS_DIR

    # ---- paths ------------------------------------------------------------------------------
    def folder(self, session_id: str) -> Path:
        return self.dir / validate_id(session_id)

    def relpath(self, session_id: str, name: str) -> str:
        return f"{SESSIONS_DIR}/{validate_id(session_id)}/{name}"

    def exists(self, session_id: str) -> bool:
        return (self.folder(session_id) / MANIFEST).exists()

    # ---- the store lock ----------------------------------------------------------------------
    @contextmanager
    def locked(self):
        """Exclusive lock over every session's metadata (blocking; held for milliseconds)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / STORE_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # ---- records -----------------------------------------------------------------------------
    def load(self, session_id: str) -> Session:
        path = self.folder(session_id) / MANIFEST
        if not path.exists():
            known = ", ".join(s.session_id for s in self.all()[:10]) or "none yet"
            raise NotFoundError(f"no session {session_id!r} in {self.root} (sessions: {known})")
        try:
            return Session.from_dict(read_json(path))
        except (ValueError, KeyError, TypeError) as exc:
            raise MdcsqlError(f"{path}: not a readable session manifest ({exc})") from None

    def all(self) -> list[Session]:
        """Every session with a readable manifest, oldest first (unreadable ones are skipped)."""
        out = []
        if self.dir.is_dir():
            for entry in sorted(os.scandir(self.dir), key=lambda e: e.name):
                path = Path(entry.path) / MANIFEST
                if entry.is_dir() and path.exists():
                    try:
                        out.append(Session.from_dict(read_json(path)))
                    except (ValueError, KeyError, TypeError, MdcsqlError):
                        continue
        return sorted(out, key=lambda s: (s.created_at, s.session_id))

    def save(self, session: Session) -> None:
        """Write the manifest and refresh ``index.json``. Call with the store lock held."""
        session.updated_at = now_iso()
        atomic_write_json(self.folder(session.session_id) / MANIFEST, session.to_dict())
        self.write_index()

    def write_outputs(self, session_id: str, *, report: dict, quality: dict, checksums: str) -> None:
        folder = self.folder(session_id)
        atomic_write_json(folder / REPORT, report, sync_dir=False)
        atomic_write_json(folder / QUALITY, quality, sync_dir=False)
        atomic_write(folder / CHECKSUMS, checksums.encode(), sync_dir=True)

    def read_output(self, session_id: str, name: str) -> dict | None:
        path = self.folder(session_id) / name
        return read_json(path) if path.exists() else None

    def write_index(self) -> None:
        sessions = self.all()
        atomic_write_json(self.dir / INDEX, {"index_version": 1, "updated_at": now_iso(),
                                             "sessions": [s.summary() for s in sessions]})

    # ---- holders -----------------------------------------------------------------------------
    def hold(self, session_id: str, *, mode: str) -> Holder:
        """Claim the session for this process (``mode``: ``own`` or ``attach``, see manager).

        :raises MdcsqlError: another live process holds it.
        """
        path = self.folder(session_id) / HOLDER
        mine = _HELD.get(str(path))
        if mine is not None:
            return mine
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            info = _read_info(path)
            raise SessionHeldError(f"session {session_id} is being collected by pid {info.get('pid', '?')}; "
                              "stop that collector first (Ctrl-C ends its session cleanly)") from None
        info = {"pid": os.getpid(), "host": os.uname().nodename, "since": now_iso(), "mode": mode}
        data = json.dumps(info).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
        holder = Holder(path, fd, info)
        _HELD[str(path)] = holder
        return holder

    def held(self, session_id: str) -> Holder | None:
        """This process's holder of the session, if it has one."""
        return _HELD.get(str(self.folder(session_id) / HOLDER))

    def holder_status(self, session_id: str) -> HolderStatus:
        path = self.folder(session_id) / HOLDER
        if str(path) in _HELD:
            return HolderStatus("mine", _HELD[str(path)].info)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return HolderStatus("none", {})
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return HolderStatus("live", _read_info(path))
            fcntl.flock(fd, fcntl.LOCK_UN)
            info = _read_info(path)
            info["last_heartbeat"] = datetime.fromtimestamp(os.fstat(fd).st_mtime, timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ")
            return HolderStatus("stale", info)
        finally:
            os.close(fd)

    def clear_stale(self, session_id: str) -> None:
        (self.folder(session_id) / HOLDER).unlink(missing_ok=True)


def _read_info(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
