"""The design's integrity policy, per event type: what the write and read paths check.

`Storage.Integrity` is the default of every event type; `Storage.Policies.<Type>.Integrity`
overrides it key by key. What each key does here (docs/quotas.md, "Integrity"):

- ValidateOnWrite: always on. Every event is validated into the canonical record before it is
  encoded; that is what makes the stored JSONL canonical, so `false` is accepted and ignored
  (trusted sources already skip it with ``append_many(normalized=True)``).
- ChecksumOnWrite: always on. Every sealed file carries the sha256 of its bytes (and of the
  uncompressed JSONL) in its manifest; `false` is accepted and ignored.
- VerifyOnRead (default true): :func:`verify_on_read` checks a sealed file's bytes against its
  manifest before a migration, compaction or backup reads it.
- MaxSequenceGap (default none): a seq jump larger than this in one stream writes an alert
  record to ``_catalog/alerts.jsonl`` (the events are still stored; the gap is in the manifest).
- StaleDataThreshold (default none): a stream with no event for longer than this is stale
  (:func:`stale_streams`; `mdcsql quota status` shows them, a collector loop may record them).
- EnforceMonotonicity (default false): an event whose ts goes backwards in its stream is refused
  with :class:`OutOfOrderError` and kept in ``_quarantine/`` with a record, never dropped silently.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from mdcsql.errors import InputError, IntegrityError, NotFoundError
from mdcsql.ingest.recovery import quarantine
from mdcsql.ingest.seal import manifest_path, sha256_file, utc_now_iso
from mdcsql.layout import CATALOG_DIR

__all__ = ["IntegrityPolicy", "OutOfOrderError", "policy_for", "policies", "verify_on_read",
           "record_alert", "read_jsonl", "stale_streams", "ALERTS_FILE", "DEFAULT_POLICY"]

ALERTS_FILE = "alerts.jsonl"
_KEYS = ("validate_on_write", "checksum_on_write", "verify_on_read", "max_sequence_gap",
         "stale_data_threshold", "enforce_monotonicity")


class OutOfOrderError(InputError):
    """An event's ts goes backwards in its stream while EnforceMonotonicity is on."""


@dataclass(frozen=True)
class IntegrityPolicy:
    validate_on_write: bool = True          # always enforced (see the module docstring)
    checksum_on_write: bool = True          # always enforced
    verify_on_read: bool = True
    max_sequence_gap: int | None = None
    stale_data_threshold: int | str | None = None     # a config Duration
    enforce_monotonicity: bool = False

    @property
    def on_write_path(self) -> bool:
        """True when the write path has something to check per event for this type."""
        return self.enforce_monotonicity or self.max_sequence_gap is not None

    def stale_seconds(self) -> float | None:
        if self.stale_data_threshold is None:
            return None
        from mdcsql.lifecycle.instants import duration_seconds
        return duration_seconds(self.stale_data_threshold, what="StaleDataThreshold")

    def to_dict(self) -> dict:
        doc = asdict(self)
        doc["enforced"] = {"validate_on_write": True, "checksum_on_write": True}
        return doc


DEFAULT_POLICY = IntegrityPolicy()


def policy_for(settings, etype: str) -> IntegrityPolicy:
    """The integrity policy of one event type: defaults < Storage.Integrity < Policies.<Type>.Integrity."""
    st = settings.storage
    values = asdict(DEFAULT_POLICY)
    per_type = (st.policies or {}).get(etype)
    for section in (st.integrity, per_type.integrity if per_type is not None else None):
        if section is None:
            continue
        for key in _KEYS:
            value = getattr(section, key)
            if value is not None:
                values[key] = value
    return IntegrityPolicy(**values)


def policies(settings) -> dict[str, IntegrityPolicy]:
    """Policy per event type (the six canonical types plus any type named in Policies)."""
    from mdcsql.events import EVENT_TYPES
    names = list(EVENT_TYPES) + sorted(set(settings.storage.policies or {}) - set(EVENT_TYPES))
    return {name: policy_for(settings, name) for name in names}


# ---- alerts ---------------------------------------------------------------------------------

def append_jsonl(path: Path, record: dict) -> dict:
    """Append one record to a JSONL log (fsync'd, safe against other writers); returns it."""
    from mdcsql.lifecycle import journal
    journal.append(path, record)
    return record


def read_jsonl(path: Path) -> list[dict]:
    """Every complete record of a JSONL log (a torn line from a crash mid-append is skipped)."""
    from mdcsql.lifecycle import journal
    return journal.read(path)[0]


def record_alert(root: Path, kind: str, **fields) -> dict:
    """Append an alert to ``_catalog/alerts.jsonl`` (mirrored into the catalog's integrity_alerts)."""
    return append_jsonl(Path(root) / CATALOG_DIR / ALERTS_FILE, {"at": utc_now_iso(), "kind": kind, **fields})


# ---- the write path's per-stream checks (called by mdcsql.lifecycle.quota_usage) ------------

def refuse_out_of_order(root: Path, relpath: str, event: dict, line: bytes, previous_ts: int,
                        quarantined: list) -> None:
    """Keep the refused event in ``_quarantine/`` with a record, then raise OutOfOrderError."""
    stream = f"{event['source']}/{event['symbol']}/{event['type']}"
    record = quarantine(Path(root), f"out-of-order-{os.getpid()}-{len(quarantined) + 1}", line, {
        "reason": "out-of-order: ts goes backwards in its stream (EnforceMonotonicity)",
        "field": "ts", "file": relpath, "stream": stream, "source": event["source"],
        "symbol": event["symbol"], "type": event["type"], "seq": event["seq"], "ts": event["ts"],
        "previous_ts": previous_ts, "events": 1})
    quarantined.append(record)
    raise OutOfOrderError(
        f"out-of-order event refused in stream {stream} (seq {event['seq']}): ts {event['ts']} is "
        f"before the stream's previous ts {previous_ts} (EnforceMonotonicity); kept in "
        f"{record['data_file']}", file=relpath, field="ts")


def gap_alert(root: Path, relpath: str, stream: tuple, first_missing: int, last_missing: int,
              limit: int) -> dict:
    source, asset_class, symbol, etype = stream
    return record_alert(root, "sequence_gap", file=relpath, source=source, asset_class=asset_class,
                        symbol=symbol, type=etype, first_missing=first_missing,
                        last_missing=last_missing, missing=last_missing - first_missing + 1,
                        max_sequence_gap=limit)


# ---- reading ------------------------------------------------------------------------------

def verify_on_read(root, relpath: str, *, settings=None, etype: str | None = None) -> bool:
    """Check a sealed file's size and sha256 against its manifest before it is read as a source.

    Returns True when verified, False when the type's policy says VerifyOnRead = false (pass
    ``settings`` and the file's ``etype`` to apply the policy; without them the check always runs).

    :raises NotFoundError: no such file, or no manifest (not sealed).
    :raises IntegrityError: the bytes differ from the manifest (names both sha256 values).
    """
    if settings is not None and etype is not None and not policy_for(settings, etype).verify_on_read:
        return False
    root = Path(root)
    path = _physical(root, settings, relpath)
    mpath = manifest_path(path)
    if not path.is_file():
        raise NotFoundError(f"{relpath}: no such data file")
    if not mpath.is_file():
        raise NotFoundError(f"{relpath}: no manifest ({mpath.name}); only sealed files can be verified")
    try:
        manifest = json.loads(mpath.read_text())
    except ValueError as exc:
        raise IntegrityError(f"{relpath}: unreadable manifest {mpath.name}: {exc}") from None
    sha, size = sha256_file(path)
    if size != manifest.get("size_bytes") or sha != manifest.get("sha256"):
        raise IntegrityError(f"{relpath}: stored bytes do not match the manifest (sha256 {sha}, "
                             f"{size} bytes; manifest says {manifest.get('sha256')}, "
                             f"{manifest.get('size_bytes')} bytes); not read")
    return True


def _physical(root: Path, settings, relpath: str) -> Path:
    """Where a logical path lives (a tier may have its own directory)."""
    if settings is not None:
        try:
            from mdcsql.lifecycle.tiers import physical
        except ImportError:
            physical = None
        if physical is not None:
            return physical(root, settings, relpath)
    return root / relpath


def stale_streams(catalog, settings, *, as_of_ns: int) -> list[dict]:
    """Streams whose newest event is older than their type's StaleDataThreshold at `as_of_ns`."""
    from mdcsql.lifecycle.instants import naive
    from datetime import datetime, timezone
    from mdcsql.sql import load_sql
    thresholds = {}
    out = []
    as_of = datetime.fromtimestamp(as_of_ns / 1e9, tz=timezone.utc)
    rows = catalog.execute(load_sql("queries/integrity_last_seen.sql"), {"as_of": naive(as_of)}).dicts()
    for row in rows:
        etype = row["type"]
        if etype not in thresholds:
            thresholds[etype] = policy_for(settings, etype).stale_seconds()
        limit = thresholds[etype]
        if limit is None or row["last_ns"] is None:
            continue
        idle = (as_of_ns - row["last_ns"]) / 1e9
        if idle > limit:
            out.append({**row, "idle_seconds": round(idle, 3), "stale_data_threshold_seconds": limit})
    return out
