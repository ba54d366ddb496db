"""Replay of QuantConnect Lean data zips (US equity ticks and bars, crypto bars) as canonical events.

A Lean data zip holds one header-less CSV.  Where it sits and what it is called say everything
the rows do not: the asset class and market (`equity/usa`, `crypto/coinbase`), the resolution,
the symbol, the trading date and trade vs quote.  `read()` turns such a file (or every Lean zip
under a directory) into canonical Arrow tables of one event type each, vectorised: pyarrow's CSV
reader streams the zip member, prices are scaled by exact text arithmetic (never floats) and
exchange-local times become UTC nanoseconds through `zoneinfo`.

The mapping, the `seq` rule and the error policy are documented in `docs/sources-lean.md`.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Iterator
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from mdcsql import events as ev
from mdcsql.errors import InputError, NotFoundError
from mdcsql.sources.base import Source

FORMAT = "lean"
DEFAULT_SOURCE = "lean"
CHUNK_ROWS = 100_000

#: resolution directory -> (HistoricalBar interval, seq slot, bar length in ns or None for daily)
RESOLUTIONS = {
    "tick": (None, 0, None),
    "second": ("1s", 1, 1_000_000_000),
    "minute": ("1m", 2, 60_000_000_000),
    "hour": ("1h", 3, 3_600_000_000_000),
    "daily": ("1d", 4, None),
}
#: Lean security type directory -> (asset class, {market: data time zone}, default market, resolutions)
SECURITY_TYPES = {
    "equity": ("equity", {"usa": "America/New_York"}, "usa", frozenset(RESOLUTIONS)),
    "crypto": ("crypto", None, None, frozenset(RESOLUTIONS) - {"tick"}),   # every crypto market is UTC
}
EQUITY_SCALE_DIGITS = 4          # deci-cents: divide by 10,000

#: seq = days(date) * SEQ_DAY + slot(resolution) * SEQ_SLOT + row   (see docs/sources-lean.md)
SEQ_DAY = 10 ** 10
SEQ_SLOT = 10 ** 9

_DAY_NS = 86_400 * 10 ** 9
_DAY_MS = 86_400_000
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")      # a local file header, or an empty archive
_INTRADAY_NAME = re.compile(r"^(\d{8})_(trade|quote)\.zip$")
_HOURLY_NAME = re.compile(r"^(.+?)(?:_(trade|quote))?\.zip$")
_BLOCK_SIZE = 4 << 20

_INT_RE = r"^[0-9]+$"
_SCALED_RE = r"^-?[0-9]+(\.[0-9]+)?$"                                     # equity deci-cents
_PLAIN_RE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"        # crypto: any number text
_SIZE_RE = r"^\+?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_DATETIME_RE = r"^[0-9]{8} [0-9]{2}:[0-9]{2}$"

#: column names per file kind, in CSV order (the names errors report as `field`)
COLUMNS = {
    "tick_trade": ("time", "price", "quantity", "exchange", "sale_condition", "suspicious"),
    "tick_quote": ("time", "bid_price", "bid_size", "ask_price", "ask_size", "exchange", "sale_condition",
                   "suspicious"),
    "bar_trade": ("time", "open", "high", "low", "close", "volume"),
    "bar_quote": ("time", "bid_open", "bid_high", "bid_low", "bid_close", "last_bid_size",
                  "ask_open", "ask_high", "ask_low", "ask_close", "last_ask_size"),
}
EVENT_TYPES = {"tick_trade": "Trade", "tick_quote": "BboQuote", "bar_trade": "HistoricalBar",
               "bar_quote": "BboQuote"}


@dataclass(frozen=True)
class LeanFile:
    """What a Lean zip's path says about its rows."""

    path: Path
    security_type: str       # Lean directory: equity | crypto
    asset_class: str         # mdcsql asset class
    market: str | None
    resolution: str          # tick | second | minute | hour | daily
    tick_type: str           # trade | quote
    symbol: str              # upper-cased path symbol
    day: date | None         # the trading date (None for hour/daily files: each row has its own)
    tz: str                  # the data time zone of csv[0]

    @property
    def kind(self) -> str:
        return ("tick_" if self.resolution == "tick" else "bar_") + self.tick_type

    @property
    def event_type(self) -> str:
        return EVENT_TYPES[self.kind]

    @property
    def scaled(self) -> bool:
        return self.security_type == "equity"

    @property
    def venue(self) -> str | None:
        """Venue of bars and quote snapshots: the crypto exchange; None for consolidated equity bars."""
        return self.market if self.security_type == "crypto" else None


# ---- recognising a Lean zip ------------------------------------------------------------------

def parse_path(path) -> LeanFile | None:
    """The Lean file a path names, or None if its shape is not a supported Lean data zip (no I/O)."""
    path = Path(path)
    parts = path.parts
    name = path.name.lower()
    if len(parts) < 3 or not name.endswith(".zip"):
        return None
    m = _INTRADAY_NAME.match(name)
    if m and parts[-3].lower() in ("tick", "second", "minute"):
        resolution, symbol_dir, above = parts[-3].lower(), parts[-2], parts[:-3]
        day_text, tick_type = m.group(1), m.group(2)
        try:
            day = datetime.strptime(day_text, "%Y%m%d").date()
        except ValueError:
            return None
    elif parts[-2].lower() in ("hour", "daily"):
        m = _HOURLY_NAME.match(name)
        if not m:
            return None
        resolution, symbol_dir, above = parts[-2].lower(), path.name[:len(m.group(1))], parts[:-2]
        tick_type, day = m.group(2) or "trade", None
    else:
        return None
    if not above:
        return None
    # …/<security type>/<market>/<resolution>/… or, without a market, …/<security type>/<resolution>/…
    if above[-1].lower() in SECURITY_TYPES:
        security_type, market = above[-1].lower(), None
    elif len(above) >= 2 and above[-2].lower() in SECURITY_TYPES:
        security_type, market = above[-2].lower(), above[-1].lower()
    else:
        return None
    asset_class, zones, default_market, resolutions = SECURITY_TYPES[security_type]
    if resolution not in resolutions or not symbol_dir:
        return None
    if zones is None:
        tz = "UTC"
    else:
        market = market or default_market
        if market not in zones:
            return None
        tz = zones[market]
    return LeanFile(path=path, security_type=security_type, asset_class=asset_class, market=market,
                    resolution=resolution, tick_type=tick_type, symbol=symbol_dir.upper(), day=day, tz=tz)


def detect(path) -> bool:
    """True when `path` is a Lean data zip this module reads: path shape and name, then the zip magic."""
    path = Path(path)
    if parse_path(path) is None:
        return False
    try:
        with open(path, "rb") as fh:
            return fh.read(4) in _ZIP_MAGIC
    except OSError:
        return False


def find_files(directory) -> list[Path]:
    """Every file under `directory` named like a supported Lean zip, sorted by path.

    The path shape decides, not the zip magic: a damaged zip is read and reported, never skipped.
    """
    directory = Path(directory)
    return sorted((p for p in directory.rglob("*.[zZ][iI][pP]") if p.is_file() and parse_path(p) is not None),
                  key=lambda p: p.as_posix())


# ---- reading --------------------------------------------------------------------------------

def read(path, *, symbol: str | None = None, source: str | None = None) -> Iterator[tuple[str, pa.Table]]:
    """Yield `(asset_class, table)` for a Lean zip, or for every Lean zip under a directory.

    Each table is canonical (`mdcsql.events.normalize_table`), holds ONE event type and at most
    `CHUNK_ROWS` rows; tables come in file order (Lean files are in event-time order), files in
    path order.  `symbol` overrides the symbol taken from the path; `source` defaults to "lean".

    :raises InputError: a malformed zip or row, naming the file, the CSV line and the column.
        Tables of the file yielded before the bad row stay yielded (see docs/sources-lean.md).
    :raises NotFoundError: the path does not exist, or a directory holds no Lean zip.
    """
    path = Path(path)
    source = source or DEFAULT_SOURCE
    if path.is_dir():
        files = find_files(path)
        if not files:
            raise NotFoundError(f"no Lean data zips under {path}")
    elif path.exists():
        files = [path]
    else:
        raise NotFoundError(f"{path} does not exist")
    for file in files:
        lf = parse_path(file)
        if lf is None:
            raise InputError("not a Lean data zip this reader supports (expected …/equity/usa/<tick|second|"
                             "minute>/<symbol>/<yyyyMMdd>_<trade|quote>.zip, …/<hour|daily>/<symbol>.zip, "
                             "or crypto/<market>/… bars)", file=str(file))
        for table in read_file(lf, symbol=symbol, source=source):
            yield lf.asset_class, table


def read_file(lf: LeanFile, *, symbol: str | None = None, source: str = DEFAULT_SOURCE) -> Iterator[pa.Table]:
    """The canonical tables of one Lean zip (see `read`)."""
    file = str(lf.path)
    sym = symbol or lf.symbol
    columns = COLUMNS[lf.kind]
    pending: list[pa.Table] = []
    pending_rows = 0
    try:
        with zipfile.ZipFile(lf.path) as zf:
            member = _member(zf, file)
            with zf.open(member) as fh:
                invalid: list = []

                def on_invalid(row) -> str:
                    if not invalid:
                        invalid.append(row)
                    return "skip"

                reader = pacsv.open_csv(
                    fh,
                    read_options=pacsv.ReadOptions(column_names=list(columns), use_threads=False,
                                                   block_size=_BLOCK_SIZE),
                    parse_options=pacsv.ParseOptions(quote_char=False, ignore_empty_lines=False,
                                                     invalid_row_handler=on_invalid),
                    convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in columns},
                                                         strings_can_be_null=False))
                first_line = 1
                day_rows: dict[int, int] = {}       # hour/daily: rows seen per local date, across blocks
                for batch in reader:
                    bad_line = invalid[0].number if invalid else None
                    table = _convert(lf, batch, first_line, sym, bad_line, day_rows)
                    first_line += batch.num_rows
                    if invalid:
                        raise _invalid_row_error(invalid[0], columns, file)
                    if table is None:
                        continue
                    pending.append(table)
                    pending_rows += table.num_rows
                    while pending_rows >= CHUNK_ROWS:
                        whole = pa.concat_tables(pending)
                        yield _finish(lf, whole.slice(0, CHUNK_ROWS), source, file)
                        rest = whole.slice(CHUNK_ROWS)
                        pending, pending_rows = ([rest], rest.num_rows) if rest.num_rows else ([], 0)
                if invalid:
                    raise _invalid_row_error(invalid[0], columns, file)
    except FileNotFoundError:
        raise NotFoundError(f"{file} does not exist") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise InputError(f"unreadable zip: {exc}", file=file) from None
    except zlib.error as exc:
        raise InputError(f"corrupt zip data: {exc}", file=file) from None
    except pa.ArrowInvalid as exc:
        raise InputError(f"unreadable CSV: {exc}", file=file) from None
    if pending_rows:
        yield _finish(lf, pa.concat_tables(pending), source, file)


def _member(zf: zipfile.ZipFile, file: str) -> zipfile.ZipInfo:
    infos = [i for i in zf.infolist() if not i.is_dir()]
    csvs = [i for i in infos if i.filename.lower().endswith(".csv")] or infos
    if len(csvs) != 1:
        names = ", ".join(i.filename for i in csvs) or "nothing"
        raise InputError(f"a Lean data zip holds one CSV file, this one holds {names}", file=file)
    return csvs[0]


def _invalid_row_error(row, columns: tuple, file: str) -> InputError:
    got, want = row.actual_columns, row.expected_columns
    field = columns[got] if got < want else None
    text = row.text if len(row.text) <= 80 else row.text[:77] + "..."
    return InputError(f"expected {want} comma-separated fields ({', '.join(columns)}), got {got}: {text!r}",
                      file=file, line=row.number, field=field)


def _finish(lf: LeanFile, table: pa.Table, source: str, file: str) -> pa.Table:
    """Drop the line column and validate into canonical columns; errors name the file's line."""
    lines = table.column("_line")
    table = table.drop_columns(["_line"])
    try:
        return ev.normalize_table(table, type=lf.event_type, source=source)
    except InputError as exc:
        line = lines[exc.line - 1].as_py() if exc.line else None
        raise InputError(exc.reason, file=file, line=line, field=exc.field) from None


# ---- one CSV block -> pre-canonical columns ------------------------------------------------

class _Checks:
    """Collects vectorised row checks; `raise_first` reports the earliest bad line (then column)."""

    def __init__(self, file: str, lines: pa.Array, columns: tuple) -> None:
        self.file, self.lines, self.columns = file, lines, columns
        self.best: tuple | None = None

    def check(self, ok: pa.Array, field: str, message) -> None:
        """`ok` is True where a row is fine; `message(value)` explains a bad row."""
        if ok.null_count:
            ok = pc.fill_null(ok, False)
        if pc.all(ok).as_py():
            return
        row = pc.index(ok, False).as_py()
        key = (row, self.columns.index(field) if field in self.columns else len(self.columns))
        if self.best is None or key < self.best[0]:
            self.best = (key, field, message)

    def raise_first(self, values: dict, stop_line: int | None) -> None:
        """Raise for the earliest bad row, unless a malformed row (`stop_line`) comes first."""
        if self.best is None:
            return
        (row, _), field, message = self.best
        line = self.lines[row].as_py()
        if stop_line is not None and line >= stop_line:
            return
        value = values[field][row].as_py() if field in values else None
        raise InputError(message(value), file=self.file, line=line, field=field)


def _matches(arr: pa.Array, regex: str) -> pa.Array:
    return pc.match_substring_regex(arr, regex)


def _convert(lf: LeanFile, batch: pa.RecordBatch, first_line: int, symbol: str,
             stop_line: int | None, day_rows: dict) -> pa.Table | None:
    """One CSV block -> a table in canonical field names (plus `_line`), or None if it held no rows."""
    n = batch.num_rows
    columns = COLUMNS[lf.kind]
    raw = {c: batch.column(c) for c in columns}
    lines = pa.array(np.arange(first_line, first_line + n, dtype=np.int64))
    # blank lines (every field empty) are skipped but keep their line numbers, as in events.iter_file
    blank = None
    for c in columns:
        empty = pc.equal(pc.utf8_length(raw[c]), 0)
        blank = empty if blank is None else pc.and_(blank, empty)
    if pc.any(blank).as_py():
        keep = pc.invert(blank)
        raw = {c: pc.filter(a, keep) for c, a in raw.items()}
        lines = pc.filter(lines, keep)
        n = len(lines)
        if n == 0:
            return None
    checks = _Checks(str(lf.path), lines, columns)

    ts, seq = _times(lf, raw["time"], lines, checks, day_rows)
    out: dict[str, pa.Array] = {"symbol": pa.repeat(pa.scalar(symbol, pa.string()), n)}
    kind = lf.kind
    if kind == "tick_trade":
        out["price"] = _price(lf, raw["price"], "price", checks)
        out["size"] = _size(raw["quantity"], "quantity", checks)
        out["side"] = pa.repeat(pa.scalar("unknown", pa.string()), n)
        out["venue"] = _venue(raw["exchange"])
        out["conditions"] = _conditions(raw["sale_condition"], raw["suspicious"], checks)
    elif kind == "tick_quote":
        for side in ("bid", "ask"):
            price = _price(lf, raw[f"{side}_price"], f"{side}_price", checks)
            size = _size(raw[f"{side}_size"], f"{side}_size", checks)
            present = pc.not_equal(price, "0")          # price 0 = the side is absent
            out[f"{side}_price"] = pc.if_else(present, price, pa.scalar(None, pa.string()))
            out[f"{side}_size"] = pc.if_else(present, size, pa.scalar(None, pa.string()))
        checks.check(pc.or_(out["bid_price"].is_valid(), out["ask_price"].is_valid()), "bid_price",
                     lambda v: "a quote tick has neither a bid nor an ask (both prices are 0)")
        out["venue"] = _venue(raw["exchange"])
        _suspicious(raw["suspicious"], checks)
    elif kind == "bar_trade":
        for f in ("open", "high", "low", "close"):
            out[f] = _price(lf, raw[f], f, checks)
        out["volume"] = _size(raw["volume"], "volume", checks)
        out["interval"] = pa.repeat(pa.scalar(RESOLUTIONS[lf.resolution][0], pa.string()), n)
    else:   # bar_quote: a BBO snapshot at the bar's end
        ts = _bar_end(lf, ts, raw["time"])
        for side in ("bid", "ask"):
            group = [f"{side}_open", f"{side}_high", f"{side}_low", f"{side}_close", f"last_{side}_size"]
            lens = [pc.utf8_length(raw[c]) for c in group]
            absent = pc.and_(pc.and_(pc.equal(lens[0], 0), pc.equal(lens[1], 0)),
                             pc.and_(pc.and_(pc.equal(lens[2], 0), pc.equal(lens[3], 0)), pc.equal(lens[4], 0)))
            present = pc.invert(absent)
            for c in group:
                vals = pc.if_else(present, raw[c], pa.scalar("0", pa.string()))
                if c.startswith("last_"):
                    conv = _size(vals, c, checks)
                else:
                    conv = _price(lf, vals, c, checks)
                if c == f"{side}_close":
                    out[f"{side}_price"] = pc.if_else(present, conv, pa.scalar(None, pa.string()))
                elif c == f"last_{side}_size":
                    out[f"{side}_size"] = pc.if_else(present, conv, pa.scalar(None, pa.string()))
        checks.check(pc.or_(out["bid_price"].is_valid(), out["ask_price"].is_valid()), "bid_close",
                     lambda v: "a quote bar has neither a bid nor an ask (both groups are empty)")
        out["venue"] = pa.repeat(pa.scalar(lf.venue, pa.string()), n)
    checks.raise_first(raw, stop_line)
    table = pa.table({"ts": ts, "seq": seq, **out, "_line": lines})
    return table if table.num_rows else None


# ---- columns -------------------------------------------------------------------------------

def _price(lf: LeanFile, arr: pa.Array, field: str, checks: _Checks) -> pa.Array:
    if lf.scaled:
        checks.check(_matches(arr, _SCALED_RE), field,
                     lambda v: f"{field} must be a number of deci-cents (1/10000 USD), got {v!r}")
        return scale_text(arr, EQUITY_SCALE_DIGITS)
    checks.check(_matches(arr, _PLAIN_RE), field, lambda v: f"{field} is not a decimal number: {v!r}")
    return arr


def _size(arr: pa.Array, field: str, checks: _Checks) -> pa.Array:
    checks.check(_matches(arr, _SIZE_RE), field,
                 lambda v: f"{field} must be a non-negative decimal number, got {v!r}")
    return arr


def _venue(arr: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(pc.utf8_length(arr), 0), pa.scalar(None, pa.string()), arr)


def _suspicious(arr: pa.Array, checks: _Checks) -> pa.Array:
    checks.check(pc.is_in(arr, pa.array(["0", "1"])), "suspicious",
                 lambda v: f"suspicious must be 0 or 1, got {v!r}")
    return pc.equal(arr, "1")


def _conditions(cond: pa.Array, suspicious: pa.Array, checks: _Checks) -> pa.Array:
    """[sale condition] plus "suspicious" when flagged; null when a row has neither (vectorised)."""
    susp = _suspicious(suspicious, checks).to_numpy(zero_copy_only=False)
    has_cond = pc.greater(pc.utf8_length(cond), 0).to_numpy(zero_copy_only=False)
    n = len(cond)
    counts = has_cond.astype(np.int32) + susp.astype(np.int32)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    take = np.empty(int(offsets[-1]), dtype=np.int64)
    rows = np.arange(n, dtype=np.int64)
    take[offsets[:-1][has_cond]] = rows[has_cond]
    take[(offsets[:-1] + has_cond)[susp]] = n               # index of the literal "suspicious"
    values = pa.concat_arrays([cond.cast(pa.string()), pa.array(["suspicious"], pa.string())]).take(take)
    mask = pa.array(counts == 0) if not counts.all() else None
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=mask)


def scale_text(arr: pa.Array, digits: int) -> pa.Array:
    """Exact decimal text of `arr / 10**digits` for decimal text input (`-?[0-9]+(.[0-9]+)?`), vectorised.

    Text arithmetic only: the decimal point moves `digits` places left, leading zeros of the
    integer part and trailing zeros of the fraction are dropped: "1674100" -> "167.41",
    "1670000" -> "167", "5" -> "0.0005", "-25" -> "-0.0025", "0" -> "0".
    """
    arr = arr.cast(pa.string())
    neg = pc.starts_with(arr, "-")
    any_neg = pc.any(neg).as_py()
    body = pc.if_else(neg, pc.utf8_slice_codeunits(arr, 1), arr) if any_neg else arr
    has_point = pc.match_substring(body, ".")
    if pc.any(has_point).as_py():
        parts = pc.split_pattern(body, ".", max_splits=1)
        int_part = pc.list_element(parts, 0)
        frac_in = _second_part(parts)
    else:
        int_part, frac_in = body, None
    padded = pc.utf8_lpad(int_part, digits + 1, "0")
    whole = pc.utf8_ltrim(pc.utf8_slice_codeunits(padded, 0, -digits), "0")
    whole = pc.if_else(pc.equal(pc.utf8_length(whole), 0), pa.scalar("0", pa.string()), whole)
    frac = pc.utf8_slice_codeunits(padded, -digits)
    if frac_in is not None:
        frac = pc.binary_join_element_wise(frac, frac_in, "")
    frac = pc.utf8_rtrim(frac, "0")
    text = pc.if_else(pc.equal(pc.utf8_length(frac), 0), whole, pc.binary_join_element_wise(whole, frac, "."))
    if any_neg:
        text = pc.if_else(pc.and_(neg, pc.not_equal(text, "0")), pc.binary_join_element_wise("-", text, ""), text)
    return text


def _second_part(parts: pa.Array) -> pa.Array:
    """Element 1 of each split list, "" where the list has only one element."""
    lengths = pc.list_value_length(parts)
    padded = pc.if_else(pc.greater(lengths, 1), parts, pa.scalar(["", ""], pa.list_(pa.string())))
    return pc.list_element(padded, 1)


# ---- time ----------------------------------------------------------------------------------

def _times(lf: LeanFile, col: pa.Array, lines: pa.Array, checks: _Checks,
           day_rows: dict) -> tuple[pa.Array, pa.Array]:
    """(ts in UTC ns, seq) of one block; `day_rows` carries the rows per date of earlier blocks."""
    slot = RESOLUTIONS[lf.resolution][1]
    n = len(col)
    if lf.day is not None:                    # tick/second/minute: ms since midnight of the file's date
        ok = _matches(col, r"^[0-9]{1,8}$")
        checks.check(ok, "time", lambda v: f"time must be milliseconds since midnight, got {v!r}")
        ms = pc.cast(pc.if_else(ok, col, pa.scalar("0", pa.string())), pa.int64()).to_numpy()
        checks.check(pa.array(ms < _DAY_MS), "time",
                     lambda v: f"time {v} ms is not within the day (0..{_DAY_MS - 1})")
        ms = np.minimum(ms, _DAY_MS - 1)
        day = (lf.day - date(1970, 1, 1)).days
        ts = (day * _DAY_MS + ms) * 1_000_000 - _offsets_ns(lf.tz, day, ms)
        seq = day * SEQ_DAY + slot * SEQ_SLOT + lines.to_numpy()
        return pa.array(ts, pa.int64()), pa.array(seq, pa.int64())
    # hour/daily: "yyyyMMdd HH:mm" in the data time zone
    ok, wall_s = _parse_datetime(col)
    checks.check(_matches(col, _DATETIME_RE), "time", lambda v: f"time must look like yyyyMMdd HH:mm, got {v!r}")
    checks.check(ok, "time", lambda v: f"time is not a valid date and time: {v!r}")
    days = wall_s // 86_400
    ms = (wall_s % 86_400) * 1000
    offsets = _wall_offsets_ns(lf.tz, days, ms)
    ts = wall_s * 1_000_000_000 - offsets
    # seq row = rank of the row among the rows of its date in the file (file order, across blocks)
    order = np.argsort(days, kind="stable")
    sorted_days = days[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_days)) + 1]
    rank = np.empty(n, dtype=np.int64)
    group_start = np.repeat(starts, np.diff(np.r_[starts, n]))
    rank[order] = np.arange(n) - group_start + 1
    uniq, inverse, counts = np.unique(days, return_inverse=True, return_counts=True)
    before = np.array([day_rows.get(d, 0) for d in uniq.tolist()], dtype=np.int64)
    rank += before[inverse]
    for d, b, c in zip(uniq.tolist(), before.tolist(), counts.tolist()):
        day_rows[d] = b + c
    seq = days * SEQ_DAY + slot * SEQ_SLOT + rank
    return pa.array(ts, pa.int64()), pa.array(seq, pa.int64())


def _parse_datetime(col: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """("yyyyMMdd HH:mm" valid?, wall seconds since 1970-01-01 00:00 of the same zone; 0 where invalid)."""
    shaped = _matches(col, _DATETIME_RE)
    text = pc.if_else(shaped, col, pa.scalar("19700101 00:00", pa.string()))
    parsed = pc.strptime(text, format="%Y%m%d %H:%M", unit="s", error_is_null=True)
    # strptime rolls 20130231 over to March 3rd: a valid value prints back to the same text
    ok = pc.and_(shaped, pc.fill_null(pc.equal(pc.strftime(parsed, format="%Y%m%d %H:%M"), text), False))
    wall_s = pc.if_else(ok, parsed.cast(pa.int64()), 0).to_numpy()
    return ok, wall_s


def _bar_end(lf: LeanFile, start_ts: pa.Array, col: pa.Array) -> pa.Array:
    """UTC ns of each bar's end: start + the bar length (daily: the next date's 00:00 in the zone)."""
    length = RESOLUTIONS[lf.resolution][2]
    if length is not None:
        return pc.add(start_ts, length)
    wall_s = _parse_datetime(col)[1] + 86_400
    offsets = _wall_offsets_ns(lf.tz, wall_s // 86_400, (wall_s % 86_400) * 1000)
    return pa.array(wall_s * 1_000_000_000 - offsets, pa.int64())


def _wall_offsets_ns(tz: str, days: np.ndarray, ms: np.ndarray) -> np.ndarray:
    """UTC offsets (ns) of wall times given as (local day number, ms after its midnight) arrays."""
    offsets = np.zeros(len(days), dtype=np.int64)
    if tz == "UTC" or not len(days):
        return offsets
    uniq, inverse = np.unique(days, return_inverse=True)
    segs = [_segments(tz, d) for d in uniq.tolist()]
    offsets[:] = np.array([s[0][1] for s in segs], dtype=np.int64)[inverse]
    for i, s in enumerate(segs):
        if len(s) > 1:                         # a day with a DST change: per-row lookup for that day only
            rows = np.flatnonzero(inverse == i)
            offsets[rows] = _offsets_ns(tz, int(uniq[i]), ms[rows])
    return offsets


def _offsets_ns(tz: str, day: int, ms: np.ndarray) -> np.ndarray | int:
    """UTC offset (ns) of each wall time `ms` after midnight of `day` in `tz` (fold=0, as zoneinfo)."""
    segs = _segments(tz, day)
    if len(segs) == 1:
        return segs[0][1]
    starts = np.array([s for s, _ in segs], dtype=np.int64)
    offs = np.array([o for _, o in segs], dtype=np.int64)
    return offs[np.searchsorted(starts, ms, side="right") - 1]


@lru_cache(maxsize=1 << 16)
def _segments(tz: str, day: int) -> tuple[tuple[int, int], ...]:
    """((start_ms, utc_offset_ns), …): the piecewise-constant UTC offset over one local day.

    Wall times are resolved as `zoneinfo` does with fold=0: an ambiguous time takes the earlier
    instant (the offset before the change), a skipped one the offset before the change too (so
    02:30 on a spring-forward day is 07:30Z in New York, like NodaTime's lenient resolver).
    """
    if tz == "UTC":
        return ((0, 0),)
    zone = ZoneInfo(tz)
    midnight = datetime(1970, 1, 1, tzinfo=zone) + timedelta(days=day)

    def offset(ms: int) -> int:
        delta = (midnight + timedelta(milliseconds=ms)).utcoffset()
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000

    # one change at most per local day (true of the zones used here): compare both ends, then bisect
    first, last = offset(0), offset(_DAY_MS - 1)
    if first == last:
        return ((0, first),)
    lo, hi = 0, _DAY_MS - 1                       # offset(lo) == first, offset(hi) == last
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if offset(mid) == first:
            lo = mid
        else:
            hi = mid
    segs = [(0, first), (hi, last)]
    return tuple(segs)


# ---- the Source ----------------------------------------------------------------------------

class LeanReplaySource(Source):
    """Replays Lean zips (a file or a directory) as a historical source.

    `batches()` yields `(asset_class, table)` tuples, which the collection loop
    (`mdcsql.collect`) routes to one writer per asset class; `asset_class` is that of the first
    file (the default for consumers that ignore the tuple's first element).
    """

    kind = "historical"

    def __init__(self, path, *, symbol: str | None = None, source: str | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.symbol = symbol
        self.id = source or DEFAULT_SOURCE
        self._stop = False
        files = find_files(self.path) if self.path.is_dir() else [self.path]
        first = parse_path(files[0]) if files else None
        self.asset_class = first.asset_class if first else "equity"

    def batches(self) -> Iterator[tuple[str, pa.Table]]:
        for asset_class, table in read(self.path, symbol=self.symbol, source=self.id):
            self.stats.messages += table.num_rows
            self.stats.events += table.num_rows
            yield asset_class, table
            if self._stop:
                return

    def stop(self) -> None:
        self._stop = True
