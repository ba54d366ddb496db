"""Legal holds: a held path or symbol/date range cannot be deleted by anything (design
"Perpetual Data Management", ``_archive/legal_holds/<case>/hold_notice.json``).

The notice file is the hold (invariant 1). Releasing rewrites it atomically with who released it,
when and why; a notice is never deleted, so the history of every hold stays in the tree. The
``legal_holds`` table mirrors the notices (:func:`refresh`). Whether a file is held is decided by
:meth:`Hold.covers` on the file's metadata (path, symbol(s), type, source, time range); the guard
(:mod:`mdcsql.lifecycle.guard`) asks it before every removal.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path, PurePosixPath

import pyarrow as pa

from mdcsql.durable import atomic_write_json, read_json
from mdcsql.errors import MdcsqlError, NotFoundError
from mdcsql.layout import ARCHIVE_ROOT, EVENT_TYPES
from mdcsql.lifecycle.instants import day_end, day_start, from_iso, iso, naive, parse_day, parse_instant, to_ns
from mdcsql.sql import load_sql

__all__ = ["HOLDS_DIR", "NOTICE_FILE", "Hold", "HoldError", "add_hold", "release_hold", "list_holds",
           "active_holds", "refresh"]

HOLDS_DIR = f"{ARCHIVE_ROOT}/legal_holds"
NOTICE_FILE = "hold_notice.json"
NOTICE_VERSION = 1
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_GLOB = re.compile(r"[*?\[]")


class HoldError(MdcsqlError):
    """A hold cannot be added or released as asked."""


@dataclass(frozen=True)
class Hold:
    hold_id: str
    reason: str
    paths: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    type: str | None = None
    source: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    created_at: datetime | None = None
    created_by: str | None = None
    released_at: datetime | None = None
    released_by: str | None = None
    release_reason: str | None = None
    notice_path: str = field(default="", compare=False)

    @property
    def active(self) -> bool:
        return self.released_at is None

    # ---- matching -------------------------------------------------------------------------------
    def covers(self, meta: dict) -> bool:
        """True if the file described by ``meta`` falls under this hold (every criterion given must
        match; within a criterion any value). Unknown metadata counts as matching: a hold errs on
        the side of keeping data."""
        path = meta.get("path") or ""
        if self.paths and not any(_path_matches(path, p) for p in self.paths):
            return False
        if self.symbols:
            have = meta.get("symbols") or ([meta["symbol"]] if meta.get("symbol") else None)
            if have is not None and not set(have) & set(self.symbols):
                return False
        for key in ("type", "source"):
            want = getattr(self, key)
            if want is not None and meta.get(key) is not None and meta[key] != want:
                return False
        if self.date_from or self.date_to:
            first, last = to_ns(meta.get("first_ts")), to_ns(meta.get("last_ts"))
            if self.date_to and first is not None and first >= to_ns(day_end(self.date_to)):
                return False
            if self.date_from and last is not None and last < to_ns(day_start(self.date_from)):
                return False
        return True

    def describe(self) -> str:
        parts = []
        if self.paths:
            parts.append("paths " + ", ".join(self.paths))
        if self.symbols:
            parts.append("symbols " + ", ".join(self.symbols))
        if self.type:
            parts.append(f"type {self.type}")
        if self.source:
            parts.append(f"source {self.source}")
        if self.date_from or self.date_to:
            parts.append(f"dates {self.date_from or '…'}..{self.date_to or '…'}")
        return "; ".join(parts)

    # ---- the notice -----------------------------------------------------------------------------
    def to_notice(self) -> dict:
        return {"notice_version": NOTICE_VERSION, "hold_id": self.hold_id, "reason": self.reason,
                "scope": {"paths": list(self.paths), "symbols": list(self.symbols), "type": self.type,
                          "source": self.source,
                          "from": self.date_from.isoformat() if self.date_from else None,
                          "to": self.date_to.isoformat() if self.date_to else None},
                "created_at": iso(self.created_at), "created_by": self.created_by,
                "released_at": iso(self.released_at), "released_by": self.released_by,
                "release_reason": self.release_reason}

    @classmethod
    def from_notice(cls, doc: dict, notice_path: str) -> "Hold":
        try:
            scope = doc["scope"]
            return cls(hold_id=doc["hold_id"], reason=doc["reason"], paths=tuple(scope.get("paths") or ()),
                       symbols=tuple(scope.get("symbols") or ()), type=scope.get("type"),
                       source=scope.get("source"),
                       date_from=parse_day(scope.get("from"), what=f"{notice_path}: scope.from"),
                       date_to=parse_day(scope.get("to"), what=f"{notice_path}: scope.to"),
                       created_at=from_iso(doc.get("created_at")), created_by=doc.get("created_by"),
                       released_at=from_iso(doc.get("released_at")), released_by=doc.get("released_by"),
                       release_reason=doc.get("release_reason"), notice_path=notice_path)
        except (KeyError, TypeError, AttributeError) as exc:
            raise MdcsqlError(f"{notice_path}: not a hold notice (missing or malformed {exc})") from None

    def to_row(self) -> dict:
        return {"hold_id": self.hold_id, "reason": self.reason, "paths": list(self.paths),
                "symbols": list(self.symbols), "type": self.type, "source": self.source,
                "date_from": self.date_from, "date_to": self.date_to,
                "created_at": naive(self.created_at), "created_by": self.created_by,
                "released_at": naive(self.released_at), "released_by": self.released_by,
                "release_reason": self.release_reason, "active": self.active,
                "notice_path": self.notice_path}


def _path_matches(path: str, pattern: str) -> bool:
    if _GLOB.search(pattern):
        return fnmatch.fnmatchcase(path, pattern)
    prefix = pattern.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


def _clean_path(p: str) -> str:
    text = str(p).strip().replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    parts = PurePosixPath(text).parts
    if not text or text.startswith("/") or ".." in parts:
        raise HoldError(f"--path {p!r}: give a path prefix or glob relative to the archive root "
                        "(no leading '/', no '..')")
    return text


def _notice(root: Path, hold_id: str) -> Path:
    return Path(root) / HOLDS_DIR / hold_id / NOTICE_FILE


def add_hold(root, hold_id: str, *, reason: str, paths=(), symbols=(), type: str | None = None,
             source: str | None = None, date_from=None, date_to=None, by: str | None = None,
             now=None) -> Hold:
    """Place a legal hold; it protects matching files from every removal until released.

    :raises HoldError: a bad id, an empty scope, a bad date range, or the id is taken (released
        holds keep their id: their notice is the record).
    """
    if not isinstance(hold_id, str) or not _ID.match(hold_id):
        raise HoldError(f"hold id {hold_id!r}: use 1-100 letters, digits, '.', '_' or '-', "
                        "starting with a letter or digit (e.g. case_12345)")
    if not reason or not reason.strip():
        raise HoldError("a legal hold needs a reason (--reason)")
    if type is not None and type not in EVENT_TYPES:
        raise HoldError(f"--type {type!r} is not an event type; expected one of {', '.join(EVENT_TYPES)}")
    d_from = parse_day(date_from, what="--from")
    d_to = parse_day(date_to, what="--to")
    if d_from and d_to and d_from > d_to:
        raise HoldError(f"--from {d_from} is after --to {d_to}")
    hold = Hold(hold_id=hold_id, reason=reason.strip(), paths=tuple(_clean_path(p) for p in paths),
                symbols=tuple(dict.fromkeys(s.strip() for s in symbols if s.strip())), type=type,
                source=source, date_from=d_from, date_to=d_to, created_at=parse_instant(now),
                created_by=by, notice_path=f"{HOLDS_DIR}/{hold_id}/{NOTICE_FILE}")
    if not (hold.paths or hold.symbols or hold.type or hold.source or d_from or d_to):
        raise HoldError("a legal hold needs a scope: --path, --symbol, --type, --source, --from or --to")
    notice = _notice(root, hold_id)
    notice.parent.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(notice.parent)                 # claims the id atomically
    except FileExistsError:
        if notice.exists():
            state = "released" if read_json(notice).get("released_at") else "active"
            raise HoldError(f"hold {hold_id} exists already ({state}, {hold.notice_path}); "
                            "choose another id") from None
    atomic_write_json(notice, hold.to_notice())
    return hold


def release_hold(root, hold_id: str, *, by: str, reason: str, now=None) -> Hold:
    """Release a hold: its notice is rewritten with released_at/by/reason (never deleted)."""
    if not by or not by.strip():
        raise HoldError("releasing a hold needs --by (who releases it)")
    if not reason or not reason.strip():
        raise HoldError("releasing a hold needs --reason")
    hold = _load(root, hold_id)
    if not hold.active:
        raise HoldError(f"hold {hold_id} was released already ({iso(hold.released_at)} by "
                        f"{hold.released_by})")
    released = replace(hold, released_at=parse_instant(now), released_by=by.strip(),
                       release_reason=reason.strip())
    atomic_write_json(_notice(root, hold_id), released.to_notice())
    return released


def _load(root, hold_id: str) -> Hold:
    notice = _notice(root, hold_id) if _ID.match(hold_id or "") else None
    if notice is None or not notice.exists():
        raise NotFoundError(f"no legal hold {hold_id!r} in {Path(root) / HOLDS_DIR}")
    return Hold.from_notice(read_json(notice), f"{HOLDS_DIR}/{hold_id}/{NOTICE_FILE}")


def list_holds(root, *, include_released: bool = False) -> list[Hold]:
    """Every hold notice of the archive (active ones only unless ``include_released``), by id."""
    base = Path(root) / HOLDS_DIR
    out = []
    if base.is_dir():
        for entry in sorted(base.iterdir()):
            notice = entry / NOTICE_FILE
            if notice.is_file():
                try:
                    doc = read_json(notice)
                except (OSError, ValueError) as exc:
                    raise MdcsqlError(f"{notice}: unreadable hold notice ({exc})") from None
                hold = Hold.from_notice(doc, f"{HOLDS_DIR}/{entry.name}/{NOTICE_FILE}")
                if include_released or hold.active:
                    out.append(hold)
    return out


def active_holds(root) -> list[Hold]:
    return list_holds(root)


_SCHEMA = pa.schema([("hold_id", pa.string()), ("reason", pa.string()), ("paths", pa.list_(pa.string())),
                     ("symbols", pa.list_(pa.string())), ("type", pa.string()), ("source", pa.string()),
                     ("date_from", pa.date32()), ("date_to", pa.date32()),
                     ("created_at", pa.timestamp("us")), ("created_by", pa.string()),
                     ("released_at", pa.timestamp("us")), ("released_by", pa.string()),
                     ("release_reason", pa.string()), ("active", pa.bool_()), ("notice_path", pa.string())])


def refresh(catalog, *, forget: bool) -> None:
    """Mirror every hold notice into ``legal_holds`` (notices are few: always all of them)."""
    rows = [h.to_row() for h in list_holds(catalog.root, include_released=True)]
    catalog.execute(load_sql("queries/hold_clear.sql"))
    if rows:
        catalog._with_table("incoming_holds", pa.Table.from_pylist(rows, schema=_SCHEMA),
                            "queries/hold_insert.sql")
