"""The write-ahead log: the one place an event becomes durable.

A WAL is a directory of segment files named by the log sequence number (LSN, a global byte
offset) of their first byte.  Each group commit appends one *frame*: a fixed header, a small
JSON header naming which partition file each run of bytes belongs to, then the canonical JSON
lines themselves.  Recovery can therefore re-fan-out a frame without parsing a single event.

Frame layout (little endian)::

    magic | header_len u32 | payload_len u32 | n_events u32 | crc32 u32 | header | payload

Magic `MDW1` stores the payload as is; `MDWZ` stores it zstd-compressed (level 1, used for large
group commits, where it is cheaper than writing and fsyncing ~10x more bytes).  `crc32`
covers header and stored payload, so a torn or corrupt tail is detected and cut off.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import zstandard

from mdcsql.durable import fsync_dir

MAGIC = b"MDW1"
MAGIC_ZSTD = b"MDWZ"
COMPRESS_ABOVE = 64 << 10       # payloads larger than this are stored compressed
_ZSTD = zstandard.ZstdCompressor(level=1)
_UNZSTD = zstandard.ZstdDecompressor()
_HEAD = struct.Struct("<4sIIII")
HEADER_SIZE = _HEAD.size
SEGMENT_SUFFIX = ".wal"


@dataclass(frozen=True, slots=True)
class Frame:
    """One group commit: `groups` is a list of (relpath, n_events, n_bytes) over `payload`."""

    lsn: int
    end_lsn: int
    groups: list
    payload: bytes
    n_events: int

    def runs(self) -> Iterator[tuple[str, int, bytes]]:
        offset = 0
        for relpath, n_events, n_bytes in self.groups:
            yield relpath, n_events, self.payload[offset:offset + n_bytes]
            offset += n_bytes


@dataclass(frozen=True, slots=True)
class TornTail:
    """Bytes at the end of a segment that do not form a complete, valid frame."""

    segment: Path
    offset: int
    data: bytes
    reason: str


def encode_frame(groups: list, payload: bytes, n_events: int) -> bytes:
    header = json.dumps(groups, separators=(",", ":")).encode()
    magic = MAGIC
    if len(payload) > COMPRESS_ABOVE:
        magic, payload = MAGIC_ZSTD, _ZSTD.compress(payload)
    crc = zlib.crc32(payload, zlib.crc32(header))
    return b"".join((_HEAD.pack(magic, len(header), len(payload), n_events, crc), header, payload))


def segment_name(start_lsn: int) -> str:
    return f"{start_lsn:020d}{SEGMENT_SUFFIX}"


def list_segments(wal_dir: Path) -> list[tuple[int, Path]]:
    """Segments sorted by start LSN."""
    if not wal_dir.is_dir():
        return []
    out = []
    for entry in os.scandir(wal_dir):
        if entry.name.endswith(SEGMENT_SUFFIX) and entry.name[:-len(SEGMENT_SUFFIX)].isdigit():
            out.append((int(entry.name[:-len(SEGMENT_SUFFIX)]), Path(entry.path)))
    return sorted(out)


class WalWriter:
    """Appends frames to the current segment; rolls to a new segment past `segment_bytes`."""

    def __init__(self, wal_dir: Path, start_lsn: int, *, sync: bool = True,
                 segment_bytes: int = 64 << 20) -> None:
        self.dir = wal_dir
        self.sync = sync
        self.segment_bytes = segment_bytes
        wal_dir.mkdir(parents=True, exist_ok=True)
        self.lsn = start_lsn
        self._open_segment(start_lsn)

    def _open_segment(self, start_lsn: int) -> None:
        segments = list_segments(self.dir)
        if segments and segments[-1][0] <= start_lsn:
            seg_start, path = segments[-1]
            if seg_start + path.stat().st_size != start_lsn:
                raise RuntimeError(f"WAL segment {path} does not end at LSN {start_lsn}")
        else:
            seg_start, path = start_lsn, self.dir / segment_name(start_lsn)
        self.segment_start = seg_start
        self.segment_path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        fsync_dir(self.dir)

    def append(self, frame: bytes) -> int:
        """Write one frame (fsync'd when sync is on); return the LSN just past it."""
        view = memoryview(frame)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self.sync:
            os.fdatasync(self._fd)
        self.lsn += len(frame)
        return self.lsn

    def should_roll(self) -> bool:
        return self.lsn - self.segment_start >= self.segment_bytes

    def roll(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = os.open(self.dir / segment_name(self.lsn), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.segment_start, self.segment_path = self.lsn, self.dir / segment_name(self.lsn)
        fsync_dir(self.dir)

    def fsync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def retire_before(self, lsn: int) -> int:
        """Delete segments that end at or before `lsn` (their frames are checkpointed). Returns count."""
        segments = list_segments(self.dir)
        removed = 0
        for (start, path), nxt in zip(segments, segments[1:] + [(None, None)]):
            end = nxt[0] if nxt[0] is not None else start + path.stat().st_size
            if end <= lsn and path != self.segment_path:
                path.unlink()
                removed += 1
        if removed:
            fsync_dir(self.dir)
        return removed


def read_frames(wal_dir: Path, from_lsn: int) -> tuple[list[Frame], TornTail | None, int]:
    """All complete frames at or after `from_lsn`, a torn tail if any, and the LSN where valid data ends.

    Only the last segment may legitimately end in a torn frame (a crash mid-append); corruption
    elsewhere is reported the same way and stops the scan there.
    """
    frames: list[Frame] = []
    end_lsn = from_lsn
    for seg_start, path in list_segments(wal_dir):
        data = path.read_bytes()
        seg_end = seg_start + len(data)
        if seg_end <= from_lsn:
            end_lsn = max(end_lsn, seg_end)
            continue
        pos = max(0, from_lsn - seg_start)
        while pos < len(data):
            reason = None
            if len(data) - pos < HEADER_SIZE:
                reason = "incomplete frame header"
            else:
                magic, hlen, plen, n_events, crc = _HEAD.unpack_from(data, pos)
                body_end = pos + HEADER_SIZE + hlen + plen
                if magic not in (MAGIC, MAGIC_ZSTD):
                    reason = "bad frame magic"
                elif body_end > len(data):
                    reason = "incomplete frame body"
                else:
                    header = data[pos + HEADER_SIZE: pos + HEADER_SIZE + hlen]
                    payload = data[pos + HEADER_SIZE + hlen: body_end]
                    if zlib.crc32(payload, zlib.crc32(header)) != crc:
                        reason = "frame checksum mismatch"
            if reason:
                return frames, TornTail(path, pos, data[pos:], reason), seg_start + pos
            if magic == MAGIC_ZSTD:
                payload = _UNZSTD.decompress(payload)
            frames.append(Frame(seg_start + pos, seg_start + body_end, json.loads(header), payload, n_events))
            pos = body_end
        end_lsn = seg_end
    return frames, None, end_lsn
