"""Mirror the quota and integrity records into the catalog (a derived module, see catalog/derived.py).

The files are the truth: ``_catalog/quota_events.jsonl`` → ``quota_events``,
``_catalog/alerts.jsonl`` → ``integrity_alerts`` (both incrementally, through the lifecycle's
journal mirror), ``_catalog/quota_limits.json`` → ``quota_limits`` (replaced whole: it is small).
"""

from __future__ import annotations

import json

import pyarrow as pa

from mdcsql.lifecycle import journal
from mdcsql.lifecycle.instants import naive
from mdcsql.lifecycle.quotas import EVENTS_FILE, LIMITS_FILE
from mdcsql.ingest.integrity import ALERTS_FILE
from mdcsql.layout import CATALOG_DIR

__all__ = ["refresh"]

_EVENTS = pa.schema([("seq", pa.int64()), ("recorded_at", pa.timestamp("us")), ("kind", pa.string()),
                     ("origin", pa.string()), ("scope", pa.string()), ("enforcement", pa.string()),
                     ("dimension", pa.string()), ("limit_value", pa.int64()), ("usage", pa.int64()),
                     ("day", pa.string()), ("path", pa.string()), ("record", pa.string())])
_ALERTS = pa.schema([("seq", pa.int64()), ("recorded_at", pa.timestamp("us")), ("kind", pa.string()),
                     ("source", pa.string()), ("asset_class", pa.string()), ("symbol", pa.string()),
                     ("type", pa.string()), ("file", pa.string()), ("record", pa.string())])
_LIMITS = pa.schema([("scope", pa.string()), ("max_bytes", pa.int64()), ("configured", pa.int64()),
                     ("reason", pa.string()), ("as_of", pa.string()), ("applied_at", pa.string())])


def _int(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _event_rows(seq: int, rec: dict) -> list[dict]:
    limit = rec.get("limit", rec.get("max_bytes"))
    return [{"seq": seq, "recorded_at": naive(rec.get("at")), "kind": str(rec.get("kind")), "origin": rec.get("origin"),
             "scope": rec.get("scope"), "enforcement": rec.get("enforcement"),
             "dimension": rec.get("dimension"), "limit_value": _int(limit), "usage": _int(rec.get("usage")),
             "day": rec.get("day"), "path": rec.get("path"), "record": json.dumps(rec, sort_keys=True)}]


def _alert_rows(seq: int, rec: dict) -> list[dict]:
    return [{"seq": seq, "recorded_at": naive(rec.get("at")), "kind": str(rec.get("kind")),
             **{k: rec.get(k) for k in ("source", "asset_class", "symbol", "type", "file")},
             "record": json.dumps(rec, sort_keys=True)}]


def refresh(catalog, *, forget: bool) -> None:
    """Bring the three tables in step with their files (everything again with ``forget``)."""
    journal.mirror(catalog, name=EVENTS_FILE.removesuffix(".jsonl"), schema=_EVENTS, to_rows=_event_rows,
                   clear_sql="queries/quota_events_clear.sql", insert_sql="queries/quota_events_insert.sql",
                   forget=forget)
    journal.mirror(catalog, name=ALERTS_FILE.removesuffix(".jsonl"), schema=_ALERTS, to_rows=_alert_rows,
                   clear_sql="queries/quota_alerts_clear.sql", insert_sql="queries/quota_alerts_insert.sql",
                   forget=forget)
    path = catalog.root / CATALOG_DIR / LIMITS_FILE
    try:
        doc = json.loads(path.read_text()) if path.exists() else {"limits": {}}
        rows = [{"scope": scope, "max_bytes": entry.get("max_bytes"), "configured": _int(entry.get("configured")),
                 "reason": entry.get("reason"), "as_of": entry.get("as_of"), "applied_at": doc.get("applied_at")}
                for scope, entry in sorted(doc.get("limits", {}).items())]
    except (OSError, ValueError, AttributeError, TypeError):
        # a damaged limits file must not stop every catalog sync: the table keeps its last good
        # rows, the collector's reloader has already alerted (policy_reload), `quota status` errors
        return
    catalog._with_table("incoming_quota_limits", pa.Table.from_pylist(rows, schema=_LIMITS),
                        "queries/quota_limits_replace.sql")
