"""JSON exports of the catalog under ``ROOT/_catalog/`` (the design's taxonomy), written atomically.

- ``manifest.json``: the "Data Catalog for Perpetual Data" — one entry per file;
- ``sources.json`` / ``symbols.json``: the registries, in the design's shapes. They are also the
  registries' durable copy: a catalog recreated from scratch re-imports them (invariant 1);
- ``schemas/v<N>.json``: the event JSON schema, from ``mdcsql.events.json_schema()``.
"""

from __future__ import annotations

import importlib
import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

from mdcsql.durable import atomic_write

__all__ = ["MANIFEST_FILE", "SOURCES_FILE", "SYMBOLS_FILE", "SCHEMAS_DIR", "entry_id",
           "write_manifest", "write_registry", "read_registry", "event_json_schema"]

MANIFEST_FILE = "manifest.json"
SOURCES_FILE = "sources.json"
SYMBOLS_FILE = "symbols.json"
SCHEMAS_DIR = "schemas"
CATALOG_VERSION = "1.0"
_ID_NAMESPACE = uuid.UUID("6f1c3f5e-8d0a-4b8e-9a53-6d2f0c1e7a42")


def entry_id(path: str) -> str:
    """Stable entry id of a file path (a UUID derived from it, so a rebuild gives the same ids)."""
    return str(uuid.uuid5(_ID_NAMESPACE, path))


def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.isoformat()


def write_manifest(catalog_dir: Path, rows: list[dict]) -> None:
    """Write ``manifest.json`` from ``queries/catalog_manifest_entries.sql`` rows (one per line)."""
    header = {"version": CATALOG_VERSION,
              "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    lines = []
    for r in rows:
        entry = {
            "id": entry_id(r["path"]), "path": r["path"], "type": r["type"],
            "symbols": [r["symbol"]],
            "date_range": {"start": _iso(r["start_date"]), "end": _iso(r["end_date"])},
            "event_count": r["event_count"], "size_bytes": r["size_bytes"],
            "checksum": f"sha256:{r['sha256']}" if r["sha256"] else None,
            "created_at": _iso(r["created_at"]), "schema_version": r["schema_version"],
            "state": r["state"], "source": r["source"], "codec": r["codec"],
        }
        lines.append(json.dumps(entry, separators=(", ", ": ")))
    head = json.dumps(header)[:-1]          # '{"version": ..., "generated_at": ...'
    body = ",\n    ".join(lines)
    text = ('{"catalog": ' + head + ', "entries": [\n    ' + body + "\n]}}\n") if lines \
        else '{"catalog": ' + head + ', "entries": []}}\n'
    atomic_write(catalog_dir / MANIFEST_FILE, text.encode())


def write_registry(catalog_dir: Path, filename: str, kind: str, key: str, rows: list[dict]) -> None:
    """Write ``{kind: {row[key]: row, ...}}`` (the design's registry shape)."""
    doc = {kind: {r[key]: r for r in rows}}
    atomic_write(catalog_dir / filename, (json.dumps(doc, indent=2, default=str) + "\n").encode())


def read_registry(catalog_dir: Path, filename: str, kind: str) -> list[dict]:
    """Entries of a registry export, or [] when the file is absent or unreadable."""
    try:
        doc = json.loads((catalog_dir / filename).read_text())
        entries = doc[kind]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [e for e in entries.values() if isinstance(e, dict)] if isinstance(entries, dict) else []


def event_json_schema() -> dict | None:
    """``mdcsql.events.json_schema()`` when that module provides it, else None."""
    try:
        events = importlib.import_module("mdcsql.events")
    except ImportError:
        return None
    fn = getattr(events, "json_schema", None)
    return fn() if callable(fn) else None
