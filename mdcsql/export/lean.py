"""QuantConnect Lean output (``LeanZip``): the archive's events as Lean's own data zips.

Lean reads these files as if QuantConnect had shipped them (docs/export-lean.md): paths, entry
names, columns, time zone, price scale and line endings as Lean's ``LeanData`` writes them. The
CSV text of every file is built by SQL over the catalog views (``sql/queries/export_lean_*.sql``);
Python only zips it. What the archive stores losslessly comes back byte-identical to the Lean
file it was replayed from (tested on the real sample files); what the canonical events cannot
hold (quote-tick conditions, the open/high/low of quote bars) is written from what is stored and
reported in each file's ``origin``.
"""

from __future__ import annotations

import re
import time
import zipfile
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

from mdcsql.errors import InputError, MdcsqlError, NotFoundError
from mdcsql.sql import load_sql

__all__ = ["export_lean", "write_lean", "LeanFile", "RESOLUTIONS", "DATA_TYPES", "SECURITY_TYPES",
           "map_file_lines", "ticker_of"]

DAY_NS = 86_400_000_000_000
#: resolution -> (bar length in local wall-clock ns, seq slot of the Lean replay, stored interval)
RESOLUTIONS: dict[str, tuple[int | None, int, str | None]] = {
    "tick": (None, 0, None),
    "second": (1_000_000_000, 1, "1s"),
    "minute": (60_000_000_000, 2, "1m"),
    "hour": (3_600_000_000_000, 3, "1h"),
    "daily": (DAY_NS, 4, "1d"),
}
DATA_TYPES = ("trade", "quote")
#: the event types a Lean export reads
EVENT_TYPES = ("Trade", "BboQuote", "HistoricalBar")
#: security type -> (data time zone, prices in deci-cents, fixed market or None = must be given)
SECURITY_TYPES: dict[str, tuple[str, bool, str | None]] = {
    "equity": ("America/New_York", True, "usa"),
    "crypto": ("UTC", False, None),
}
#: the condition written on quote ticks (BboQuote stores none): the value QuantConnect's own US
#: equity quote ticks carry on 234 809 of the 234 817 rows of the IBM samples
DEFAULT_QUOTE_CONDITION = "1"
_TICKER_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_MAP_NOTE_RE = re.compile(r"\b(exchange|mode) ([^;),]+)")
#: the zip entries' compression: deflate at zlib's default level ("normal", as the Lean samples)
_DEFLATE_LEVEL = 6


@dataclass
class LeanFile:
    """One written file: ``path`` relative to the destination, its CSV ``entry`` (None for map
    and factor files), ``rows``, and ``origin`` — where the rows came from:
    ``ticks`` (stored events as they are), ``stored bars`` (historical bars of that interval),
    ``aggregated from trades`` / ``aggregated from quotes`` (OHLCV transform), ``quote snapshots``
    (a Lean quote-bar replay's bar-end BboQuotes: close prices only), ``symbol registry``."""

    path: str
    entry: str | None
    rows: int
    origin: str
    symbol: str
    resolution: str | None = None
    data_type: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def ticker_of(symbol: str, security_type: str) -> str:
    """Lean's lower-case ticker of a stored symbol (crypto pairs lose ``/`` and ``-``)."""
    ticker = symbol.lower()
    if security_type == "crypto":
        ticker = ticker.replace("/", "").replace("-", "")
    if not _TICKER_RE.match(ticker):
        raise InputError(f"symbol {symbol!r} has no Lean ticker (lower-case letters, digits, '.', '_', '-')",
                         field="symbols")
    return ticker


def _choice(values, allowed, what: str) -> list[str]:
    items = [values] if isinstance(values, str) else list(values or ())
    out = []
    for item in items:
        for part in str(item).split(","):
            part = part.strip().lower()
            if not part:
                continue
            if part not in allowed:
                raise InputError(f"unknown Lean {what} {part!r}; allowed: {', '.join(allowed)}", field=what)
            if part not in out:
                out.append(part)
    if not out:
        raise InputError(f"no Lean {what} given; allowed: {', '.join(allowed)}", field=what)
    return out


def _bound(value, *, end: bool) -> int:
    """UTC ns of a bound: None (open), int ns, a ``date`` / ``YYYY-MM-DD`` (midnight UTC; as ``end``
    the whole day is included) or ISO-8601 text."""
    if value is None or value == "":
        return 2**63 - 1 if end else 0
    if isinstance(value, int):
        return value
    if isinstance(value, date) and not hasattr(value, "hour"):
        value = value.isoformat()
    text = str(value) if not hasattr(value, "hour") else value
    if isinstance(text, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            d = date.fromisoformat(text)
        except ValueError:
            raise InputError(f"no such date {text!r}", field="end" if end else "start") from None
        return ((d - date(1970, 1, 1)).days + (1 if end else 0)) * DAY_NS
    from mdcsql.events import parse_ts
    return parse_ts(text, field="end" if end else "start")


def _zip_bytes(entry: str, text: str, stamp: tuple) -> bytes:
    """One deflated entry, as Lean's zips: a single CSV, no directory entries."""
    import io
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=_DEFLATE_LEVEL) as zf:
        info = zipfile.ZipInfo(entry, date_time=stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, text.encode("utf-8"), compresslevel=_DEFLATE_LEVEL)
    return buf.getvalue()


def _write(dest: Path, rel: str, data: bytes) -> None:
    """Temp name, fsync, rename: a file of the export is whole or absent (the directory is synced
    once at the end by the caller's rename or here per file)."""
    from mdcsql.durable import atomic_write
    atomic_write(dest / rel, data, sync_dir=False)


def _day(n: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=int(n))).strftime("%Y%m%d")


class _Query:
    """The export's SQL on one catalog connection: the temp macros once, then one statement per
    (kind, symbol) returning ``(day, n, csv)`` rows."""

    def __init__(self, cat, params: dict) -> None:
        self.cat, self.base = cat, params
        cat.execute(load_sql("queries/export_lean_macros.sql"))

    def days(self, name: str, symbol: str, **extra) -> dict[int, tuple[int, str]]:
        sql = load_sql(f"queries/{name}.sql")
        used = set(re.findall(r"\$([a-z_]+)", sql))
        params = {k: v for k, v in ({**self.base, **extra, "symbol": symbol}).items() if k in used}
        return {int(day): (int(n), csv) for day, n, csv in self.cat.execute(sql, params).rows}


def write_lean(archive_root, *, dest, symbols=None, data_types=DATA_TYPES, resolutions=("tick",),
               start=None, end=None, sources=None, security_type: str = "equity", market: str | None = None,
               include_auxiliary: bool = True, quote_condition: str = DEFAULT_QUOTE_CONDITION,
               event_types=EVENT_TYPES, stamp: tuple | None = None, catalog=None) -> list[LeanFile]:
    """Write a Lean data tree under ``dest`` (``equity/usa/…`` or ``crypto/<market>/…``) and return
    what was written. ``symbols`` None = every symbol of that asset class with trades, quotes or
    bars; ``sources`` None = every source; ``start``/``end`` bound ``ts`` (UTC, ``[start, end)``;
    a date as ``end`` includes that day). Bars of a resolution come from stored bars of that
    interval for each day that has them and are aggregated from ticks otherwise. ``event_types``
    limits the views read (``Trade`` ticks and trade-bar aggregation, ``BboQuote`` quote ticks and
    quote bars, ``HistoricalBar`` stored bars). ``stamp`` is the zip entries' modification time
    (default: now, local time as zip stores it). ``catalog``: an open catalog to use (the export
    core's), else the archive's is opened read-only."""
    from mdcsql.catalog import Catalog

    security_type = _choice(security_type, tuple(SECURITY_TYPES), "security_type")[0]
    tz, scaled, fixed_market = SECURITY_TYPES[security_type]
    if fixed_market:
        if market not in (None, "", fixed_market):
            raise InputError(f"Lean {security_type} data is written for market {fixed_market!r} only, got {market!r}",
                             field="market")
        market = fixed_market
    elif not market or not _TICKER_RE.match(str(market).lower()):
        raise InputError(f"Lean {security_type} export needs a market (e.g. coinbase), got {market!r}", field="market")
    market = str(market).lower()
    kinds = _choice(data_types, DATA_TYPES, "data_type")
    res_list = _choice(resolutions, tuple(RESOLUTIONS), "resolution")
    lo, hi = _bound(start, end=False), _bound(end, end=True)
    if hi <= lo:
        raise InputError("the export's end is not after its start", field="end")
    if not isinstance(quote_condition, str) or "," in quote_condition or "\n" in quote_condition:
        raise InputError(f"quote condition must be text without ',' or newline, got {quote_condition!r}",
                         field="quote_condition")
    src = [s for s in ([sources] if isinstance(sources, str) else list(sources or ())) if s]
    root, dest = Path(archive_root), Path(dest)
    stamp = stamp or time.localtime()[:6]
    base = {"all_sources": not src, "sources": src or [""], "start": lo, "end": hi, "tz": tz,
            "scaled": scaled, "full": security_type == "equity", "condition": quote_condition}
    etypes = [t for t in EVENT_TYPES if t in set(event_types or EVENT_TYPES)]
    written: list[LeanFile] = []
    with (nullcontext(catalog) if catalog is not None else Catalog.open(root, read_only=True)) as cat:
        q = _Query(cat, base)
        if symbols is None or symbols == []:
            types = list(etypes)
            symbols = [r[0] for r in cat.execute(load_sql("queries/export_lean_symbols.sql"),
                                                 {"asset_class": security_type, "types": types}).rows]
        else:
            symbols = [s.strip() for s in ([symbols] if isinstance(symbols, str) else symbols)
                       for s in str(s).split(",") if s.strip()]
        top = f"{security_type}/{market}"
        for symbol in symbols:
            ticker = ticker_of(symbol, security_type)
            for res in res_list:
                for kind in kinds:
                    written += _write_kind(q, dest, top, symbol, ticker, res, kind, security_type, stamp, etypes)
        if include_auxiliary and security_type == "equity":
            written += _write_map_files(root, dest, top, symbols)
    _fsync_dirs(dest, written)
    return written


def export_lean(archive_root, *, dest, **kwargs) -> list[Path]:
    """:func:`write_lean`, returning the written paths (absolute)."""
    return [Path(dest) / f.path for f in write_lean(archive_root, dest=dest, **kwargs)]


def _write_kind(q: _Query, dest: Path, top: str, symbol: str, ticker: str, res: str, kind: str,
                security_type: str, stamp: tuple, etypes: list[str]) -> list[LeanFile]:
    bar_ns, slot, interval = RESOLUTIONS[res]
    hm = res in ("hour", "daily")
    regular = hm and security_type == "equity"
    days: dict[int, tuple[int, str]] = {}
    origin: dict[int, str] = {}
    if kind == "quote" and "BboQuote" not in etypes:
        return []
    if res == "tick":
        if kind == "trade" and "Trade" not in etypes:
            return []
        days = q.days(f"export_lean_{kind}_ticks", symbol)
        origin = {d: "ticks" for d in days}
    elif kind == "trade":
        if "HistoricalBar" in etypes:
            days = q.days("export_lean_trade_bars", symbol, interval=interval, hm=hm)
            origin = {d: "stored bars" for d in days}
        if "Trade" in etypes:
            for d, v in q.days("export_lean_trade_bars_agg", symbol, bar_ns=bar_ns, hm=hm, regular=regular).items():
                if d not in days:
                    days[d], origin[d] = v, "aggregated from trades"
    else:
        days = q.days("export_lean_quote_bars", symbol, bar_ns=bar_ns, hm=hm, slot=slot)
        origin = {d: "quote snapshots" for d in days}
        for d, v in q.days("export_lean_quote_bars_agg", symbol, bar_ns=bar_ns, hm=hm, regular=regular).items():
            if d not in days:
                days[d], origin[d] = v, "aggregated from quotes"
    if not days:
        return []
    out = []
    if hm:
        # hour/daily: the whole history in one file. Equity trade bars are {ticker}.zip (Lean's
        # US equity data); quote bars, which QuantConnect does not ship for equities, take the
        # {ticker}_quote.zip form of Lean's other security types so they never replace the trades.
        name = f"{ticker}.zip" if (security_type, kind) == ("equity", "trade") else f"{ticker}_{kind}.zip"
        rel, entry = f"{top}/{res}/{name}", f"{ticker}.csv"
        order = sorted(days)
        text = "\n".join(days[d][1] for d in order)
        _write(dest, rel, _zip_bytes(entry, text, stamp))
        kinds_used = sorted(set(origin[d] for d in order))
        out.append(LeanFile(rel, entry, sum(days[d][0] for d in order), " + ".join(kinds_used), symbol, res, kind))
        return out
    for d in sorted(days):
        n, text = days[d]
        ymd = _day(d)
        if res == "tick" and security_type == "equity":
            entry = f"{ymd}_{ticker}_{kind.capitalize()}_Tick.csv"
        else:
            entry = f"{ymd}_{ticker}_{res}_{kind}.csv"
        rel = f"{top}/{res}/{ticker}/{ymd}_{kind}.zip"
        _write(dest, rel, _zip_bytes(entry, text, stamp))
        out.append(LeanFile(rel, entry, n, origin[d], symbol, res, kind))
    return out


# ---------------------------------------------------------------------- map and factor files

def map_file_lines(mappings: list, symbol: str) -> list[str]:
    """Lean map-file rows ``yyyyMMdd,ticker[,exchange[,mode]]`` of ``symbol`` from its registry
    mappings (every-source scope), the inverse of ``registry.parse_lean_map_file``: the first
    range's first day, then each range's last day (``valid_to`` − 1), the open-ended one at
    Lean's 2050-12-31 sentinel. Exchange and mode come back from the mapping's note."""
    rows = sorted((m for m in mappings if m.canonical == symbol and m.source is None), key=lambda m: m.valid_from)
    if not rows:
        return []
    from mdcsql.registry import LEAN_END_OF_TIME

    def cells(m, day) -> str:
        extra = dict(_MAP_NOTE_RE.findall(m.note or ""))
        tail = [extra[k].strip() for k in ("exchange", "mode") if k in extra]
        return ",".join([day.strftime("%Y%m%d"), m.alias.lower(), *tail])

    first = rows[0]
    lines = [cells(first, first.valid_from)]
    for m in rows:
        last = LEAN_END_OF_TIME if m.valid_to is None else m.valid_to - timedelta(days=1)
        if last == m.valid_from and m is first:
            continue
        lines.append(cells(m, last))
    return lines


def _write_map_files(root: Path, dest: Path, top: str, symbols: list[str]) -> list[LeanFile]:
    from mdcsql.registry import SymbolRegistry
    try:
        mappings = SymbolRegistry.load_exported(root).mappings()
    except (NotFoundError, MdcsqlError):
        return []
    out = []
    for symbol in symbols:
        lines = map_file_lines(mappings, symbol)
        if not lines:
            continue
        rel = f"{top}/map_files/{ticker_of(symbol, 'equity')}.csv"
        _write(dest, rel, ("\n".join(lines) + "\n").encode())
        out.append(LeanFile(rel, None, len(lines), "symbol registry", symbol, None, "map"))
    return out


def _fsync_dirs(dest: Path, written: list[LeanFile]) -> None:
    """fsync the directories that received files (each file was fsynced before its rename)."""
    from mdcsql.durable import fsync_dir
    for d in sorted({(dest / f.path).parent for f in written}):
        fsync_dir(d)


# ---------------------------------------------------------------------- the format registry

#: event type whose files a LeanFile is listed under in the export metadata
_LISTED_UNDER = {"ticks": {"trade": "Trade", "quote": "BboQuote"}, "stored bars": "HistoricalBar",
                 "aggregated from trades": "Trade", "quote snapshots": "BboQuote",
                 "aggregated from quotes": "BboQuote"}


def _listed_under(f: LeanFile) -> str | None:
    kinds = [k.strip() for k in f.origin.split("+")]
    first = _LISTED_UNDER.get(kinds[0])
    return first.get(f.data_type) if isinstance(first, dict) else first


def _options(request) -> dict:
    """``write_lean`` keywords from the request's options (the QuantConnectLean profile's keys)."""
    o = dict(request.options or {})
    unknown = sorted(set(o) - {"resolution", "market", "security_type", "data_type", "include_auxiliary",
                               "quote_condition", "post_export"})    # post_export: the core's (loaders)
    if unknown:
        raise InputError(f"unknown LeanZip option(s) {', '.join(unknown)}; allowed: resolution, market, "
                         "security_type, data_type, include_auxiliary, quote_condition", field="options")
    kw = {"resolutions": o.get("resolution", "tick"), "data_types": o.get("data_type", DATA_TYPES),
          "security_type": o.get("security_type", "equity"), "market": o.get("market"),
          "include_auxiliary": bool(o.get("include_auxiliary", True))}
    if "quote_condition" in o:
        kw["quote_condition"] = o["quote_condition"]
    return kw


def _format_write(ctx, sel) -> list[Path]:
    """LeanZip's ``write``: the whole Lean tree is written at the first event type's call (a Lean
    file may come from two types: bars stored or aggregated from trades); each call returns the
    files listed under its type, the map files under the first."""
    files = getattr(ctx, "_lean_files", None)
    if files is None:
        r = ctx.request
        if r.dedupe or r.transforms or r.incremental:
            raise MdcsqlError("LeanZip writes Lean's own data files: --dedupe, transforms and --incremental "
                              "do not apply to it (export again to refresh)")
        wanted = list(r.types or EVENT_TYPES)
        files = write_lean(ctx.root, dest=ctx.data_dir, symbols=r.symbols or None, start=r.start_ns, end=r.end_ns,
                           sources=r.sources or None, event_types=[t for t in wanted if t in EVENT_TYPES],
                           catalog=ctx.catalog, **_options(r))
        ctx._lean_files = files
        ctx._lean_first = sel.event_type
        ctx.details["lean"] = [f.to_dict() for f in files]
        summary: dict[tuple, list[str]] = {}
        for f in files:
            summary.setdefault((f.symbol, f.resolution, f.data_type, f.origin), []).append(f.path)
        for (symbol, res, kind, origin), paths in sorted(summary.items(), key=lambda kv: [str(x) for x in kv[0]]):
            what = f"{res} {kind}" if res else kind
            ctx.notes.append(f"LeanZip {symbol} {what}: {len(paths)} file(s) from {origin}")
    out = [f for f in files if _listed_under(f) == sel.event_type
           or (_listed_under(f) is None and sel.event_type == ctx._lean_first)]
    return [ctx.data_dir / f.path for f in out]


def _register() -> None:
    from mdcsql.export.formats import register_format
    register_format("LeanZip", _format_write, compressions=("deflate",),
                    description="QuantConnect Lean data zips (equity/usa, crypto/<market>): ticks, bars, map files")


_register()
