"""Byte-exact JSONL merging and splitting for compaction, and the manifests of their outputs.

A compacted JSONL file holds exactly the input lines — the same bytes, none dropped, none added —
in (ts, seq, input order) order. Verification re-reads the written file and compares its
decompressed SHA-256 with the bytes that were meant to be written, and an order-independent
digest of its lines (count, sum mod 2^64 of each line's 64-bit BLAKE2b) with the inputs'. A
change of one byte, a lost line or a duplicated line changes the digest.
"""

from __future__ import annotations

import hashlib
import os
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import msgspec
import numpy as np

from mdcsql.errors import IntegrityError
from mdcsql.ingest.seal import MANIFEST_VERSION, SCHEMA_VERSION, utc_now_iso
from mdcsql.lifecycle.codecs import CodecSpec, VerificationError, _compressor, jsonl_digest, open_jsonl

__all__ = ["LineDigest", "read_lines", "iter_lines", "sort_lines", "write_jsonl", "line_stats",
           "jsonl_manifest", "parquet_manifest", "split_bounds", "route_lines", "key_of", "JsonlSink",
           "verify_written", "NO_TS"]

_U64 = 1 << 64
#: stands for a missing ts when cutting ts ranges (such rows go to the first range)
NO_TS = -(1 << 63)
_CHUNK = 1 << 20


class _Key(msgspec.Struct):
    ts: int | None = None
    seq: int | None = None


_DECODE = msgspec.json.Decoder(_Key)


def key_of(line: bytes) -> tuple[int | None, int | None]:
    """(ts, seq) of one JSONL line; (None, None) when it has none (such lines are kept, last)."""
    try:
        k = _DECODE.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None, None
    return k.ts, k.seq


def _sort_key(ts, seq) -> tuple:
    return (ts is None, ts or 0, seq is None, seq or 0)


@dataclass
class LineDigest:
    """Order-independent digest of a multiset of lines."""

    lines: int = 0
    total: int = 0
    raw_bytes: int = 0

    def add(self, line: bytes) -> None:
        self.lines += 1
        self.raw_bytes += len(line)
        self.total = (self.total + int.from_bytes(hashlib.blake2b(line, digest_size=8).digest(), "little")) % _U64

    def merge(self, other: "LineDigest") -> "LineDigest":
        return LineDigest(self.lines + other.lines, (self.total + other.total) % _U64,
                          self.raw_bytes + other.raw_bytes)

    def same(self, other: "LineDigest") -> bool:
        return (self.lines, self.total, self.raw_bytes) == (other.lines, other.total, other.raw_bytes)


def iter_lines(path: Path, *, expect_raw_sha256: str | None = None) -> Iterator[bytes]:
    """The lines of a JSONL file (any codec), each ending with ``\\n`` (one is added to a last
    line without it), streamed. With ``expect_raw_sha256`` the decompressed bytes must hash to it
    (checked when the file is exhausted): a damaged input is never compacted."""
    h, rest = hashlib.sha256(), b""
    try:
        with open_jsonl(Path(path)) as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    yield line + b"\n"
    except (OSError, EOFError) as exc:
        raise IntegrityError(f"{path}: cannot be read: {exc}") from None
    if rest:
        yield rest + b"\n"
    if expect_raw_sha256 is not None and h.hexdigest() != expect_raw_sha256:
        raise VerificationError(f"{path}: decompressed bytes have sha256 {h.hexdigest()}, not the "
                                f"manifest's raw_sha256 {expect_raw_sha256}; the file is damaged")


def read_lines(path: Path, *, expect_raw_sha256: str | None = None) -> list[bytes]:
    return list(iter_lines(path, expect_raw_sha256=expect_raw_sha256))


def sort_lines(inputs: list[list[bytes]]) -> tuple[list[bytes], list[tuple], LineDigest]:
    """Merge the lines of several inputs by (ts, seq), ties in input order. Returns the lines, their
    (ts, seq) keys, and the digest of the inputs' lines."""
    rows, digest = [], LineDigest()
    for i, lines in enumerate(inputs):
        for j, line in enumerate(lines):
            digest.add(line)
            ts, seq = key_of(line)
            rows.append((_sort_key(ts, seq), i, j, ts, seq, line))
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return [r[5] for r in rows], [(r[3], r[4]) for r in rows], digest


class JsonlSink:
    """A JSONL file being written with ``spec``: raw SHA-256, line digest and (ts, seq) keys kept."""

    def __init__(self, dst: Path, spec: CodecSpec):
        self.path, self.sha, self.digest, self.keys = Path(dst), hashlib.sha256(), LineDigest(), []
        self._out = open(dst, "wb")
        self._comp = _compressor(self._out, spec)
        self._sink = self._comp if self._comp is not None else self._out

    def write(self, line: bytes, key: tuple | None = None) -> None:
        self.sha.update(line)
        self.digest.add(line)
        if key is not None:
            self.keys.append(key)
        self._sink.write(line)

    def close(self) -> str:
        """Finish and fsync; returns the raw SHA-256."""
        try:
            if self._comp is not None:
                self._comp.close()
            self._out.flush()
            os.fsync(self._out.fileno())
        finally:
            self._out.close()
        return self.sha.hexdigest()


def write_jsonl(dst: Path, lines: Iterable[bytes], spec: CodecSpec) -> tuple[str, int]:
    """Write (compressed with ``spec``) and fsync; returns (sha256, byte count) of the raw lines."""
    sink = JsonlSink(dst, spec)
    try:
        for line in lines:
            sink.write(line)
    finally:
        sha = sink.close()
    return sha, sink.digest.raw_bytes


def verify_written(dst: Path, raw_sha256: str, expected: LineDigest) -> None:
    """Re-read ``dst``: its decompressed bytes must hash to ``raw_sha256`` and its lines must be
    exactly the expected multiset. :raises VerificationError: (``dst`` is left for the caller)."""
    sha, lines, size = jsonl_digest(dst)
    got = LineDigest()
    for line in iter_lines(dst):
        got.add(line)
    if sha != raw_sha256 or not got.same(expected) or lines != expected.lines or size != expected.raw_bytes:
        raise VerificationError(f"{dst}: written JSONL does not hold its inputs' lines exactly "
                                f"(lines {got.lines} vs {expected.lines}, bytes {got.raw_bytes} vs "
                                f"{expected.raw_bytes}, digest {got.total:016x} vs {expected.total:016x})")


def line_stats(keys: Iterable[tuple]) -> dict:
    """The manifest statistics of lines with these (ts, seq) keys (as ``seal.file_stats``)."""
    n, ts_vals, seqs = 0, [], set()
    for ts, seq in keys:
        n += 1
        if ts is not None:
            ts_vals.append(ts)
        if seq is not None:
            seqs.add(seq)
    ordered = sorted(seqs)
    gaps = [[a + 1, b - 1] for a, b in zip(ordered, ordered[1:]) if b - a > 1]
    return {"event_count": n, "first_seq": ordered[0] if ordered else None,
            "last_seq": ordered[-1] if ordered else None,
            "first_ts": min(ts_vals) if ts_vals else None, "last_ts": max(ts_vals) if ts_vals else None,
            "gaps": gaps, "gap_count": len(gaps)}


def split_bounds(ts: np.ndarray, sizes: np.ndarray, chunks: int) -> list[int]:
    """Inner boundaries b1 < b2 < ... of at most ``chunks`` ts ranges [b_i, b_i+1) of about equal
    total ``sizes``; every range holds at least one row and rows sharing a ts fall into one range.
    [] when the rows cannot be cut (fewer than two distinct ts)."""
    if chunks < 2 or len(ts) == 0:
        return []
    order = np.argsort(ts, kind="stable")
    ts_s, cum = ts[order], np.cumsum(sizes[order])
    bounds: list[int] = []
    for i in range(1, chunks):
        idx = int(np.searchsorted(cum, cum[-1] * i / chunks, side="left"))
        if idx + 1 >= len(ts_s):
            break
        b = int(ts_s[idx + 1])
        if b > ts_s[0] and (not bounds or b > bounds[-1]):
            bounds.append(b)
    return bounds


def route_lines(lines: Iterable[bytes], bounds: list[int]) -> Iterator[tuple[int, bytes, tuple]]:
    """(chunk index, line, (ts, seq)) for each line: chunk i holds ts in [bounds[i-1], bounds[i]);
    lines without a ts go to the first chunk."""
    for line in lines:
        ts, seq = key_of(line)
        yield (0 if ts is None else bisect_right(bounds, ts)), line, (ts, seq)


# ---- manifests ---------------------------------------------------------------------------------
def _common(inputs: list[dict], out_rel: str, key, part: int, partition: str) -> dict:
    created = [m["created_at"] for m in inputs if isinstance(m.get("created_at"), str)]
    sessions = {m.get("session_id") for m in inputs}
    return {"manifest_version": MANIFEST_VERSION, "path": out_rel, "symbol": key.symbol, "type": key.type,
            "source": key.source, "asset_class": key.asset_class, "partition": partition,
            "period": key.period, "part": part,
            "duplicates_dropped": sum(int(m.get("duplicates_dropped") or 0) for m in inputs),
            "ts_clock": "event", "created_at": min(created) if created else utc_now_iso(),
            "sealed_at": utc_now_iso(),
            "schema_version": max((int(m.get("schema_version") or SCHEMA_VERSION) for m in inputs),
                                  default=SCHEMA_VERSION),
            "session_id": sessions.pop() if len(sessions) == 1 else None}


def jsonl_manifest(inputs: list[dict], out_rel: str, key, part: int, partition: str, spec: CodecSpec,
                   *, sha256: str, size: int, raw_sha256: str, raw_bytes: int, stats: dict) -> dict:
    doc = _common(inputs, out_rel, key, part, partition)
    doc.update(format="jsonl", codec=spec.codec, compression_level=spec.level if spec.codec != "none" else None,
               size_bytes=size, raw_bytes=raw_bytes, sha256=sha256, raw_sha256=raw_sha256, **stats)
    return doc


def parquet_manifest(inputs: list[dict], out_rel: str, key, part: int, partition: str, result, *,
                     whole: bool) -> dict:
    """Manifest of a Parquet output from ``parquet.convert``'s ConversionResult. ``whole``: the
    output holds all of its inputs' rows (a merge), so their ``raw_bytes`` (JSONL size) add up."""
    doc = _common(inputs, out_rel, key, part, partition)
    raws = [m.get("raw_bytes") for m in inputs]
    doc.update(format="parquet", codec=result.codec, compression_level=result.level,
               size_bytes=result.size_bytes, sha256=result.sha256, raw_sha256=None,
               raw_bytes=sum(raws) if whole and all(type(r) is int for r in raws) else None,
               event_count=result.rows, first_seq=result.first_seq, last_seq=result.last_seq,
               first_ts=result.first_ts, last_ts=result.last_ts, fingerprint=result.fingerprint,
               fingerprint_algo=result.fingerprint_algo,
               row_groups=result.row_groups)
    return doc
