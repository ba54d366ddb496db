"""UTC instants for the perpetual-data modules: parsing ``--as-of`` / ``--from`` text, ISO output.

Inside, an instant is a timezone-aware ``datetime`` in UTC; on disk it is ISO text ending in
``Z``; in DuckDB a naive UTC ``TIMESTAMP``. Data-file times (``first_ts``/``last_ts``) are integer
nanoseconds (invariant 7), catalog rows may give them as text.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from mdcsql.errors import MdcsqlError

__all__ = ["utc_now", "parse_instant", "parse_day", "iso", "from_iso", "naive", "to_ns",
           "duration_seconds", "add_years", "day_start", "day_end"]

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def parse_instant(text: str | datetime | date | None, *, what: str = "--as-of") -> datetime:
    """``None`` → now; ``YYYY-MM-DD`` (midnight UTC) or an ISO timestamp (``Z``/offset or UTC)."""
    if text is None:
        return utc_now()
    if isinstance(text, datetime):
        return text.astimezone(timezone.utc) if text.tzinfo else text.replace(tzinfo=timezone.utc)
    if isinstance(text, date):
        return datetime(text.year, text.month, text.day, tzinfo=timezone.utc)
    raw = str(text).strip()
    try:
        value = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise MdcsqlError(f"{what}: {text!r} is not a date (YYYY-MM-DD) or an ISO timestamp "
                          "(YYYY-MM-DDTHH:MM:SSZ)") from None
    return parse_instant(value)


def parse_day(text: str | date | None, *, what: str) -> date | None:
    """A calendar day (``YYYY-MM-DD``) or None."""
    if text is None or isinstance(text, date):
        return text
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        raise MdcsqlError(f"{what}: {text!r} is not a date YYYY-MM-DD") from None


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return parse_instant(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")


def from_iso(text: str | None) -> datetime | None:
    return None if text is None else parse_instant(text, what="timestamp")


def naive(value: datetime | str | None) -> datetime | None:
    """UTC without tzinfo: what DuckDB's TIMESTAMP columns take."""
    if value is None:
        return None
    return parse_instant(value, what="timestamp").replace(tzinfo=None)


def to_ns(value) -> int | None:
    """Nanoseconds since the epoch from an int, a datetime, or catalog text (ns precision kept)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise MdcsqlError(f"not a time: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        dt = parse_instant(value)
        return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000
    text = str(value).strip().replace("T", " ").rstrip("Z")
    head, _, frac = text.partition(".")
    base = datetime.strptime(head, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    return int(base.timestamp()) * 1_000_000_000 + int((frac + "000000000")[:9] or 0)


def duration_seconds(value, *, what: str) -> float:
    """A config Duration (int seconds or "7d"-like text) in seconds; None → 0."""
    if value is None:
        return 0.0
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    m = _DURATION.match(str(value).strip().lower())
    if not m:
        raise MdcsqlError(f"{what}: {value!r} is not a duration")
    return int(m.group(1)) * _UNIT[m.group(2)]


def add_years(value: datetime, years: int) -> datetime:
    """Same calendar day ``years`` later (29 February → 28 February)."""
    try:
        return value.replace(year=value.year + years)
    except ValueError:
        return value.replace(year=value.year + years, day=28)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def day_end(day: date) -> datetime:
    return day_start(day) + timedelta(days=1)
