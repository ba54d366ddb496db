"""Recovery after a crash: make the tree agree with the write-ahead log, exactly once.

Runs with the archive's write lock held, before any writer starts (and by `mdcsql recover`).
Steps, each idempotent so that a crash during recovery is itself recoverable:

1. drop `*.tmp` leftovers of interrupted seals and finish half-done seals;
2. cut a torn WAL tail into `_quarantine/` (never acknowledged, but never silently dropped);
3. truncate each hot file the checkpoint lists to its durable size, empty those created later;
4. replay every WAL frame after the checkpoint into its partition file;
5. cut a torn last line of any other hot file into `_quarantine/`;
6. write a new checkpoint and retire WAL segments it covers.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from mdcsql.durable import TMP_SUFFIX, atomic_write, atomic_write_json, fsync_dir
from mdcsql.ingest.checkpoint import Checkpoint
from mdcsql.ingest.seal import MANIFEST_SUFFIX, manifest_path, sha256_file, utc_now_iso
from mdcsql.ingest.wal import TornTail, list_segments, read_frames
from mdcsql.layout import QUARANTINE_DIR, TIER_ROOTS, WAL_DIR, Layout


@dataclass
class RecoveryReport:
    frames_replayed: int = 0
    events_replayed: int = 0
    bytes_truncated: int = 0
    files_reset: int = 0
    tmp_removed: int = 0
    seals_completed: int = 0
    quarantined: list[dict] = field(default_factory=list)
    durable_lsn: int = 0
    durable_events: int = 0

    @property
    def clean(self) -> bool:
        return not (self.frames_replayed or self.bytes_truncated or self.tmp_removed
                    or self.seals_completed or self.quarantined)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"clean": self.clean}


def quarantine(root: Path, name: str, data: bytes, record: dict) -> dict:
    """Keep `data` under _quarantine/ with a JSON record describing where it came from and why."""
    qdir = root / QUARANTINE_DIR
    qdir.mkdir(parents=True, exist_ok=True)
    stamp = utc_now_iso().replace(":", "").replace("-", "")
    base = f"{stamp}-{name}"
    atomic_write(qdir / f"{base}.bin", data)
    record = {**record, "bytes": len(data), "data_file": f"{QUARANTINE_DIR}/{base}.bin", "at": utc_now_iso()}
    atomic_write_json(qdir / f"{base}.json", record)
    return record


def _data_files(root: Path):
    for tier in TIER_ROOTS:
        base = root / tier
        if not base.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                yield Path(dirpath) / name


def _lifecycle_first(root: Path) -> set[str]:
    """Finish interrupted lifecycle transitions (compaction, migration) before the seal recovery
    looks at the tree: their outputs are legitimately ``*.lc.tmp`` or without a manifest for a
    moment. If a lifecycle job is running right now, leave its files alone: returns the paths
    (relative) its journals name, which the seal recovery must not touch."""
    from mdcsql.lifecycle.transition import TMP_MARK, lifecycle_lock, pending_paths, recover_transitions
    from mdcsql.errors import MdcsqlError
    try:
        with lifecycle_lock(root, what="collector recovery", timeout=0):
            recover_transitions(root)
            return set()
    except MdcsqlError:
        return pending_paths(root) | {TMP_MARK}


def _finish_interrupted_seals(root: Path, layout: Layout, report: RecoveryReport,
                              keep: set[str] = frozenset()) -> None:
    hot_by_part: dict[tuple, Path] = {}
    sealed_by_part: dict[tuple, Path] = {}
    for path in list(_data_files(root)):
        if keep and (path.name.endswith(".lc.tmp") or path.relative_to(root).as_posix() in keep):
            continue          # a running lifecycle job's file (see _lifecycle_first)
        if path.name.endswith(TMP_SUFFIX):
            path.unlink()
            report.tmp_removed += 1
            continue
        if path.name.endswith(MANIFEST_SUFFIX):
            continue
        try:
            meta = layout.parse(path.relative_to(root).as_posix())
        except ValueError:
            continue
        ident = (meta.key, meta.part)
        if manifest_path(path).exists():
            sealed_by_part[ident] = path
        elif meta.codec == "none":
            hot_by_part[ident] = path
        else:   # a compressed file without its manifest: the seal stopped before recording it
            path.unlink()
            report.tmp_removed += 1
    for ident, hot in hot_by_part.items():
        sealed = sealed_by_part.get(ident)
        if sealed is None or sealed == hot:
            continue
        manifest = json.loads(manifest_path(sealed).read_bytes())
        if sha256_file(hot)[0] == manifest["raw_sha256"]:
            hot.unlink()
            report.seals_completed += 1
        else:   # the hot file holds more than was sealed: keep it as a later part
            new_rel = layout.relpath(ident[0], codec="none", part=_next_part(root, layout, ident[0]))
            os.replace(hot, root / new_rel)
            report.seals_completed += 1


def _next_part(root: Path, layout: Layout, key) -> int:
    part = 1
    while any((root / layout.relpath(key, codec=c, part=part)).exists() for c in ("none", "gzip", "zstd")):
        part += 1
    return part


def _cut_torn_wal_tail(root: Path, torn: TornTail, report: RecoveryReport) -> None:
    seg_start = int(torn.segment.name.split(".")[0])
    report.quarantined.append(quarantine(root, f"wal-{seg_start + torn.offset}", torn.data, {
        "file": torn.segment.relative_to(root).as_posix(), "offset": torn.offset,
        "reason": f"torn write-ahead log tail: {torn.reason}", "acknowledged": False}))
    with open(torn.segment, "r+b") as f:
        f.truncate(torn.offset)
        os.fsync(f.fileno())
    # Later segments (if any) can only be empty after a torn tail; remove them so appends continue here.
    for start, path in list_segments(torn.segment.parent):
        if start > seg_start:
            path.unlink()


def _truncate_to_checkpoint(root: Path, path: Path, durable_size: int, replayed: bytes,
                            report: RecoveryReport) -> None:
    """Cut a hot file back to its checkpointed size before the WAL is replayed into it.

    Bytes past the checkpoint normally came from WAL frames that replay writes again; any that
    do not (a torn line from elsewhere) are kept in quarantine rather than dropped.
    """
    size = path.stat().st_size
    keep = min(size, durable_size)
    with open(path, "r+b") as f:
        f.seek(keep)
        cut = f.read()
        if cut and not replayed.startswith(cut):
            report.quarantined.append(quarantine(root, path.name, cut, {
                "file": path.relative_to(root).as_posix(), "offset": keep,
                "reason": "torn last line (no newline) in a hot file" if not cut.endswith(b"\n")
                else "bytes past the checkpoint that no WAL frame accounts for"}))
        f.truncate(keep)
        os.fsync(f.fileno())
    report.bytes_truncated += size - keep
    report.files_reset += 1


def _cut_torn_line(root: Path, path: Path, report: RecoveryReport) -> None:
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb") as f:
        f.seek(max(0, size - (1 << 16)))
        tail = f.read()
    if tail.endswith(b"\n"):
        return
    cut = tail.rfind(b"\n") + 1
    keep = size - (len(tail) - cut)
    report.quarantined.append(quarantine(root, path.name, tail[cut:], {
        "file": path.relative_to(root).as_posix(), "offset": keep,
        "reason": "torn last line (no newline) in a hot file"}))
    with open(path, "r+b") as f:
        f.truncate(keep)
        os.fsync(f.fileno())
    report.bytes_truncated += size - keep


def recover(root: Path, layout: Layout) -> RecoveryReport:
    """Bring the tree to the state of the last durable WAL frame. Caller holds the write lock."""
    root = Path(root)
    wal_dir = root / WAL_DIR
    report = RecoveryReport()
    pending = _lifecycle_first(root)
    _finish_interrupted_seals(root, layout, report, keep=pending)
    ckpt = Checkpoint.load(wal_dir)
    frames, torn, end_lsn = read_frames(wal_dir, ckpt.lsn)
    if torn is not None:
        _cut_torn_wal_tail(root, torn, report)
    replay: dict[str, list[bytes]] = {}
    for frame in frames:
        for relpath, _n, data in frame.runs():
            replay.setdefault(relpath, []).append(data)
    targeted = set(replay)
    for relpath in targeted | set(ckpt.files):
        path = root / relpath
        durable_size = ckpt.files.get(relpath, 0)
        if manifest_path(path).exists():
            continue        # sealed uncompressed in place: its bytes are final
        if path.exists():
            size = path.stat().st_size
            if size != durable_size:
                _truncate_to_checkpoint(root, path, durable_size, b"".join(replay.get(relpath, ())), report)
        elif relpath in targeted:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    events = ckpt.events
    handles: dict[str, int] = {}
    try:
        for frame in frames:
            for relpath, n_events, data in frame.runs():
                fd = handles.get(relpath)
                if fd is None:
                    fd = handles[relpath] = os.open(root / relpath, os.O_WRONLY | os.O_APPEND)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                report.events_replayed += n_events
            report.frames_replayed += 1
            events += frame.n_events
        for fd in handles.values():
            os.fsync(fd)
    finally:
        for fd in handles.values():
            os.close(fd)
    hot_sizes = {}
    for path in _data_files(root):
        if path.name.endswith((MANIFEST_SUFFIX, TMP_SUFFIX)) or manifest_path(path).exists():
            continue
        try:
            meta = layout.parse(path.relative_to(root).as_posix())
        except ValueError:
            continue
        if meta.codec == "none":
            _cut_torn_line(root, path, report)
            hot_sizes[meta.relpath] = path.stat().st_size
    for d in {(root / r).parent for r in handles}:
        fsync_dir(d)
    new = Checkpoint(lsn=end_lsn, events=events, files=hot_sizes)
    wal_dir.mkdir(parents=True, exist_ok=True)
    new.save(wal_dir)
    report.durable_lsn, report.durable_events = end_lsn, events
    return report
