"""Backup and restore of an archive (design: "Backup Policy"; docs/backup.md).

A backup is incremental by checksum: every file's content goes once into the target's object
store (``mdcsql.lifecycle.backup_store``), and each backup is a manifest listing
``{path, sha256, size, mtime_ns}`` of the files it holds. Unchanged files are neither copied nor
re-read: their hash comes from the previous backup (same size and mtime) or, for a sealed data
file, from its sidecar manifest. A restore copies the objects back, byte for byte, and rebuilds
the catalog from the restored tree (invariant 1: the catalog is derived, so it is not backed up).

What is backed up: every sealed data file of every tier with its manifest, and every other file
of the tree (``_catalog/*.json`` exports and lifecycle logs, ``sessions/``, ``_archive/`` notices,
``_quarantine/``) — never the WAL, temporary files, lock files or ``catalog.duckdb``. A data file
without a sealed manifest (a hot file still being written, or an orphan) is skipped and listed
under ``skipped``: its events are durable in the WAL, which a backup does not hold, so run
``mdcsql seal`` first to include today's data.

Each run appends one line to ``_catalog/backups.jsonl`` in the archive; :func:`refresh` mirrors
that log into the catalog's ``backups`` table (see mdcsql.catalog.derived).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from mdcsql.durable import fsync_dir
from mdcsql.errors import ConfigError, IntegrityError
from mdcsql.layout import ARCHIVE_ROOT, CATALOG_DIR, QUARANTINE_DIR, SESSIONS_DIR, TIER_ROOTS, WAL_DIR
from mdcsql.ingest.seal import sha256_file
from mdcsql.lifecycle.backup_store import (MANIFEST_FORMAT, MANIFEST_VERSION, BackupError, Target, check_relpath,
                                           copy_hashed, iso, new_backup_id, utcnow)
from mdcsql.sql import load_sql

__all__ = ["BackupError", "BackupResult", "RestoreResult", "Target", "compile_pattern", "Selection",
           "select_files", "resolve_targets", "run_backup", "restore_backup", "next_run", "refresh",
           "LOG_FILE"]

LOG_FILE = f"{CATALOG_DIR}/backups.jsonl"
MANIFEST_SUFFIX = ".manifest.json"
DATA_EXTS = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".parquet")
#: top-level directories holding data files: hot tier roots, the warm and cold tier directories,
#: the archive tier (tier directories may be symlinks: tier mounts, mdcsql.lifecycle.tiers)
DATA_DIRS = frozenset([*TIER_ROOTS, "warm", "cold", ARCHIVE_ROOT])
#: never backed up, whatever the patterns say
_NEVER_DIRS = frozenset([WAL_DIR])
_NEVER_FILES = frozenset([f"{CATALOG_DIR}/catalog.duckdb", f"{CATALOG_DIR}/catalog.duckdb.wal"])
_ALWAYS = frozenset([f"{CATALOG_DIR}/config.json"])
S3_UNSUPPORTED = "not supported yet: object storage comes with the scale-out issue"


# ---------------------------------------------------------------------------------- patterns

def compile_pattern(pattern: str) -> re.Pattern:
    """Glob → regex over a path relative to the archive root (``/``-separated).

    ``*`` matches within one path component, ``?`` one character, ``[abc]`` a set, ``**`` any
    number of whole components (``**/x`` matches ``x`` at any depth, ``a/**`` everything below
    ``a``). A pattern without ``/`` matches a file's name in any directory (``*.jsonl``); one with
    ``/`` matches the whole relative path (``live/AAPL/**``); a trailing ``/`` means everything below.
    """
    if not isinstance(pattern, str) or not pattern.strip():
        raise ConfigError(f"Storage.Backup: empty include/exclude pattern (got {pattern!r})")
    p = pattern.strip().lstrip("/")
    if p.endswith("/"):
        p += "**"
    if "/" not in p:
        p = "**/" + p
    out, i = [], 0
    while i < len(p):
        if p.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif p.startswith("**", i):
            out.append(".*")
            i += 2
        elif p[i] == "*":
            out.append("[^/]*")
            i += 1
        elif p[i] == "?":
            out.append("[^/]")
            i += 1
        elif p[i] == "[" and "]" in p[i + 2:] or p[i:i + 2] == "[]":
            j = p.index("]", i + 2)
            body = p[i + 1:j]
            out.append("[" + ("^" + re.escape(body[1:]) if body.startswith("!") else re.escape(body)) + "]")
            i = j + 1
        else:
            out.append(re.escape(p[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


class Patterns:
    """Include patterns pick data files (default: all); exclude patterns drop any file."""

    def __init__(self, include=None, exclude=None) -> None:
        self.include_text = list(include or [])
        self.exclude_text = list(exclude or [])
        self.include = [compile_pattern(p) for p in self.include_text]
        self.exclude = [compile_pattern(p) for p in self.exclude_text]

    def excluded(self, rel: str) -> bool:
        return any(r.match(rel) for r in self.exclude)

    def wants_data(self, rel: str) -> bool:
        return (not self.include or any(r.match(rel) for r in self.include)) and not self.excluded(rel)


# ---------------------------------------------------------------------------------- selection

@dataclass
class Candidate:
    rel: str
    path: Path
    size: int
    mtime_ns: int
    sidecar: Path | None = None       # a sealed data file's manifest (read only when needed)

    def sealed_sha(self) -> str | None:
        """The sealed manifest's sha256 when its recorded size matches the file's."""
        if self.sidecar is None:
            return None
        try:
            doc = json.loads(self.sidecar.read_bytes())
        except (OSError, ValueError):
            return None
        sha = doc.get("sha256") if isinstance(doc, dict) else None
        return sha if isinstance(sha, str) and doc.get("size_bytes") == self.size else None


@dataclass
class Selection:
    files: list[Candidate] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)       # {path, reason}

    @property
    def bytes(self) -> int:
        return sum(c.size for c in self.files)


def _is_data(rel: str) -> bool:
    return rel.split("/", 1)[0] in DATA_DIRS and rel.endswith(DATA_EXTS)


def _walk(root: Path):
    """(rel, DirEntry) of every regular file; top-level directory symlinks (tier mounts) are
    followed, deeper links are not (they are reported)."""
    stack = [(str(root), "")]
    while stack:
        directory, prefix = stack.pop()
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            rel = prefix + entry.name
            if entry.is_dir(follow_symlinks=not prefix):
                if entry.is_symlink() and prefix:
                    yield rel, None
                elif prefix or entry.name not in _NEVER_DIRS:
                    stack.append((entry.path, rel + "/"))
            elif entry.is_symlink():
                yield rel, None
            elif entry.is_file(follow_symlinks=False):
                yield rel, entry


def _ignored(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return (rel in _NEVER_FILES or name.endswith(".tmp") or ".tmp-" in name or name in ("LOCK", ".lock")
            or name.endswith(".lock"))


def select_files(root: Path, patterns: Patterns) -> Selection:
    """What a backup of ``root`` holds, decided from the tree alone."""
    root = Path(root)
    sel = Selection()
    entries = {}
    for rel, entry in _walk(root):
        if entry is None:
            sel.skipped.append({"path": rel, "reason": "symbolic link (not followed)"})
        elif not _ignored(rel):
            entries[rel] = entry
    for rel, entry in sorted(entries.items()):
        if rel.endswith(MANIFEST_SUFFIX) and _is_data(rel[:-len(MANIFEST_SUFFIX)]) \
                and rel[:-len(MANIFEST_SUFFIX)] in entries:
            continue                                  # travels with its data file
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if _is_data(rel):
            if not patterns.wants_data(rel):
                continue
            sidecar = entries.get(rel + MANIFEST_SUFFIX)
            if sidecar is None:
                sel.skipped.append({"path": rel, "reason": "open (no sealed manifest yet): run mdcsql seal first"
                                    if rel.endswith(".jsonl") else "orphan (no sealed manifest)"})
                continue
            try:
                mst = sidecar.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            sel.files.append(Candidate(rel, Path(entry.path), st.st_size, st.st_mtime_ns, Path(sidecar.path)))
            sel.files.append(Candidate(rel + MANIFEST_SUFFIX, Path(sidecar.path), mst.st_size, mst.st_mtime_ns))
        elif rel in _ALWAYS or not patterns.excluded(rel):
            sel.files.append(Candidate(rel, Path(entry.path), st.st_size, st.st_mtime_ns))
    return sel


# ---------------------------------------------------------------------------------- targets, schedule

def resolve_targets(settings, override: str | Path | None = None) -> tuple[list[Target], list[str]]:
    """(local targets, problems with the others). ``override`` (``--target``) replaces the config's."""
    if override is not None:
        return [Target(override)], []
    cfg = settings.storage.backup
    if cfg is None or not cfg.targets:
        raise ConfigError("no backup target: set Storage.Backup.Targets (e.g. [{\"Type\": \"local\", "
                          "\"Path\": \"/backup/mdc\"}]) or pass --target PATH")
    local, problems = [], []
    for t in cfg.targets:
        if t.type == "local":
            local.append(Target(t.path))
        else:
            problems.append(f"backup target {t.type}://{t.bucket}: {S3_UNSUPPORTED}")
    return local, problems


def next_run(schedule: str | None, after: datetime | None = None) -> datetime | None:
    """When the cron ``schedule`` fires next after ``after`` (UTC; default now). The scheduler that
    acts on it comes with a later issue."""
    if not schedule:
        return None
    from croniter import croniter
    try:
        return croniter(schedule, after or utcnow()).get_next(datetime)
    except (ValueError, KeyError) as e:
        raise ConfigError(f"Storage.Backup.Schedule: invalid cron expression (got {schedule!r}): {e}") from None


# ---------------------------------------------------------------------------------- running

@dataclass
class BackupResult:
    target: str
    manifest: dict
    dry_run: bool = False
    would_copy: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.manifest["id"]

    @property
    def ok(self) -> bool:
        return not self.manifest["problems"]

    def to_dict(self) -> dict:
        doc = {k: v for k, v in self.manifest.items() if k != "files"}
        doc.update(target=self.target, dry_run=self.dry_run, pruned=self.pruned, ok=self.ok)
        if self.dry_run:
            doc["would_copy"] = self.would_copy
        return doc


def run_backup(archive, *, target: str | Path | None = None, dry_run: bool = False, on_progress=None,
               now: datetime | None = None) -> list[BackupResult]:
    """Back ``archive`` up to every local target (or ``target``), then prune to RetentionBackups.

    :param on_progress: ``f(done_bytes, total_bytes, path)``.
    :raises BackupError: an object-storage target (after the local ones were done).
    """
    cfg = archive.settings.storage.backup
    patterns = Patterns(cfg.include_patterns if cfg else None, cfg.exclude_patterns if cfg else None)
    targets, problems = resolve_targets(archive.settings, target)
    results = []
    for t in targets:
        if t.path == archive.root or archive.root in t.path.parents:
            raise BackupError(f"backup target {t.path} lies inside the archive it would protect; "
                              "choose a path outside it (ideally on another disk)")
        results.append(_backup_one(archive, t, patterns, dry_run=dry_run, on_progress=on_progress,
                                   now=now or utcnow(), keep=(cfg.retention_backups or 0) if cfg else 0))
    if problems:
        raise BackupError("; ".join(problems) + (f" (local backups done: {', '.join(r.id for r in results)})"
                                                 if results else ""))
    return results


def _backup_one(archive, target: Target, patterns: Patterns, *, dry_run: bool, on_progress, now: datetime,
                keep: int) -> BackupResult:
    """One target. Holds the archive's lifecycle lock throughout: no migration, compaction or
    retention moves files under the backup, and a transition a crash left half-done is finished
    first, so the backup is a consistent picture of every tier."""
    from mdcsql.lifecycle.transition import lifecycle_lock, recover_transitions
    with target, lifecycle_lock(archive.root, what="backup"):
        if not dry_run:
            recover_transitions(archive.root)
        previous = target.manifests()
        parent = previous[-1] if previous else None
        known = {f["path"]: f for f in parent["files"]} if parent else {}
        known_problems = {p["path"]: p for p in parent.get("problems", ())} if parent else {}
        sel = select_files(archive.root, patterns)
        total, done = sel.bytes, 0
        files, problems, skipped, would_copy = [], [], list(sel.skipped), []
        new_objects = new_bytes = reused = 0
        for c in sel.files:
            prev = known.get(c.rel)
            unchanged = prev and (prev["size"], prev["mtime_ns"]) == (c.size, c.mtime_ns)
            sha = prev["sha256"] if unchanged else c.sealed_sha()
            if dry_run and not sha:
                try:
                    sha = _hash_file(c.path)
                except FileNotFoundError:
                    continue
            if sha and target.has(sha):
                reused += 1
                if unchanged and c.rel in known_problems:        # still as found last time: say so again
                    problems.append(known_problems[c.rel])
            elif dry_run:
                would_copy.append(c.rel)
                new_bytes += c.size
            else:
                try:
                    put = target.put(c.path)
                except FileNotFoundError:
                    skipped.append({"path": c.rel, "reason": "vanished during the backup (removed by hand?)"})
                    continue
                sealed = c.sealed_sha() if unchanged else sha
                if sealed and put.sha256 != sealed:
                    problems.append({"path": c.rel, "problem": f"sha256 {put.sha256} differs from its sealed "
                                                               f"manifest's {sealed} (backed up as found)"})
                sha, c.size = put.sha256, put.size
                new_objects += put.copied
                new_bytes += put.size if put.copied else 0
            files.append({"path": c.rel, "sha256": sha, "size": c.size, "mtime_ns": c.mtime_ns})
            done += c.size
            if on_progress:
                on_progress(done, total, c.rel)
        schedule = archive.settings.storage.backup.schedule if archive.settings.storage.backup else None
        finished = utcnow()
        manifest = {
            "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "id": new_backup_id(now),
            "created_at": iso(now), "finished_at": iso(finished), "archive_root": str(archive.root),
            "parent": parent["id"] if parent else None,
            "include_patterns": patterns.include_text, "exclude_patterns": patterns.exclude_text,
            "schedule": schedule, "files": files, "skipped": skipped, "problems": problems,
            "totals": {"files": len(files), "bytes": sum(f["size"] for f in files), "new_objects": new_objects,
                       "new_bytes": new_bytes, "reused_files": reused, "skipped": len(skipped),
                       "problems": len(problems)},
        }
        result = BackupResult(str(target.path), manifest, dry_run=dry_run, would_copy=would_copy)
        if dry_run:
            return result
        target.write_manifest(manifest)                 # last: the backup exists from here on
        _log(archive.root, {"event": "backup", "target": str(target.path), **{
            k: manifest[k] for k in ("id", "created_at", "finished_at", "parent", "schedule")},
            "totals": manifest["totals"], "manifest_sha256": hashlib.sha256(
                target.manifest_path(manifest["id"]).read_bytes()).hexdigest()})
        result.pruned = target.prune(keep)
        for pruned in result.pruned:
            _log(archive.root, {"event": "pruned", "target": str(target.path), "id": pruned, "at": iso(utcnow())})
    return result


def _hash_file(path: Path) -> str:
    return sha256_file(path)[0]


def _log(root: Path, entry: dict) -> None:
    """Append one line to the archive's backup log (fsync'd; a torn last line is ignored on read)."""
    path = root / LOG_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (json.dumps(entry, sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------- restore

@dataclass
class RestoreResult:
    backup_id: str
    dest: str
    files: int = 0
    bytes: int = 0
    catalog_files: int = 0
    problems: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def restore_backup(target: Target, backup_id: str | None, dest, *, force: bool = False,
                   on_progress=None) -> RestoreResult:
    """Copy backup ``backup_id`` (default the newest) into ``dest`` and rebuild its catalog.

    Every file is copied to a temporary name, fsync'd, verified against its sha256 and renamed;
    its mtime is restored. ``dest`` must be new or empty unless ``force`` (files are then
    overwritten; files not in the backup are left alone).

    :raises BackupError: ``dest`` is not empty (without ``force``) or is a file.
    :raises IntegrityError: objects are missing or corrupt (after restoring all the others).
    """
    with target.reading():
        return _restore(target, backup_id, dest, force=force, on_progress=on_progress)


def _restore(target: Target, backup_id: str | None, dest, *, force: bool, on_progress) -> RestoreResult:
    from mdcsql.archive import Archive
    doc = target.read_manifest(target.resolve_id(backup_id))
    dest = Path(dest).expanduser().resolve()
    if dest.exists() and not dest.is_dir():
        raise BackupError(f"restore destination {dest} is a file; give a new or empty directory")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise BackupError(f"restore destination {dest} is not empty; give a new or empty directory, "
                          "or --force to restore over it")
    if dest == target.path or target.path in dest.parents:
        raise BackupError(f"restore destination {dest} lies inside the backup target {target.path}")
    if (dest / CATALOG_DIR / "config.json").is_file() and Archive.open(dest).is_writing():
        raise BackupError(f"restore destination {dest} is an archive a process is writing to; stop it first")
    result = RestoreResult(doc["id"], str(dest))
    total = sum(f["size"] for f in doc["files"])
    touched = set()
    for f in doc["files"]:
        rel = check_relpath(f["path"])
        out = dest.joinpath(*rel.parts)
        out.parent.mkdir(parents=True, exist_ok=True)
        problem = _restore_file(target, f, out)
        if problem:
            result.problems.append({"path": f["path"], "sha256": f["sha256"], "problem": problem})
        else:
            result.files += 1
            result.bytes += f["size"]
            touched.add(out.parent)
        if on_progress:
            on_progress(result.bytes, total, f["path"])
    for d in sorted(touched):
        fsync_dir(d)
    for sub in (CATALOG_DIR, WAL_DIR, QUARANTINE_DIR, SESSIONS_DIR, ARCHIVE_ROOT, *TIER_ROOTS):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    if (dest / CATALOG_DIR / "config.json").is_file():
        result.catalog_files = Archive.open(dest).rebuild_catalog().added
        # the rebuild rewrites the catalog's exports (manifest.json carries its generation time):
        # put the backed-up bytes back, so that every restored file is byte-identical
        for f in doc["files"]:
            if f["path"].startswith(CATALOG_DIR + "/") and not any(p["path"] == f["path"] for p in result.problems):
                out = dest.joinpath(*check_relpath(f["path"]).parts)
                if _hash_file(out) != f["sha256"]:
                    _restore_file(target, f, out)
                else:
                    os.utime(out, ns=(f["mtime_ns"], f["mtime_ns"]))
    if result.problems:
        raise IntegrityError(f"restored {result.files} file(s) of backup {doc['id']} into {dest}, but "
                             f"{len(result.problems)} could not be: " + "; ".join(
                                 f"{p['path']} ({p['problem']})" for p in result.problems[:10]))
    return result


def _restore_file(target: Target, f: dict, out: Path) -> str | None:
    src = target.object_path(f["sha256"])
    if not src.is_file():
        return "object missing"
    tmp = out.with_name(out.name + ".restore.tmp")
    try:
        sha, _ = copy_hashed(src, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sha != f["sha256"]:
        tmp.unlink()
        return f"object corrupt (sha256 {sha})"
    os.replace(tmp, out)
    os.utime(out, ns=(f["mtime_ns"], f["mtime_ns"]))
    return None


# ---------------------------------------------------------------------------------- catalog mirror

def _log_entries(root: Path) -> tuple[str, list[dict]]:
    path = root / LOG_FILE
    data = path.read_bytes() if path.is_file() else b""
    entries = []
    for line in data.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue                    # a torn last line after a crash
        if isinstance(entry, dict) and entry.get("event") in ("backup", "pruned"):
            entries.append(entry)
    return hashlib.sha256(data).hexdigest(), entries


def _ts(text: str | None):
    return None if not text else datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(
        timezone.utc).replace(tzinfo=None)


def refresh(catalog, *, forget: bool) -> None:
    """Mirror ``_catalog/backups.jsonl`` into the ``backups`` table (all of it when the log changed)."""
    sha, entries = _log_entries(catalog.root)
    state = catalog.execute(load_sql("queries/backup_log_state_get.sql")).rows
    if not forget and state and state[0][0] == sha:
        return
    rows = {}
    for e in entries:
        key = (e.get("target"), e.get("id"))
        if e["event"] == "backup":
            t = e.get("totals") or {}
            rows[key] = {"target": key[0], "backup_id": key[1], "created_at": _ts(e.get("created_at")),
                         "finished_at": _ts(e.get("finished_at")), "parent": e.get("parent"),
                         "file_count": t.get("files"), "total_bytes": t.get("bytes"),
                         "new_objects": t.get("new_objects"), "new_bytes": t.get("new_bytes"),
                         "skipped": t.get("skipped"), "problems": t.get("problems"),
                         "schedule": e.get("schedule"), "manifest_sha256": e.get("manifest_sha256"),
                         "state": "kept", "pruned_at": None}
        elif key in rows:
            rows[key].update(state="pruned", pruned_at=_ts(e.get("at")))
    with catalog.transaction():
        catalog.execute(load_sql("queries/backup_forget_all.sql"))
        for row in rows.values():
            catalog.execute(load_sql("queries/backup_insert.sql"), row)
        catalog.execute(load_sql("queries/backup_log_state_put.sql"), {"sha": sha})
