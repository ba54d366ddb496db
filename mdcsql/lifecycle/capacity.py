"""Capacity forecasting (design: "Capacity Forecasting"): usage, growth, projection, full dates.

Everything comes from the catalog's ``files`` table (one SQL pass, ``queries/capacity_usage.sql``),
never from walking the tree; only the filesystem limit asks the operating system for free space.

How growth is estimated (documented in docs/capacity.md):

- Each file has a *clock*: its arrival (``created_at``, else ``sealed_at``, else the data file's
  mtime for an open hot file) — basis ``created``, the default — or the start of its data period
  (basis ``period``, for archives filled by backfills or rewritten by migrations).
- Only files whose clock is on/before ``as_of`` count, so a run with the same ``as_of`` over the
  same files gives the same figures.
- Growth per day is the least-squares slope of the *cumulative* usage sampled at every UTC
  midnight of the window and at ``as_of`` itself. The window is the last ``window_days`` days
  (default 28: whole weeks, so weekends weigh the same in every run), shortened to start at the
  midnight before the first file of the group (a young archive or a new source is not diluted
  by days it did not exist). The slope of a cumulative series is never negative and, unlike the
  last day's growth, is not thrown by one quiet or busy day.
- It is the gross inflow of the files still present: retention deletes and tier recompression are
  not subtracted, so full dates err early (the safe side).

Limits in effect: ``Storage.Quotas`` (Global, PerSource, PerAssetClass, PerSymbol with
``default``, PerEventType: MaxBytes, MaxFiles, MaxEventsPerDay), ``Storage.MaxTotalMegabytes``,
each tier's ``MaxSizeGb`` (``Storage.Tiering.Tiers``; glacier is the archive tier) and the free
space of every filesystem the tiers live on (``shutil.disk_usage``; a fact of *now*, so it is left
out of ``as_of`` runs unless asked for). Megabytes and gigabytes are binary (2^20, 2^30 bytes).
"""

from __future__ import annotations

import math
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from mdcsql.errors import MdcsqlError
from mdcsql.sql import load_sql

__all__ = ["StorageForecast", "Limit", "Alert", "forecast", "capacity_alerts", "parse_as_of",
           "parse_horizon", "DEFAULT_HORIZON_DAYS", "DEFAULT_THRESHOLD_PCT", "DEFAULT_WINDOW_DAYS",
           "BASES"]

DEFAULT_HORIZON_DAYS = 90.0
DEFAULT_THRESHOLD_PCT = 80.0
DEFAULT_WINDOW_DAYS = 28
BASES = ("created", "period")
DIMENSIONS = ("tier", "source", "asset_class", "symbol", "type")
MIB, GIB = 2 ** 20, 2 ** 30
_DAY = timedelta(days=1)
_LAST_MICROSECOND = time(23, 59, 59, 999_999)
# tier name -> its directory under the archive root (a mounted tier's link points to its Path)
_TIER_DIRS = {"hot": "", "warm": "warm", "cold": "cold", "archive": "_archive"}
# (setting, Quotas attribute, usage dimension)
_QUOTA_SCOPES = (("Global", "global_", None), ("PerSource", "per_source", "source"),
                 ("PerAssetClass", "per_asset_class", "asset_class"),
                 ("PerSymbol", "per_symbol", "symbol"), ("PerEventType", "per_event_type", "type"))
_QUOTA_METRICS = (("max_bytes", "MaxBytes", "bytes"), ("max_files", "MaxFiles", "files"),
                  ("max_events_per_day", "MaxEventsPerDay", "events_per_day"))


class CapacityError(MdcsqlError):
    """A capacity forecast was asked with a bad argument (as-of, horizon, threshold, window)."""


# --------------------------------------------------------------------------- arguments

def parse_as_of(value: str | date | datetime | None) -> datetime:
    """``--as-of`` → a naive UTC instant; files whose clock is on/before it count.

    ``None`` → now. ``2024-01-15`` → the end of that UTC day (its last microsecond: a file
    created any time on the 15th counts). An ISO timestamp with ``Z`` or an offset is converted to
    UTC; without one it is taken as UTC.

    :raises CapacityError: neither a date nor an ISO timestamp.
    """
    if value is None:
        return datetime.now(timezone.utc).replace(tzinfo=None)
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        return datetime.combine(value, _LAST_MICROSECOND)
    else:
        text = str(value).strip()
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                return datetime.combine(date.fromisoformat(text), _LAST_MICROSECOND)
            dt = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError:
            raise CapacityError(f"as-of {value!r} is not a date (2024-01-15) or an ISO timestamp "
                                f"(2024-01-15T18:00:00Z)") from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt


_HORIZON = re.compile(r"^(\d+(?:\.\d+)?)\s*([hdwy]?)$")
_HORIZON_DAYS = {"h": 1 / 24, "d": 1.0, "": 1.0, "w": 7.0, "y": 365.0}


def parse_horizon(value: str | int | float) -> float:
    """``--horizon`` → days: ``90d``, ``12w``, ``1y`` (365 days), ``48h`` or a bare number of days.

    :raises CapacityError: any other text, or a horizon of zero.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        days = float(value)
    else:
        m = _HORIZON.match(str(value).strip().lower())
        if not m:
            raise CapacityError(f"horizon {value!r} is not a duration like 90d, 12w, 1y or 48h")
        days = float(m.group(1)) * _HORIZON_DAYS[m.group(2)]
    if not (days > 0 and math.isfinite(days)):
        raise CapacityError(f"horizon must be more than zero days, got {value!r}")
    return days


def _check_number(value, what: str, *, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= low or (high is not None and value > high):
        bound = f"more than {low:g}" + (f" and at most {high:g}" if high is not None else "")
        raise CapacityError(f"{what} must be a number {bound}, got {value!r}")
    return float(value)


# --------------------------------------------------------------------------- results

@dataclass
class Limit:
    """One limit in effect and how usage stands against it (a row of the forecast's ``limits``).

    ``metric``: bytes | files | events_per_day. For events_per_day, ``current`` and ``projected``
    are the fitted events per day (a rate: no full date). ``days_left`` 0 means already at or over
    the limit; None means it is never reached at the current growth.
    """

    limit: str                 # the setting, e.g. Storage.Quotas.PerSource.sim.MaxBytes, or "filesystem"
    scope: str                 # total | source | asset_class | symbol | type | tier | filesystem
    key: str | None            # the source, symbol, tier, … (mount directory for a filesystem)
    metric: str
    limit_value: float
    current: float
    current_pct: float
    growth_per_day: float
    projected: float
    projected_pct: float
    days_left: float | None
    full_date: str | None
    enforcement: str | None = None


@dataclass
class Alert:
    """A limit whose current or projected usage reaches the threshold (``GetCapacityAlerts``).

    ``level``: ``exceeded`` (current ≥ 100 %), ``current`` (current ≥ threshold), ``projected``
    (usage at the horizon ≥ threshold).
    """

    level: str
    limit: str
    scope: str
    key: str | None
    metric: str
    current_pct: float
    projected_pct: float
    days_left: float | None
    full_date: str | None
    message: str


@dataclass
class StorageForecast:
    """The design's ``StorageForecast`` record plus the figures it is made of.

    The first six fields are the design's (snake_case); ``breakdown_by_source`` is current bytes
    per source. ``estimated_full_date`` is the earliest full date of any byte or file limit.
    """

    forecast_date: str
    current_usage_bytes: int
    projected_usage_bytes: int
    growth_rate_per_day: float
    estimated_full_date: str | None
    breakdown_by_source: dict[str, int]
    horizon_days: float
    threshold_pct: float
    basis: str
    window_days: int
    history_days: float
    current_files: int
    current_events: int
    uncounted_files: int
    growth_files_per_day: float
    growth_events_per_day: float
    first_full_limit: str | None
    usage: dict[str, list[dict]] = field(default_factory=dict)
    limits: list[Limit] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def capacity_alerts(self, threshold_pct: float) -> list[Alert]:
        """The design's ``GetCapacityAlerts(thresholdPct)`` over this forecast's limits."""
        return capacity_alerts(self, threshold_pct)

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- growth

@dataclass
class _Group:
    files: int = 0
    bytes: int = 0
    events: int = 0
    uncounted_files: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    daily: dict = field(default_factory=dict)     # day (datetime midnight) -> (files, bytes, events)
    growth: tuple = (0.0, 0.0, 0.0)               # files, bytes, events per day
    span_days: float = 0.0


def _midnight(dt: datetime) -> datetime:
    return datetime.combine(dt.date(), time())


def _slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 with fewer than two distinct xs)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx <= 0:
        return 0.0
    return max(0.0, sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx)


def _fit(g: _Group, as_of: datetime, since: datetime) -> None:
    """Growth per day of files, bytes and events: slope of cumulative usage at each midnight of
    the group's window and at ``as_of``."""
    if g.first_at is None:
        return
    start = max(since, _midnight(g.first_at))
    totals = (g.files, g.bytes, g.events)
    in_window = [sum(v[i] for v in g.daily.values()) for i in range(3)]
    level = [t - w for t, w in zip(totals, in_window)]           # usage before the window
    xs, ys = [], [[], [], []]
    day = start
    while day < as_of:
        xs.append((day - start) / _DAY)
        for i in range(3):
            ys[i].append(level[i])
        added = g.daily.get(day)
        if added:
            level = [lv + a for lv, a in zip(level, added)]
        day += _DAY
    xs.append((as_of - start) / _DAY)
    for i in range(3):
        ys[i].append(totals[i])
    # rounded: a date's as-of is its last microsecond, which should not show as 56620.00000035
    g.growth = tuple(round(_slope(xs, y), 6) for y in ys)
    g.span_days = round((as_of - start) / _DAY, 6)


def _groups(catalog, as_of: datetime, since: datetime, basis: str) -> dict[tuple[str, str], _Group]:
    rows = catalog.execute(load_sql("queries/capacity_usage.sql"),
                           {"as_of": as_of, "since": since, "basis": basis}).dicts()
    groups: dict[tuple[str, str], _Group] = {}
    for r in rows:
        g = groups.setdefault((r["dimension"], r["key"]), _Group())
        if not r["daily"]:
            g.files, g.bytes, g.events = int(r["files"]), int(r["bytes"]), int(r["events"])
            g.uncounted_files, g.first_at, g.last_at = int(r["uncounted_files"]), r["first_at"], r["last_at"]
        elif r["day"] is not None:
            g.daily[r["day"]] = (int(r["files"]), int(r["bytes"]), int(r["events"]))
    groups.setdefault(("total", ""), _Group())
    for g in groups.values():
        _fit(g, as_of, since)
    return groups


# --------------------------------------------------------------------------- limits

def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat(timespec="microseconds") + "Z"


def _limit(name: str, scope: str, key: str | None, metric: str, limit_value: float, current: float,
           growth: float, horizon: float, as_of: datetime, enforcement: str | None = None) -> Limit:
    if metric == "events_per_day":          # a rate: compared as is, no full date
        projected, days_left = growth, None
        current = growth
    else:
        projected = current + growth * horizon
        if current >= limit_value:
            days_left = 0.0
        elif growth > 0:
            days_left = (limit_value - current) / growth
        else:
            days_left = None
    full = None
    if days_left is not None:
        try:
            full = _iso(as_of + timedelta(days=days_left))
        except OverflowError:          # beyond year 9999: never, for any practical purpose
            days_left = None
    if metric == "bytes":
        current, projected = int(current), int(round(projected))
    return Limit(name, scope, key, metric, limit_value, current, _pct(current, limit_value),
                 growth, projected, _pct(projected, limit_value), days_left, full, enforcement)


def _pct(value: float, limit: float) -> float:
    return 100.0 * value / limit if limit > 0 else math.inf


def _quota_limits(quotas, groups, horizon, as_of) -> list[Limit]:
    out: list[Limit] = []
    for section, attr, dim in _QUOTA_SCOPES:
        configured = getattr(quotas, attr, None)
        if configured is None:
            continue
        if dim is None:
            targets = [(None, "Global", configured, groups[("total", "")])]
        else:
            targets = _keyed_targets(section, configured, dim, groups)
        for key, label, quota, g in targets:
            for attr_name, setting, metric in _QUOTA_METRICS:
                value = getattr(quota, attr_name, None)
                if value is None:
                    continue
                current = {"bytes": g.bytes, "files": g.files, "events_per_day": g.events}[metric]
                growth = {"bytes": g.growth[1], "files": g.growth[0], "events_per_day": g.growth[2]}[metric]
                out.append(_limit(f"Storage.Quotas.{label}.{setting}", dim or "total", key, metric,
                                  value, current, growth, horizon, as_of, quota.enforcement))
    return out


def _keyed_targets(section: str, configured: dict, dim: str, groups) -> list:
    """(key, setting label, quota, usage group) for each configured key of a per-X quota; the
    PerSymbol ``default`` entry applies to every symbol with usage and no entry of its own."""
    present = {k for (d, k) in groups if d == dim}
    targets = []
    for name, quota in sorted(configured.items()):
        if dim == "symbol" and name == "default":
            continue
        targets.append((name, f"{section}.{name}", quota, groups.get((dim, name), _Group())))
    default = configured.get("default") if dim == "symbol" else None
    if default is not None:
        for sym in sorted(present - set(configured)):
            targets.append((sym, f"{section}.default", default, groups[(dim, sym)]))
    return targets


def _tier_dirs(root: Path, settings) -> dict[str, tuple[Path, float | None, str]]:
    """tier -> (its directory, MaxSizeGb or None, setting name)."""
    out = {name: (root / d if d else root, None, "") for name, d in _TIER_DIRS.items()}
    tiering = getattr(settings.storage, "tiering", None)
    for i, entry in enumerate((tiering.tiers or ()) if tiering is not None else ()):
        if isinstance(entry, str):
            continue
        name = "archive" if entry.name == "glacier" else entry.name
        directory = out[name][0]
        if entry.path and "://" not in entry.path:
            p = Path(entry.path)
            directory = p if p.is_absolute() else root / p
        out[name] = (directory, entry.max_size_gb, f"Storage.Tiering.Tiers[{i}].MaxSizeGb")
    return out


def _existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _mount_point(path: Path) -> Path:
    dev = os.stat(path).st_dev
    while path.parent != path and os.stat(path.parent).st_dev == dev:
        path = path.parent
    return path


def _filesystem_limits(root: Path, tiers: dict, groups, horizon, as_of) -> list[Limit]:
    """One row per filesystem the tiers live on: used/total as ``df`` shows it, reached by the
    growth of the tiers stored there."""
    by_dev: dict[int, list] = {}
    for name, (directory, _, _) in tiers.items():
        where = _mount_point(_existing(directory).resolve())
        by_dev.setdefault(os.stat(where).st_dev, [where, []])[1].append(name)
    out = []
    for where, names in by_dev.values():
        du = shutil.disk_usage(where)
        growth = sum(groups.get(("tier", n), _Group()).growth[1] for n in names)
        row = _limit("filesystem", "filesystem", str(where), "bytes", du.used + du.free, du.used,
                     growth, horizon, as_of)
        out.append(row)
    return out


def _limits(root: Path, settings, groups, horizon: float, as_of: datetime, include_disk: bool) -> list[Limit]:
    st = settings.storage
    total = groups[("total", "")]
    out: list[Limit] = []
    if st.quotas is not None:
        out += _quota_limits(st.quotas, groups, horizon, as_of)
    if st.max_total_megabytes is not None:
        out.append(_limit("Storage.MaxTotalMegabytes", "total", None, "bytes",
                          st.max_total_megabytes * MIB, total.bytes, total.growth[1], horizon, as_of))
    tiers = _tier_dirs(root, settings)
    for name, (_, max_gb, setting) in tiers.items():
        if max_gb is not None:
            g = groups.get(("tier", name), _Group())
            out.append(_limit(setting, "tier", name, "bytes", max_gb * GIB, g.bytes, g.growth[1],
                              horizon, as_of))
    if include_disk:
        out += _filesystem_limits(root, tiers, groups, horizon, as_of)
    return out


def capacity_alerts(fc: StorageForecast, threshold_pct: float) -> list[Alert]:
    """Every limit whose current or projected (at the forecast's horizon) usage reaches
    ``threshold_pct`` percent — the design's ``GetCapacityAlerts``. Most urgent first."""
    threshold = _check_number(threshold_pct, "threshold-pct", low=0, high=1000)
    alerts = []
    for lim in fc.limits:
        if lim.current_pct >= 100:
            level = "exceeded"
        elif lim.current_pct >= threshold:
            level = "current"
        elif lim.projected_pct >= threshold:
            level = "projected"
        else:
            continue
        alerts.append(Alert(level, lim.limit, lim.scope, lim.key, lim.metric, lim.current_pct,
                            lim.projected_pct, lim.days_left, lim.full_date,
                            _alert_message(level, lim, fc.horizon_days)))
    rank = {"exceeded": 0, "current": 1, "projected": 2}
    alerts.sort(key=lambda a: (rank[a.level], math.inf if a.days_left is None else a.days_left, a.limit,
                               a.key or ""))
    return alerts


def _amount(value: float, metric: str) -> str:
    if metric == "bytes":
        return human_bytes(value)
    if metric == "files":
        return f"{value:,.0f} files"
    return f"{value:,.0f} events/day"


def human_bytes(n: float) -> str:
    """1536 → '1.5 KiB' (binary units, as the limits are)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _alert_message(level: str, lim: Limit, horizon: float) -> str:
    what = lim.limit + (f" [{lim.key}]" if lim.key is not None else "")
    used = f"{_amount(lim.current, lim.metric)} of {_amount(lim.limit_value, lim.metric)}"
    if level == "exceeded":
        return f"{what}: over the limit, {lim.current_pct:.1f}% ({used})"
    when = f"; full in {lim.days_left:.1f} days ({lim.full_date[:10]})" if lim.days_left else ""
    if level == "current":
        return f"{what}: {lim.current_pct:.1f}% used ({used}){when}"
    return f"{what}: {lim.current_pct:.1f}% used now, {lim.projected_pct:.1f}% in {horizon:g} days{when}"


# --------------------------------------------------------------------------- the forecast

def _usage_rows(groups, dim: str) -> list[dict]:
    rows = []
    for (d, key), g in sorted(groups.items(), key=lambda kv: (-kv[1].bytes, kv[0][1])):
        if d != dim:
            continue
        rows.append({dim: key, "files": g.files, "bytes": g.bytes, "events": g.events,
                     "growth_bytes_per_day": g.growth[1], "growth_files_per_day": g.growth[0],
                     "first_at": _iso(g.first_at), "last_at": _iso(g.last_at)})
    return rows


def forecast(root_or_catalog, *, horizon_days: float | str = DEFAULT_HORIZON_DAYS,
             as_of: str | date | datetime | None = None, threshold_pct: float = DEFAULT_THRESHOLD_PCT,
             window_days: int = DEFAULT_WINDOW_DAYS, basis: str = "created",
             include_disk: bool | None = None, sync: bool = True) -> StorageForecast:
    """Forecast the archive's storage: usage now, growth per day, usage at the horizon, full dates.

    :param root_or_catalog: an archive root (its catalog is synced first when no collector is
        writing and ``sync``, then opened read-only) or an open :class:`mdcsql.catalog.Catalog`.
    :param horizon_days: days ahead (a number or text such as ``90d``).
    :param as_of: count only files whose clock is on/before this instant (default now).
    :param threshold_pct: alert when current or projected usage reaches this share of a limit.
    :param window_days: days of history the growth fit looks at.
    :param basis: ``created`` (arrival time) or ``period`` (data period start).
    :param include_disk: add the filesystems' free space as limits (default: only when ``as_of``
        is now, since free space is a fact of the present).
    :raises CapacityError: a bad argument; ``NotFoundError``: not an archive.
    """
    from mdcsql.archive import Archive
    from mdcsql.catalog import Catalog

    horizon = parse_horizon(horizon_days)
    cutoff = parse_as_of(as_of)
    threshold = _check_number(threshold_pct, "threshold-pct", low=0, high=1000)
    if isinstance(window_days, bool) or not isinstance(window_days, int) or window_days < 1:
        raise CapacityError(f"window must be a whole number of days ≥ 1, got {window_days!r}")
    if basis not in BASES:
        raise CapacityError(f"basis must be one of {', '.join(BASES)}, got {basis!r}")
    if include_disk is None:
        include_disk = as_of is None
    since = _midnight(cutoff) - (window_days - 1) * _DAY

    if isinstance(root_or_catalog, Catalog):
        catalog, owned = root_or_catalog, False
        archive = Archive.open(catalog.root)
    else:
        archive = Archive.open(root_or_catalog)
        if sync and not archive.is_writing():
            archive.sync_catalog(timeout=2)
        catalog, owned = archive.catalog(read_only=True, timeout=30), True
    try:
        groups = _groups(catalog, cutoff, since, basis)
    finally:
        if owned:
            catalog.close()

    total = groups[("total", "")]
    limits = _limits(archive.root, archive.settings, groups, horizon, cutoff, include_disk)
    full = [lim for lim in limits if lim.metric != "events_per_day" and lim.days_left is not None]
    first = min(full, key=lambda lim: lim.days_left) if full else None
    notes = []
    if total.files and total.span_days < 7:
        notes.append(f"growth is fitted on {total.span_days:.1f} day(s) of history; "
                     "treat the projection as rough until a week has been collected")
    if total.uncounted_files:
        notes.append(f"{total.uncounted_files} open file(s) have no event count yet")
    fc = StorageForecast(
        forecast_date=_iso(cutoff), current_usage_bytes=total.bytes,
        projected_usage_bytes=int(round(total.bytes + total.growth[1] * horizon)),
        growth_rate_per_day=total.growth[1],
        estimated_full_date=first.full_date if first else None,
        breakdown_by_source={k: g.bytes for (d, k), g in sorted(groups.items()) if d == "source"},
        horizon_days=horizon, threshold_pct=threshold, basis=basis, window_days=window_days,
        history_days=total.span_days, current_files=total.files, current_events=total.events,
        uncounted_files=total.uncounted_files, growth_files_per_day=total.growth[0],
        growth_events_per_day=total.growth[2],
        first_full_limit=(first.limit + (f" [{first.key}]" if first.key else "")) if first else None,
        usage={f"by_{dim}": _usage_rows(groups, dim) for dim in DIMENSIONS},
        limits=limits, notes=notes)
    fc.alerts = capacity_alerts(fc, threshold)
    return fc
