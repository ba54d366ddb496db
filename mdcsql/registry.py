"""Symbol and source registries (design: "Symbol Naming Standardization", "Source Registry").

- :class:`SymbolRegistry` — canonical symbols with their identifiers (aliases, ISIN, FIGI, SEDOL,
  …) and **date-ranged mappings**: an alias means a canonical symbol on the UTC days
  ``[valid_from, valid_to)`` (start inclusive, end exclusive), optionally only for one source, like
  Databento symbology or Lean map files. :meth:`SymbolRegistry.resolve` answers "what did this
  symbol stand for at that instant", caching each answer with the span of UTC days it holds for; the SQL
  macro ``resolve_symbol(sym, at)`` gives analysts the same answer at query time.
- :class:`SourceRegistry` — the data sources and their fields (type, priority, latency, …,
  ``enabled``).
- :class:`WriteGate` — what the write path asks them: it rewrites aliases at ingest, refuses
  disabled sources and routes unknown symbols by the policy (``accept`` registers them,
  ``reject`` raises InputError, ``quarantine`` keeps the event in ``_quarantine/``).

Rows live in the catalog (``symbols``, ``sources``, ``symbol_mappings``) and, after every change,
in ``_catalog/symbols.json`` / ``sources.json`` (:mod:`mdcsql.catalog.registries`). The write path
reads those JSON files, never DuckDB, so a collector never waits for a catalog lock.
See docs/registries.md.
"""

from __future__ import annotations

import csv
import math
import shlex
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Callable, Iterator

from mdcsql.catalog import registries as rows
from mdcsql.errors import ConfigError, InputError, MdcsqlError, NotFoundError
from mdcsql.layout import CATALOG_DIR
from mdcsql.sql import load_sql

__all__ = ["Mapping", "SymbolRegistry", "SourceRegistry", "Registries", "WriteGate", "SourceDisabledError",
           "open_registries", "parse_lean_map_file", "POLICIES", "DAY_NS"]

POLICIES = rows.POLICIES
DAY_NS = 86_400_000_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
#: a Lean map file row dated on or after this is the "still trading" sentinel (20501231)
LEAN_END_OF_TIME = date(2050, 12, 31)


class SourceDisabledError(MdcsqlError):
    """A source that is registered and disabled tried to write."""


def _day(d: date) -> int:
    return d.toordinal() - _EPOCH_ORDINAL


def _range_text(start: date, end: date | None) -> str:
    return f"[{'…' if start == rows.SINCE_EVER else start}, {'…' if end is None else end})"


def _same_range(a: "Mapping", b: "Mapping") -> bool:
    return (a.alias, a.canonical, a.valid_from, a.valid_to, a.source) == \
        (b.alias, b.canonical, b.valid_from, b.valid_to, b.source)


@dataclass(frozen=True)
class Mapping:
    """``alias`` means ``canonical`` on the UTC days [valid_from, valid_to); ``valid_to`` None = open-ended;
    ``source`` None = for every source."""

    alias: str
    canonical: str
    valid_from: date
    valid_to: date | None = None
    source: str | None = None
    note: str | None = None

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["valid_from"] = self.valid_from.isoformat()
        d["valid_to"] = self.valid_to.isoformat() if self.valid_to else None
        return d

    def __str__(self) -> str:
        scope = f" for source {self.source}" if self.source else ""
        return f"{self.alias} -> {self.canonical} {_range_text(self.valid_from, self.valid_to)}{scope}"

    @classmethod
    def of(cls, row: dict) -> "Mapping":
        p = rows.mapping_params(**{k: row.get(k) for k in rows.MAPPING_FIELDS})
        return cls(**p)


# ---------------------------------------------------------------------- symbols

class SymbolRegistry:
    """The symbols, their date-ranged mappings and the unknown-symbol policy.

    Load with :meth:`load` (from a catalog; writes need it opened read-write) or
    :meth:`load_exported` (from ``_catalog/symbols.json``, read-only: what the write path uses).
    """

    def __init__(self, symbols: list[dict], mappings: list[Mapping], policy: str = rows.DEFAULT_POLICY,
                 *, catalog=None) -> None:
        self.catalog = catalog
        self._install(symbols, mappings, policy)

    @classmethod
    def load(cls, catalog) -> "SymbolRegistry":
        symbols = catalog.execute(load_sql("queries/catalog_symbols_list.sql")).dicts()
        mappings = [Mapping(**r) for r in catalog.execute(load_sql("queries/registry_mappings_list.sql")).dicts()]
        return cls(symbols, mappings, rows.read_policy(catalog), catalog=catalog)

    @classmethod
    def load_exported(cls, root) -> "SymbolRegistry":
        symbols, mappings, policy = rows.read_symbols_export(Path(root) / CATALOG_DIR)
        valid = []
        for m in mappings or []:
            try:
                valid.append(Mapping.of(m))
            except (ConfigError, TypeError):
                continue                  # a hand-edited entry that does not validate (as on import)
        return cls(symbols, valid, policy)

    def reload(self) -> "SymbolRegistry":
        fresh = self.load(self._writable("reload"))
        self._install(fresh.symbols(), fresh.mappings(), fresh.unknown_symbol_policy)
        return self

    def _install(self, symbols: list[dict], mappings: list[Mapping], policy: str) -> None:
        self._symbols = {r["symbol"]: dict(r) for r in symbols}
        self._mappings = sorted(mappings, key=lambda m: (m.alias, m.source is not None, m.source or "", m.valid_from))
        self.unknown_symbol_policy = policy
        self._known = set(self._symbols) | {r["canonical"] for r in symbols if r.get("canonical")} \
            | {m.canonical for m in mappings}
        # alias -> ((source, precedence, canonical, first day, end day | None), ...) in resolution
        # order: source-specific first, dated mappings (0) before the symbols table's aliases (1).
        # The same rows and order as the `symbol_aliases` view and the resolve_symbol macro.
        table: dict[str, list] = {}
        for m in mappings:
            table.setdefault(m.alias, []).append((m.source, 0, m.canonical, _day(m.valid_from),
                                                  None if m.valid_to is None else _day(m.valid_to)))
        for r in symbols:
            canonical = r.get("canonical") or r["symbol"]
            undated = set(r.get("aliases") or ())
            if r.get("canonical") and r["canonical"] != r["symbol"]:
                undated.add(r["symbol"])
            for alias in undated - {canonical}:
                table.setdefault(alias, []).append((None, 1, canonical, _day(rows.SINCE_EVER), None))
        self._ranges = {a: tuple(sorted(rs, key=lambda x: (x[0] is None, x[1], x[2]))) for a, rs in table.items()}
        self._scoped = {a for a, rs in self._ranges.items() if any(r[0] is not None for r in rs)}
        self.rewrites = any(c != a for a, rs in self._ranges.items() for _s, _p, c, _f, _t in rs)
        # the last answer per alias (per (alias, source) when some of its mappings are scoped),
        # with the span of UTC days [lo, hi) in ns over which that answer holds
        self._last: dict = {}

    # ---- reading ---------------------------------------------------------------------------------
    def resolve(self, symbol: str, ts_ns: int, source: str | None = None) -> str:
        """The canonical symbol ``symbol`` stood for at ``ts_ns`` (UTC ns) for ``source``; itself
        when no alias applies.

        Fast: a symbol that is no alias costs one dict lookup; for an alias, the last answer is
        cached with the span of UTC days over which it holds (no mapping starts or ends inside
        it), so events of one day or one range cost a dict lookup and two comparisons.
        """
        ranges = self._ranges.get(symbol)
        if ranges is None:
            return symbol
        key = (symbol, source) if symbol in self._scoped else symbol
        hit = self._last.get(key)
        if hit is not None and hit[0] <= ts_ns < hit[1]:
            return hit[2]
        day = ts_ns // DAY_NS
        canonical = symbol
        for src, _prec, target, first, end in ranges:
            if (src is None or src == source) and first <= day and (end is None or day < end):
                canonical = target
                break
        bounds = [b for _s, _p, _c, first, end in ranges for b in (first, end) if b is not None]
        lo = max((b for b in bounds if b <= day), default=None)
        hi = min((b for b in bounds if b > day), default=None)
        self._last[key] = (-math.inf if lo is None else lo * DAY_NS, math.inf if hi is None else hi * DAY_NS,
                           canonical)
        return canonical

    def resolve_on(self, symbol: str, day: date | str, source: str | None = None) -> str:
        """:meth:`resolve` for a UTC calendar day (a date or ``YYYY-MM-DD``)."""
        return self.resolve(symbol, _day(rows.parse_date(day, "date")) * DAY_NS, source)

    def is_known(self, symbol: str) -> bool:
        """Registered (as a symbol or a canonical symbol, of the table or of a mapping)."""
        return symbol in self._known

    def symbols(self) -> list[dict]:
        return [dict(self._symbols[s]) for s in sorted(self._symbols)]

    def get(self, symbol: str) -> dict:
        try:
            return dict(self._symbols[symbol])
        except KeyError:
            raise NotFoundError(f"symbol {symbol!r} is not registered") from None

    def mappings(self, alias: str | None = None) -> list[Mapping]:
        return [m for m in self._mappings if alias is None or m.alias == alias]

    # ---- changing (a catalog opened read-write) --------------------------------------------------
    def _writable(self, what: str):
        if self.catalog is None:
            raise MdcsqlError(f"{what} needs a registry loaded from a catalog (SymbolRegistry.load)")
        return self.catalog

    def add(self, symbol: str, *, canonical: str | None = None, aliases: list[str] | None = None,
            asset_class: str | None = None, exchange: str | None = None, currency: str | None = None,
            isin: str | None = None, figi: str | None = None, sedol: str | None = None) -> dict:
        """Register a symbol, or update one: fields not given keep their registered values.

        Example: ``reg.add("AAPL", aliases=["AAPL.O", "US0378331005"], exchange="NASDAQ", isin="US0378331005")``.
        """
        cat = self._writable("add")
        given = {"canonical": canonical, "aliases": aliases, "asset_class": asset_class, "exchange": exchange,
                 "currency": currency, "isin": isin, "figi": figi, "sedol": sedol}
        merged = {k: v for k, v in self._symbols.get(symbol, {}).items() if k in rows.SYMBOL_FIELDS}
        merged.update({k: v for k, v in given.items() if v is not None})
        merged.pop("symbol", None)
        merged.setdefault("canonical", symbol)
        row = cat.register_symbol(symbol, **merged)
        self.reload()
        return row

    def add_mapping(self, alias: str, canonical: str, valid_from: date | str | None = None,
                    valid_to: date | str | None = None, *, source: str | None = None,
                    note: str | None = None) -> Mapping:
        """Map ``alias`` to ``canonical`` on [valid_from, valid_to) (None: since ever / open-ended).

        Adding a mapping that exists already changes nothing; one that overlaps another of the
        same alias and source scope raises ConfigError naming it. The canonical symbol is
        registered if it is not yet.

        Example: ``reg.add_mapping("FB", "META", "2012-05-18", "2022-06-09")``.
        """
        (added,) = self.add_mappings([{"alias": alias, "canonical": canonical, "valid_from": valid_from,
                                       "valid_to": valid_to, "source": source, "note": note}])
        return added

    def add_mappings(self, mappings: list[dict]) -> list[Mapping]:
        """Add several mappings in one transaction: all of them, or none when one conflicts."""
        cat = self._writable("add_mappings")
        todo = [Mapping.of(m) for m in mappings]
        with cat.write_lock("add_mappings"):
            with cat.transaction():
                for m in todo:
                    params = asdict(m)
                    clash = [Mapping(**r) for r in cat.execute(
                        load_sql("queries/registry_mappings_overlapping.sql"),
                        {k: params[k] for k in ("alias", "source", "valid_from", "valid_to")}).dicts()]
                    if len(clash) == 1 and _same_range(clash[0], m):
                        continue                       # already there: adding is idempotent
                    if clash:
                        other = clash[0]
                        raise ConfigError(
                            f"mapping {m} overlaps the registered {other}: an alias stands for one symbol "
                            f"at a time. Remove that one first (mdcsql symbols unalias {shlex.quote(str(cat.root))} "
                            f"{shlex.quote(other.alias)} --from {other.valid_from}"
                            + (f" --source {shlex.quote(other.source)}" if other.source else "")
                            + ") or choose a range that does not overlap it (ranges are [from, to): "
                            "one may end on the day the next starts)")
                    cat.execute(load_sql("queries/registry_mappings_insert.sql"), params)
                    cat.execute(load_sql("queries/registry_symbols_insert_new.sql"),
                                {"symbol": m.canonical, "asset_class": None})
            rows.export_symbols(cat)
        self.reload()
        return todo

    def remove_mapping(self, alias: str, valid_from: date | str | None = None, *,
                       source: str | None = None) -> list[Mapping]:
        """Remove the mapping of ``alias`` (and ``source`` scope) starting on ``valid_from``.

        :raises NotFoundError: there is none.
        """
        cat = self._writable("remove_mapping")
        start = rows.parse_date(valid_from, "valid_from") or rows.SINCE_EVER
        with cat.write_lock("remove_mapping"):
            gone = [Mapping(**r) for r in cat.execute(load_sql("queries/registry_mappings_delete.sql"), {
                "alias": alias, "source": source, "valid_from": start}).dicts()]
            if not gone:
                have = ", ".join(str(m) for m in self.mappings(alias)) or "none"
                raise NotFoundError(f"no mapping of {alias!r} starts on {start}"
                                    + (f" for source {source}" if source else "") + f" (registered: {have})")
            rows.export_symbols(cat)
        self.reload()
        return gone

    def import_lean_map_file(self, path, *, symbol: str | None = None, source: str | None = None) -> list[Mapping]:
        """Turn a Lean map file into date-ranged mappings of one canonical symbol (see
        :func:`parse_lean_map_file` for the rule) and add them (idempotent; one transaction)."""
        return self.add_mappings(parse_lean_map_file(path, symbol=symbol, source=source))

    def set_unknown_symbol_policy(self, policy: str) -> str:
        """``accept`` (register new symbols, the default), ``reject`` or ``quarantine``."""
        cat = self._writable("set_unknown_symbol_policy")
        with cat.write_lock("set_unknown_symbol_policy"):
            rows.write_policy(cat, policy)
            rows.export_symbols(cat)
        self.unknown_symbol_policy = policy
        return policy


def parse_lean_map_file(path, *, symbol: str | None = None, source: str | None = None) -> list[dict]:
    """Mappings (``mapping_params`` dicts) from a Lean map file.

    Rows are ``yyyyMMdd,ticker[,exchange[,mode]]``. Lean's ``MapFile.GetMappedSymbol(date)`` takes
    the first row dated **on or after** the date, so each row says "up to and including this date
    the ticker in effect was X", and Lean has no data before the first row's date. Sorted rows
    d0 < d1 < … < dn with tickers t0 … tn therefore give:

    - t0 on [d0, d0 + 1 day), and ti on [d(i-1) + 1 day, di + 1 day) for i ≥ 1 (half-open UTC days);
    - consecutive rows with the same ticker merged into one range;
    - the last range open-ended (``valid_to`` NULL) when dn is Lean's "still trading" sentinel
      (2050-12-31 or later); otherwise it ends the day after dn (delisted).

    Each range maps the ticker, upper-cased, to the canonical symbol: ``symbol`` when given, else
    the last row's ticker (the current name, which is also the file's name). The range whose ticker
    is the canonical itself is kept too, as an identity mapping: it records since when that name
    is in use. Exchange and mode go into the note.

    :raises InputError: a malformed row (file, line and field named).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise NotFoundError(f"cannot read Lean map file {path}: {exc.strerror}") from None
    parsed: list[tuple[date, str, str, int]] = []
    for line_no, cells in enumerate(csv.reader(text.splitlines()), start=1):
        if not cells or not "".join(cells).strip():
            continue
        raw_date, ticker = cells[0].strip(), (cells[1].strip() if len(cells) > 1 else "")
        if len(raw_date) != 8 or not raw_date.isdigit():
            raise InputError(f"date must be yyyyMMdd, got {raw_date!r}", file=str(path), line=line_no, field="date")
        try:
            day = date(int(raw_date[:4]), int(raw_date[4:6]), int(raw_date[6:]))
        except ValueError:
            raise InputError(f"no such date {raw_date!r}", file=str(path), line=line_no, field="date") from None
        if not ticker:
            raise InputError("missing ticker", file=str(path), line=line_no, field="ticker")
        if parsed and any(p[0] == day for p in parsed):
            raise InputError(f"date {raw_date} appears twice", file=str(path), line=line_no, field="date")
        extra = ", ".join(f"{k} {v.strip()}" for k, v in zip(("exchange", "mode"), cells[2:4]) if v.strip())
        parsed.append((day, ticker.upper(), extra, line_no))
    if not parsed:
        raise InputError("no rows", file=str(path), field="date")
    parsed.sort()
    canonical = symbol or parsed[-1][1]
    ranges: list[list] = []          # [ticker, first day, last day (inclusive), first line, last line, extras]
    previous_day = None
    for day, ticker, extra, line_no in parsed:
        first = day if previous_day is None else previous_day + timedelta(days=1)
        if ranges and ranges[-1][0] == ticker:
            ranges[-1][2], ranges[-1][4] = day, line_no
            if extra and extra not in ranges[-1][5]:
                ranges[-1][5].append(extra)
        else:
            ranges.append([ticker, first, day, line_no, line_no, [extra] if extra else []])
        previous_day = day
    out = []
    for i, (ticker, first, last, line_a, line_b, extras) in enumerate(ranges):
        open_ended = i == len(ranges) - 1 and last >= LEAN_END_OF_TIME
        lines = f"line {line_a}" if line_a == line_b else f"lines {line_a}-{line_b}"
        note = f"Lean map file {path.name} {lines}" + (f" ({'; '.join(extras)})" if extras else "")
        out.append({"alias": ticker, "canonical": canonical, "valid_from": first,
                    "valid_to": None if open_ended else last + timedelta(days=1), "source": source, "note": note})
    return out


# ---------------------------------------------------------------------- sources

class SourceRegistry:
    """The registered data sources (the design's sources.json fields)."""

    def __init__(self, sources: list[dict], *, catalog=None) -> None:
        self.catalog = catalog
        self._sources = {r["id"]: dict(r) for r in sources}

    @classmethod
    def load(cls, catalog) -> "SourceRegistry":
        return cls(catalog.execute(load_sql("queries/catalog_sources_list.sql")).dicts(), catalog=catalog)

    @classmethod
    def load_exported(cls, root) -> "SourceRegistry":
        return cls(rows.read_sources_export(Path(root) / CATALOG_DIR))

    def list(self) -> list[dict]:
        return sorted((dict(r) for r in self._sources.values()),
                      key=lambda r: (r.get("priority") is None, r.get("priority") or 0, r["id"]))

    def get(self, source: str) -> dict:
        try:
            return dict(self._sources[source])
        except KeyError:
            raise NotFoundError(f"source {source!r} is not registered") from None

    def is_enabled(self, source: str) -> bool:
        """False only for a source registered with ``enabled`` false (unregistered ones may write)."""
        return self._sources.get(source, {}).get("enabled") is not False

    def check_writable(self, source: str, root) -> None:
        """:raises SourceDisabledError: the source is registered and disabled."""
        if not self.is_enabled(source):
            raise SourceDisabledError(disabled_message(source, root))

    def _writable(self, what: str):
        if self.catalog is None:
            raise MdcsqlError(f"{what} needs a registry loaded from a catalog (SourceRegistry.load)")
        return self.catalog

    def register(self, id: str, *, name: str | None = None, type: str | None = None,
                 priority: int | None = None, asset_classes: list[str] | None = None,
                 data_types: list[str] | None = None, latency_ms: float | None = None,
                 reliability: float | None = None, cost_per_event: float | None = None,
                 enabled: bool | None = None) -> dict:
        """Register a source, or update one: fields not given keep their registered values
        (a new source is enabled unless ``enabled=False``).

        Example: ``reg.register("alpaca", name="Alpaca Markets", type="live", priority=1, asset_classes=["equity"])``.
        """
        cat = self._writable("register")
        given = {"name": name, "type": type, "priority": priority, "asset_classes": asset_classes,
                 "data_types": data_types, "latency_ms": latency_ms, "reliability": reliability,
                 "cost_per_event": cost_per_event, "enabled": enabled}
        merged = {k: v for k, v in self._sources.get(id, {"enabled": True}).items() if k in rows.SOURCE_FIELDS}
        merged.update({k: v for k, v in given.items() if v is not None})
        merged.pop("id", None)
        row = cat.register_source(id, **merged)
        self._sources[id] = row
        return row

    def set_enabled(self, source: str, enabled: bool) -> dict:
        """Enable or disable a registered source. :raises NotFoundError: it is not registered."""
        cat = self._writable("enable" if enabled else "disable")
        with cat.write_lock("set_enabled"):
            if not cat.execute(load_sql("queries/registry_sources_set_enabled.sql"),
                               {"id": source, "enabled": enabled}).rows:
                raise NotFoundError(f"source {source!r} is not registered; register it with: "
                                    f"mdcsql sources add {shlex.quote(str(cat.root))} {shlex.quote(source)}")
            rows.export_sources(cat)
            self._sources = {r["id"]: r for r in cat.execute(load_sql("queries/catalog_sources_list.sql")).dicts()}
        return self.get(source)

    def enable(self, source: str) -> dict:
        return self.set_enabled(source, True)

    def disable(self, source: str) -> dict:
        return self.set_enabled(source, False)


def disabled_message(source: str, root) -> str:
    return (f"source {source} is disabled in the registry; enable it with: "
            f"mdcsql sources enable {shlex.quote(str(root))} {shlex.quote(source)}")


# ---------------------------------------------------------------------- both, over one catalog

@dataclass
class Registries:
    symbols: SymbolRegistry
    sources: SourceRegistry
    catalog: object


@contextmanager
def open_registries(root, *, write: bool = False, timeout: float = 10.0) -> Iterator[Registries]:
    """Both registries of archive ``root`` over its catalog (read-write with ``write``, else
    read-only unless the catalog must first be created from the tree).

    Example: ``with open_registries("./data", write=True) as reg: reg.sources.disable("polygon")``.
    """
    from mdcsql.catalog import CATALOG_FILE, Catalog
    root = Path(root).resolve()
    if not (root / CATALOG_DIR / "config.json").exists():
        raise NotFoundError(f"{root} is not an mdcsql archive (no {CATALOG_DIR}/config.json); "
                            f"create it with: mdcsql init {shlex.quote(str(root))}")
    read_only = not write and (root / CATALOG_DIR / CATALOG_FILE).exists()
    with Catalog.open(root, read_only=read_only, timeout=timeout) as cat:
        yield Registries(SymbolRegistry.load(cat), SourceRegistry.load(cat), cat)


# ---------------------------------------------------------------------- the write path's gate

class WriteGate:
    """What the write path asks the registries, built from their JSON exports (no DuckDB).

    ``resolve_symbol`` is the Ingestor's per-event hook (None when no alias rewrites anything);
    :meth:`admit` is asked only when an event would open a new hot file. Registry changes made
    while a writer runs reach it on the next :meth:`refresh` (``Archive.writer`` refreshes the
    sources; a new write path reloads everything).
    """

    def __init__(self, root, *, on_new_symbol: Callable[[str, str], None] | None = None,
                 on_new_source: Callable[[str, str], None] | None = None) -> None:
        self.root = Path(root)
        self.on_new_symbol = on_new_symbol
        self.on_new_source = on_new_source
        self.symbols = SymbolRegistry.load_exported(self.root)
        self._accepted: set[str] = set()
        self.refresh_sources()

    def refresh_sources(self) -> "WriteGate":
        self.sources = SourceRegistry.load_exported(self.root)
        self._known_sources = {r["id"] for r in self.sources.list()}
        return self

    @property
    def resolve_symbol(self) -> Callable[[str, int, str], str] | None:
        return self.symbols.resolve if self.symbols.rewrites else None

    def check_source(self, source: str) -> None:
        self.sources.check_writable(source, self.root)

    def admit(self, source: str, symbol: str, asset_class: str, tier_root: str) -> str | None:
        """None to store the event; a reason to quarantine it; raises to reject it.

        :raises SourceDisabledError: the source is disabled in the registry.
        :raises InputError: the symbol is unknown and the policy is ``reject``.
        """
        self.sources.check_writable(source, self.root)
        if source not in self._known_sources:
            self._known_sources.add(source)
            if self.on_new_source is not None:
                self.on_new_source(source, "live" if tier_root == "live" else "historical")
        if self.symbols.is_known(symbol) or symbol in self._accepted:
            return None
        policy = self.symbols.unknown_symbol_policy
        if policy == "accept":
            self._accepted.add(symbol)
            if self.on_new_symbol is not None:
                self.on_new_symbol(symbol, asset_class)
            return None
        fix = f"register it with: mdcsql symbols add {shlex.quote(str(self.root))} {shlex.quote(symbol)}"
        if policy == "reject":
            raise InputError(f"unknown symbol {symbol!r} from source {source!r} is rejected by the "
                             f"unknown-symbol policy; {fix}", field="symbol")
        return (f"unknown symbol {symbol!r} from source {source!r} (unknown-symbol policy: quarantine); "
                f"{fix}, then ingest these lines")
