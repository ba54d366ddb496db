"""Read back everything an archive holds, independently of the catalog, for assertions."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import msgspec

from mdcsql.ingest.seal import MANIFEST_SUFFIX, open_decompressed

_decode = msgspec.json.Decoder(float_hook=str)


def data_files(root: Path) -> list[Path]:
    out = []
    for tier in ("live", "historical"):
        for dirpath, _d, files in os.walk(root / tier):
            for name in files:
                if name.endswith(MANIFEST_SUFFIX) or name.endswith(".tmp"):
                    continue
                out.append(Path(dirpath) / name)
    return sorted(out)


def events_in(path: Path) -> list[dict]:
    with open_decompressed(path) as f:
        return [_decode.decode(line) for line in f.read().splitlines() if line]


def stored_events(root: Path) -> list[dict]:
    return [e for path in data_files(root) for e in events_in(path)]


def stream_keys(events) -> Counter:
    return Counter((e["source"], e["symbol"], e["type"], e["seq"]) for e in events)
