"""Splitting one oversized sealed file into ts ranges (the design's SplitAsync).

The rows are cut at ts boundaries chosen so the ranges hold about equal bytes (JSONL) or rows
(Parquet); rows sharing a ts stay together. The first range keeps the file's part number, the
others take new part numbers after the highest part of the partition in that tier directory.
JSONL is streamed twice (timestamps, then routing each line byte-exact to its range), so the
file never has to fit in memory; Parquet ranges are written by ``parquet.convert`` (each range
fingerprint-verified against the source restricted to it). Either way the outputs together must
hold the source's rows exactly: line digest (JSONL) or combined fingerprint (Parquet).
"""

from __future__ import annotations

from array import array
from pathlib import Path

import numpy as np

from mdcsql.errors import MdcsqlError
from mdcsql.lifecycle import compaction_io as cio
from mdcsql.lifecycle.codecs import CodecSpec, VerificationError, parse_codec
from mdcsql.lifecycle.transition import Transition

__all__ = ["split_one", "next_part"]


def next_part(archive, f) -> int:
    """One more than the highest part of ``f``'s partition in its directory (any codec, open or
    sealed, any checksum name)."""
    directory = (archive.root / f.rel).parent
    prefix = f.rel.rsplit("/", 1)[0]
    top = f.meta.part
    for entry in directory.iterdir():
        try:
            meta = archive.layout.parse(f"{prefix}/{entry.name}")
        except ValueError:
            continue
        if meta.key == f.meta.key:
            top = max(top, meta.part)
    return top + 1


def _file_spec(f, fmt: str) -> CodecSpec:
    codec = f.manifest.get("codec") if fmt == "parquet" else f.meta.codec
    codec = codec if isinstance(codec, str) else "zstd"
    level = f.manifest.get("compression_level")
    return parse_codec(codec if level is None or codec in ("none", "lz4", "snappy") else f"{codec}-{level}",
                       for_format=fmt)


def _ranges(bounds: list[int]) -> list[tuple]:
    edges = [None, *bounds, None]
    return list(zip(edges[:-1], edges[1:]))


def _transition(archive, f, bounds: list[int], spec: CodecSpec, opts, actor) -> tuple[Transition, list[int]]:
    """The split's transition and the part number of each range (the first keeps the file's)."""
    first_new = next_part(archive, f)
    parts = [f.meta.part] + [first_new + i for i in range(len(bounds))]
    t = Transition(archive.root, "split", [f.input_record()],
                   {"max_file_bytes": opts.max_file_bytes, "boundaries": bounds, "codec": str(spec)}, actor=actor)
    return t, parts


def _describe(s, t: Transition, outputs: list[dict], bounds: list[int]) -> dict:
    return {**s.describe(), "transition_id": t.id, "boundaries": bounds, "chunks": len(outputs),
            "outputs": [{k: m[k] for k in ("path", "size_bytes", "event_count", "first_ts", "last_ts")}
                        for m in outputs]}


def _split_jsonl(archive, s, opts, actor) -> dict:
    from mdcsql.lifecycle.compaction import _relpath, _retmp, commit_transition
    from mdcsql.ingest.seal import sha256_file
    f, root = s.file, archive.root
    path = root / f.rel
    ts_list, sizes, source = array("q"), array("q"), cio.LineDigest()
    for line in cio.iter_lines(path, expect_raw_sha256=f.manifest.get("raw_sha256")):
        ts, _ = cio.key_of(line)
        ts_list.append(cio.NO_TS if ts is None else ts)
        sizes.append(len(line))
        source.add(line)
    bounds = cio.split_bounds(np.frombuffer(ts_list, dtype=np.int64), np.frombuffer(sizes, dtype=np.int64), s.chunks)
    if not bounds:
        return {"skipped": "its rows cannot be cut into ts ranges (fewer than two distinct timestamps)"}
    spec = _file_spec(f, "jsonl")
    t, parts = _transition(archive, f, bounds, spec, opts, actor)
    created: list[Path] = []
    try:
        sinks = []
        for p in parts:
            created.append(t.tmp_path(_relpath(archive, f, spec, p)))
            sinks.append(cio.JsonlSink(created[-1], spec))
        try:
            for idx, line, key in cio.route_lines(cio.iter_lines(path), bounds):
                sinks[idx].write(line, key)
        finally:
            shas = [sink.close() for sink in sinks]
        total = cio.LineDigest()
        manifests = []
        for sink, sha, part in zip(sinks, shas, parts):
            out = _relpath(archive, f, spec, part, checksum6=sha[:6])
            tmp = _retmp(t, sink.path, out)
            created.append(tmp)
            cio.verify_written(tmp, sha, sink.digest)
            total = total.merge(sink.digest)
            file_sha, size = sha256_file(tmp)
            manifests.append(cio.jsonl_manifest([f.manifest], out, f.meta.key, part, archive.layout.partition,
                                                spec, sha256=file_sha, size=size, raw_sha256=sha,
                                                raw_bytes=sink.digest.raw_bytes, stats=cio.line_stats(sink.keys)))
            t.add_output(out, manifests[-1])
        if not total.same(source):
            raise VerificationError(f"{f.rel}: the split files do not hold its lines exactly once "
                                    f"({total.lines} lines vs {source.lines})")
        commit_transition(archive, t, [f.rel], opts)
    except BaseException:
        _abort(t, created)
        raise
    return _describe(s, t, manifests, bounds)


def _abort(t: Transition, created: list[Path]) -> None:
    """Drop every tmp file of ``t``, also those not registered as outputs yet."""
    t.abort()
    for tmp in created:
        tmp.unlink(missing_ok=True)


def _parquet_ts(path: Path) -> np.ndarray | None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    col = pq.read_table(path, columns=["ts"])["ts"]
    if col.null_count:
        return None
    if pa.types.is_timestamp(col.type):
        col = col.cast(pa.timestamp("ns", tz="UTC"))
    return col.cast(pa.int64()).to_numpy()


def _split_parquet(archive, s, opts, actor) -> dict:
    from mdcsql.lifecycle.compaction import _relpath, commit_transition
    from mdcsql.lifecycle.parquet import combine_fingerprints, convert, fingerprint
    f, root = s.file, archive.root
    path = root / f.rel
    ts = _parquet_ts(path)
    if ts is None:
        return {"skipped": "some rows have no ts, so they cannot be cut into ts ranges"}
    bounds = cio.split_bounds(ts, np.ones(len(ts), dtype=np.int64), s.chunks)
    if not bounds:
        return {"skipped": "its rows cannot be cut into ts ranges (fewer than two distinct timestamps)"}
    spec = _file_spec(f, "parquet")
    t, parts = _transition(archive, f, bounds, spec, opts, actor)
    manifests, prints = [], []
    try:
        for part, ts_range in zip(parts, _ranges(bounds)):
            out = _relpath(archive, f, spec, part)
            r = convert([path], t.tmp_path(out), f.meta.key.type, compression=spec, ts_range=ts_range)
            prints.append((r.rows, r.fingerprint))
            manifests.append(cio.parquet_manifest([f.manifest], out, f.meta.key, part, archive.layout.partition,
                                                  r, whole=False))
            t.add_output(out, manifests[-1])
        whole = fingerprint([path], f.meta.key.type)
        if combine_fingerprints(prints) != whole or whole[0] != len(ts):
            raise VerificationError(f"{f.rel}: the split files do not hold its rows exactly once "
                                    f"({combine_fingerprints(prints)} vs {whole})")
        commit_transition(archive, t, [f.rel], opts)
    except BaseException:
        t.abort()
        raise
    return _describe(s, t, manifests, bounds)


def split_one(archive, s, opts, actor) -> dict:
    """Split ``s.file``; returns what was done, or ``{"skipped": why}``.

    :raises MdcsqlError: verification failed or the guard refused (nothing changed then).
    """
    try:
        if s.file.format == "parquet":
            return _split_parquet(archive, s, opts, actor)
        return _split_jsonl(archive, s, opts, actor)
    except (OSError, ValueError) as exc:
        raise MdcsqlError(f"{s.file.rel}: cannot split: {exc}") from exc
