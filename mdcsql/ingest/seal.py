"""Sealing: turn a finished hot JSONL file into its immutable, compressed, manifested form.

copy → verify → swap → record → delete: the compressed file is written under a temporary name,
re-read and checked against the source's hash, renamed into place, then its sidecar manifest is
written atomically, and only then is the hot file removed.  A crash at any point leaves either
the hot file (the seal reruns) or the sealed file with its manifest (recovery drops the hot copy).
"""

from __future__ import annotations

import gzip
import hashlib
import os
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import zstandard

from mdcsql.durable import TMP_SUFFIX, atomic_write_json, fsync_dir
from mdcsql.errors import IntegrityError
from mdcsql.layout import Layout
from mdcsql.sql import load_sql

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_VERSION = 1
SCHEMA_VERSION = 1
_CHUNK = 1 << 20


def manifest_path(data_path: Path) -> Path:
    return data_path.with_name(data_path.name + MANIFEST_SUFFIX)


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _compressor(codec: str, level: int):
    if codec == "gzip":
        return lambda f: gzip.GzipFile(fileobj=f, mode="wb", compresslevel=level, mtime=0)
    if codec == "zstd":
        return lambda f: zstandard.ZstdCompressor(level=level, write_checksum=True).stream_writer(f, closefd=False)
    raise ValueError(f"unknown codec {codec!r}")


def open_decompressed(path: Path):
    """Open a data file for reading its JSONL bytes, whatever codec is really inside (by magic bytes)."""
    with open(path, "rb") as probe:
        magic = probe.read(4)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if magic == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
    return open(path, "rb")


def sha256_file(path: Path) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def sha256_decompressed(path: Path) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    with open_decompressed(path) as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def file_stats(path: Path) -> dict:
    """Counts, seq/ts range and seq gaps of a JSONL file (any codec), computed by DuckDB."""
    con = duckdb.connect()
    try:
        con.execute("SET threads = 1")
        row = con.execute(load_sql("queries/seal_stats.sql"), {"file": str(path)}).fetchall()[0]
    finally:
        con.close()
    count, first_seq, last_seq, first_ts, last_ts, gaps = row
    return {"event_count": int(count), "first_seq": first_seq, "last_seq": last_seq,
            "first_ts": first_ts, "last_ts": last_ts, "gaps": [list(g) for g in gaps],
            "gap_count": len(gaps)}


def seal_file(root: Path, layout: Layout, relpath: str, *, codec: str, level: int,
              session_id: str | None = None, created_at: str | None = None,
              duplicates_dropped: int = 0) -> dict:
    """Seal the hot file at `relpath`; return its manifest. The hot file must be complete and fsync'd."""
    hot = root / relpath
    meta = layout.parse(relpath)
    raw_sha, raw_bytes = sha256_file(hot)
    stats = file_stats(hot)
    if codec == "none" and not layout.file_name_metadata:
        final_rel = relpath
    else:
        final_rel = layout.relpath(meta.key, codec=codec, part=meta.part,
                                   checksum6=raw_sha[:6] if layout.file_name_metadata else None)
    final = root / final_rel
    if final_rel != relpath:
        tmp = final.with_name(final.name + TMP_SUFFIX)
        with open(hot, "rb") as src, open(tmp, "wb") as dst:
            if codec == "none":
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
            else:
                with _compressor(codec, level)(dst) as out:
                    while chunk := src.read(_CHUNK):
                        out.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        check_sha, check_bytes = sha256_decompressed(tmp)
        if (check_sha, check_bytes) != (raw_sha, raw_bytes):
            tmp.unlink()
            raise IntegrityError(f"{final_rel}: compressed copy does not read back to the hot file's bytes")
        os.replace(tmp, final)
        fsync_dir(final.parent)
    sha, size = sha256_file(final)
    key = meta.key
    manifest = {
        "manifest_version": MANIFEST_VERSION, "path": final_rel, "format": "jsonl", "codec": codec,
        "compression_level": level if codec != "none" else None,
        "symbol": key.symbol, "type": key.type, "source": key.source, "asset_class": key.asset_class,
        "partition": layout.partition, "period": key.period, "part": meta.part,
        "size_bytes": size, "raw_bytes": raw_bytes, "sha256": sha, "raw_sha256": raw_sha,
        **stats, "duplicates_dropped": duplicates_dropped, "ts_clock": "event",
        "created_at": created_at or utc_now_iso(), "sealed_at": utc_now_iso(),
        "schema_version": SCHEMA_VERSION, "session_id": session_id,
    }
    atomic_write_json(manifest_path(final), manifest)
    if final_rel != relpath:
        hot.unlink()
        fsync_dir(hot.parent)
    return manifest
