"""Append-only JSONL journals (``_catalog/deletions.jsonl``, ``_catalog/refusals.jsonl``) and their
mirror into catalog tables.

The journal is the truth (invariant 1): one JSON object per line, each append fsync'd before the
caller goes on. A crash mid-append leaves a torn last line; the next append starts on a fresh line
and readers skip (and report) lines that do not parse, so one torn record never hides the others.
The mirror is incremental: the catalog remembers how many bytes and records it has read.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Callable

import pyarrow as pa

from mdcsql.durable import fsync_dir
from mdcsql.layout import CATALOG_DIR
from mdcsql.sql import load_sql

__all__ = ["journal_path", "append", "read", "mirror"]


def journal_path(root: Path, name: str) -> Path:
    return Path(root) / CATALOG_DIR / f"{name}.jsonl"


def append(path: Path, record: dict) -> None:
    """Append one record and fsync it (the record is durable when this returns)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    line = (json.dumps(record, sort_keys=True, separators=(",", ":"), default=str) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)          # writers of other processes and threads
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line                 # a torn record before us stays a line of its own
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)                            # releases the lock
    if created:
        fsync_dir(path.parent)


def read(path: Path, offset: int = 0) -> tuple[list[dict], int, list[str]]:
    """Complete records after byte ``offset``: (records, offset after the last complete line,
    problems). A last line without its newline is not consumed (it may still be being written)."""
    path = Path(path)
    if not path.exists():
        return [], 0, []
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    records, problems = [], []
    for n, line in enumerate(data[:end].split(b"\n")[:-1]):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict):
                raise ValueError("not an object")
            records.append(rec)
        except ValueError as exc:
            problems.append(f"{path.name}: line {n + 1} after byte {offset} is not a record ({exc})")
    return records, offset + end, problems


def mirror(catalog, *, name: str, schema: pa.Schema, to_rows: Callable[[int, dict], list[dict]],
           clear_sql: str, insert_sql: str, forget: bool) -> int:
    """Mirror journal ``name`` into its table: new records only, or everything with ``forget`` (or
    when the file shrank). ``to_rows(seq, record)`` gives the rows of one record; ``seq`` numbers
    records from 1 in file order, so a rebuild reproduces the same rows. Returns rows added."""
    path = journal_path(catalog.root, name)
    key = f"journal:{name}"
    row = catalog.execute(load_sql("queries/catalog_state_get.sql"), {"key": key}).first()
    state = json.loads(row[0]) if row else {"offset": 0, "records": 0}
    size = path.stat().st_size if path.exists() else 0
    if forget or size < state["offset"]:
        catalog.execute(load_sql(clear_sql))
        state = {"offset": 0, "records": 0}
    records, offset, _ = read(path, state["offset"])
    rows = []
    for i, rec in enumerate(records, start=state["records"] + 1):
        rows.extend(to_rows(i, rec))
    if rows:
        catalog._with_table(f"incoming_{name}", pa.Table.from_pylist(rows, schema=schema), insert_sql)
    state = {"offset": offset, "records": state["records"] + len(records)}
    catalog.execute(load_sql("queries/catalog_state_put.sql"), {"key": key, "value": json.dumps(state)})
    return len(rows)
