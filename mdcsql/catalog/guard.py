"""Vetting of user SQL (``Catalog.query``, ``mdcsql sql``, the HTTP endpoint): invariant 5.

The user's text is judged by **DuckDB's own parser** — the parser that will run it — so there is
no gap between what is checked and what executes (a second SQL grammar such as sqlglot's would
accept or split some statements differently from DuckDB):

1. ``extract_statements`` must yield exactly one statement, of kind SELECT (which covers
   ``WITH``, ``FROM``-first, ``VALUES``, ``TABLE``, ``DESCRIBE``, ``SHOW`` and ``SUMMARIZE``) or
   EXPLAIN of such a query. COPY, ATTACH, INSTALL, LOAD, SET, PRAGMA, CALL, CREATE, INSERT, ...
   are rejected, naming the kind.
2. ``json_serialize_sql`` gives the statement's parse tree; every table function in it must be on
   an allow-list (series, unnest, JSON walkers, metadata) or a table macro of the catalog. So
   ``read_json``, ``read_csv``, ``read_parquet``, ``read_text``, ``glob``, ``query`` & co. are
   rejected: user SQL reads files only through the catalog's views.
3. A table name that looks like a file (``FROM 'x.csv'``, ``FROM "/etc/passwd"``: DuckDB's
   replacement scans) is rejected.

The catalog connection is also locked down before user SQL runs (see ``Catalog.query``): read-only
database, file access limited to the archive's tier roots, configuration locked — so even a gap in
this module could neither write the catalog nor read files outside the archive.
"""

from __future__ import annotations

import json
import re
from typing import Callable, Iterable

from mdcsql.errors import MdcsqlError

__all__ = ["ALLOWED_TABLE_FUNCTIONS", "vet_user_sql"]

#: table functions user SQL may call (besides the catalog's own table macros)
ALLOWED_TABLE_FUNCTIONS = frozenset({
    "range", "generate_series", "unnest", "repeat", "repeat_row", "json_each", "json_tree",
    "duckdb_columns", "duckdb_constraints", "duckdb_databases", "duckdb_dependencies",
    "duckdb_functions", "duckdb_indexes", "duckdb_keywords", "duckdb_schemas", "duckdb_sequences",
    "duckdb_settings", "duckdb_tables", "duckdb_types", "duckdb_views",
    "pragma_table_info", "pragma_show", "pragma_version", "pragma_database_size",
    "pragma_platform", "pragma_storage_info", "pragma_metadata_info",
    "icu_calendar_names", "pg_timezone_names",
})
_FILE_FUNCTION = re.compile(r"^(read_|parquet_|sniff_|iceberg_|delta_|sqlite_|postgres_|mysql_|ducklake_)"
                            r"|^(glob|query|query_table|json_execute_serialized_sql|arrow_scan"
                            r"|pandas_scan|python_map_function|python_arrow_scan|seq_scan)$")
_FILE_LIKE_TABLE = re.compile(r"[./\\:~]")
_EXPLAIN = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*explain\b(?:\s+analy[sz]e\b)?", re.I | re.S)


def _reject(message: str) -> MdcsqlError:
    return MdcsqlError(f"query rejected: {message}")


def vet_user_sql(sql: str, *, split: Callable[[str], list[tuple[str, str]]],
                 serialize: Callable[[str], str], table_macros: Iterable[str] = ()) -> None:
    """Raise MdcsqlError unless ``sql`` is one read-only query that reads files only via views.

    :param split: text -> [(statement kind, statement text)] (DuckDB's ``extract_statements``).
    :param serialize: SELECT text -> DuckDB's ``json_serialize_sql`` output.
    :param table_macros: table macros of the catalog, trusted like its views.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise _reject("empty SQL")
    try:
        statements = split(sql)
    except MdcsqlError:
        raise
    except Exception as exc:   # a DuckDB parser error: show DuckDB's own message
        raise MdcsqlError(f"SQL syntax error: {str(exc).strip()}") from None
    if len(statements) != 1:
        raise _reject(f"expected exactly one statement, got {len(statements)}")
    kind, text = statements[0]
    if kind == "EXPLAIN":
        m = _EXPLAIN.match(text)
        inner = text[m.end():] if m else ""
        inner_statements = split(inner) if inner.strip() else []
        if len(inner_statements) != 1 or inner_statements[0][0] != "SELECT":
            raise _reject("EXPLAIN is allowed only in front of a single SELECT query")
        text = inner
    elif kind != "SELECT":
        raise _reject(f"{kind} statements are not allowed; only SELECT / WITH / DESCRIBE / SHOW / "
                      "SUMMARIZE / EXPLAIN queries run here (the catalog is read-only)")
    tree = json.loads(serialize(text))
    if tree.get("error"):
        raise MdcsqlError(f"SQL error: {tree.get('error_message') or tree}")
    table_functions: set[str] = set()
    functions: set[str] = set()
    tables: set[str] = set()
    _walk(tree.get("statements", []), table_functions, functions, tables)
    allowed = ALLOWED_TABLE_FUNCTIONS | {m.lower() for m in table_macros}
    for name in sorted(functions | table_functions):
        if _FILE_FUNCTION.search(name):
            raise _reject(f"function {name}() is not allowed: user SQL reads the archive only "
                          "through the catalog's views (trades, bbo_quotes, l2_snapshots, "
                          "order_flow, historical_bars, heartbeats, events) and tables")
    for name in sorted(table_functions - allowed):
        raise _reject(f"table function {name}() is not allowed here")
    for name in sorted(tables):
        if _FILE_LIKE_TABLE.search(name):
            raise _reject(f"table name {name!r} looks like a file path; files are read only "
                          "through the catalog's views")


def _walk(node, table_functions: set, functions: set, tables: set) -> None:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            kind = item.get("type")
            if kind == "TABLE_FUNCTION":
                fn = item.get("function") or {}
                table_functions.add(str(fn.get("function_name", "")).lower())
            elif kind == "BASE_TABLE":
                tables.add(str(item.get("table_name", "")))
            if item.get("class") == "FUNCTION" and "function_name" in item:
                functions.add(str(item["function_name"]).lower())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
