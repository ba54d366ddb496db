"""The design's ``ExportRequest``: what to export, validated before anything is read or written.

Times are UTC. ``start`` is inclusive, ``end`` exclusive; a bare date given as ``end`` means the
whole of that day (``--to 2024-01-03`` includes 2024-01-03), as in the metadata's inclusive
``date_range``. Names are checked against what the archive holds so that a typo fails with the
list of allowed values instead of an empty export.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from mdcsql.errors import MdcsqlError
from mdcsql.events import EVENT_TYPES

__all__ = ["ExportRequest", "parse_time", "parse_types", "split_list", "COMPRESSIONS"]

#: view of each event type (the catalog's typed views)
TYPE_VIEWS: dict[str, str] = {"Trade": "trades", "BboQuote": "bbo_quotes", "L2Snapshot": "l2_snapshots",
                              "OrderFlow": "order_flow", "HistoricalBar": "historical_bars",
                              "Heartbeat": "heartbeats"}
COMPRESSIONS = ("default", "none", "snappy", "gzip", "zstd", "lz4", "brotli")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MIN_NS, MAX_NS = 0, 2**63 - 1


def split_list(value) -> list[str]:
    """``"A,B"`` / ``["A", "B,C"]`` → ``["A", "B", "C"]`` (blank items dropped, order kept, unique)."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def parse_time(value, *, what: str, end: bool = False) -> int | None:
    """UTC nanoseconds of a date (``YYYY-MM-DD``), an ISO timestamp (``Z``/offset; naive = UTC,
    up to 9 fraction digits) or a datetime. A date as ``end`` is the next midnight (whole day)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000
    if isinstance(value, date):
        value = value.isoformat()
    text = str(value).strip()
    if _DATE_RE.match(text):
        try:
            d = date.fromisoformat(text)
        except ValueError:
            raise MdcsqlError(f"{what}: {value!r} is not a valid date") from None
        if end:
            d += timedelta(days=1)
        return (d - date(1970, 1, 1)).days * 86_400 * 1_000_000_000
    from mdcsql.events import parse_ts
    try:
        return parse_ts(text, field=what)
    except MdcsqlError:
        raise MdcsqlError(f"{what}: {value!r} is not a date (YYYY-MM-DD) or an ISO-8601 UTC timestamp "
                          "(e.g. 2024-01-02T14:30:00.123456789Z)") from None


def parse_types(values) -> list[str]:
    """Event type names (``Trade``), case-insensitive, or view names (``trades``)."""
    lookup = {t.lower(): t for t in EVENT_TYPES} | {v: t for t, v in TYPE_VIEWS.items()}
    out = []
    for v in split_list(values):
        t = lookup.get(v.lower())
        if t is None:
            raise MdcsqlError(f"unknown event type {v!r}; allowed: {', '.join(EVENT_TYPES)}")
        if t not in out:
            out.append(t)
    return out


@dataclass
class ExportRequest:
    """One export: the design's ``ExportRequest(Symbols, Types, From, To, Format, Options,
    DestinationPath)``; options flattened into fields.

    ``symbols`` / ``sources`` empty = all the archive holds; ``types`` empty = all types.
    ``start_ns`` / ``end_ns`` None = unbounded. ``transforms`` are names (with parameters) of
    ``mdcsql.export.transforms`` steps, applied in order when that module exists.
    """

    format: str
    destination: str
    symbols: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    start_ns: int | None = None
    end_ns: int | None = None
    sources: list[str] = field(default_factory=list)
    dedupe: bool = False
    compression: str = "default"
    profile: str | None = None
    name: str | None = None
    incremental: str | None = None
    transforms: list = field(default_factory=list)
    options: dict = field(default_factory=dict)

    @classmethod
    def build(cls, *, format: str, destination, symbols=None, types=None, start=None, end=None,
              sources=None, dedupe: bool = False, compression: str | None = None, profile: str | None = None,
              name: str | None = None, incremental: str | None = None, transforms=None,
              options: dict | None = None) -> "ExportRequest":
        """From user-level values (comma lists, dates or ISO text); validates the archive-independent
        parts. :meth:`check_against` validates names against an archive."""
        from mdcsql.export.formats import resolve_format
        fmt = resolve_format(format)
        if destination is None or str(destination).strip() == "":
            raise MdcsqlError("an export needs a destination directory (--dest DIR)")
        start_ns = parse_time(start, what="--from")
        end_ns = parse_time(end, what="--to", end=True)
        if start_ns is not None and end_ns is not None and end_ns <= start_ns:
            raise MdcsqlError(f"--to ({end}) must be after --from ({start})")
        comp = (compression or "default").strip().lower()
        if comp not in COMPRESSIONS:
            raise MdcsqlError(f"unknown compression {compression!r}; allowed: {', '.join(COMPRESSIONS)}")
        for label, value in (("--name", name), ("--incremental", incremental)):
            if value is not None and not _NAME_RE.match(value):
                raise MdcsqlError(f"{label} {value!r}: use letters, digits, '.', '_' or '-' "
                                  "(at most 100, starting with a letter or digit)")
        return cls(format=fmt, destination=str(Path(destination)), symbols=split_list(symbols),
                   types=parse_types(types) if types else [], start_ns=start_ns, end_ns=end_ns,
                   sources=split_list(sources), dedupe=bool(dedupe), compression=comp, profile=profile,
                   name=name, incremental=incremental, transforms=list(transforms or []),
                   options=dict(options or {}))

    def check_against(self, catalog) -> None:
        """Unknown symbols or sources (not in the archive's files nor its registries) fail, naming
        the allowed ones; empty ``types`` becomes the types the archive holds."""
        from mdcsql.export.selection import archive_names
        names = archive_names(catalog)
        for label, wanted, known in (("symbol", self.symbols, names["symbols"]),
                                     ("source", self.sources, names["sources"])):
            bad = [w for w in wanted if w not in known]
            if bad:
                shown = ", ".join(sorted(known)[:50]) or "(none: the archive is empty)"
                more = f" … ({len(known)} in all)" if len(known) > 50 else ""
                raise MdcsqlError(f"unknown {label}{'s' if len(bad) > 1 else ''} "
                                  f"{', '.join(map(repr, bad))}; the archive has: {shown}{more}")
        if not self.types:
            self.types = [t for t in EVENT_TYPES if t in names["types"]] or ["Trade"]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict) -> "ExportRequest":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in doc.items() if k in known})
