"""Codec specs ("gzip-6", "zstd-max", "lz4", ...) and verified JSONL re-compression (warm tier).

One parser for every place a codec is written as text (tier config, policies, CLI options):
``parse_codec("zstd-12") -> CodecSpec("zstd", 12)``. A spec without a level takes the tier's
level from the design's matrix when a tier is named (warm gzip-6, cold zstd-12, archive zstd-19),
else the codec's default. ``zstd-max`` is 19 — the highest level without zstd's "ultra" memory
cost; 20-22 may still be given explicitly.

JSONL can only be ``none``, ``gzip`` or ``zstd``: DuckDB's ``read_json`` (the catalog views) reads
nothing else, so lz4/snappy/brotli are refused for JSONL and allowed for Parquet.

``recompress_jsonl`` rewrites a JSONL file with another codec and proves the result holds the same
bytes: the SHA-256 and line count of the decompressed output, re-read from disk after fsync, must
equal those of the source (manifests carry that hash as ``raw_sha256``).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import zstandard

from mdcsql.errors import ConfigError, IntegrityError

__all__ = ["CodecSpec", "parse_codec", "CODECS", "JSONL_CODECS", "PARQUET_CODECS", "TIER_CODECS",
           "JSONL_SUFFIX", "VerificationError", "RecompressResult", "recompress_jsonl",
           "sniff_format", "open_jsonl", "jsonl_digest", "file_sha256"]

CODECS = ("none", "gzip", "zstd", "lz4", "snappy", "brotli")
JSONL_CODECS = ("none", "gzip", "zstd")
PARQUET_CODECS = ("none", "gzip", "zstd", "lz4", "snappy", "brotli")
#: codec -> (min level, max level, default level); None: the codec takes no level
LEVELS: dict[str, tuple[int, int, int] | None] = {
    "none": None, "lz4": None, "snappy": None,
    "gzip": (1, 9, 6), "zstd": (1, 22, 12), "brotli": (0, 11, 9)}
MAX_ALIAS = {"gzip": 9, "zstd": 19, "brotli": 11}
#: the design's matrix: tier -> default codec spec
TIER_CODECS: dict[str, tuple[str, int | None]] = {
    "hot": ("none", None), "warm": ("gzip", 6), "cold": ("zstd", 12), "archive": ("zstd", 19)}
JSONL_SUFFIX = {"none": ".jsonl", "gzip": ".jsonl.gz", "zstd": ".jsonl.zst"}
_CHUNK = 1 << 20


class VerificationError(IntegrityError):
    """A written file does not hold what its source held (rows, fingerprint or bytes)."""


@dataclass(frozen=True)
class CodecSpec:
    codec: str
    level: int | None

    def __str__(self) -> str:
        return self.codec if self.level is None else f"{self.codec}-{self.level}"


def parse_codec(text: str | None, *, tier: str | None = None, for_format: str | None = None) -> CodecSpec:
    """``"gzip-6"`` -> CodecSpec("gzip", 6).

    :param text: none, gzip, gzip-N, zstd, zstd-N, zstd-max, lz4, snappy, brotli, brotli-N
        (case-insensitive); None or "" means the tier's default (``tier`` required then).
    :param tier: hot/warm/cold/archive — supplies the level when ``text`` has none.
    :param for_format: "jsonl" refuses codecs DuckDB cannot read back as JSONL.
    :raises ConfigError: unknown codec, malformed or out-of-range level, codec not valid for JSONL.
    """
    if tier is not None and tier not in TIER_CODECS:
        raise ConfigError(f"unknown tier {tier!r}; expected one of {', '.join(TIER_CODECS)}")
    if not text or not str(text).strip():
        if tier is None:
            raise ConfigError("empty codec spec; expected e.g. none, gzip-6, zstd-12 or zstd-max")
        spec = CodecSpec(*TIER_CODECS[tier])
    else:
        raw = str(text).strip().lower()
        codec, sep, level_text = raw.partition("-")
        if codec not in LEVELS:
            raise ConfigError(f"unknown codec {text!r}; expected one of {', '.join(CODECS)} "
                              "(optionally with a level: gzip-6, zstd-12, zstd-max)")
        bounds = LEVELS[codec]
        if sep and bounds is None:
            raise ConfigError(f"codec {codec} takes no level (got {text!r})")
        if sep and level_text == "max":
            level = MAX_ALIAS[codec]
        elif sep:
            if not level_text.isdigit():
                raise ConfigError(f"codec level in {text!r} is not a number; expected e.g. {codec}-6")
            level = int(level_text)
            if not bounds[0] <= level <= bounds[1]:
                raise ConfigError(f"{codec} level {level} out of range {bounds[0]}..{bounds[1]} (got {text!r})")
        elif bounds is None:
            level = None
        elif tier is not None and TIER_CODECS[tier][0] == codec:
            level = TIER_CODECS[tier][1]
        else:
            level = bounds[2]
        spec = CodecSpec(codec, level)
    if for_format == "jsonl" and spec.codec not in JSONL_CODECS:
        raise ConfigError(f"codec {spec.codec} cannot be used for JSONL: the catalog views read JSONL "
                          f"through DuckDB's read_json, which reads only none, gzip and zstd "
                          f"({spec.codec} is valid for Parquet)")
    if for_format not in (None, "jsonl", "parquet"):
        raise ConfigError(f"unknown format {for_format!r}; expected jsonl or parquet")
    return spec


# ---- reading -----------------------------------------------------------------------------------
def sniff_format(path: Path) -> str:
    """'parquet', 'gzip', 'zstd' or 'none' (plain JSONL) from the file's first bytes, so temporary
    names (``*.lc.tmp``) are read correctly."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PAR1":
        return "parquet"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return "none"


def open_jsonl(path: Path) -> BinaryIO:
    """The decompressed bytes of a JSONL file (none, gzip or zstd, found by magic)."""
    kind = sniff_format(path)
    if kind == "parquet":
        raise ConfigError(f"{path}: is a Parquet file, not JSONL")
    if kind == "gzip":
        return gzip.open(path, "rb")
    raw = open(path, "rb")
    if kind == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=True)
    return raw


def _chunks(path: Path) -> Iterator[bytes]:
    """Decompressed chunks of a JSONL file; a damaged stream is an IntegrityError naming it."""
    try:
        with open_jsonl(path) as stream:
            while chunk := stream.read(_CHUNK):
                yield chunk
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
        raise IntegrityError(f"{path}: cannot be decompressed: {exc}") from None


def jsonl_digest(path: Path) -> tuple[str, int, int]:
    """(sha256 hex of the decompressed bytes, line count, decompressed byte count)."""
    h, lines, size, last = hashlib.sha256(), 0, 0, b"\n"
    for chunk in _chunks(path):
        h.update(chunk)
        lines += chunk.count(b"\n")
        size += len(chunk)
        last = chunk[-1:]
    if last != b"\n":
        lines += 1                                  # a last line without its newline still counts
    return h.hexdigest(), lines, size


# ---- re-compression ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RecompressResult:
    path: Path
    codec: str
    level: int | None
    rows: int
    raw_sha256: str
    raw_bytes: int
    sha256: str
    size_bytes: int
    seconds: float


def _compressor(out: BinaryIO, spec: CodecSpec):
    if spec.codec == "gzip":
        return gzip.GzipFile(fileobj=out, mode="wb", compresslevel=spec.level, mtime=0, filename="")
    if spec.codec == "zstd":
        return zstandard.ZstdCompressor(level=spec.level, write_checksum=True).stream_writer(out, closefd=False)
    return None


def recompress_jsonl(src: Path, dst_tmp: Path, codec: str | CodecSpec, level: int | None = None, *,
                     expect_raw_sha256: str | None = None) -> RecompressResult:
    """Write ``src`` (JSONL, any of none/gzip/zstd) to ``dst_tmp`` with ``codec``/``level``, fsync,
    then re-read ``dst_tmp`` and verify its decompressed SHA-256 and line count equal the source's
    (and ``expect_raw_sha256``, e.g. the manifest's ``raw_sha256``, when given).

    :param codec: a spec text ("zstd-19") or codec name with ``level``, or a CodecSpec.
    :raises ConfigError: lz4/snappy/brotli (not readable as JSONL), bad level.
    :raises VerificationError: the output does not hold the source's bytes; ``dst_tmp`` is removed.
    """
    t0 = time.perf_counter()
    if isinstance(codec, CodecSpec):
        spec = codec
    else:
        spec = parse_codec(codec if level is None or "-" in str(codec) else f"{codec}-{level}", for_format="jsonl")
    spec = parse_codec(str(spec), for_format="jsonl")
    src, dst_tmp = Path(src), Path(dst_tmp)
    h, lines, size, last = hashlib.sha256(), 0, 0, b"\n"
    try:
        with open(dst_tmp, "wb") as out:
            comp = _compressor(out, spec)
            sink = comp if comp is not None else out
            try:
                for chunk in _chunks(src):
                    h.update(chunk)
                    lines += chunk.count(b"\n")
                    size += len(chunk)
                    last = chunk[-1:]
                    sink.write(chunk)
            finally:
                if comp is not None:
                    comp.close()
            out.flush()
            os.fsync(out.fileno())
        if last != b"\n":
            lines += 1
        src_sha = h.hexdigest()
        if expect_raw_sha256 is not None and expect_raw_sha256 != src_sha:
            raise VerificationError(f"{src}: decompressed bytes have sha256 {src_sha}, not the "
                                    f"manifest's raw_sha256 {expect_raw_sha256}; the source is damaged")
        out_sha, out_lines, out_size = jsonl_digest(dst_tmp)
        if (out_sha, out_lines, out_size) != (src_sha, lines, size):
            raise VerificationError(f"{dst_tmp}: re-compressed file does not hold the source's bytes "
                                    f"(sha256 {out_sha} vs {src_sha}, lines {out_lines} vs {lines})")
        file_sha = file_sha256(dst_tmp)
    except BaseException:
        dst_tmp.unlink(missing_ok=True)
        raise
    return RecompressResult(path=dst_tmp, codec=spec.codec, level=spec.level, rows=lines,
                            raw_sha256=src_sha, raw_bytes=size, sha256=file_sha,
                            size_bytes=dst_tmp.stat().st_size, seconds=time.perf_counter() - t0)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()
