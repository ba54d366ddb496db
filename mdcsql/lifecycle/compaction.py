"""Compaction: merge small sealed files of one partition, split oversized ones (design "File
Compaction & Defragmentation": DefragOptions, CompactionResult, SplitResult).

A *merge* takes sealed files smaller than ``MinFileSizeBytes`` and sealed at least ``MaxFileAge``
before ``as_of``, of one (tier, root, source, asset class, symbol, type, period) — in practice the
``.p2``, ``.p3`` … parts a restarted collector or late data leaves — and writes them, at most
``MaxFilesPerMerge`` at a time, as ONE file at the lowest of their part numbers. JSONL stays JSONL
(byte-exact lines ordered by ts, seq; the tier codec or ``TargetCompression``), Parquet stays
Parquet (``mdcsql.lifecycle.parquet.convert``, fingerprint-verified).

A *split* cuts a file larger than ``MaxFileBytes`` into ts ranges: the first range keeps the
file's part number, the others become new parts after the partition's highest one.

Every merge and split is one :class:`mdcsql.lifecycle.transition.Transition` (copy → verify →
swap → record → delete, invariant 3) under the archive's lifecycle lock, so two jobs never plan
over the same files and a crash at any point leaves every event stored exactly once after the
rerun (which first finishes or discards what the crash left). A held or WORM-locked input makes
the guard refuse that merge; the job reports it and goes on with the others.

Hot-tier files (``live/``, ``historical/``) are compacted only while no collector writes to the
archive: the job holds the archive's write lock for them (a collector writing meanwhile makes the
job skip the hot tier and say so). The archive tier is consolidated by tier migration, not here.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from mdcsql.durable import fsync_dir, read_json
from mdcsql.errors import ArchiveLockedError, ConfigError, MdcsqlError, NotFoundError
from mdcsql.ingest.seal import MANIFEST_SUFFIX, sha256_file
from mdcsql.layout import CATALOG_DIR, FileMeta
from mdcsql.lifecycle import compaction_io as cio
from mdcsql.lifecycle.codecs import JSONL_CODECS, CodecSpec, VerificationError, parse_codec
from mdcsql.lifecycle.instants import duration_seconds, iso, parse_instant
from mdcsql.lifecycle.transition import (TMP_MARK, TRANSITIONS_DIR, Transition, lifecycle_lock,
                                         recover_transitions)

__all__ = ["DefragOptions", "CompactionResult", "SplitResult", "SealedFile", "Merge", "Split",
           "compact", "split", "plan_merges", "plan_splits", "sealed_files", "PRESERVED_DIR", "DEFAULTS"]

PRESERVED_DIR = f"{CATALOG_DIR}/preserved"
#: defaults of ``Storage.Compaction`` (docs/compaction.md)
DEFAULTS = {"min_file_size_bytes": 1 << 20, "max_files_per_merge": 32, "preserve_originals": False,
            "target_compression": None, "max_file_age": "1d", "max_file_bytes": 1 << 30}
_TIERS = ("hot", "warm", "cold")
#: temporary outputs of hot-tier merges: outside live/ and historical/, whose *.tmp files and
#: manifest-less files a collector's crash recovery deletes (see _HotTransition)
HOT_TMP_DIR = f"{CATALOG_DIR}/compaction-tmp"
_HOT_IN_PLACE = ("hot-tier files are merged only in place (into the lowest part, same name and codec); "
                 "with checksum file names they are compacted once migrated to warm")


@dataclass(frozen=True)
class DefragOptions:
    """The design's DefragOptions, plus ``max_file_bytes`` (SplitAsync's maxChunkBytes)."""

    min_file_size_bytes: int = DEFAULTS["min_file_size_bytes"]
    max_files_per_merge: int = DEFAULTS["max_files_per_merge"]
    preserve_originals: bool = DEFAULTS["preserve_originals"]
    target_compression: str | None = DEFAULTS["target_compression"]
    max_file_age: int | str = DEFAULTS["max_file_age"]
    max_file_bytes: int = DEFAULTS["max_file_bytes"]

    def __post_init__(self) -> None:
        for name, low in (("min_file_size_bytes", 0), ("max_files_per_merge", 2), ("max_file_bytes", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ConfigError(f"compaction: {name} must be an integer >= {low}, got {v!r}")
        duration_seconds(self.max_file_age, what="compaction: max_file_age")
        if self.target_compression is not None:
            parse_codec(self.target_compression)

    @property
    def max_file_age_seconds(self) -> float:
        return duration_seconds(self.max_file_age, what="compaction: max_file_age")

    @classmethod
    def from_settings(cls, settings, **overrides) -> "DefragOptions":
        """``Storage.Compaction`` over :data:`DEFAULTS`, then ``overrides`` that are not None."""
        values = dict(DEFAULTS)
        section = getattr(getattr(settings, "storage", None), "compaction", None)
        for name in DEFAULTS:
            v = getattr(section, name, None) if section is not None else None
            if v is not None:
                values[name] = v
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class SealedFile:
    """A sealed data file of the hot, warm or cold tier, with its manifest."""

    rel: str
    meta: FileMeta
    manifest: dict
    size: int

    @property
    def format(self) -> str:
        return "parquet" if self.meta.codec == "parquet" else "jsonl"

    @property
    def sealed_at(self) -> datetime | None:
        for name in ("sealed_at", "created_at"):
            try:
                return parse_instant(self.manifest[name], what=name)
            except (KeyError, TypeError, MdcsqlError):
                continue
        return None

    def input_record(self) -> dict:
        return {"path": self.rel, "sha256": self.manifest.get("sha256"),
                "event_count": self.manifest.get("event_count")}


@dataclass
class Merge:
    """One planned merge: ``inputs`` (by part) become ``output``."""

    tier: str
    format: str
    inputs: list[SealedFile]
    output: str
    codec: CodecSpec
    reason: str

    @property
    def paths(self) -> list[str]:
        return [f.rel for f in self.inputs]

    def describe(self) -> dict:
        return {"tier": self.tier, "format": self.format, "inputs": [f.rel for f in self.inputs],
                "output": self.output, "codec": str(self.codec), "reason": self.reason,
                "bytes": sum(f.size for f in self.inputs),
                "events": sum(int(f.manifest.get("event_count") or 0) for f in self.inputs)}


@dataclass
class Split:
    """One planned split of ``file`` into about ``chunks`` ts ranges."""

    file: SealedFile
    chunks: int
    reason: str

    @property
    def paths(self) -> list[str]:
        return [self.file.rel]

    @property
    def tier(self) -> str:
        return self.file.meta.tier

    def describe(self) -> dict:
        return {"tier": self.file.meta.tier, "format": self.file.format, "input": self.file.rel,
                "bytes": self.file.size, "chunks": self.chunks, "reason": self.reason}


@dataclass
class _Figures:
    files_processed: int = 0
    files_created: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    events: int = 0
    duration_seconds: float = 0.0
    dry_run: bool = False
    as_of: str | None = None
    options: dict = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)     # {paths, reason}: not touched, and why
    refused: list[dict] = field(default_factory=list)     # {paths, reason}: the guard said no
    errors: list[dict] = field(default_factory=list)      # {paths, reason}: failed verification etc.
    recovered: dict = field(default_factory=dict)         # what recover_transitions finished first
    preserved: list[str] = field(default_factory=list)    # _catalog/preserved/<id> directories
    catalog_problem: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CompactionResult(_Figures):
    """The design's CompactionResult (snake_case): ``compression_improvement`` is the fraction of
    bytes saved, ``1 - bytes_after / bytes_before`` (0.25: a quarter smaller; 0 when nothing ran)."""

    compression_improvement: float = 0.0
    merges: list[dict] = field(default_factory=list)


@dataclass
class SplitResult(_Figures):
    """The design's SplitResult: each split's input and its outputs with their ts ranges."""

    splits: list[dict] = field(default_factory=list)


# ---- the tree ----------------------------------------------------------------------------------
def sealed_files(archive, *, tiers=_TIERS, unsealed: set | None = None) -> list[SealedFile]:
    """Every sealed data file (a readable manifest beside it) of ``tiers``, from the tree.
    ``unsealed``, when given, receives the (tier, key) of every file without a manifest."""
    from mdcsql.catalog.indexer import scan_tree
    from mdcsql.lifecycle.tiers import parse_any
    out = []
    scan = scan_tree(archive.root)
    for rel, (size, _mtime, manifest_mtime) in sorted(scan.files.items()):
        try:
            meta = parse_any(rel, archive.layout)
        except ValueError:
            continue
        if meta.tier not in tiers:
            continue
        if manifest_mtime is None:
            if unsealed is not None:
                unsealed.add((meta.tier, meta.key))
            continue
        try:
            manifest = read_json(archive.root / (rel + MANIFEST_SUFFIX))
        except (OSError, ValueError):
            continue                         # an orphan: verify/catalog report it, we leave it
        if isinstance(manifest, dict):
            out.append(SealedFile(rel, meta, manifest, size))
    return out


def _group_name(f: SealedFile) -> str:
    k = f.meta.key
    return f"{f.meta.tier} {k.root} {k.source}/{k.asset_class}/{k.symbol} {k.type} {k.period or 'all'}"


def _file_codec(f: SealedFile) -> CodecSpec:
    """The codec a JSONL file is stored with (its extension, its manifest's level)."""
    level = f.manifest.get("compression_level")
    return parse_codec(f.meta.codec if level is None or f.meta.codec == "none" else f"{f.meta.codec}-{level}",
                       for_format="jsonl")


def _output_codec(archive, tier: str, fmt: str, first: SealedFile, opts: DefragOptions) -> CodecSpec:
    """Hot tier: the codec of the lowest part (the merge rewrites that file in place, see
    :func:`plan_merges`). Warm and cold: TargetCompression when set (and, for JSONL, readable as
    JSONL), else the tier spec's codec."""
    if tier == "hot":
        return _file_codec(first)
    if opts.target_compression and (fmt == "parquet" or parse_codec(opts.target_compression).codec in JSONL_CODECS):
        return parse_codec(opts.target_compression, for_format=fmt)
    from mdcsql.lifecycle.tiers import tier_specs
    spec = tier_specs(archive.settings)[tier]
    if fmt == "jsonl" and spec.codec not in JSONL_CODECS:
        return _file_codec(first)            # the tier's format changed since: keep the file's codec
    if fmt == "parquet" and not spec.is_parquet:
        m = first.manifest
        codec = m.get("codec") if isinstance(m.get("codec"), str) else "zstd"
        return parse_codec(codec if m.get("compression_level") is None else f"{codec}-{m['compression_level']}",
                           for_format=fmt)
    return parse_codec(str(CodecSpec(spec.codec, spec.level)), for_format=fmt)


def _relpath(archive, f: SealedFile, spec: CodecSpec, part: int, checksum6: str | None = None) -> str:
    codec = "parquet" if f.format == "parquet" else spec.codec
    return archive.layout.relpath(f.meta.key, codec=codec, part=part, tier=f.meta.tier, checksum6=checksum6)


def _batches(files: list[SealedFile], opts: DefragOptions) -> list[list[SealedFile]]:
    out, cur, size = [], [], 0
    for f in files:
        if cur and (len(cur) >= opts.max_files_per_merge or size + f.size > opts.max_file_bytes):
            out.append(cur)
            cur, size = [], 0
        cur.append(f)
        size += f.size
    if cur:
        out.append(cur)
    return [b for b in out if len(b) >= 2]


def plan_merges(archive, opts: DefragOptions, as_of=None) -> tuple[list[Merge], list[dict]]:
    """What would be merged, and the small files that are not (and why)."""
    as_of = parse_instant(as_of)
    cutoff = as_of - timedelta(seconds=opts.max_file_age_seconds)
    groups: dict[tuple, list[SealedFile]] = defaultdict(list)
    unsealed: set = set()
    files = sealed_files(archive, unsealed=unsealed)
    present = {f.rel for f in files}
    for f in files:
        if f.size < opts.min_file_size_bytes:
            groups[(f.meta.tier, f.format, f.meta.key)].append(f)
    merges, skipped = [], []
    for (tier, fmt, key), members in groups.items():
        if len(members) < 2:
            continue
        if (tier, key) in unsealed:
            # an unsealed (or half-sealed) file of the partition: the collector's recovery pairs it
            # with its sealed part by part number, which a merge would take away
            skipped.append({"paths": [f.rel for f in members],
                            "reason": "the partition has a file without a manifest (being written, or left "
                                      "by a crash): run mdcsql seal / mdcsql recover first"})
            continue
        members.sort(key=lambda f: (f.meta.part, f.rel))
        young = [f for f in members if f.sealed_at is None or f.sealed_at > cutoff]
        old = [f for f in members if f not in young]
        if young:
            skipped.append({"paths": [f.rel for f in young],
                            "reason": f"sealed after {iso(cutoff)} (MaxFileAge {opts.max_file_age} "
                                      f"before as-of {iso(as_of)})"})
        for batch in _batches(old, opts):
            spec = _output_codec(archive, tier, fmt, batch[0], opts)
            out = _relpath(archive, batch[0], spec, batch[0].meta.part)
            if tier == "hot" and (archive.layout.file_name_metadata or out != batch[0].rel):
                skipped.append({"paths": [f.rel for f in batch], "reason": _HOT_IN_PLACE})
                continue
            if out in present and out not in {f.rel for f in batch}:
                skipped.append({"paths": [f.rel for f in batch],
                                "reason": f"output {out} exists and is not one of the inputs"})
                continue
            merges.append(Merge(tier, fmt, batch, out, spec,
                                f"{len(batch)} files of {_group_name(batch[0])} smaller than "
                                f"{opts.min_file_size_bytes} bytes, sealed before {iso(cutoff)}"))
    merges.sort(key=lambda m: m.output)
    return merges, skipped


def plan_splits(archive, opts: DefragOptions, paths=None) -> tuple[list[Split], list[dict]]:
    """Files larger than ``max_file_bytes`` (of ``paths`` when given). :raises NotFoundError: a
    given path is not a sealed data file of the hot, warm or cold tier."""
    files = {f.rel: f for f in sealed_files(archive)}
    if paths:
        wanted = [str(p).strip("/") for p in paths]
        missing = [p for p in wanted if p not in files]
        if missing:
            raise NotFoundError(f"not a sealed data file of the hot, warm or cold tier: {', '.join(missing)} "
                                "(give paths relative to the archive root, as in the catalog's files.path)")
        chosen = [files[p] for p in dict.fromkeys(wanted)]
    else:
        chosen = list(files.values())
    splits, skipped = [], []
    for f in chosen:
        if f.meta.tier == "hot" and f.size > opts.max_file_bytes:
            skipped.append({"paths": [f.rel], "reason": "hot-tier files are split once migrated to warm "
                            "(a new part under live/ could collide with a collector's next part)"})
        elif f.size > opts.max_file_bytes:
            splits.append(Split(f, math.ceil(f.size / opts.max_file_bytes),
                                f"{f.size} bytes > MaxFileBytes {opts.max_file_bytes}"))
        elif paths:
            skipped.append({"paths": [f.rel], "reason": f"{f.size} bytes, not larger than {opts.max_file_bytes}"})
    return splits, skipped


# ---- running -----------------------------------------------------------------------------------
def _check_inputs(root: Path, files: list[SealedFile], actor) -> None:
    """Inputs still are what their manifests say (sha256), and nothing protects them — checked
    for every input, also the one the output replaces in place."""
    from mdcsql.lifecycle.guard import check_removable
    for f in files:
        sha, _ = sha256_file(root / f.rel)
        if f.manifest.get("sha256") not in (None, sha):
            raise VerificationError(f"{f.rel}: sha256 {sha} differs from its manifest's; not compacted")
    check_removable(root, [f.rel for f in files], action="compaction", actor=actor)


def _preserve(root: Path, tid: str, rels: list[str]) -> str:
    """Keep the originals under ``_catalog/preserved/<tid>/`` (hard links; copies across disks)."""
    base = root / PRESERVED_DIR / tid
    for rel in rels:
        for name in (rel, rel + MANIFEST_SUFFIX):
            src, dst = root / name, base / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst)
            except FileExistsError:
                continue
            except OSError:
                shutil.copyfile(src, dst)
                with open(dst, "rb") as fh:
                    os.fsync(fh.fileno())
            fsync_dir(dst.parent)
    return base.relative_to(root).as_posix()


def _clean_preserved(root: Path) -> None:
    """Remove preserved copies of transitions that never committed (crash or refusal)."""
    from mdcsql.lifecycle import journal
    base = root / PRESERVED_DIR
    if not base.is_dir():
        return
    records, _, _ = journal.read(journal.journal_path(root, "lineage"))
    done = {r.get("transition_id") for r in records}
    for d in base.iterdir():
        if d.is_dir() and d.name not in done and not (root / TRANSITIONS_DIR / f"{d.name}.json").exists():
            shutil.rmtree(d, ignore_errors=True)


def _commit(root: Path, t: Transition, rels: list[str], preserve: bool) -> None:
    """Commit ``t``; with ``preserve`` the inputs are first linked under ``_catalog/preserved``."""
    kept = _preserve(root, t.id, rels) if preserve else None
    try:
        t.commit()
    except BaseException:
        t.abort()
        if kept:
            shutil.rmtree(root / kept, ignore_errors=True)
        raise


def _retmp(t: Transition, provisional: Path, out_rel: str) -> Path:
    final = t.tmp_path(out_rel)
    if final != provisional:
        os.replace(provisional, final)
    return final


def _merge_one(archive, m: Merge, opts: DefragOptions, actor, as_of) -> dict:
    root, key, part = archive.root, m.inputs[0].meta.key, m.inputs[0].meta.part
    _check_inputs(root, m.inputs, actor)
    params = {"min_file_size_bytes": opts.min_file_size_bytes, "max_files_per_merge": opts.max_files_per_merge,
              "max_file_age": opts.max_file_age, "codec": str(m.codec), "as_of": iso(as_of),
              "preserve_originals": opts.preserve_originals}
    cls = _HotTransition if m.tier == "hot" else Transition
    t = cls(root, "compaction", [f.input_record() for f in m.inputs], params, actor=actor)
    manifests = [f.manifest for f in m.inputs]
    expected = sum(int(f.manifest.get("event_count") or 0) for f in m.inputs)
    created: list[Path] = []
    try:
        if m.format == "jsonl":
            inputs = [cio.read_lines(root / f.rel, expect_raw_sha256=f.manifest.get("raw_sha256")) for f in m.inputs]
            lines, keys, digest = cio.sort_lines(inputs)
            if digest.lines != expected:
                raise VerificationError(f"{m.output}: inputs hold {digest.lines} lines, their manifests "
                                        f"say {expected} events; not compacted")
            created.append(t.tmp_path(m.output))
            raw_sha, raw_bytes = cio.write_jsonl(created[0], lines, m.codec)
            out = _relpath(archive, m.inputs[0], m.codec, part, checksum6=raw_sha[:6])
            tmp = _retmp(t, created[0], out)
            created.append(tmp)
            cio.verify_written(tmp, raw_sha, digest)
            sha, size = sha256_file(tmp)
            manifest = cio.jsonl_manifest(manifests, out, key, part, archive.layout.partition, m.codec,
                                          sha256=sha, size=size, raw_sha256=raw_sha, raw_bytes=raw_bytes,
                                          stats=cio.line_stats(keys))
        else:
            from mdcsql.lifecycle.parquet import convert
            out = m.output
            result = convert([root / f.rel for f in m.inputs], t.tmp_path(out), key.type, compression=m.codec)
            if result.rows != expected:
                raise VerificationError(f"{out}: merged {result.rows} rows, the inputs' manifests say {expected}")
            manifest = cio.parquet_manifest(manifests, out, key, part, archive.layout.partition, result, whole=True)
        t.add_output(out, manifest)
        _commit(root, t, [f.rel for f in m.inputs], opts.preserve_originals)
    except BaseException:
        t.abort()
        for p in created:
            p.unlink(missing_ok=True)
        raise
    return {**m.describe(), "output": out, "transition_id": t.id, "bytes_after": manifest["size_bytes"],
            "events": manifest["event_count"]}


class _HotTransition(Transition):
    """A transition whose outputs replace hot files in place: its tmp files live under
    ``_catalog/compaction-tmp/<id>/`` (same filesystem as ``live/``), out of reach of a
    collector's recovery, which removes ``*.tmp`` and manifest-less files under the tier roots.
    The output path is always an input's, so it is never a manifest-less file either."""

    def tmp_path(self, out_rel: str) -> Path:
        path = Path(self.root) / HOT_TMP_DIR / self.id[:8] / f"{out_rel}{TMP_MARK}"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def _clean_hot_tmp(root: Path) -> None:
    """After recover_transitions: what is left under compaction-tmp belongs to no decided transition."""
    shutil.rmtree(root / HOT_TMP_DIR, ignore_errors=True)


class _HotLock:
    """The archive's write lock while hot files are rewritten (no collector may write meanwhile)."""

    def __init__(self, root: Path):
        self.root, self.lock, self.problem = root, None, None

    def acquire(self) -> bool:
        if self.lock is None and self.problem is None:
            from mdcsql.ingest.writer import WriteLock
            try:
                self.lock = WriteLock(self.root)
            except ArchiveLockedError as exc:
                self.problem = f"hot tier skipped: {exc}"
        return self.lock is not None

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def _sync(archive, res: _Figures) -> None:
    """A full sync (stat-only for unchanged files): it also catches up on what an earlier run
    changed before it crashed or what recovery just finished, not only this run's paths."""
    try:
        archive.sync_catalog(timeout=30)
    except MdcsqlError as exc:
        res.catalog_problem = f"catalog not synced ({exc}); run: mdcsql catalog sync {archive.root}"


def _open(root):
    from mdcsql.archive import Archive
    return Archive.open(root)


def _run_job(archive, res: _Figures, what: str, lock_timeout, plan, run_one, done_list: list) -> None:
    """The frame of a job: lifecycle lock, recovery, plan, one transition per item (a refused or
    failed item is reported and the others go on), the hot tier under the write lock, catalog sync.

    ``plan()`` -> (items, skipped); each item has ``paths``, ``tier`` and ``describe()``;
    ``run_one(item)`` -> a dict with ``transition_id``, or ``{"skipped": why}``.
    """
    hot = _HotLock(archive.root)
    with lifecycle_lock(archive.root, what=what, timeout=lock_timeout):
        if not res.dry_run:
            res.recovered = recover_transitions(archive.root)
            _clean_preserved(archive.root)
            _clean_hot_tmp(archive.root)
        items, res.skipped = plan()
        try:
            for item in items:
                if res.dry_run:
                    done_list.append(item.describe())
                    continue
                if item.tier == "hot" and not hot.acquire():
                    res.skipped.append({"paths": item.paths, "reason": hot.problem})
                    continue
                try:
                    done = run_one(item)
                except MdcsqlError as exc:
                    from mdcsql.lifecycle.guard import ProtectedError
                    bucket = res.refused if isinstance(exc, ProtectedError) else res.errors
                    bucket.append({"paths": item.paths, "reason": str(exc)})
                    continue
                if done.get("skipped"):
                    res.skipped.append({"paths": item.paths, "reason": done["skipped"]})
                    continue
                done_list.append(done)
                if res.options.get("preserve_originals"):
                    res.preserved.append(f"{PRESERVED_DIR}/{done['transition_id']}")
        finally:
            hot.release()
            if not res.dry_run:
                _clean_hot_tmp(archive.root)
    if not res.dry_run:
        _sync(archive, res)


def compact(root, *, options: DefragOptions | None = None, as_of=None, dry_run: bool = False,
            actor: str | None = None, lock_timeout: float | None = None) -> CompactionResult:
    """Merge small sealed files (see the module docstring). ``dry_run`` plans and changes nothing."""
    t0 = time.monotonic()
    archive = _open(root)
    opts = options or DefragOptions.from_settings(archive.settings)
    as_of = parse_instant(as_of)
    res = CompactionResult(dry_run=dry_run, as_of=iso(as_of), options=asdict(opts))

    _run_job(archive, res, "compaction", lock_timeout, lambda: plan_merges(archive, opts, as_of),
             lambda m: _merge_one(archive, m, opts, actor, as_of), res.merges)
    for m in res.merges:
        res.files_processed += len(m["inputs"])
        res.files_created += 1
        res.bytes_before += m["bytes"]
        res.bytes_after += m.get("bytes_after", m["bytes"])
        res.events += m["events"]
    if res.bytes_before and not dry_run:
        res.compression_improvement = round(1 - res.bytes_after / res.bytes_before, 6)
    res.duration_seconds = round(time.monotonic() - t0, 6)
    return res


def split(root, paths=None, *, options: DefragOptions | None = None, max_bytes: int | None = None,
          dry_run: bool = False, actor: str | None = None, lock_timeout: float | None = None) -> SplitResult:
    """Split sealed files larger than ``max_bytes`` (default MaxFileBytes) — all, or ``paths``."""
    from mdcsql.lifecycle.compaction_split import split_one
    t0 = time.monotonic()
    archive = _open(root)
    opts = options or DefragOptions.from_settings(archive.settings, max_file_bytes=max_bytes)
    res = SplitResult(dry_run=dry_run, options=asdict(opts))

    def run_one(s: Split) -> dict:
        _check_inputs(archive.root, [s.file], actor)
        return split_one(archive, s, opts, actor)

    _run_job(archive, res, "split", lock_timeout, lambda: plan_splits(archive, opts, paths), run_one, res.splits)
    for s in res.splits:
        outputs = s.get("outputs", ())
        res.files_processed += 1
        res.bytes_before += s["bytes"]
        res.files_created += len(outputs) or s["chunks"]
        res.bytes_after += sum(o["size_bytes"] for o in outputs)
        res.events += sum(o["event_count"] for o in outputs)
    res.duration_seconds = round(time.monotonic() - t0, 6)
    return res


def commit_transition(archive, t: Transition, rels: list[str], opts: DefragOptions) -> None:
    """Commit ``t`` (preserving ``rels`` first when PreserveOriginals); used by the splitter."""
    _commit(archive.root, t, rels, opts.preserve_originals)
