"""Helpers for the catalog tests: real archive trees of JSONL / gzip / zstd files with manifests.

Everything is written for real (bytes, compression, sha256) — no mocks — following the contracts
of ``mdcsql.layout`` (paths) and ``mdcsql.ingest.seal`` (manifest fields).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import zstandard

from mdcsql.layout import Layout, PartitionKey

BASE_TS = 1_705_329_000_123_456_789      # 2024-01-15T14:30:00.123456789Z
PERIOD = "2024-01-15"
MANIFEST_SUFFIX = ".manifest.json"


def catalog_events(type_: str, n: int, *, symbol: str = "AAPL", source: str = "sim",
                   start_seq: int = 1, ts0: int = BASE_TS) -> list[dict]:
    """``n`` canonical events of ``type_`` with decimal text that needs all 18 fraction digits."""
    out = []
    for i in range(n):
        e = {"type": type_, "symbol": symbol, "source": source, "ts": ts0 + i * 1_000_001,
             "recv_ts": ts0 + i * 1_000_001 + 7 if i % 2 else None, "seq": start_seq + i}
        px = f"{185 + i}.123456789012345678"
        if type_ == "Trade":
            e.update(price=px, size=f"{100 + i}.5", side="buy" if i % 2 else "sell",
                     trade_id=f"t{start_seq + i}", venue="XNAS", conditions=["@", "F"] if i % 2 else [])
        elif type_ == "BboQuote":
            e.update(bid_price=px, bid_size="300", ask_price=f"{185 + i}.123456789012345679",
                     ask_size="0.000000000000000001", venue="XNAS")
        elif type_ == "L2Snapshot":
            e.update(bids=[[px, "10"], ["184.5", "20.25"]], asks=[["186.000000000000000001", "5"]],
                     venue="XNAS")
        elif type_ == "OrderFlow":
            e.update(order_id=f"o{i}", action="add", side="buy", price=px, size="7", venue="XNAS")
        elif type_ == "HistoricalBar":
            e.update(open=px, high="190.25", low="180.0000001", close="189.99", volume="123456789.5",
                     interval="1m")
        elif type_ == "Heartbeat":
            e.update(status="ok")
        else:
            raise ValueError(type_)
        out.append(e)
    return out


def catalog_jsonl(events: list[dict]) -> bytes:
    return "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events).encode()


def catalog_write_file(root: Path, layout: Layout, events: list[dict], *, tier_root: str = "live",
                       asset_class: str = "equity", period: str = PERIOD, codec: str = "gzip",
                       part: int = 1, sealed: bool | None = None, torn_tail: bytes = b"",
                       session_id: str | None = None) -> str:
    """Write one data file (and, when sealed, its manifest); return its relative path.

    ``sealed`` defaults to ``codec != "none"``. ``torn_tail`` is appended raw (a half-written line).
    """
    first = events[0]
    key = PartitionKey(tier_root, first["source"], asset_class, first["symbol"], first["type"], period)
    raw = catalog_jsonl(events) + torn_tail
    checksum6 = hashlib.sha256(raw).hexdigest()[:6] if layout.file_name_metadata and (
        sealed if sealed is not None else codec != "none") else None
    rel = layout.relpath(key, codec=codec, part=part, checksum6=checksum6)
    path = Path(root) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    level = {"gzip": 6, "zstd": 3}.get(codec)
    if codec == "gzip":
        stored = gzip.compress(raw, compresslevel=6, mtime=0)
    elif codec == "zstd":
        stored = zstandard.ZstdCompressor(level=3).compress(raw)
    else:
        stored = raw
    path.write_bytes(stored)
    if sealed if sealed is not None else codec != "none":
        seqs = sorted({e["seq"] for e in events})
        gaps = [[a + 1, b - 1] for a, b in zip(seqs, seqs[1:]) if b - a > 1]
        manifest = {
            "manifest_version": 1, "path": rel, "format": "jsonl", "codec": codec,
            "compression_level": level, "symbol": key.symbol, "type": key.type,
            "source": key.source, "asset_class": key.asset_class, "partition": layout.partition,
            "period": key.period, "part": part, "size_bytes": len(stored), "raw_bytes": len(raw),
            "sha256": hashlib.sha256(stored).hexdigest(), "raw_sha256": hashlib.sha256(raw).hexdigest(),
            "event_count": len(events), "first_seq": seqs[0], "last_seq": seqs[-1],
            "first_ts": min(e["ts"] for e in events), "last_ts": max(e["ts"] for e in events),
            "gaps": gaps, "gap_count": len(gaps), "duplicates_dropped": 0, "ts_clock": "event",
            "created_at": "2024-01-15T14:30:00.000000Z", "sealed_at": "2024-01-16T00:00:05.000000Z",
            "schema_version": 1, "session_id": session_id,
        }
        Path(str(path) + MANIFEST_SUFFIX).write_text(json.dumps(manifest, indent=2))
    return rel


