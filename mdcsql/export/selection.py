"""The rows of one event type for an export: SQL over the catalog's views, values bound.

``Selection.sql(projection)`` renders ``queries/export_select.sql`` with identifiers from
allow-lists only (the typed view of an ``EVENT_TYPES`` member and its columns from
``mdcsql.catalog.views.JSON_COLUMNS``); symbols, sources, times and watermarks are parameters.
Projections: ``native`` (the view's own types: DECIMAL(38,18), TIMESTAMP_NS, lists), ``json`` and
``csv`` (times as ISO-8601 UTC text with nanoseconds, decimals as exact text without padding;
``csv`` renders lists as JSON text).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from mdcsql.catalog.views import JSON_COLUMNS
from mdcsql.errors import MdcsqlError
from mdcsql.export.request import TYPE_VIEWS, ExportRequest
from mdcsql.sql import load_sql

__all__ = ["Selection", "selections", "archive_names", "column_kinds", "utc_schema", "prepare_connection"]

TIME_COLUMNS = ("ts", "recv_ts")
PROJECTIONS = ("native", "json", "csv")


def column_kinds(event_type: str) -> dict[str, str]:
    """Column -> kind (``time``, ``decimal``, ``levels``, ``list``, ``plain``) of a type's view."""
    kinds = {}
    for col, sqltype in JSON_COLUMNS[event_type].items():
        if col in TIME_COLUMNS:
            kinds[col] = "time"
        elif sqltype.startswith("DECIMAL") and sqltype.endswith("[][]"):
            kinds[col] = "levels"
        elif sqltype.startswith("DECIMAL"):
            kinds[col] = "decimal"
        elif sqltype.endswith("[]"):
            kinds[col] = "list"
        else:
            kinds[col] = "plain"
    return kinds


def _expr(col: str, kind: str, projection: str) -> str:
    ref = f"v.{col}"
    if projection == "native":
        return ref
    rendered = {"time": f"export_ts({ref})", "decimal": f"export_dec({ref})",
                "levels": f"export_levels({ref})", "list": ref, "plain": ref}[kind]
    if projection == "csv" and kind in ("levels", "list"):
        rendered = f"to_json({rendered})"
    return f"{rendered} AS {col}"


def prepare_connection(con) -> None:
    """Create the temporary text macros (``queries/export_macros.sql``) on ``con``."""
    con.execute(load_sql("queries/export_macros.sql"))


def utc_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every timestamp column marked UTC (DuckDB's TIMESTAMP_NS is naive UTC)."""
    fields = [f.with_type(pa.timestamp(f.type.unit, tz="UTC"))
              if pa.types.is_timestamp(f.type) and f.type.tz is None else f for f in schema]
    return pa.schema(fields, metadata=schema.metadata)


@dataclass
class Selection:
    """One event type of an export request (plus, for incremental runs, the watermarks)."""

    request: ExportRequest
    event_type: str
    marks: list[tuple[str, str, int | None, int]] | None = None   # (symbol, source, prev ns, new ns)
    columns: list[str] = field(init=False)

    def __post_init__(self) -> None:
        if self.event_type not in TYPE_VIEWS:
            raise MdcsqlError(f"unknown event type {self.event_type!r}; allowed: {', '.join(TYPE_VIEWS)}")
        self.columns = list(JSON_COLUMNS[self.event_type])

    @property
    def view(self) -> str:
        return TYPE_VIEWS[self.event_type]

    def sql(self, projection: str = "native", columns: list[str] | None = None) -> str:
        """The SELECT text (placeholders filled from allow-lists only)."""
        if projection not in PROJECTIONS:
            raise MdcsqlError(f"unknown projection {projection!r}; allowed: {', '.join(PROJECTIONS)}")
        kinds = column_kinds(self.event_type)
        wanted = columns or self.columns
        bad = [c for c in wanted if c not in kinds]
        if bad:
            raise MdcsqlError(f"unknown column(s) {', '.join(bad)} of {self.view}; allowed: {', '.join(kinds)}")
        text = load_sql("queries/export_select.sql")
        dedupe = ""
        if self.request.dedupe:
            dedupe = load_sql("queries/export_dedupe.sql").replace(
                "{{row}}", ", ".join(f"v.{c}" for c in self.columns))
        since = since_filter = ""
        if self.marks is not None:
            since = load_sql("queries/export_since_join.sql")
            since_filter = load_sql("queries/export_since_filter.sql")
        return (text.replace("{{columns}}", ", ".join(_expr(c, kinds[c], projection) for c in wanted))
                .replace("{{view}}", self.view).replace("{{since_filter}}", since_filter)
                .replace("{{since}}", since).replace("{{dedupe}}", dedupe))

    def params(self) -> dict:
        r = self.request
        p = {"symbols": r.symbols or None, "sources": r.sources or None,
             "start_ns": r.start_ns, "end_ns": r.end_ns}
        if self.marks is not None:
            p |= {"mark_symbols": [m[0] for m in self.marks], "mark_sources": [m[1] for m in self.marks],
                  "mark_prev": [m[2] for m in self.marks], "mark_new": [m[3] for m in self.marks]}
        return p

    def reader(self, con, *, batch_rows: int = 122_880) -> pa.RecordBatchReader:
        """Native rows as Arrow batches, timestamps typed ``timestamp[ns, tz=UTC]``."""
        raw = con.sql(self.sql("native"), params=self.params()).to_arrow_reader(batch_rows)
        schema = utc_schema(raw.schema)
        return pa.RecordBatchReader.from_batches(schema, (b.cast(schema) for b in raw))

    def latest(self, con) -> list[tuple[str, str, int]]:
        """(symbol, source, latest ts ns) of this selection ignoring watermarks (the new marks)."""
        plain = Selection(self.request, self.event_type)
        sql = load_sql("queries/export_marks.sql").replace("{{selection}}", plain.sql("native", ["symbol", "source", "ts"]))
        return [(s, src, int(n)) for s, src, n in con.execute(sql, plain.params()).fetchall()]

    def expected_counts(self, con) -> dict[tuple[str, str], int]:
        """Events per (symbol, UTC day) the archive holds for this selection."""
        sql = load_sql("queries/export_counts.sql").replace("{{selection}}", self.sql("native", ["symbol", "ts"]))
        return {(s, d): int(n) for s, d, n in con.execute(sql, self.params()).fetchall()}


def selections(request: ExportRequest, marks: dict | None = None) -> list[Selection]:
    """One selection per requested type (``marks``: type -> watermarks of an incremental run)."""
    return [Selection(request, t, None if marks is None else marks.get(t, [])) for t in request.types]


def archive_names(catalog) -> dict[str, set[str]]:
    """Symbols, sources and types an export request may name (files ∪ registries)."""
    out: dict[str, set[str]] = {"symbol": set(), "source": set(), "type": set()}
    for kind, name in catalog.execute(load_sql("queries/export_names.sql")).rows:
        out[kind].add(name)
    return {"symbols": out["symbol"], "sources": out["source"], "types": out["type"]}
