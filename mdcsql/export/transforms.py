"""The design's export transform pipeline, as pure functions over Arrow tables.

Steps (design: "Data Transformation Pipeline"): `TimeAlign` (a regular grid, last or first value
per bucket, optionally forward-filled), `Ohlcv` (trade or quote bars stamped at bar start),
`Dedup`, `QualityFilter` (by a score column when present) and `Normalize` (symbol
canonicalisation through the symbol registry, case, price scaling). Aggregations run as SQL
files (`mdcsql/sql/queries/export_transform_*.sql`) on a private in-memory DuckDB over the
table; prices stay DECIMAL, so bars are exact.

    pipe = parse_pipeline(["dedup", "ohlcv:1min"])      # what ExportRequest.transforms holds
    bars = pipe.apply(trades_table)                     # Arrow table in, Arrow table out
    pipe.notes                                          # what each step did, for the metadata

A spec is a step name, `name:arg` (the step's main parameter) or an object
`{"step": "align", "interval": "1s", "fill": true}`. Bad specs raise ConfigError.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from mdcsql.errors import ConfigError, InputError
from mdcsql.sql import load_sql

__all__ = ["Step", "TimeAlign", "Ohlcv", "Dedup", "QualityFilter", "Normalize", "Pipeline",
           "Context", "StepReport", "TransformedSelection", "apply", "parse_interval",
           "parse_pipeline", "STEPS"]

_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
          "min": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000}
_INTERVAL = re.compile(r"^(\d+)\s*(ns|us|ms|s|min|m|h|d)$")


def parse_interval(text: Any) -> int:
    """'1s', '500ms', '1min' (or '1m'), '4h', '1d' -> nanoseconds (> 0)."""
    if isinstance(text, int) and not isinstance(text, bool) and text > 0:
        return text
    match = _INTERVAL.match(str(text).strip().lower()) if isinstance(text, str) else None
    if not match or int(match.group(1)) == 0:
        raise ConfigError(f"invalid interval {text!r}: a positive whole number with a unit "
                          f"ns, us, ms, s, min (or m), h, d, e.g. '1s', '1min'")
    return int(match.group(1)) * _UNITS[match.group(2)]


@dataclass
class Context:
    """What a step may need besides the table: the archive's symbol registry."""

    registry: Any = None


@dataclass(frozen=True)
class StepReport:
    step: str
    rows_in: int
    rows_out: int
    note: str = ""


class Step:
    """One transform: `run(table, ctx) -> (table, note)`; `NAME` is its spec name."""

    NAME: ClassVar[str] = ""
    PRIMARY: ClassVar[str | None] = None  # the parameter of the short form 'name:arg'

    def run(self, table: pa.Table, ctx: Context) -> tuple[pa.Table, str]:
        raise NotImplementedError

    def spec(self) -> dict:
        """The object form of this step (round-trips through parse_pipeline)."""
        out = {"step": self.NAME}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value != f.default or f.name == self.PRIMARY:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def _need(table: pa.Table, step: str, *columns: str) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise InputError(f"transform {step}: the table has no column {', '.join(missing)} "
                         f"(it has: {', '.join(table.column_names)})")


def _run_sql(name: str, table: pa.Table, params: dict, view: str = "transform_input") -> pa.Table:
    """Run `queries/<name>.sql` over `table` (as `view`) on a private in-memory connection."""
    con = duckdb.connect()
    try:
        con.register(view, table)
        return con.sql(load_sql(f"queries/{name}.sql"), params=params).to_arrow_table()
    finally:
        con.close()


def _with_row(table: pa.Table) -> pa.Table:
    return table.append_column("__row", pa.array(range(table.num_rows), pa.int64()))


def _ts_like(result: pa.Table, source_type: pa.DataType) -> pa.Table:
    """Give `ts` back the input's timestamp type (DuckDB returns naive nanoseconds)."""
    i = result.column_names.index("ts")
    if result.schema.field(i).type == source_type:
        return result
    return result.set_column(i, "ts", result.column(i).cast(source_type))


@dataclass(frozen=True)
class TimeAlign(Step):
    """Sample rows onto a regular grid per symbol: each grid point (stamped at bucket start)
    holds the last (or first) row of its bucket; `fill` adds empty grid points as copies of the
    previous one, flagged in a `filled` column."""

    NAME: ClassVar[str] = "align"
    PRIMARY: ClassVar[str] = "interval"
    interval: str = "1s"
    take: str = "last"
    fill: bool = False

    def __post_init__(self):
        parse_interval(self.interval)
        if self.take not in ("last", "first"):
            raise ConfigError(f"align: take must be 'last' or 'first', got {self.take!r}")
        if not isinstance(self.fill, bool):
            raise ConfigError(f"align: fill must be true or false, got {self.fill!r}")

    def run(self, table, ctx):
        _need(table, self.NAME, "ts", "symbol")
        step = parse_interval(self.interval)
        out = _run_sql("export_transform_align", _with_row(table),
                       {"step": step, "take_last": self.take == "last", "fill": self.fill})
        order = [c for c in table.column_names if c in out.column_names] + ["filled"]
        out = _ts_like(out.select(order), table.schema.field("ts").type)
        filled = pc.sum(out.column("filled")).as_py() or 0
        return out, (f"{self.take} value per {self.interval} bucket"
                     + (f", {filled} empty bucket(s) forward-filled" if self.fill else ""))


@dataclass(frozen=True)
class Ohlcv(Step):
    """Bars per symbol (and source with `by_source`) stamped at the bar's start: from trades
    (`kind='trade'`: open, high, low, close, volume, trades) or BBO quotes (`kind='quote'`: bid
    and ask OHLC with the last sizes, Lean's quote bar). Buckets without events have no bar."""

    NAME: ClassVar[str] = "ohlcv"
    PRIMARY: ClassVar[str] = "interval"
    interval: str = "1min"
    kind: str = "trade"
    by_source: bool = False

    def __post_init__(self):
        parse_interval(self.interval)
        if self.kind not in ("trade", "quote"):
            raise ConfigError(f"ohlcv: kind must be 'trade' or 'quote', got {self.kind!r}")
        if not isinstance(self.by_source, bool):
            raise ConfigError(f"ohlcv: by_source must be true or false, got {self.by_source!r}")

    def run(self, table, ctx):
        cols = (("price", "size") if self.kind == "trade"
                else ("bid_price", "bid_size", "ask_price", "ask_size"))
        _need(table, self.NAME, "ts", "symbol", *cols)
        source = (table.column("source") if "source" in table.column_names
                  else pa.nulls(table.num_rows, pa.string()))
        slim = pa.table([table.column("ts"), table.column("symbol"), source,
                         *(table.column(c) for c in cols)], names=["ts", "symbol", "source", *cols])
        name = "export_transform_ohlcv" if self.kind == "trade" else "export_transform_quote_bars"
        out = _run_sql(name, _with_row(slim),
                       {"step": parse_interval(self.interval), "by_source": self.by_source})
        if not self.by_source:
            out = out.drop_columns(["source"])
        out = _ts_like(out, table.schema.field("ts").type)
        return out, f"{self.kind} bars of {self.interval}, stamped at bar start"


@dataclass(frozen=True)
class Dedup(Step):
    """Drop repeated rows, keeping the first. Keys: 'all' (every column but `file`: the same event
    read twice, e.g. from two tiers), 'event' (source, symbol, seq: only for archives whose seq
    never restarts within a source and symbol), or a list of column names."""

    NAME: ClassVar[str] = "dedup"
    PRIMARY: ClassVar[str] = "keys"
    keys: Any = "all"

    def __post_init__(self):
        keys = self.keys
        if isinstance(keys, str) and "," in keys:
            object.__setattr__(self, "keys", tuple(k.strip() for k in keys.split(",") if k.strip()))
        elif isinstance(keys, list):
            object.__setattr__(self, "keys", tuple(keys))
        ok = self.keys in ("event", "all") or (
            isinstance(self.keys, tuple) and self.keys and all(isinstance(k, str) for k in self.keys))
        if not ok:
            raise ConfigError(f"dedup: keys must be 'event', 'all' or column names, got {keys!r}")

    def _columns(self, table: pa.Table) -> list[str]:
        if isinstance(self.keys, tuple):
            _need(table, self.NAME, *self.keys)
            return list(self.keys)
        if self.keys == "event" and all(c in table.column_names for c in ("source", "symbol", "seq")):
            return ["source", "symbol", "seq"]
        return [c for c in table.column_names if c != "file"]

    def run(self, table, ctx):
        keys = self._columns(table)
        if table.num_rows == 0:
            return table, f"no rows (keys: {', '.join(keys)})"
        keep = _run_sql("export_transform_dedup", _with_row(table.select(keys)), {},
                        view="dedup_input").column("__keep")
        out = table if len(keep) == table.num_rows else table.take(keep)
        return out, f"{table.num_rows - out.num_rows} duplicate(s) dropped (keys: {', '.join(keys)})"


@dataclass(frozen=True)
class QualityFilter(Step):
    """Keep rows whose score column is >= `min_score` (rows without a score are kept unless
    `keep_unscored` is false). A table without the column passes unchanged, with a note."""

    NAME: ClassVar[str] = "quality"
    PRIMARY: ClassVar[str] = "min_score"
    min_score: float = 0.9
    column: str = "quality_score"
    keep_unscored: bool = True

    def __post_init__(self):
        score = self.min_score
        if isinstance(score, str):
            try:
                score = float(score)
            except ValueError:
                raise ConfigError(f"quality: min_score must be a number, got {score!r}") from None
            object.__setattr__(self, "min_score", score)
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise ConfigError(f"quality: min_score must be a number, got {score!r}")

    def run(self, table, ctx):
        if self.column not in table.column_names:
            return table, (f"no {self.column} column: quality filter passed all "
                           f"{table.num_rows} row(s) unchanged")
        score = table.column(self.column)
        mask = pc.greater_equal(score.cast(pa.float64()), self.min_score)
        mask = pc.fill_null(mask, self.keep_unscored)
        out = table.filter(mask)
        return out, f"{table.num_rows - out.num_rows} row(s) with {self.column} < {self.min_score} dropped"


_PRICE_COLUMNS = ("price", "bid_price", "ask_price", "open", "high", "low", "close",
                  "bid_open", "bid_high", "bid_low", "bid_close", "ask_open", "ask_high",
                  "ask_low", "ask_close")


@dataclass(frozen=True)
class Normalize(Step):
    """Normalise values. `symbols`: 'canonical' (the registry's symbol for each row's UTC day and
    source, e.g. FB -> META), 'upper', 'lower' or 'keep'. `price_scale`: a decimal factor applied
    to every price column (e.g. '10000' for Lean's deci-cents; exact for DECIMAL columns, an error
    if a result does not fit DECIMAL(38,18))."""

    NAME: ClassVar[str] = "normalize"
    PRIMARY: ClassVar[str] = "symbols"
    symbols: str = "canonical"
    price_scale: Any = None

    def __post_init__(self):
        if self.symbols not in ("canonical", "upper", "lower", "keep"):
            raise ConfigError(f"normalize: symbols must be canonical, upper, lower or keep, "
                              f"got {self.symbols!r}")
        if self.price_scale is not None:
            try:
                factor = Decimal(str(self.price_scale))
            except InvalidOperation:
                factor = None
            if factor is None or not factor.is_finite() or factor <= 0:
                raise ConfigError(f"normalize: price_scale must be a positive number, "
                                  f"got {self.price_scale!r}")

    def run(self, table, ctx):
        notes = []
        if self.symbols != "keep" and "symbol" in table.column_names:
            table, note = self._symbols(table, ctx)
            notes.append(note)
        if self.price_scale is not None:
            table, note = self._scale(table)
            notes.append(note)
        return table, "; ".join(notes) or "nothing to normalise"

    def _symbols(self, table: pa.Table, ctx: Context) -> tuple[pa.Table, str]:
        i = table.column_names.index("symbol")
        col = table.column(i)
        if self.symbols in ("upper", "lower"):
            fn = pc.utf8_upper if self.symbols == "upper" else pc.utf8_lower
            return table.set_column(i, "symbol", fn(col)), f"symbols {self.symbols}-cased"
        if ctx.registry is None:
            raise ConfigError("normalize: symbols='canonical' needs the archive's symbol registry "
                              "(Pipeline.apply(table, registry=SymbolRegistry.load(catalog)))")
        _need(table, self.NAME, "ts")
        day = pc.cast(pc.floor_temporal(table.column("ts"), unit="day").cast(pa.timestamp("ns")),
                      pa.int64())
        source = (table.column("source") if "source" in table.column_names
                  else pa.nulls(table.num_rows, pa.string()))
        keys = pa.table({"symbol": col, "day": day, "source": source})
        distinct = keys.group_by(["symbol", "day", "source"], use_threads=False).aggregate([])
        resolved, changed = {}, 0
        for sym, d, src in zip(*(distinct.column(c).to_pylist() for c in ("symbol", "day", "source"))):
            if sym is None:
                continue
            when = datetime.fromtimestamp(d // 1_000_000_000, tz=timezone.utc).date()
            canon = ctx.registry.resolve_on(sym, when, src)
            resolved[(sym, d, src)] = canon
            changed += canon != sym
        if not changed:
            return table, "symbols already canonical"
        new = [resolved.get(k, k[0]) for k in zip(col.to_pylist(), day.to_pylist(), source.to_pylist())]
        return (table.set_column(i, "symbol", pa.array(new, col.type)),
                f"symbols canonicalised through the registry ({changed} symbol-day(s) renamed)")

    def _scale(self, table: pa.Table) -> tuple[pa.Table, str]:
        factor = Decimal(str(self.price_scale))
        scaled = []
        for name in _PRICE_COLUMNS:
            if name not in table.column_names:
                continue
            i = table.column_names.index(name)
            col = table.column(i)
            if pa.types.is_decimal(col.type):
                new = _scale_decimal(name, col, factor)
            elif pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
                new = pc.multiply(col.cast(pa.float64()), float(factor))
            else:
                continue
            table = table.set_column(i, name, new)
            scaled.append(name)
        return table, (f"{', '.join(scaled)} x {factor}" if scaled else "no price column to scale")


def _scale_decimal(name: str, col: pa.ChunkedArray, factor: Decimal) -> pa.ChunkedArray:
    """Exact decimal x factor, computed once per distinct value (prices repeat a lot)."""
    enc = col.combine_chunks().dictionary_encode()
    quantum = Decimal(1).scaleb(-col.type.scale)
    values = []
    for v in enc.dictionary.to_pylist():
        scaled = v * factor
        exact = scaled.quantize(quantum)
        if exact != scaled:
            raise InputError(f"normalize: {name} {v} x {factor} = {scaled} has more than "
                             f"{col.type.scale} decimals ({col.type})")
        values.append(exact)
    try:
        dictionary = pa.array(values, col.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"normalize: {name} x {factor} does not fit {col.type}: {exc}") from None
    return pa.chunked_array([dictionary.take(enc.indices)], col.type)


STEPS: dict[str, type[Step]] = {s.NAME: s for s in (TimeAlign, Ohlcv, Dedup, QualityFilter, Normalize)}
_ALIASES = {"time_alignment": "align", "timealign": "align", "bars": "ohlcv",
            "ohlcv_aggregation": "ohlcv", "deduplication": "dedup", "dedupe": "dedup",
            "quality_filter": "quality", "normalise": "normalize", "normalization": "normalize"}


class Pipeline:
    """Steps applied in order. `apply` returns the table; `reports`/`notes` say what happened."""

    def __init__(self, steps: list[Step] | tuple[Step, ...] = ()) -> None:
        for s in steps:
            if not isinstance(s, Step):
                raise ConfigError(f"not a transform step: {s!r}")
        self.steps = tuple(steps)
        self.reports: list[StepReport] = []

    def __bool__(self) -> bool:
        return bool(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def notes(self) -> list[str]:
        return [f"{r.step}: {r.note} ({r.rows_in} -> {r.rows_out} rows)" for r in self.reports]

    def apply(self, table, *, registry=None) -> pa.Table:
        """Run every step over `table` (an Arrow table, record batch reader or DuckDB relation)."""
        table = _as_table(table)
        ctx = Context(registry=registry)
        self.reports = []
        for step in self.steps:
            rows_in = table.num_rows
            table, note = step.run(table, ctx)
            self.reports.append(StepReport(step.NAME, rows_in, table.num_rows, note))
        return table

    def specs(self) -> list[dict]:
        """The steps as objects (for export metadata and history)."""
        return [s.spec() for s in self.steps]


def _as_table(data) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if isinstance(data, duckdb.DuckDBPyRelation):
        return data.to_arrow_table()
    raise InputError(f"transforms take an Arrow table or a DuckDB relation, got {type(data).__name__}")


def parse_step(spec: Any) -> Step:
    """One step from 'name', 'name:arg' or {'step': name, ...parameters}."""
    if isinstance(spec, Step):
        return spec
    if isinstance(spec, str):
        name, _, arg = spec.strip().partition(":")
        params = {}
        if arg:
            cls = STEPS.get(_ALIASES.get(name.lower(), name.lower()))
            if cls is None:
                _unknown_step(name)
            params[cls.PRIMARY] = arg
            if cls is TimeAlign and arg.endswith(":fill"):
                params = {"interval": arg[:-5], "fill": True}
    elif isinstance(spec, dict):
        params = dict(spec)
        name = params.pop("step", None)
        if not isinstance(name, str):
            raise ConfigError(f"a transform object needs \"step\" (one of {', '.join(STEPS)}), got {spec!r}")
    else:
        raise ConfigError(f"a transform is a name, 'name:arg' or an object, got {spec!r}")
    cls = STEPS.get(_ALIASES.get(name.lower(), name.lower())) or _unknown_step(name)
    allowed = [f.name for f in dataclasses.fields(cls)]
    for key in params:
        if key not in allowed:
            match = difflib.get_close_matches(key, allowed, n=1)
            hint = f" Did you mean {match[0]!r}?" if match else ""
            raise ConfigError(f"transform {cls.NAME}: unknown parameter {key!r}; allowed: "
                              f"{', '.join(allowed)}.{hint}")
    return cls(**params)


def _unknown_step(name: str):
    match = difflib.get_close_matches(name.lower(), list(STEPS) + list(_ALIASES), n=1)
    hint = f" Did you mean {_ALIASES.get(match[0], match[0])!r}?" if match else ""
    raise ConfigError(f"unknown transform {name!r}; allowed: {', '.join(STEPS)}.{hint}")


def parse_pipeline(specs: Any) -> Pipeline:
    """A Pipeline from ExportRequest.transforms / a profile's "transforms" (None or [] = no-op)."""
    if specs is None:
        return Pipeline()
    if isinstance(specs, (str, dict)):
        specs = [specs]
    if isinstance(specs, Pipeline):
        return specs
    return Pipeline([parse_step(s) for s in specs])


# -- the export core's hook ------------------------------------------------------------------------

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def _kind(dtype: pa.DataType) -> str:
    if pa.types.is_timestamp(dtype):
        return "time"
    if pa.types.is_decimal(dtype):
        return "decimal"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        inner = dtype.value_type
        if (pa.types.is_list(inner) or pa.types.is_large_list(inner)) and pa.types.is_decimal(inner.value_type):
            return "levels"
        return "list"
    return "plain"


class TransformedSelection:
    """A Selection whose rows went through a Pipeline: the same interface the formats use
    (`reader`, `sql`, `params`, `expected_counts`), over the transformed Arrow table, which is
    registered on the export's connection as `export_transformed_<view>`."""

    def __init__(self, sel, table: pa.Table, pipeline: Pipeline, con) -> None:
        self.request, self.event_type, self.marks = sel.request, sel.event_type, getattr(sel, "marks", None)
        self.base, self.pipeline = sel, pipeline
        bad = [c for c in table.column_names if not _IDENT.match(c)]
        if bad:
            raise InputError(f"transformed {sel.view}: unusable column name(s) {', '.join(bad)}")
        self.table = table
        self.columns = table.column_names
        self.table_name = f"export_transformed_{sel.view}"
        con.register(self.table_name, table)

    @property
    def view(self) -> str:
        return self.base.view

    def sql(self, projection: str = "native", columns: list[str] | None = None) -> str:
        from mdcsql.export.selection import _expr
        wanted = columns or self.columns
        missing = [c for c in wanted if c not in self.columns]
        if missing:
            raise InputError(f"transformed {self.view} has no column {', '.join(missing)}")
        kinds = {f.name: _kind(f.type) for f in self.table.schema}
        exprs = ", ".join(_expr(c, kinds[c], projection) for c in wanted)
        return (load_sql("queries/export_transformed_select.sql")
                .replace("{{columns}}", exprs).replace("{{table}}", self.table_name))

    def params(self) -> dict:
        return {}

    def reader(self, con=None, *, batch_rows: int = 122_880) -> pa.RecordBatchReader:
        from mdcsql.export.selection import utc_schema
        schema = utc_schema(self.table.schema)
        table = self.table.cast(schema)
        return pa.RecordBatchReader.from_batches(schema, table.to_batches(max_chunksize=batch_rows))

    def expected_counts(self, con=None) -> dict[tuple[str, str], int]:
        """Rows per (symbol, UTC day) of the transformed table (what the files must hold)."""
        if "symbol" not in self.columns or "ts" not in self.columns:
            return {}
        day = pc.strftime(self.table.column("ts").cast(pa.timestamp("ns", tz="UTC")), format="%Y-%m-%d")
        grouped = pa.table({"symbol": self.table.column("symbol"), "day": day}).group_by(
            ["symbol", "day"]).aggregate([([], "count_all")])
        return {(s, d): n for s, d, n in zip(*(grouped.column(c).to_pylist()
                                               for c in ("symbol", "day", "count_all")))}


def apply(ctx, sel, specs) -> TransformedSelection:
    """The export core's hook: run `specs` (ExportRequest.transforms) over `sel`'s rows.

    Reads the selection into memory (transforms such as bars and dedup need whole groups), loads
    the archive's symbol registry only when a step canonicalises symbols, and records what each
    step did in `ctx.notes`.
    """
    pipeline = parse_pipeline(specs)
    registry = None
    if any(isinstance(s, Normalize) and s.symbols == "canonical" for s in pipeline.steps):
        from mdcsql.registry import SymbolRegistry
        registry = SymbolRegistry.load(ctx.catalog)
    table = pipeline.apply(sel.reader(ctx.con), registry=registry)
    ctx.notes.extend(f"{sel.event_type} {note}" for note in pipeline.notes)
    ctx.details.setdefault("transforms", pipeline.specs())
    return TransformedSelection(sel, table, pipeline, ctx.con)
