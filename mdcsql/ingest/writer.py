"""The archive's single write path: normalise → dedupe → group commit to the WAL → fan out.

One `Ingestor` per archive per process (an exclusive lock file keeps a second process out).
Events are buffered per partition file; a group commit writes them as one WAL frame, makes it
durable (per the sync mode), then appends each run to its hot partition file without fsync.
Only after the commit are events *acknowledged*: `flush()` returns the durable position and
listeners registered with `on_ack` are told.  Partition files are sealed when their stream
moves past the period, on `seal()` and on `close()`.

Two optional hooks connect the registries (`mdcsql.registry`) without costing the default path:
`resolve_symbol(symbol, ts_ns, source) -> canonical` rewrites aliases before the partition key is
computed (None when the registry has no aliases: nothing is called per event), and
`admit(source, symbol, asset_class, root) -> None | reason` is asked only when an event would open
a new hot file: it raises to reject the event (a disabled source, an unknown symbol under the
`reject` policy), returns a reason to have it kept in `_quarantine/` instead of stored, or None.

A third, `limits` (`mdcsql.lifecycle.quota_usage.WriteLimits`: quotas and the integrity policy),
gives each hot file of a limited stream a budget; per event `_add` only decrements its lease and
compares ts with a window, and calls `limits.slow` when the lease runs out, the UTC day changes or
ts goes backwards. It raises to refuse the event (QuotaExceededError, OutOfOrderError).
`swap_limits` replaces it while the Ingestor runs (`mdcsql.lifecycle.policy_reload`).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from mdcsql import events as ev
from mdcsql.errors import InputError, MdcsqlError
from mdcsql.ingest.checkpoint import Checkpoint
from mdcsql.ingest.dedupe import StreamState
from mdcsql.ingest.lock import LOCK_FILE, WriteLock  # noqa: F401 (re-exported)
from mdcsql.ingest.recovery import RecoveryReport, quarantine, recover
from mdcsql.ingest.seal import manifest_path, seal_file, utc_now_iso
from mdcsql.ingest.wal import WalWriter, encode_frame
from mdcsql.layout import TIER_ROOTS, WAL_DIR, Layout, PartitionKey, period_end, period_label, period_start

CHECKPOINT_INTERVAL_S = 30.0


@dataclass(frozen=True, slots=True)
class Ack:
    """A durable position: everything appended before it survives kill -9."""

    lsn: int
    events: int


@dataclass(slots=True)
class HotFile:
    relpath: str
    stream: tuple          # (root, source, asset_class, symbol, type)
    period_end: int | None
    created_at: str
    fd: int = -1
    pending: list = field(default_factory=list)
    pending_events: int = 0
    duplicates: int = 0
    state: StreamState | None = None
    budget: object = None  # mdcsql.lifecycle.quota_usage.StreamBudget of a limited stream
    written: int = 0       # events and bytes taken for the file by commits (a policy reload
    written_bytes: int = 0  # recounts this process's usage from them)


class Ingestor:
    """Owns the WAL and the open hot files of one archive.

    Appenders only buffer (under `_mutex`); a committer thread takes the buffers, writes the WAL
    frame and fsyncs it, then fans the runs out to the hot files — without holding `_mutex`, so
    appending goes on while a commit waits for the disk.  Checkpoints and seals run on the same
    thread, in order with the commits.
    """

    def __init__(self, root: Path, layout: Layout, *, codec: str = "gzip", level: int = 6,
                 sync_mode: str = "batched", interval_ms: int = 5, max_events: int = 10_000,
                 seal_grace_ns: int = 0, on_seal: Callable[[list[dict]], None] | None = None,
                 on_new_file: Callable[[str], None] | None = None,
                 resolve_symbol: Callable[[str, int, str], str] | None = None,
                 admit: Callable[[str, str, str, str], str | None] | None = None,
                 limits=None, codec_of_type: dict | None = None) -> None:
        self.root = Path(root)
        self.layout = layout
        self.codec, self.level = codec, level
        #: event type -> (codec, level) sealing that type (Storage.Policies.<Type>.Compression.Hot)
        self.codec_of_type = dict(codec_of_type or {})
        self.sync_mode = sync_mode
        self.interval_s = interval_ms / 1000.0
        self.max_events = 1 if sync_mode == "always" else max_events
        self._always = sync_mode == "always"
        self._period_width = _NS.get(layout.partition, 0)     # fixed-width periods: inline floor
        self.seal_grace_ns = seal_grace_ns
        self.on_seal = on_seal
        self.on_new_file = on_new_file
        self.resolve_symbol = resolve_symbol
        self.admit = admit
        self.limits = limits
        self.quarantined: list[dict] = []               # records of events kept out by `admit`
        self.session_id: str | None = None
        self._lock = WriteLock(self.root)
        try:
            self.recovery: RecoveryReport = recover(self.root, layout)
        except BaseException:
            self._lock.release()
            raise
        self.durable = Ack(self.recovery.durable_lsn, self.recovery.durable_events)
        self._wal = WalWriter(self.root / WAL_DIR, self.durable.lsn, sync=sync_mode != "none")
        self._files: dict[tuple, HotFile] = {}          # (root, source, asset_class, symbol, type, period) -> file
        self._streams: dict[tuple, StreamState] = {}
        self._to_seal: list[HotFile] = []               # left behind by their stream, not yet taken
        self._sealing: dict[str, HotFile] = {}          # relpath -> file being sealed: never reopened
        self._pending = 0
        self._accepted = self.durable.events            # events accepted so far (pending or durable)
        self._first_pending_at = 0.0
        self._last_checkpoint = time.monotonic()
        self._listeners: list[Callable[[Ack], None]] = []
        self.duplicates_dropped = 0
        self.sealed: list[dict] = []
        self._mutex = threading.Lock()
        self._cond = threading.Condition(self._mutex)
        self._io = threading.Lock()                     # WAL, hot-file writes, checkpoints, seals
        self._commit_wanted = False
        self._stopping = False
        self._closed = False
        self._error: BaseException | None = None
        self._committer = threading.Thread(target=self._commit_loop, name="mdcsql-group-commit", daemon=True)
        self._committer.start()

    # ---- appending -------------------------------------------------------------------------
    def on_ack(self, listener: Callable[[Ack], None]) -> None:
        self._listeners.append(listener)

    def append(self, event: dict, *, root: str = "live", asset_class: str = "equity",
               source: str | None = None, normalized: bool = False) -> None:
        """Append one event (any accepted shape unless `normalized`); durable after the next commit."""
        if not normalized:
            event = ev.normalize(event, source=source)
        resolve = self.resolve_symbol
        if resolve is not None:                          # aliases -> canonical (inlined: per event)
            symbol = event["symbol"]
            canonical = resolve(symbol, event["ts"], event["source"])
            if canonical != symbol:
                event = {**event, "symbol": canonical}
        line = ev.encode(event)
        with self._mutex:
            if self._error is not None or self._stopping:
                self._check_open()
            self._add(root, asset_class, event, line)
            if self._pending >= self.max_events:
                self._backpressure()
        if self._always:
            self.flush()

    def append_many(self, events: Iterable[dict], *, root: str = "live", asset_class: str = "equity",
                    source: str | None = None, normalized: bool = False) -> int:
        """Append events in order; returns how many. An InputError for an event the registries
        refuse (see `admit`) carries `index`, that event's position in `events`: those before it
        are appended, those after it are not."""
        n = 0
        encode, normalize, resolve = ev.encode, ev.normalize, self.resolve_symbol
        with self._mutex:
            self._check_open()
            for event in events:
                if not normalized:
                    event = normalize(event, source=source)
                if resolve is not None:
                    symbol = event["symbol"]
                    canonical = resolve(symbol, event["ts"], event["source"])
                    if canonical != symbol:
                        event = {**event, "symbol": canonical}
                try:
                    self._add(root, asset_class, event, encode(event))
                except MdcsqlError as exc:           # a refused event: which one of this call
                    exc.index = n
                    raise
                n += 1
                if self._pending >= self.max_events:
                    self._backpressure()
        if self._always:
            self.flush()
        return n

    def _add(self, root: str, asset_class: str, event: dict, line: bytes) -> None:
        ts = event["ts"]
        width = self._period_width
        start = ts - ts % width if width else period_start(ts, self.layout.partition)
        k = (root, event["source"], asset_class, event["symbol"], event["type"], start)
        hot = self._files.get(k)
        if hot is None:
            if self.admit is not None:
                why = self.admit(event["source"], event["symbol"], asset_class, root)
                if why is not None:
                    self._quarantine(line, why, event["source"], event["symbol"], event["type"], 1)
                    return
            hot = self._open_file(k, ts)
        b = hot.budget
        if b is not None:                                # quotas / integrity: a lease, see `limits`
            b.bytes_left -= len(line)
            b.events_left -= 1
            if b.bytes_left < 0 or b.events_left < 0 or not b.lo_ts <= ts < b.hi_ts:
                self.limits.slow(hot, event, line)
        state = hot.state
        seq = event["seq"]
        if seq is not None:
            if seq > state.hi and state.lo is not None:     # the in-order fast path
                if seq > state.hi + 1:
                    if b is not None and seq - state.hi - 1 > b.max_gap:
                        self.limits.gap(hot, state.hi + 1, seq - 1)
                    state._add_gap(state.hi + 1, seq - 1)
                state.hi = seq
            elif not state.admit_seq(seq):
                self._dropped(hot, len(line))
                return
        elif not state.admit_hash(hash((ts, line if event["recv_ts"] is None
                                        else ev.encode({**event, "recv_ts": None})))):
            self._dropped(hot, len(line))
            return
        if b is not None and b.monotonic:
            b.last_ts = b.lo_ts = ts
        if not self._pending:
            self._first_pending_at = time.monotonic()
            self._cond.notify()                          # start the committer's interval clock
        hot.pending.append(line)
        hot.pending_events += 1
        self._pending += 1
        self._accepted += 1

    def _resolved_table(self, table: pa.Table) -> pa.Table:
        """The table with aliases replaced by canonical symbols: one hook call per distinct
        (symbol, source, UTC day), not per row."""
        days = pl.Series(table.column("ts")) // _NS["Daily"]
        keys = pl.DataFrame({"symbol": table.column("symbol"), "source": table.column("source"), "day": days})
        distinct = keys.unique()
        resolve = self.resolve_symbol
        canonical = [resolve(sym, day * _NS["Daily"], src) for sym, src, day in distinct.iter_rows()]
        if canonical == distinct.get_column("symbol").to_list():
            return table
        mapped = keys.join(distinct.with_columns(pl.Series("canonical", canonical, pl.String)),
                           on=["symbol", "source", "day"], how="left", maintain_order="left")
        index = table.schema.get_field_index("symbol")
        return table.set_column(index, table.schema.field(index),
                                pc.cast(mapped.get_column("canonical").to_arrow(), table.schema.field(index).type))

    def _quarantine(self, data: bytes, why: str, source: str, symbol: str, etype: str, events: int) -> None:
        """Keep events that `admit` turned away in `_quarantine/`, with a record; not stored."""
        n = len(self.quarantined) + 1
        self.quarantined.append(quarantine(self.root, f"admit-{os.getpid()}-{n}", data, {
            "reason": why, "field": "symbol", "source": source, "symbol": symbol, "type": etype,
            "events": events}))

    def _backpressure(self) -> None:
        """Wake the committer; if it is far behind, wait for it (bounded memory). Mutex held."""
        self._cond.notify_all()
        while self._pending >= 2 * self.max_events and self._error is None:
            self._cond.wait(0.05)
        self._check_open()

    def _dropped(self, hot: HotFile, nbytes: int) -> None:
        hot.duplicates += 1
        self.duplicates_dropped += 1
        if hot.budget is not None:                 # a duplicate is not stored: its lease comes back
            hot.budget.bytes_left += nbytes
            hot.budget.events_left += 1

    def append_table(self, table: pa.Table, *, root: str = "live", asset_class: str = "equity",
                     type: str | None = None, source: str | None = None, on_refused=None) -> int:
        """The fast path: a whole Arrow table of one event type, validated and encoded vectorised.
        A part the limits refuse raises, or with `on_refused` is passed to ``on_refused(error, rows)``
        and skipped while the other parts go on."""
        table = ev.normalize_table(table, type=type, source=source)
        if table.num_rows == 0:
            return 0
        if self.resolve_symbol is not None:
            table = self._resolved_table(table)
        etype = table.column("type")[0].as_py()
        starts = _period_starts(table.column("ts"), self.layout.partition)
        groups = (pl.DataFrame({"source": table.column("source"), "symbol": table.column("symbol"),
                                "period": starts})
                  .with_row_index("row")
                  .group_by(["source", "symbol", "period"], maintain_order=True)
                  .agg(pl.col("row")))
        n = 0
        for source_v, symbol_v, start, rows in groups.iter_rows():
            part = table.take(pa.array(rows, pa.uint32())) if len(rows) != table.num_rows else table
            k = (root, source_v, asset_class, symbol_v, etype, start)
            why = None
            # with limits, encoded before dedupe: a part they refuse must leave no seq marked as seen
            full = ev.encode_table(part) if self.limits is not None else None
            with self._mutex:
                self._check_open()
                hot = self._files.get(k)
                if hot is None and self.admit is not None:
                    try:
                        why = self.admit(source_v, symbol_v, asset_class, root)
                    except InputError as exc:          # name the table row, as normalize_table does
                        raise InputError(exc.reason, line=rows[0] + 1, field=exc.field) from None
                if why is None:
                    hot = hot or self._open_file(k, part.column("ts")[0].as_py())
                    if hot.budget is not None:                # (limits may have been reloaded meanwhile)
                        full = full or ev.encode_table(part)
                        try:
                            self.limits.table(hot, part, len(full))   # raises to refuse the part
                        except MdcsqlError as exc:
                            if on_refused is None:
                                raise
                            on_refused(exc, part.num_rows)
                            continue
                    before = part.num_rows
                    part = self._dedupe_part(hot, part)
                    if part.num_rows != before:
                        full = None
            if why is not None:
                self._quarantine(full or ev.encode_table(part), why, source_v, symbol_v, etype, part.num_rows)
                continue
            if part.num_rows == 0:
                continue
            data = full or ev.encode_table(part)          # the costly step, outside the mutex
            with self._mutex:
                self._check_open()
                if self._files.get(k) is not hot:         # sealed meanwhile: goes to a new part
                    hot = self._files.get(k) or self._open_file(k, part.column("ts")[0].as_py())
                if not self._pending:
                    self._first_pending_at = time.monotonic()
                    self._cond.notify()
                hot.pending.append(data)
                hot.pending_events += part.num_rows
                self._pending += part.num_rows
                self._accepted += part.num_rows
                n += part.num_rows
                if self._pending >= self.max_events:
                    self._backpressure()
        if self._always:
            self.flush()
        return n

    def _dedupe_part(self, hot: HotFile, part: pa.Table) -> pa.Table:
        """Drop rows of one stream whose seq was already seen (vectorised when all are new)."""
        seq = part.column("seq")
        if seq.null_count:
            if seq.null_count < part.num_rows:
                keep = [hot.state.admit_seq(q) if q is not None else True for q in seq.to_pylist()]
            else:
                keep = [hot.state.admit_hash(hash(line)) for line in ev.encode_table(part).splitlines()]
            mask = pa.array(keep)
        else:
            keep = hot.state.admit_seqs(seq.to_numpy())
            if keep is None:
                return part
            mask = pa.array(keep)
        dropped = part.num_rows - pc.sum(mask).as_py()
        hot.duplicates += dropped
        self.duplicates_dropped += dropped
        return part.filter(mask)

    def _stream(self, key: tuple) -> StreamState:
        state = self._streams.get(key)
        if state is None:
            state = self._streams[key] = StreamState()
        return state

    # ---- hot files -------------------------------------------------------------------------
    def _open_file(self, k: tuple, ts: int) -> HotFile:
        root, source, asset_class, symbol, etype, start = k
        key = PartitionKey(root, source, asset_class, symbol, etype, period_label(start, self.layout.partition))
        part = 1
        while True:
            rel = self.layout.relpath(key, codec="none", part=part)
            path = self.root / rel
            taken = rel in self._sealing or any(h.relpath == rel for h in self._to_seal) \
                or manifest_path(path).exists() \
                or any(manifest_path(self.root / self.layout.relpath(key, codec=c, part=part)).exists()
                       for c in ("gzip", "zstd")) or self._sealed_with_checksum(key, part)
            if not taken:
                break
            part += 1
        stream = (root, source, asset_class, symbol, etype)
        end = period_end(start, self.layout.partition) if start is not None else None
        budget = None if self.limits is None else self.limits.opened(source, asset_class, symbol, etype, rel)
        hot = HotFile(rel, stream, end, utc_now_iso(), state=self._stream((source, symbol, etype)), budget=budget)
        path.parent.mkdir(parents=True, exist_ok=True)
        hot.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._files[k] = hot
        if self.on_new_file is not None:
            self.on_new_file(rel)
        # A stream that moved to a newer period seals the periods it has left behind.
        if start is not None:
            for other_k, other in list(self._files.items()):
                if other is not hot and other.stream == stream and other.period_end is not None \
                        and other.period_end + self.seal_grace_ns <= ts:
                    self._to_seal.append(self._files.pop(other_k))
                    self._cond.notify()
        return hot

    def _sealed_with_checksum(self, key: PartitionKey, part: int) -> bool:
        if not self.layout.file_name_metadata:
            return False
        probe = self.root / self.layout.relpath(key, codec="none", part=part)
        if not probe.parent.is_dir():
            return False
        for entry in os.scandir(probe.parent):
            if not entry.name.endswith(".manifest.json"):
                continue
            try:
                meta = self.layout.parse((probe.parent / entry.name[:-len(".manifest.json")]).relative_to(self.root).as_posix())
            except ValueError:
                continue
            if meta.key == key and meta.part == part:
                return True
        return False

    # ---- committing (the committer thread) -----------------------------------------------------
    def _commit_loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    due = self._pending and (self._pending >= self.max_events or self._commit_wanted
                                             or time.monotonic() - self._first_pending_at >= self.interval_s)
                    if due or self._to_seal or self._commit_wanted or self._stopping:
                        break
                    wait = self.interval_s - (time.monotonic() - self._first_pending_at) if self._pending else 1.0
                    self._cond.wait(max(wait, 0.0005))
                if self._stopping and not self._pending and not self._to_seal:
                    return
                batch = self._take()
            try:
                with self._io:
                    self._write(*batch)
            except BaseException as exc:        # surfaced to every caller; never silently lost
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return

    def _take(self) -> tuple:
        """Take every pending run and every file left to seal, atomically. Mutex held."""
        runs = []
        for hot in list(self._files.values()) + self._to_seal:
            if hot.pending_events:
                runs.append((hot, b"".join(hot.pending) if len(hot.pending) > 1 else hot.pending[0],
                             hot.pending_events))
                hot.written += hot.pending_events
                hot.written_bytes += len(runs[-1][1])
                hot.pending = []
                hot.pending_events = 0
        n, self._pending = self._pending, 0
        to_seal, self._to_seal = self._to_seal, []
        self._sealing.update((h.relpath, h) for h in to_seal)
        self._commit_wanted = False
        self._cond.notify_all()                 # appenders waiting on back-pressure may go on
        return runs, n, to_seal

    def _write(self, runs: list, n: int, to_seal: list[HotFile]) -> None:
        """Commit one group (WAL frame, fsync, fan-out), then checkpoint and seal if due. `_io` held."""
        if n:
            frame = encode_frame([[hot.relpath, k, len(data)] for hot, data, k in runs],
                                 b"".join(data for _, data, _ in runs), n)
            lsn = self._wal.append(frame)
            for hot, data, _ in runs:
                view = memoryview(data)
                while view:
                    view = view[os.write(hot.fd, view):]
            with self._cond:
                self.durable = Ack(lsn, self.durable.events + n)
                self._cond.notify_all()
            for listener in self._listeners:
                listener(self.durable)
        if to_seal or self._wal.should_roll() or \
                time.monotonic() - self._last_checkpoint > CHECKPOINT_INTERVAL_S:
            self._checkpoint(to_seal)
            self._seal(to_seal)

    def _checkpoint(self, closing: list[HotFile] = ()) -> None:
        """Make every hot file durable by itself and record the WAL position that covers them. `_io` held."""
        # Every file not yet sealed is listed — also those left behind by their stream but not yet
        # taken for sealing: later frames may still append to them, and recovery must truncate
        # them to these sizes, not to zero.
        with self._mutex:
            unsealed = list(self._files.values()) + self._to_seal + list(closing)
        for hot in unsealed:
            os.fsync(hot.fd)
        self._wal.fsync()
        ckpt = Checkpoint(self.durable.lsn, self.durable.events,
                          {hot.relpath: os.fstat(hot.fd).st_size for hot in unsealed})
        ckpt.save(self.root / WAL_DIR)
        if self._wal.should_roll():
            self._wal.roll()
        self._wal.retire_before(ckpt.lsn)
        self._last_checkpoint = time.monotonic()

    def _seal(self, to_seal: list[HotFile]) -> None:
        batch: list[dict] = []
        for hot in to_seal:
            os.close(hot.fd)
            hot.fd = -1
            manifest = None
            if os.path.getsize(self.root / hot.relpath) == 0:
                os.unlink(self.root / hot.relpath)
            else:
                codec, level = self.codec_of_type.get(hot.stream[4], (self.codec, self.level))
                manifest = seal_file(self.root, self.layout, hot.relpath, codec=codec, level=level,
                                     session_id=self.session_id, created_at=hot.created_at,
                                     duplicates_dropped=hot.duplicates)
                batch.append(manifest)
            with self._cond:
                self._sealing.pop(hot.relpath, None)
                if manifest is not None:
                    self.sealed.append(manifest)
                self._cond.notify_all()
        if batch and self.limits is not None:
            self.limits.sealed(batch)
        if batch and self.on_seal is not None:
            self.on_seal(batch)

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._closed or self._stopping:
            raise RuntimeError("ingestor is closed")

    # ---- public control --------------------------------------------------------------------
    def flush(self) -> Ack:
        """Commit everything appended so far (and finish the seals it triggered); return the durable position."""
        with self._cond:
            self._check_open()
            target = self._accepted
            while self.durable.events < target or self._to_seal or self._sealing:
                self._commit_wanted = True
                self._cond.notify_all()
                self._cond.wait(0.1)
                if self._error is not None:
                    raise self._error
            return self.durable

    def seal(self, *, orphans: bool = False) -> list[dict]:
        """Commit, then seal every open hot file — and with `orphans`, every other hot file in the
        tree (left by a crashed collector). Returns the new manifests."""
        with self._cond:
            self._check_open()
            before = len(self.sealed)
            self._to_seal.extend(self._files.values())
            self._files.clear()
            if orphans:
                self._to_seal.extend(self._orphans())
            self._commit_wanted = True
            self._cond.notify_all()
            while self._to_seal or self._sealing or self._pending:
                self._cond.wait(0.1)
                if self._error is not None:
                    raise self._error
            return self.sealed[before:]

    def _orphans(self) -> list[HotFile]:
        """Hot files on disk that no stream of this process has open. Mutex held."""
        known = {h.relpath for h in self._to_seal} | set(self._sealing)
        found = []
        for tier in TIER_ROOTS:
            for dirpath, _dirs, names in os.walk(self.root / tier):
                for name in names:
                    if not name.endswith(".jsonl"):
                        continue
                    rel = (Path(dirpath) / name).relative_to(self.root).as_posix()
                    if rel in known or manifest_path(self.root / rel).exists():
                        continue
                    try:
                        key = self.layout.parse(rel).key
                    except ValueError:
                        continue
                    hot = HotFile(rel, (key.root, key.source, key.asset_class, key.symbol, key.type), None,
                                  utc_now_iso(), state=self._stream((key.source, key.symbol, key.type)))
                    hot.fd = os.open(self.root / rel, os.O_WRONLY | os.O_APPEND)
                    found.append(hot)
        return found

    def swap_limits(self, build: Callable[[list[HotFile]], object]) -> object:
        """Replace the limits hook (a policy reload) between commits: ``build(unsealed hot files)``
        returns the new one (or None) and its ``attach(hot)`` each file's budget. Returns it."""
        with self._io, self._mutex:
            hots = list(self._files.values()) + self._to_seal + list(self._sealing.values())
            limits = self.limits = build(hots)
            for hot in hots:
                hot.budget = None if limits is None else limits.attach(hot)
            return limits

    def open_files(self) -> list[str]:
        with self._mutex:
            return [hot.relpath for hot in list(self._files.values()) + self._to_seal] + sorted(self._sealing)

    def close(self, *, seal: bool = True) -> None:
        """Clean shutdown: commit, seal (by default), checkpoint, release the lock."""
        if self._closed:
            return
        try:
            if self._error is None:
                if seal:
                    self.seal()
                else:
                    self.flush()
        finally:
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
            self._committer.join(timeout=60)
            try:
                if self._error is None:
                    with self._io:
                        self._checkpoint()
            finally:
                self._closed = True
                for hot in self._files.values():
                    if hot.fd >= 0:
                        os.close(hot.fd)
                self._wal.close()
                self._lock.release()

    def __enter__(self) -> "Ingestor":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(seal=exc_type is None)


_NS = {"Hourly": 3_600_000_000_000, "Daily": 86_400_000_000_000}


def _period_starts(ts: pa.ChunkedArray, partition: str) -> pa.Array:
    """Vectorised `layout.period_start` for a column of int64 ns."""
    if partition == "None":
        return pa.nulls(len(ts), pa.int64())
    if partition in _NS:
        width = _NS[partition]
        # floor division that is also right before 1970
        q = pc.divide(ts, width)                      # truncates toward zero
        q = pc.if_else(pc.greater(pc.multiply(q, width), ts), pc.subtract(q, 1), q)
        return pc.multiply(q, width).combine_chunks()
    stamps = pc.cast(ts, pa.timestamp("ns"))
    month = pc.floor_temporal(stamps, unit="month")
    return pc.cast(month, pa.int64()).combine_chunks()


