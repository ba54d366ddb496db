"""The Catalog: the one object that owns the DuckDB connection of ``ROOT/_catalog/catalog.duckdb``.

Everything else asks it. All SQL runs through :meth:`Catalog.execute` (values bound, results
fetched to the end); user SQL goes through :meth:`Catalog.query`, which vets it first.

Concurrency (invariant 4) — *short transactions + retry*: DuckDB lets one process open the file
read-write, or any number of processes read-only, never both at once. So every caller opens the
catalog for a moment and closes it: the collector after each seal (``open → sync → close``, a few
milliseconds), ``mdcsql sql`` / the HTTP API read-only per query. Opening retries with exponential
backoff while another process holds the file, up to ``timeout``, then raises ArchiveLockedError.
The catalog is derived from the tree, so a sync that gives up loses nothing: the next one catches
up. See docs/catalog.md.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import warnings
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from mdcsql.catalog import exports
from mdcsql.catalog.guard import vet_user_sql
from mdcsql.catalog.indexer import FILE_COLUMNS, file_row, scan_paths, scan_tree
from mdcsql.catalog.migrations import apply_migrations
from mdcsql.catalog import registries
from mdcsql.catalog.registries import source_params, symbol_params
from mdcsql.catalog.views import (SENTINEL, ensure_parquet_sentinels, parquet_sentinel, check_root, generate_views,
                                  sql_literal, views_fingerprint)
from mdcsql.errors import ArchiveLockedError, MdcsqlError, NotFoundError
from mdcsql.layout import CATALOG_DIR, CODEC_EXT, EVENT_TYPES, JSONL_CODECS, TIER_ROOTS
from mdcsql.sql import list_sql, load_sql

__all__ = ["Catalog", "Result", "SyncResult", "CATALOG_FILE"]

CATALOG_FILE = "catalog.duckdb"
_VIEWS_STATE = "views"
_MACROS_STATE = "macros"
#: every (tier root, event type, codec) a file can have: the views list them all (read_json's
#: allow_empty makes a pattern without files read as nothing), so the first file of a new kind is
#: visible at once, without waiting for a sync.
#: (tier, tier root, event type, codec) the views read: hot JSONL as collected, warm and cold in
#: any format a tier may be configured with, the archive tier's Parquet
ALL_COMBOS = ([("hot", root, type_, codec) for root in TIER_ROOTS for type_ in EVENT_TYPES for codec in JSONL_CODECS]
              + [(tier, root, type_, codec) for tier in ("warm", "cold") for root in TIER_ROOTS
                 for type_ in EVENT_TYPES for codec in CODEC_EXT]
              + [("archive", root, type_, "parquet") for root in TIER_ROOTS for type_ in EVENT_TYPES])
_LAYOUT_STATE = "layout"
_EXPORTS_STATE = "exports"
_PID = re.compile(r"PID (\d+)")
_INT64 = (-(1 << 63), (1 << 63) - 1)
_INT32 = (-(1 << 31), (1 << 31) - 1)

_FILES_SCHEMA = pa.schema([
    (name, {"period_start": pa.timestamp("us"), "first_ts": pa.timestamp("ns"),
            "last_ts": pa.timestamp("ns"), "created_at": pa.timestamp("us"),
            "sealed_at": pa.timestamp("us"), "indexed_at": pa.timestamp("us")}.get(
        name, pa.int64() if name in {"compression_level", "part", "size_bytes", "raw_bytes",
                                      "event_count", "first_seq", "last_seq", "gap_count",
                                      "duplicates_dropped", "schema_version", "mtime_ns",
                                      "manifest_mtime_ns"} else pa.string()))
    for name in FILE_COLUMNS
])
_INT32_COLUMNS = ("compression_level", "part", "schema_version")



# DuckDB shares one database instance per file within a process, so two threads (say, the
# collector's background syncer and an explicit seal) may both hold read-write Catalogs; their
# write transactions would conflict ("write-write conflict"). Writers of one file in one process
# are therefore serialised here; across processes DuckDB's file lock does it.
_WRITE_LOCKS: dict[str, threading.RLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


#: times a user query is rerun when a file vanished between glob expansion and open
_VANISHED_RETRIES = 5


def _write_lock(db: Path) -> threading.RLock:
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(str(db), threading.RLock())


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class Result:
    """Rows of one statement: ``columns``, ``rows`` (tuples), ``truncated`` (hit ``max_rows``)."""

    columns: list[str]
    rows: list[tuple]
    truncated: bool = False

    def dicts(self) -> list[dict]:
        return [dict(zip(self.columns, row)) for row in self.rows]

    def first(self) -> tuple | None:
        return self.rows[0] if self.rows else None

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class SyncResult:
    """What one sync (or rebuild) changed in the ``files`` table."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    unknown: list[str] = field(default_factory=list)                 # paths that are not data files
    problems: list[tuple[str, str]] = field(default_factory=list)    # (path, what is wrong)
    views_changed: bool = False
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def _rows_keeping_nanoseconds(runner, max_rows: int | None) -> list[tuple]:
    """Rows of a result with TIMESTAMP_NS columns, those given as exact text
    ('2024-01-15 14:30:00.123456789'): Python's datetime would silently drop the nanoseconds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # "Arrow output on a DB-API result makes an extra copy"
        table = runner.to_arrow_table()
    if max_rows is not None:
        table = table.slice(0, max_rows + 1)
    cols = [pc.cast(c, pa.string()) if pa.types.is_timestamp(c.type) and c.type.unit == "ns" else c
            for c in table.columns]
    return list(zip(*(c.to_pylist() for c in cols))) if cols else []


class Catalog:
    """Handle on one archive's catalog. Open with :meth:`open`; use as a context manager."""

    def __init__(self, root: Path, con: duckdb.DuckDBPyConnection, *, read_only: bool,
                 timeout: float = 10.0) -> None:
        self.root = root
        self.read_only = read_only
        self.timeout = timeout
        self._con: duckdb.DuckDBPyConnection | None = con
        self._locked_down = False

    # ------------------------------------------------------------------ opening and closing
    @property
    def catalog_dir(self) -> Path:
        return self.root / CATALOG_DIR

    @property
    def path(self) -> Path:
        return self.catalog_dir / CATALOG_FILE

    @classmethod
    def open(cls, root, *, read_only: bool = False, timeout: float = 10.0) -> "Catalog":
        """Open the catalog of archive ``root``.

        Read-write (default) creates ``ROOT/_catalog/`` and the database when missing and applies
        pending migrations. While another process holds the file, retries with exponential
        backoff for up to ``timeout`` seconds.

        :raises NotFoundError: read-only and there is no catalog yet.
        :raises ArchiveLockedError: still locked after ``timeout`` (names the file and, when DuckDB
            says, the holder's PID).
        """
        root = Path(root).resolve()
        db = root / CATALOG_DIR / CATALOG_FILE
        if read_only and not db.exists():
            raise NotFoundError(f"no catalog at {db}; create it with: mdcsql catalog rebuild {root}")
        if not read_only:
            db.parent.mkdir(parents=True, exist_ok=True)
        con = _connect(db, read_only=read_only, timeout=timeout)
        catalog = cls(root, con, read_only=read_only, timeout=timeout)
        if not read_only:
            try:
                with catalog._writing():
                    catalog._prepare()
            except BaseException:
                catalog.close()
                raise
        return catalog

    def _prepare(self) -> None:
        fresh = not self.execute(load_sql("queries/catalog_is_initialised.sql")).rows
        apply_migrations(self)
        self._refresh_macros()
        self._ensure_sentinel()
        if self._state(_VIEWS_STATE) is None:           # no view yet: create them empty
            self._refresh_views(None, [], force=True)
        if fresh:
            self._import_registries()

    def close(self) -> None:
        if self._con is not None:
            try:
                self._con.close()
            finally:
                self._con = None

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalog({str(self.root)!r}, read_only={self.read_only})"

    # ------------------------------------------------------------------ running SQL
    def execute(self, sql: str, params: list | dict | None = None, *,
                max_rows: int | None = None, time_limit: float | None = None) -> Result:
        """Run one SQL text (trusted: ours) with bound ``params``; fetch its rows to the end.

        This is the one place SQL runs. With ``max_rows`` the statement runs on its own cursor,
        at most ``max_rows`` rows are kept and ``truncated`` says whether more existed (the rest is
        discarded with the cursor). ``time_limit`` (seconds) interrupts the statement
        (``duckdb.InterruptException``).
        """
        con = self._connection()
        if max_rows is not None and max_rows < 0:
            raise MdcsqlError(f"max_rows must be >= 0, got {max_rows}")
        runner = con if max_rows is None else con.cursor()
        timer = None
        if time_limit is not None:
            timer = threading.Timer(time_limit, runner.interrupt)
            timer.daemon = True
            timer.start()
        try:
            runner.execute(sql, params)
            columns = [d[0] for d in runner.description] if runner.description else []
            if any(str(d[1]) == "TIMESTAMP_NS" for d in runner.description or ()):
                rows = _rows_keeping_nanoseconds(runner, max_rows)
            elif max_rows is None:
                return Result(columns, runner.fetchall() if columns else [])
            else:
                rows = runner.fetchmany(max_rows + 1) if columns else []
            if max_rows is None:
                return Result(columns, rows)
            return Result(columns, rows[:max_rows], truncated=len(rows) > max_rows)
        finally:
            if timer is not None:
                timer.cancel()
            if runner is not con:
                runner.close()

    @contextmanager
    def transaction(self):
        """``BEGIN`` … ``COMMIT`` (``ROLLBACK`` on error)."""
        self.execute("BEGIN TRANSACTION")
        try:
            yield self
        except BaseException:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    def query(self, sql: str, params: list | dict | None = None, *, max_rows: int | None = None,
              time_limit: float | None = None) -> Result:
        """Run one user query, read-only (``mdcsql sql``, the HTTP endpoint).

        Accepts a single SELECT / WITH / DESCRIBE / SHOW / SUMMARIZE / EXPLAIN statement that reads
        files only through the catalog's views (see :mod:`mdcsql.catalog.guard`). Before the first
        user query the connection is locked down for the rest of its life: file access limited to
        the archive's tier roots, no Python replacement scans, configuration locked.

        :param max_rows: keep at most this many rows (``Result.truncated`` tells whether more existed).
        :param time_limit: interrupt the query after this many seconds.
        :raises MdcsqlError: the query is rejected, fails, or exceeds ``time_limit``.
        """
        if not self.read_only:
            raise MdcsqlError("user SQL runs only on a catalog opened with read_only=True")
        con = self._connection()
        vet_user_sql(sql, split=lambda text: [(s.type.name, s.query) for s in con.extract_statements(text)],
                     serialize=lambda text: self.execute(load_sql("queries/catalog_serialize_sql.sql"),
                                                         {"sql": text}).rows[0][0],
                     table_macros=[r[0] for r in self.execute(load_sql("queries/catalog_table_macros.sql")).rows])
        self._lock_down()
        try:
            for attempt in range(_VANISHED_RETRIES):
                try:
                    return self.execute(sql, params, max_rows=max_rows, time_limit=time_limit)
                except duckdb.IOException as exc:
                    # a file the views' globs listed was sealed or migrated away before DuckDB
                    # opened it: the next run expands the globs again and finds its new form
                    if "No such file" not in str(exc) or attempt == _VANISHED_RETRIES - 1:
                        raise
                    time.sleep(0.02 * (attempt + 1))
        except duckdb.InterruptException:
            raise MdcsqlError(f"query exceeded its time limit of {time_limit:g} s") from None
        except duckdb.Error as exc:
            raise MdcsqlError(f"query failed: {str(exc).strip()}") from None

    def _lock_down(self) -> None:
        if self._locked_down:
            return
        text_root = check_root(self.root)
        from mdcsql.catalog.indexer import SCAN_BASES
        dirs = "[" + ", ".join(sql_literal(f"{text_root}/{t}/") for t in SCAN_BASES) + "]"
        # Trusted text only (the archive root); SET takes no bound parameters.
        self.execute(f"SET allowed_directories = {dirs}")
        sentinels = [SENTINEL, *(parquet_sentinel(t) for t in EVENT_TYPES)]
        self.execute("SET allowed_paths = [" + ", ".join(sql_literal(f"{text_root}/{p}") for p in sentinels) + "]")
        self.execute("SET python_enable_replacements = false")
        self.execute("SET enable_external_access = false")
        self.execute("SET lock_configuration = true")
        self._locked_down = True

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise MdcsqlError(f"catalog {self.path} is closed")
        return self._con

    def _require_writable(self, what: str) -> None:
        if self.read_only:
            raise MdcsqlError(f"{what} needs the catalog opened read-write (read_only=False)")

    @contextmanager
    def write_lock(self, what: str):
        """Hold this process's write lock of the catalog for a library module's writes (the
        registries): ``with cat.write_lock("add_mapping"), cat.transaction(): ...``."""
        self._require_writable(what)
        with self._writing():
            yield self

    @contextmanager
    def _writing(self):
        """Hold this process's write lock of the catalog file (see ``_WRITE_LOCKS``)."""
        lock = _write_lock(self.path)
        if not lock.acquire(timeout=max(self.timeout, 0.001)):
            raise ArchiveLockedError(f"catalog {self.path} is being written by another thread of "
                                     f"this process; gave up after {self.timeout:g} s")
        try:
            yield
        finally:
            lock.release()

    # ------------------------------------------------------------------ catalog state
    def _state(self, key: str):
        row = self.execute(load_sql("queries/catalog_state_get.sql"), {"key": key}).first()
        return None if row is None else json.loads(row[0])

    def _set_state(self, key: str, value) -> None:
        self.execute(load_sql("queries/catalog_state_put.sql"), {"key": key, "value": json.dumps(value)})

    def _ensure_sentinel(self) -> None:
        sentinel = self.root / SENTINEL
        if not sentinel.exists() or sentinel.stat().st_size:
            sentinel.parent.mkdir(parents=True, exist_ok=True)
            sentinel.write_bytes(b"")
        ensure_parquet_sentinels(self.root)

    def _refresh_macros(self) -> None:
        """(Re)create the SQL macros of ``sql/macros/*.sql`` when their text changed. A macro may
        use another (``CREATE MACRO`` checks the functions it calls), so each round creates those
        whose dependencies exist, until all are."""
        texts = {rel: load_sql(rel) for rel in list_sql("macros")}
        fingerprint = hashlib.sha256("\0".join(f"{k}\0{v}" for k, v in texts.items()).encode()).hexdigest()
        if self._state(_MACROS_STATE) == fingerprint:
            return
        pending = dict(texts)
        while pending:
            failed = {}
            for rel, text in pending.items():
                try:
                    self.execute(text)
                except duckdb.CatalogException as exc:
                    failed[rel] = exc
            if len(failed) == len(pending):
                rel, exc = next(iter(failed.items()))
                raise MdcsqlError(f"macro mdcsql/sql/{rel} cannot be created: {str(exc).strip()}")
            pending = {rel: pending[rel] for rel in failed}
        self._set_state(_MACROS_STATE, fingerprint)

    def _refresh_views(self, layout, combos: list[tuple], *, force: bool = False) -> bool:
        """(Re)create the views when their generated text changed; True if it did."""
        statements = generate_views(self.root, layout, combos)
        fingerprint = views_fingerprint(statements)
        state = self._state(_VIEWS_STATE)
        if not force and state is not None and state.get("sha256") == fingerprint:
            return False
        for sql in statements.values():
            self.execute(sql)
        self._set_state(_VIEWS_STATE, {"sha256": fingerprint, "root": str(self.root),
                                       "combos": [list(c) for c in combos]})
        return True

    # ------------------------------------------------------------------ sync and rebuild
    def sync(self, layout, *, deep: bool = False, paths=None) -> SyncResult:
        """Reconcile the ``files`` table (and the views) with the tree, in one transaction.

        Only files whose size, mtime or manifest mtime changed are re-read. Rows equal what
        :meth:`rebuild` produces. Paths that are not data files of ``layout`` are listed in
        ``unknown``; odd content (bad manifests, stray manifests, symlinks) in ``problems``.

        :param layout: the archive's ``mdcsql.layout.Layout``.
        :param deep: also count the events (and seq / ts ranges) of open hot files with DuckDB.
        :param paths: reconcile only these relative data-file paths (and the other codecs' files of
            the same partition and part: a seal's hot file), without walking the tree — what a
            collector calls after sealing. ``manifest.json`` is then rewritten by the next full
            sync rather than at once.
        """
        return self._sync(layout, deep=deep, forget=False, paths=paths)

    def rebuild(self, layout) -> SyncResult:
        """Forget every file row, then index the tree from scratch (one transaction), re-import
        the registries from their JSON exports, regenerate the views and restore the sessions
        from ``sessions/*/manifest.json``."""
        result = self._sync(layout, deep=False, forget=True)
        self.sync_sessions(forget=True)
        return result

    def refresh_derived(self, *, forget: bool = False) -> None:
        """Mirror the lifecycle's own files (lineage, deletions, holds, backups...) into their
        tables; see ``mdcsql.catalog.derived``."""
        from mdcsql.catalog.derived import refresh_derived
        self._require_writable("refresh_derived")
        with self._writing():
            refresh_derived(self, forget=forget)

    def sync_sessions(self, *, forget: bool = False) -> int:
        """Mirror ``sessions/*/manifest.json`` into the ``sessions`` and ``session_files`` tables
        (only changed ones; all with ``forget``). Returns how many sessions changed."""
        from mdcsql.sessions.mirror import mirror_sessions      # sessions import the catalog
        self._require_writable("sync_sessions")
        with self._writing():
            return mirror_sessions(self, forget=forget)

    def _sync(self, layout, *, deep: bool, forget: bool, paths=None) -> SyncResult:
        self._require_writable("rebuild" if forget else "sync")
        with self._writing():
            return self._sync_locked(layout, deep=deep, forget=forget, paths=paths)

    def _sync_locked(self, layout, *, deep: bool, forget: bool, paths=None) -> SyncResult:
        started = time.perf_counter()
        check_root(self.root)
        self._ensure_sentinel()
        if paths is None:
            scan = scan_tree(self.root)
            existing = {r[0]: r for r in self.execute(load_sql("queries/catalog_files_signatures.sql")).rows}
        else:
            wanted = _with_siblings(layout, [paths] if isinstance(paths, str) else list(paths))
            scan = scan_paths(self.root, wanted)
            existing = {r[0]: r for r in self.execute(load_sql("queries/catalog_files_signatures_of.sql"),
                                                      {"paths": wanted}).rows}
        result = SyncResult(problems=list(scan.problems))
        layout_id = repr(layout)
        # a different layout (or a rebuild) re-parses every path; otherwise unchanged files are trusted
        known = {} if forget or self._state(_LAYOUT_STATE) != layout_id else existing
        todo = []
        catalog_changed = False
        for rel, signature in scan.files.items():
            old = known.get(rel)
            if old is not None and (old[1], old[2], old[3]) == signature and not (
                    deep and old[4] == "open" and not old[5]):
                result.unchanged += 1                   # indexed as is: not even parsed again
                continue
            try:
                found = scan.found(rel, layout)
            except ValueError:
                result.unknown.append(rel)
                continue
            todo.append(found)
            if old is None:
                result.added += 1
            else:
                result.updated += 1
                # an open file that grew changes no path and no sealed entry of manifest.json
                catalog_changed |= not (old[4] == "open" and found.manifest_mtime_ns is None
                                        and found.meta.codec == "none")
        result.unknown.sort()
        gone = sorted(set(existing).difference(scan.files).union(set(result.unknown) & set(existing)))
        result.removed = len(gone)
        now = _utcnow()
        rows = []
        for found in todo:
            row = file_row(self.root, found, layout, problems=result.problems)
            row["indexed_at"] = now
            rows.append(_clamp(row, result.problems))
        if deep:
            self._open_file_stats([r for r in rows if r["state"] == "open"], result.problems)
        with self.transaction():
            if forget:
                self.execute(load_sql("queries/catalog_files_forget_all.sql"))
                self._import_registries()
            elif gone:
                self._with_table("catalog_gone", pa.table({"path": pa.array(gone, pa.string())}),
                                 "queries/catalog_files_delete.sql")
            if rows:
                self._with_table("catalog_incoming", pa.Table.from_pylist(rows, schema=_FILES_SCHEMA),
                                 "queries/catalog_files_upsert.sql")
            result.views_changed = self._refresh_views(layout, ALL_COMBOS, force=forget)
            if paths is None:
                self._set_state(_LAYOUT_STATE, layout_id)
            self._store_schema()
        catalog_changed |= bool(result.added or result.removed)
        if paths is not None:         # a targeted sync: leave the O(files) manifest.json for later
            if catalog_changed:
                self._set_state(_EXPORTS_STATE, {"dirty": True})
        else:
            dirty = bool((self._state(_EXPORTS_STATE) or {}).get("dirty"))
            if forget or catalog_changed or dirty:
                if not dirty:                  # stays set if writing fails: the next sync retries
                    self._set_state(_EXPORTS_STATE, {"dirty": True})
                self._write_exports(force=True)
                self._set_state(_EXPORTS_STATE, {"dirty": False})
            else:
                self._write_exports(force=False)       # only what is missing
        if paths is None:
            from mdcsql.catalog.derived import refresh_derived
            refresh_derived(self, forget=forget)
        result.problems.sort()
        result.seconds = time.perf_counter() - started
        return result

    def _with_table(self, name: str, table: pa.Table, sql_file: str) -> None:
        con = self._connection()
        con.register(name, table)
        try:
            self.execute(load_sql(sql_file))
        finally:
            con.unregister(name)

    def _open_file_stats(self, rows: list[dict], problems: list) -> None:
        if not rows:
            return
        by_file = {str(self.root / r["path"]): r for r in rows}
        try:
            stats = self.execute(load_sql("queries/catalog_open_file_stats.sql"), {"files": list(by_file)}).rows
        except duckdb.Error as exc:      # a file vanished or is unreadable: keep NULL counts
            problems.append(("(open files)", f"could not count events: {str(exc).splitlines()[0]}"))
            return
        for filename, count, first_seq, last_seq, first_ts, last_ts in stats:
            row = by_file.get(filename)
            if row is not None:
                row.update(event_count=count, first_seq=first_seq, last_seq=last_seq,
                           first_ts=first_ts, last_ts=last_ts)
        for row in rows:
            if row["event_count"] is None:
                row["event_count"] = 0

    def _store_schema(self) -> None:
        schema = exports.event_json_schema()
        if schema is None:      # TODO: mdcsql.events.json_schema() not there yet; stored once it is
            return
        version = int(schema.get("version", 1)) if isinstance(schema, dict) else 1
        self.execute(load_sql("queries/catalog_schemas_upsert.sql"),
                     {"version": version, "event_type": "*", "json": json.dumps(schema, sort_keys=True)})

    # ------------------------------------------------------------------ exports
    def _write_exports(self, *, force: bool) -> None:
        d = self.catalog_dir
        if force or not (d / exports.MANIFEST_FILE).exists():
            exports.write_manifest(d, self.execute(load_sql("queries/catalog_manifest_entries.sql")).dicts())
        if force or not (d / exports.SOURCES_FILE).exists():
            self._export_sources()
        if force or not (d / exports.SYMBOLS_FILE).exists():
            self._export_symbols()
        schema = exports.event_json_schema()
        if schema is not None:
            version = int(schema.get("version", 1)) if isinstance(schema, dict) else 1
            target = d / exports.SCHEMAS_DIR / f"v{version}.json"
            text = (json.dumps(schema, indent=2, sort_keys=True) + "\n").encode()
            if not target.exists() or target.read_bytes() != text:
                exports.atomic_write(target, text)

    def _export_sources(self) -> None:
        registries.export_sources(self)

    def _export_symbols(self) -> None:
        registries.export_symbols(self)         # with the date-ranged mappings and the policy

    def _import_registries(self) -> None:
        registries.import_registries(self)      # entries that no longer validate are skipped

    # ------------------------------------------------------------------ statistics
    def stats(self) -> dict:
        """Files, events and bytes (stored and raw): ``totals`` and ``by_tier`` / ``by_source`` /
        ``by_type`` / ``by_state`` lists of rows. ``events`` sums known counts; ``uncounted_files``
        are open files whose count is unknown (sync with ``deep=True`` to count them)."""
        out: dict = {"totals": {"files": 0, "events": 0, "size_bytes": 0, "raw_bytes": 0,
                                "uncounted_files": 0},
                     "by_tier": [], "by_source": [], "by_type": [], "by_state": []}
        for r in self.execute(load_sql("queries/catalog_files_stats.sql")).dicts():
            dim = r.pop("dimension")
            key = r.pop("key")
            if dim == "totals":
                out["totals"] = r
            else:
                out[f"by_{dim}"].append({dim: key, **r})
        return out

    # ------------------------------------------------------------------ registries
    def register_source(self, id: str, *, name: str | None = None, type: str | None = None,
                        priority: int | None = None, asset_classes: list[str] | None = None,
                        data_types: list[str] | None = None, latency_ms: float | None = None,
                        reliability: float | None = None, cost_per_event: float | None = None,
                        enabled: bool = True) -> dict:
        """Register (or replace) a data source; also rewrites ``_catalog/sources.json``.

        Example: ``cat.register_source("alpaca", name="Alpaca Markets", type="live", priority=1,
        asset_classes=["equity"], data_types=["Trade", "BboQuote"])``.
        """
        self._require_writable("register_source")
        params = source_params(id=id, name=name, type=type, priority=priority,
                                asset_classes=asset_classes, data_types=data_types,
                                latency_ms=latency_ms, reliability=reliability,
                                cost_per_event=cost_per_event, enabled=enabled)
        with self._writing():
            self.execute(load_sql("queries/catalog_sources_upsert.sql"), params)
            self._export_sources()
        return params

    def sources(self) -> list[dict]:
        return self.execute(load_sql("queries/catalog_sources_list.sql")).dicts()

    def register_symbol(self, symbol: str, *, canonical: str | None = None,
                        aliases: list[str] | None = None, asset_class: str | None = None,
                        exchange: str | None = None, currency: str | None = None,
                        isin: str | None = None, figi: str | None = None,
                        sedol: str | None = None) -> dict:
        """Register (or replace) a symbol; also rewrites ``_catalog/symbols.json``.

        Example: ``cat.register_symbol("AAPL", aliases=["AAPL.US", "AAPL.O"], asset_class="equity",
        exchange="NASDAQ", currency="USD", isin="US0378331005")``.
        """
        self._require_writable("register_symbol")
        params = symbol_params(symbol=symbol, canonical=canonical, aliases=aliases,
                                asset_class=asset_class, exchange=exchange, currency=currency,
                                isin=isin, figi=figi, sedol=sedol)
        with self._writing():
            self.execute(load_sql("queries/catalog_symbols_upsert.sql"), params)
            self._export_symbols()
        return params

    def symbols(self) -> list[dict]:
        return self.execute(load_sql("queries/catalog_symbols_list.sql")).dicts()


# ---------------------------------------------------------------------- helpers

def _connect(db: Path, *, read_only: bool, timeout: float) -> duckdb.DuckDBPyConnection:
    """Connect, retrying with exponential backoff (and jitter) while the file is locked."""
    deadline = time.monotonic() + max(0.0, timeout)
    delay = 0.005
    while True:
        try:
            return duckdb.connect(str(db), read_only=read_only)
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            message = str(exc)
            locked = "lock" in message.lower() or "different configuration" in message
            if not locked:
                raise MdcsqlError(f"cannot open catalog {db}: {message.strip()}") from None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pid = _PID.search(message)
                holder = f" (held by PID {pid.group(1)})" if pid else ""
                if "different configuration" in message:
                    holder = " (this process already has it open in the other mode)"
                raise ArchiveLockedError(
                    f"catalog {db} is locked by another process{holder}; gave up after "
                    f"{timeout:g} s. Retry later, or stop the process holding it") from None
            time.sleep(min(delay * (0.5 + random.random()), remaining))
            delay = min(delay * 2, 0.25)


def _with_siblings(layout, relpaths: list[str]) -> list[str]:
    """The paths plus, for each data path, its partition's files in the other codecs (so the hot
    ``.jsonl`` a seal replaced is reconciled too)."""
    out = dict.fromkeys(relpaths)
    for rel in relpaths:
        try:
            meta = layout.parse(rel)
        except (ValueError, TypeError):
            continue
        for codec in CODEC_EXT:
            try:
                out.setdefault(layout.relpath(meta.key, codec=codec, part=meta.part, tier=meta.tier))
            except ValueError:
                continue
    return list(out)


def _clamp(row: dict, problems: list) -> dict:
    """NULL out manifest integers that cannot be stored (out of BIGINT / INTEGER range)."""
    for name, value in row.items():
        if type(value) is int:
            lo, hi = _INT32 if name in _INT32_COLUMNS else _INT64
            if not lo <= value <= hi:
                problems.append((row["path"], f"{name} {value} is out of range"))
                row[name] = None
    return row
