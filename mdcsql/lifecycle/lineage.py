"""Lineage: which files a lifecycle transition read and wrote, mirrored into ``lineage``.

The truth is ``_catalog/lineage.jsonl`` (one record per transition, written by
``mdcsql.lifecycle.transition``) and, redundantly, the ``lineage`` field of each output's
manifest; the table has one row per (input, output) pair so either direction is one query.
"""

from __future__ import annotations

import json

import pyarrow as pa

from mdcsql.lifecycle import journal

__all__ = ["refresh", "SCHEMA"]

SCHEMA = pa.schema([
    ("seq", pa.int64()), ("transition_id", pa.string()), ("operation", pa.string()),
    ("input_path", pa.string()), ("input_sha256", pa.string()), ("input_events", pa.int64()),
    ("output_path", pa.string()), ("output_sha256", pa.string()), ("output_events", pa.int64()),
    ("parameters", pa.string()), ("at", pa.string()),
])


def _rows(seq: int, rec: dict) -> list[dict]:
    inputs = rec.get("inputs") or [{}]
    outputs = rec.get("outputs") or [{}]
    params = json.dumps(rec.get("parameters") or {}, sort_keys=True)
    at = str(rec.get("at", "")).rstrip("Z").replace("T", " ")
    return [{"seq": seq, "transition_id": rec.get("transition_id"), "operation": rec.get("operation"),
             "input_path": i.get("path"), "input_sha256": i.get("sha256"),
             "input_events": i.get("event_count"), "output_path": o.get("path"),
             "output_sha256": o.get("sha256"), "output_events": o.get("event_count"),
             "parameters": params, "at": at}
            for i in inputs for o in outputs]


def refresh(catalog, *, forget: bool) -> None:
    journal.mirror(catalog, name="lineage", schema=SCHEMA, to_rows=_rows,
                   clear_sql="queries/lineage_clear.sql", insert_sql="queries/lineage_insert.sql",
                   forget=forget)
