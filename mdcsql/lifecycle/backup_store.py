"""A backup target on disk: a content-addressed object store plus one manifest per backup.

Layout of a local target directory::

    TARGET/objects/<sha256[:2]>/<sha256>   every distinct file content, once (read-only)
    TARGET/backups/<id>.json               one manifest per finished backup (written last)
    TARGET/tmp/                            objects being copied (names end in .tmp)
    TARGET/LOCK                            held (flock) by the one process using the target

Crash safety: an object is copied to ``tmp/``, fsync'd, re-read and hashed, then renamed into
``objects/`` (invariant 3 at the level of one file); a backup's manifest is written atomically only
after all its objects are durable, so no manifest ever names a missing object, whatever instant a
crash hits. Pruning deletes manifests first and then the objects no remaining manifest names, so a
crash there leaves at most unreferenced objects, collected by the next prune.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from mdcsql.durable import atomic_write_json, fsync_dir
from mdcsql.errors import ArchiveLockedError, IntegrityError, MdcsqlError, NotFoundError
from mdcsql.ingest.seal import sha256_file

__all__ = ["BackupError", "Target", "CHUNK", "MANIFEST_FORMAT", "check_relpath", "copy_hashed", "new_backup_id"]

CHUNK = 1 << 20
MANIFEST_FORMAT = "mdcsql-backup"
MANIFEST_VERSION = 1
_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
_SHA = re.compile(r"[0-9a-f]{64}")


class BackupError(MdcsqlError):
    """A backup, verification or restore cannot be done as asked."""


def new_backup_id(now: datetime) -> str:
    """Sortable, unique id: UTC time of the start plus 6 random hex digits."""
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def check_relpath(rel: str) -> PurePosixPath:
    """A manifest's file path, refused unless it stays inside the destination (invariant 6)."""
    p = PurePosixPath(rel)
    if (not rel or p.is_absolute() or "\\" in rel or any(part in ("", ".", "..") for part in rel.split("/"))):
        raise IntegrityError(f"backup manifest names an unsafe path {rel!r}; refusing to restore it")
    return p


@dataclass
class PutResult:
    sha256: str
    size: int
    copied: bool        # False: the store had this content already


@dataclass
class VerifyResult:
    backups: list[str] = field(default_factory=list)
    objects_checked: int = 0
    bytes_checked: int = 0
    problems: list[dict] = field(default_factory=list)     # {backup, path, sha256, problem}

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"ok": self.ok, "backups": self.backups, "objects_checked": self.objects_checked,
                "bytes_checked": self.bytes_checked, "problems": self.problems}


def copy_hashed(src: Path, dst: Path, *, on_bytes=None) -> tuple[str, int]:
    """Copy ``src`` to the new file ``dst`` (fsync'd), hashing the bytes on the way: (sha256, size)."""
    h, size = hashlib.sha256(), 0
    with open(src, "rb") as f:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            while chunk := f.read(CHUNK):
                h.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
                size += len(chunk)
                if on_bytes:
                    on_bytes(len(chunk))
            os.fsync(fd)
        finally:
            os.close(fd)
    return h.hexdigest(), size


class Target:
    """One local backup target directory (created on first use by :meth:`lock`)."""

    def __init__(self, path) -> None:
        self.path = Path(path).expanduser().resolve()
        self._lock_fd: int | None = None

    def __repr__(self) -> str:
        return f"Target({str(self.path)!r})"

    # ---- locking ------------------------------------------------------------------------------
    def lock(self) -> "Target":
        """Take the target's exclusive lock (one backup, prune or restore-from at a time)."""
        for sub in ("objects", "backups", "tmp"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ArchiveLockedError(f"backup target {self.path} is in use by another mdcsql backup") from None
        self._lock_fd = fd
        self._clean_tmp()
        return self

    @contextmanager
    def reading(self):
        """Shared lock for verify and restore: no prune deletes objects under them meanwhile."""
        if not (self.path / "backups").is_dir():
            raise NotFoundError(f"no backup target at {self.path} (no backups/ directory)")
        try:
            fd = os.open(self.path / "LOCK", os.O_RDONLY)
        except FileNotFoundError:
            yield self
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ArchiveLockedError(f"backup target {self.path} is being written by an mdcsql backup; "
                                         "try again when it is done") from None
            yield self
        finally:
            os.close(fd)

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> "Target":
        return self.lock()

    def __exit__(self, *exc) -> None:
        self.unlock()

    def _clean_tmp(self) -> None:
        """Remove what a crashed run left half-copied (safe: we hold the lock)."""
        for entry in os.scandir(self.path / "tmp"):
            if entry.name.endswith(".tmp"):
                os.unlink(entry.path)
        for entry in os.scandir(self.path / "backups"):
            if entry.name.endswith(".tmp"):
                os.unlink(entry.path)

    # ---- objects ------------------------------------------------------------------------------
    def object_path(self, sha: str) -> Path:
        if not _SHA.fullmatch(sha or ""):
            raise IntegrityError(f"backup manifest names an invalid sha256 {sha!r}")
        return self.path / "objects" / sha[:2] / sha

    def has(self, sha: str) -> bool:
        return self.object_path(sha).is_file()

    def put(self, src: Path, *, on_bytes=None) -> PutResult:
        """Copy ``src`` into the store: copy to tmp → fsync → re-read and verify → rename.

        :raises FileNotFoundError: ``src`` vanished (the caller decides what that means).
        :raises IntegrityError: the copy on disk does not hash like the bytes that were read.
        """
        tmp = self.path / "tmp" / f"{uuid.uuid4().hex}.tmp"
        try:
            sha, size = copy_hashed(src, tmp, on_bytes=on_bytes)
            if sha256_file(tmp)[0] != sha:
                raise IntegrityError(f"copy of {src} into {self.path} does not verify (disk error?)")
            final = self.object_path(sha)
            if final.is_file():                 # same content reached the store meanwhile
                os.unlink(tmp)
                return PutResult(sha, size, False)
            final.parent.mkdir(exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
            fsync_dir(final.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return PutResult(sha, size, True)

    def check_object(self, sha: str, size: int | None = None) -> str | None:
        """None when the object is present with that hash (and size), else what is wrong."""
        path = self.object_path(sha)
        if not path.is_file():
            return "missing"
        if size is not None and path.stat().st_size != size:
            return f"size {path.stat().st_size} instead of {size}"
        actual, _ = sha256_file(path)
        return None if actual == sha else f"sha256 {actual}"

    # ---- manifests ----------------------------------------------------------------------------
    def manifest_path(self, backup_id: str) -> Path:
        if not _ID.fullmatch(backup_id or ""):
            raise BackupError(f"{backup_id!r} is not a backup id (like 20240102T000000Z-1a2b3c); "
                              "see: mdcsql backup list")
        return self.path / "backups" / f"{backup_id}.json"

    def write_manifest(self, doc: dict) -> Path:
        path = self.manifest_path(doc["id"])
        atomic_write_json(path, doc)
        return path

    def read_manifest(self, backup_id: str) -> dict:
        path = self.manifest_path(backup_id)
        if not path.is_file():
            raise NotFoundError(f"no backup {backup_id} in {self.path}; see: mdcsql backup list --target {self.path}")
        try:
            doc = json.loads(path.read_bytes())
        except ValueError as e:
            raise IntegrityError(f"backup manifest {path} is not valid JSON: {e}") from None
        if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT or doc.get("id") != backup_id:
            raise IntegrityError(f"{path} is not an mdcsql backup manifest")
        return doc

    def manifests(self) -> list[dict]:
        """Every backup on this target, oldest first (by start time, then id)."""
        base = self.path / "backups"
        if not base.is_dir():
            return []
        docs = [self.read_manifest(p.name[:-5]) for p in base.iterdir()
                if p.name.endswith(".json") and _ID.fullmatch(p.name[:-5])]
        return sorted(docs, key=lambda d: (d["created_at"], d["id"]))

    def resolve_id(self, backup_id: str | None) -> str:
        """``None`` or ``latest`` → the newest backup's id."""
        if backup_id in (None, "latest"):
            docs = self.manifests()
            if not docs:
                raise NotFoundError(f"no backup in {self.path} yet; make one with: mdcsql backup run ROOT")
            return docs[-1]["id"]
        self.manifest_path(backup_id)           # validates the id
        return backup_id

    # ---- verification, pruning ----------------------------------------------------------------
    def verify(self, backup_id: str | None = None, *, on_progress=None) -> VerifyResult:
        """Every object of one backup (or all) present with the right hash; shared ones checked once.

        :param on_progress: ``f(done_bytes, total_bytes, path)``.
        """
        docs = [self.read_manifest(self.resolve_id(backup_id))] if backup_id else self.manifests()
        result = VerifyResult(backups=[d["id"] for d in docs])
        total = sum({f["sha256"]: f.get("size") or 0 for d in docs for f in d["files"]}.values())
        seen: dict[str, str | None] = {}
        for doc in docs:
            for f in doc["files"]:
                sha = f["sha256"]
                if sha not in seen:
                    seen[sha] = self.check_object(sha, f.get("size"))
                    result.objects_checked += 1
                    result.bytes_checked += f.get("size") or 0
                    if on_progress:
                        on_progress(result.bytes_checked, total, f["path"])
                if seen[sha] is not None:
                    result.problems.append({"backup": doc["id"], "path": f["path"], "sha256": sha,
                                            "problem": seen[sha]})
        return result

    def prune(self, keep: int) -> list[str]:
        """Delete all but the ``keep`` newest backups, then every object none of them names.

        Returns the deleted backup ids. ``keep`` < 1 keeps everything. Call with the lock held.
        """
        docs = self.manifests()
        doomed = docs[:-keep] if keep >= 1 else []
        for doc in doomed:
            self.manifest_path(doc["id"]).unlink()
        if doomed:
            fsync_dir(self.path / "backups")
        if doomed or keep >= 1:
            self.collect_garbage()
        return [d["id"] for d in doomed]

    def collect_garbage(self) -> int:
        """Delete objects no backup manifest references (never one a kept backup needs)."""
        wanted = {f["sha256"] for doc in self.manifests() for f in doc["files"]}
        removed = 0
        for sub in (self.path / "objects").iterdir():
            if not sub.is_dir():
                continue
            for obj in sub.iterdir():
                if obj.name not in wanted:
                    obj.unlink()
                    removed += 1
        return removed


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
