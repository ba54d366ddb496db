"""One lifecycle transition: copy → verify → swap → record → delete (DESIGN.md invariant 3).

A migration, compaction, split or consolidation turns input files into output files. The caller
writes each output under :meth:`Transition.tmp_path` and verifies it (row count and content
fingerprint against the inputs, ``mdcsql.lifecycle.parquet``); :meth:`Transition.commit` then

1. asks the guard whether the inputs may be removed (legal holds, WORM) — before anything moves;
2. writes a journal ``_catalog/transitions/<id>.json`` (fsync'd): from here on the transition is
   decided and rolls *forward* after a crash;
3. renames every output into place and writes its sidecar manifest (with a ``lineage`` record);
4. appends the lineage record to ``_catalog/lineage.jsonl`` (fsync'd);
5. deletes the inputs and their manifests, then the journal.

A crash before step 2 leaves the inputs untouched and only ``*.tmp`` files, which
:func:`recover_transitions` removes; a crash after it is finished by :func:`recover_transitions`
(every lifecycle command runs it first). Either way every event is stored exactly once after the
rerun. Between steps 3 and 5 a reader of the views may briefly see both copies.
"""

from __future__ import annotations

import os
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from mdcsql.durable import atomic_write_json, fsync_dir, read_json
from mdcsql.errors import MdcsqlError
from mdcsql.ingest.seal import manifest_path
from mdcsql.layout import CATALOG_DIR
from mdcsql.lifecycle import journal

__all__ = ["Transition", "recover_transitions", "lifecycle_lock", "pending_paths", "TRANSITIONS_DIR", "TMP_MARK"]

TRANSITIONS_DIR = f"{CATALOG_DIR}/transitions"
#: temporary outputs are named ``<final name>.<id8>.lc.tmp`` (the indexer and globs skip them)
TMP_MARK = ".lc.tmp"
_LOCK_FILE = f"{CATALOG_DIR}/lifecycle.lock"
_thread_lock = threading.RLock()
#: fault injection for the crash tests: MDCSQL_FAULT=<point> kills the process (SIGKILL) there
_FAULT = os.environ.get("MDCSQL_FAULT")


def _fault(point: str) -> None:
    if _FAULT == point:
        import signal
        os.kill(os.getpid(), signal.SIGKILL)


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextmanager
def lifecycle_lock(root: Path, *, what: str, timeout: float | None = None):
    """Exclusive lock of the archive's lifecycle jobs (tier migration, compaction, retention,
    quota cleanup): two jobs never plan over the same files. Waits for the other job (up to
    ``timeout`` seconds, forever by default); the lock is released by the OS if a job dies."""
    import fcntl
    import time
    path = Path(root) / _LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() > deadline:
                    raise MdcsqlError(f"{what}: another lifecycle job holds {path} "
                                      f"(waited {timeout:g} s); try again later") from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {what}\n".encode())
        yield
    finally:
        os.close(fd)


@dataclass
class _Output:
    path: str
    tmp: str
    manifest: dict


@dataclass
class Transition:
    """A set of inputs becoming a set of outputs. Not thread-safe: one per thread."""

    root: Path
    operation: str
    inputs: list[dict]                 # [{path, sha256, event_count}] as the catalog knows them
    parameters: dict = field(default_factory=dict)
    actor: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    outputs: list[_Output] = field(default_factory=list)

    def tmp_path(self, out_rel: str) -> Path:
        """Where to write output ``out_rel`` before it is verified and swapped in."""
        path = Path(self.root) / f"{out_rel}.{self.id[:8]}{TMP_MARK}"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def add_output(self, out_rel: str, manifest: dict) -> None:
        """Register a verified output (its tmp file written and fsync'd) with its manifest."""
        tmp = self.tmp_path(out_rel)
        if not tmp.exists():
            raise MdcsqlError(f"{self.operation}: output {out_rel} was not written to {tmp}")
        self.outputs.append(_Output(out_rel, tmp.relative_to(self.root).as_posix(), dict(manifest)))

    def lineage(self) -> dict:
        return {"transition_id": self.id, "operation": self.operation, "at": _now_iso(),
                "actor": self.actor, "parameters": self.parameters,
                "inputs": [{k: i.get(k) for k in ("path", "sha256", "event_count")} for i in self.inputs],
                "outputs": [{"path": o.path, "sha256": o.manifest.get("sha256"),
                             "event_count": o.manifest.get("event_count")} for o in self.outputs]}

    def abort(self) -> None:
        """Drop the tmp outputs; the inputs stay as they were."""
        for out in self.outputs:
            _unlink(Path(self.root) / out.tmp)
        self.outputs.clear()

    def commit(self, *, check_inputs: bool = True) -> dict:
        """Swap the outputs in and remove the inputs (see the module docstring). Returns the
        lineage record. :raises mdcsql.lifecycle.guard.ProtectedError: an input is held or
        WORM-locked (nothing has changed then; the tmp outputs are removed)."""
        root = Path(self.root)
        replaced = {o.path for o in self.outputs}
        doomed = [i["path"] for i in self.inputs if i["path"] not in replaced]
        if check_inputs and doomed:
            from mdcsql.lifecycle.guard import check_removable
            try:
                check_removable(root, doomed, action=self.operation, actor=self.actor)
            except Exception:
                self.abort()
                raise
        record = self.lineage()
        for out in self.outputs:
            out.manifest["lineage"] = {k: record[k] for k in ("transition_id", "operation", "at",
                                                              "parameters", "inputs")}
        doc = {"id": self.id, "operation": self.operation, "lineage": record,
               "outputs": [{"path": o.path, "tmp": o.tmp, "manifest": o.manifest} for o in self.outputs],
               "delete": doomed}
        jpath = root / TRANSITIONS_DIR / f"{self.id}.json"
        _fault("before_journal")
        atomic_write_json(jpath, doc)
        _fault("after_journal")
        _finish(root, doc)
        return record


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _finish(root: Path, doc: dict) -> None:
    """Steps 3–5 of a journalled transition; idempotent, so recovery can rerun it."""
    dirs = set()
    for out in doc["outputs"]:
        final, tmp = root / out["path"], root / out["tmp"]
        if tmp.exists():
            os.replace(tmp, final)
            dirs.add(final.parent)
        if final.exists():
            atomic_write_json(manifest_path(final), out["manifest"], sync_dir=False)
            dirs.add(final.parent)
    for d in dirs:
        fsync_dir(d)
    _fault("after_swap")
    with _thread_lock:
        seen = _logged_ids(root)
        if doc["id"] not in seen:
            journal.append(journal.journal_path(root, "lineage"), doc["lineage"])
            seen.add(doc["id"])
    _fault("after_lineage")
    for i, rel in enumerate(doc["delete"]):
        path = root / rel
        _unlink(manifest_path(path))
        if i == 1:
            _fault("mid_delete")
        _unlink(path)
        dirs.add(path.parent)
    for d in dirs:
        if d.exists():
            fsync_dir(d)
    _unlink(root / TRANSITIONS_DIR / f"{doc['id']}.json")


_logged_cache: dict[str, tuple[int, set]] = {}


def _logged_ids(root: Path) -> set:
    """Transition ids already in the lineage log (read incrementally)."""
    path = journal.journal_path(root, "lineage")
    key = str(path)
    offset, ids = _logged_cache.get(key, (0, set()))
    size = path.stat().st_size if path.exists() else 0
    if size < offset:
        offset, ids = 0, set()
    records, offset, _ = journal.read(path, offset)
    ids.update(r.get("transition_id") for r in records)
    _logged_cache[key] = (offset, ids)
    return ids


def recover_transitions(root: Path) -> dict:
    """Finish every journalled transition and remove tmp outputs of undecided ones.

    Returns counts: ``{"finished": n, "tmp_removed": m}``. Call with the lifecycle lock held.
    """
    root = Path(root)
    finished = removed = 0
    jdir = root / TRANSITIONS_DIR
    for jpath in sorted(jdir.glob("*.json")) if jdir.is_dir() else ():
        try:
            doc = read_json(jpath)
        except (OSError, ValueError):
            continue          # a torn journal cannot exist (atomic write); be safe anyway
        _finish(root, doc)
        finished += 1
    for base in _tmp_bases(root):
        for dirpath, _dirs, names in os.walk(base):
            for name in names:
                if name.endswith(TMP_MARK):
                    _unlink(Path(dirpath) / name)
                    removed += 1
    return {"finished": finished, "tmp_removed": removed}


def pending_paths(root: Path) -> set[str]:
    """Every path (outputs, their tmp names, inputs) named by a journal not yet finished."""
    out: set[str] = set()
    jdir = Path(root) / TRANSITIONS_DIR
    for jpath in jdir.glob("*.json") if jdir.is_dir() else ():
        try:
            doc = read_json(jpath)
        except (OSError, ValueError):
            continue
        out.update(o["path"] for o in doc.get("outputs", ()))
        out.update(o["tmp"] for o in doc.get("outputs", ()))
        out.update(doc.get("delete", ()))
    return out


def _tmp_bases(root: Path):
    from mdcsql.catalog.indexer import SCAN_BASES
    for b in SCAN_BASES:
        if (root / b).is_dir():
            yield root / b
