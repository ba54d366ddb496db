"""Integrity verification: recompute what the manifests and the catalog claim, and compare.

For every sealed file: the stored bytes' SHA-256 and size, the decompressed bytes' SHA-256,
size and event count must equal its manifest, and the catalog row must equal the manifest.
Catalog rows whose file is gone, and sealed files the catalog does not know, are problems too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
from pathlib import Path

from mdcsql.durable import read_json
from mdcsql.ingest.seal import MANIFEST_SUFFIX, open_decompressed, sha256_file
from mdcsql.catalog.indexer import SCAN_BASES

_CHUNK = 1 << 20


@dataclass
class VerifyReport:
    files_checked: int = 0
    events_checked: int = 0
    bytes_checked: int = 0
    problems: list[dict] = field(default_factory=list)
    #: what was not checked, and why (not failures): e.g. a Parquet fingerprint of another DuckDB version
    notes: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"ok": self.ok, "files_checked": self.files_checked, "events_checked": self.events_checked,
                "bytes_checked": self.bytes_checked, "problems": self.problems, "notes": self.notes}


def _raw_digest(path: Path) -> tuple[str, int, int]:
    import hashlib
    h, n, lines = hashlib.sha256(), 0, 0
    with open_decompressed(path) as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            n += len(chunk)
            lines += chunk.count(b"\n")
    return h.hexdigest(), n, lines


def verify_archive(archive, *, on_progress=None) -> VerifyReport:
    report = VerifyReport()
    root = archive.root
    manifests = {}
    for tier in SCAN_BASES:
        base = root / tier
        if base.is_dir():
            for dirpath, _dirs, names in os.walk(base):     # follows a mounted tier's link
                for name in names:
                    if name.endswith(MANIFEST_SUFFIX) and not name.endswith(".tmp"):
                        mpath = Path(dirpath) / name
                        rel = f"{tier}/" + mpath.relative_to(base).as_posix()
                        manifests[rel[:-len(MANIFEST_SUFFIX)]] = mpath
    with archive.catalog(read_only=not _catalog_missing(root), timeout=30) as cat:
        rows = {r["path"]: r for r in cat.execute(
            "SELECT path, sha256, size_bytes, event_count, raw_sha256 FROM files WHERE state = 'sealed'").dicts()}
    for rel, mpath in sorted(manifests.items()):
        path = root / rel
        m = read_json(mpath)

        def problem(kind: str, detail: str) -> None:
            report.problems.append({"path": rel, "problem": kind, "detail": detail})

        if not path.exists():
            problem("missing", "manifest without its data file")
            continue
        sha, size = sha256_file(path)
        report.files_checked += 1
        report.bytes_checked += size
        if sha != m["sha256"]:
            problem("checksum", f"sha256 {sha[:12]}… != manifest {m['sha256'][:12]}…")
        if size != m["size_bytes"]:
            problem("size", f"{size} bytes != manifest {m['size_bytes']}")
        if rel.endswith(".parquet"):
            _check_parquet(path, m, problem, report)
        else:
            try:
                raw_sha, raw_size, lines = _raw_digest(path)
            except Exception as exc:   # a corrupt compressed stream is a finding, not a crash
                problem("unreadable", f"cannot decompress: {exc}")
                lines = None
        if not rel.endswith(".parquet") and lines is not None:
            report.events_checked += lines
            if raw_sha != m["raw_sha256"]:
                problem("content", "decompressed bytes differ from the manifest's raw_sha256")
            if lines != m["event_count"]:
                problem("count", f"{lines} events != manifest {m['event_count']}")
        row = rows.pop(rel, None)
        if row is None:
            problem("uncatalogued", "sealed file missing from the catalog (run: mdcsql catalog rebuild)")
        elif (row["sha256"], row["size_bytes"], row["event_count"]) != (m["sha256"], m["size_bytes"], m["event_count"]):
            problem("catalog", "catalog row disagrees with the manifest")
        if on_progress:
            on_progress(report.files_checked)
    for rel in sorted(rows):
        report.problems.append({"path": rel, "problem": "missing", "detail": "catalogued file is gone"})
    return report


def _check_parquet(path: Path, m: dict, problem, report) -> None:
    """A Parquet tier file: its row count, and the content fingerprint its manifest records when
    this process computes that algorithm (``fingerprint_algo``; DuckDB's hash is tied to the
    DuckDB version that wrote it). Otherwise the sha256 and the row count stand, and a note says so."""
    try:
        import pyarrow.parquet as pq
        rows = pq.ParquetFile(path).metadata.num_rows
        if m.get("fingerprint") and m.get("type"):
            from mdcsql.lifecycle.parquet import LEGACY_FINGERPRINT_ALGO, fingerprint, fingerprint_available
            algo = m.get("fingerprint_algo") or LEGACY_FINGERPRINT_ALGO
            if fingerprint_available(algo):
                n, fp = fingerprint([path], m["type"], algo=algo)
                if fp != m["fingerprint"]:
                    problem("content", f"content fingerprint {fp} != manifest {m['fingerprint']}")
            else:
                report.notes.append({"path": m.get("path") or str(path), "note": "fingerprint not recomputed",
                                     "detail": f"{algo} is not available here; checked by sha256 and row count"})
    except Exception as exc:     # a damaged file is a finding, not a crash
        problem("unreadable", f"cannot read Parquet: {exc}")
        return
    report.events_checked += rows
    if rows != m.get("event_count"):
        problem("count", f"{rows} events != manifest {m.get('event_count')}")


def _catalog_missing(root: Path) -> bool:
    return not (root / "_catalog" / "catalog.duckdb").exists()
