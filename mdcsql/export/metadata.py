"""``export_metadata.json``: the design's "Export Metadata & Documentation", beside every export.

The document has exactly the design's shape — ``{"export_metadata": {export_id, created_at,
source_archive_version, data_coverage{symbols, date_range{start, end}, event_types, total_events,
total_bytes}, quality_summary{overall_score, completeness, gaps_filled, outliers_present},
format_details{format, compression, partitioning, schema_version}, checksums{manifest, files[{path,
sha256}]}, loader_code{python, r}}}`` — plus keys the design leaves open, added beside them:
file entries also carry ``bytes``, ``event_type`` and ``events``; ``request`` (the ExportRequest),
``counts`` (events per type, symbol and UTC day, read back from the files) and ``notes``.

``checksums.manifest`` is the SHA-256 of ``checksums.sha256``, a ``sha256sum -c``-compatible list
of every file of the export (the metadata file itself excepted), so the export can be checked
without mdcsql.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from mdcsql.durable import fsync_dir

__all__ = ["METADATA_FILE", "CHECKSUMS_FILE", "SCHEMA_VERSION", "sha256_file", "build", "write", "read",
           "default_loader_code"]

METADATA_FILE = "export_metadata.json"
CHECKSUMS_FILE = "checksums.sha256"
SCHEMA_VERSION = "1.0"          # version of this export layout and metadata document


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _rel(out_dir: Path, path: Path) -> str:
    return Path(path).relative_to(out_dir).as_posix()


def default_loader_code(format_name: str, files_by_type: dict[str, list[str]]) -> dict[str, str]:
    """Python and R snippets that load each type's files of a generic format."""
    py, r = [], []
    for etype, files in files_by_type.items():
        if not files:
            continue
        var, first = etype.lower(), files[0]
        folder = first.split("/date=")[0].split("/symbol=")[0]
        if format_name == "ParquetPartitioned":
            py.append(f"{var} = pd.read_parquet('{folder}')")
            r.append(f"{var} <- dplyr::collect(arrow::open_dataset('{folder}'))")
        elif format_name == "Parquet":
            py.append(f"{var} = pd.read_parquet('{first}')")
            r.append(f"{var} <- arrow::read_parquet('{first}')")
        elif format_name in ("Csv", "CsvCompressed"):
            py.append(f"{var} = pd.read_csv('{first}', parse_dates=['ts', 'recv_ts'])")
            r.append(f"{var} <- read.csv('{first}')")
        elif format_name in ("JsonLines", "JsonLinesCompressed"):
            py.append(f"{var} = pd.read_json('{first}', lines=True, dtype=False)")
            r.append(f"{var} <- jsonlite::stream_in(gzcon(file('{first}', 'rb')))"
                     if first.endswith(".gz") else f"{var} <- jsonlite::stream_in(file('{first}'))")
        elif format_name == "Arrow":
            py.append(f"{var} = pa.ipc.open_file('{first}').read_pandas()")
            r.append(f"{var} <- arrow::read_ipc_file('{first}')")
        elif format_name == "FeatherV2":
            py.append(f"{var} = pd.read_feather('{first}')")
            r.append(f"{var} <- arrow::read_feather('{first}')")
    if not py:
        return {"python": "", "r": ""}
    head = "import pandas as pd\n" + ("import pyarrow as pa\n" if format_name == "Arrow" else "")
    return {"python": head + "\n".join(py), "r": "\n".join(r)}


def build(*, export_id: str, created_at: str, archive_version: str, request: dict, format_name: str,
          compression: str, partitioning: list, files: list[dict], counts: dict, quality: dict,
          loader_code: dict, notes: list[str], extra: dict | None = None) -> dict:
    """The metadata document. ``files``: [{path, sha256, bytes, event_type, events}] (paths relative
    to the export directory); ``counts``: {type: {symbol: {day: events}}}."""
    symbols = sorted({s for per in counts.values() for s in per})
    days = sorted({d for per in counts.values() for by_day in per.values() for d in by_day})
    total = sum(n for per in counts.values() for by_day in per.values() for n in by_day.values())
    doc = {
        "export_id": export_id,
        "created_at": created_at,
        "source_archive_version": archive_version,
        "data_coverage": {
            "symbols": symbols,
            "date_range": {"start": days[0] if days else None, "end": days[-1] if days else None},
            "event_types": list(request.get("types") or []),
            "total_events": total,
            "total_bytes": sum(f["bytes"] for f in files),
        },
        "quality_summary": quality,
        "format_details": {"format": format_name, "compression": compression, "partitioning": partitioning,
                           "schema_version": SCHEMA_VERSION},
        "checksums": {"manifest": None, "files": files},
        "loader_code": loader_code,
        "request": request,
        "counts": counts,
        "notes": notes,
    }
    if extra:
        doc.update(extra)
    return {"export_metadata": doc}


def write(out_dir: Path, doc: dict) -> None:
    """Write ``checksums.sha256`` then ``export_metadata.json`` into ``out_dir``, fsync'ing every
    file of the export and the directories (the export is durable when this returns)."""
    out_dir = Path(out_dir)
    entries = doc["export_metadata"]["checksums"]["files"]
    lines = "".join(f"{e['sha256']}  {e['path']}\n" for e in entries)
    (out_dir / CHECKSUMS_FILE).write_text(lines, encoding="utf-8")
    doc["export_metadata"]["checksums"]["manifest"] = "sha256:" + sha256_file(out_dir / CHECKSUMS_FILE)
    (out_dir / METADATA_FILE).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    for dirpath, _dirs, names in os.walk(out_dir):
        for name in names:
            fsync_dir(Path(dirpath) / name)        # opens read-only and fsyncs: files too
        fsync_dir(Path(dirpath))


def file_entries(out_dir: Path, typed: dict[str, list[Path]], counts: dict) -> list[dict]:
    """Checksum entries of every file under ``out_dir`` (data files tagged with their type and,
    for one file per type, its events)."""
    owner = {Path(p).resolve(): t for t, ps in typed.items() for p in ps}
    entries = []
    for dirpath, _dirs, names in os.walk(out_dir):
        for name in sorted(names):
            path = Path(dirpath) / name
            if name in (METADATA_FILE, CHECKSUMS_FILE) and path.parent == out_dir or name.startswith(".lock"):
                continue
            etype = owner.get(path.resolve())
            entry = {"path": _rel(out_dir, path), "sha256": sha256_file(path), "bytes": path.stat().st_size,
                     "event_type": etype}
            if etype is not None and len(typed[etype]) == 1:
                entry["events"] = sum(n for by_day in counts.get(etype, {}).values() for n in by_day.values())
            entries.append(entry)
    return sorted(entries, key=lambda e: e["path"])


def read(export_dir: Path) -> dict:
    """The metadata of an export directory (the inner ``export_metadata`` object)."""
    from mdcsql.errors import MdcsqlError
    path = Path(export_dir) / METADATA_FILE
    if not path.is_file():
        raise MdcsqlError(f"{export_dir} is not a complete export: no {METADATA_FILE}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return doc["export_metadata"]
    except (ValueError, KeyError, TypeError) as exc:
        raise MdcsqlError(f"{path}: unreadable export metadata ({exc})") from None
