"""Replay of recorded market-data files: one source for every file format, detected from the file.

`ReplaySource(path)` asks each reader module, in the fixed order of `FORMATS`, whether it reads
the file (`detect(path)`), and replays it through the first that does; `format=` skips detection.
A directory replays every file in it (recursively, in path order) with the reader each file
needs; a reader with `read_many` (Binance depth: snapshot then diffs) gets its run of files in
one call.  Reader modules follow one contract — `FORMAT`, `DEFAULT_SOURCE`, `detect(path)`,
`read(path, *, symbol=None, source=None, …) -> Iterator[(asset_class, batch)]` — and are
imported lazily, so a format whose module (or its dependency) is missing is simply not tried,
and asking for it by name is a clear error.

`speed=None` replays as fast as possible; `speed=x` paces by event time at x × real time
(`mdcsql.sources.base.paced`, on slices of at most 50 ms of wall time).  Files are replayed one
after the other, so pacing restarts its clock at no point: a file that starts earlier in event
time than the previous one ended replays without waiting.

Bad input: readers of structured files raise `InputError` (file, line, field) on a malformed
record, which ends this source and is reported by the collection loop; JSONL replays skip bad
lines, counting each in `stats.errors` with samples and keeping the raw lines (up to
`MAX_KEPT_BYTES`) for `quarantine(archive_root)` — the dispatcher has no archive of its own.
"""

from __future__ import annotations

import importlib
import inspect
import queue
import threading
from pathlib import Path
from types import ModuleType
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa

from mdcsql.errors import ConfigError, InputError, NotFoundError
from mdcsql.sources.base import Batch, Source, SourceStats, batch_len, paced

FORMATS = ("dbn", "lean", "bybit", "tardis", "binance", "jsonl")   # detection order: most specific first
MAX_KEPT_BYTES = 16 * 2**20          # raw bad JSONL lines kept for quarantine
PACE_SLICE_S = 0.05                  # wall-clock seconds of events per paced slice
READ_AHEAD = 4                       # batches read ahead of the writer when replaying as fast as possible


def reader(name: str) -> ModuleType:
    """The reader module of a format; ConfigError when the name is unknown or its module is absent."""
    if name not in FORMATS:
        raise ConfigError(f"unknown replay format {name!r}; expected one of {', '.join(FORMATS)}")
    module = _load(name)
    if isinstance(module, str):
        raise ConfigError(f"format {name} is not available ({module})")
    return module


def available_formats() -> list[str]:
    return [name for name in FORMATS if not isinstance(_load(name), str)]


def _load(name: str) -> ModuleType | str:
    """The module, or why it cannot be imported."""
    try:
        return importlib.import_module(f"mdcsql.sources.{name}")
    except ImportError as exc:
        return f"mdcsql.sources.{name} cannot be imported: {exc}"


def detect_format(path) -> str | None:
    """The first format (in `FORMATS` order) whose reader accepts `path`, or None."""
    module, _ = _detect(Path(path))
    return module.FORMAT if module is not None else None


def _detect(path: Path) -> tuple[ModuleType | None, list[str]]:
    tried = []
    for name in FORMATS:
        module = _load(name)
        if isinstance(module, str):
            continue
        tried.append(name)
        try:
            if module.detect(path):
                return module, tried
        except Exception as exc:           # a detector must not stop the others: say so if none matches
            tried[-1] = f"{name} (detect failed: {type(exc).__name__}: {exc})"
    return None, tried


class ReplaySource(Source):
    """Replays a file or a directory of files in any supported format, as a historical source."""

    kind = "historical"

    def __init__(self, path, *, format: str | None = None, symbol: str | None = None,
                 source_id: str | None = None, speed: float | None = None, depth: int = 10) -> None:
        super().__init__()
        self.path = Path(path)
        if not self.path.exists():
            raise NotFoundError(f"{self.path}: no such file or directory")
        if speed is not None and not speed > 0:
            raise ConfigError(f"replay speed must be positive (or None for as fast as possible), got {speed}")
        self.symbol, self.speed, self.depth = symbol, speed, depth
        self.skipped_files: list[str] = []
        self.plan = self._plan(format)                      # [(module, [paths])] in replay order
        first = self.plan[0][0]
        self.format = first.FORMAT
        self.formats = sorted({m.FORMAT for m, _ in self.plan})
        self.id = source_id or first.DEFAULT_SOURCE
        self.asset_class = getattr(first, "ASSET_CLASS", "equity")
        self.canonical = all(m.FORMAT == "jsonl" for m, _ in self.plan)   # lists of canonical dicts
        self.stats = _stats()
        self.bad_lines: list[tuple[str, int | None, str, bytes]] = []     # (file, line, reason, raw)
        self._kept_bytes = 0
        self._stop = False

    # ---- what to read, with which reader ------------------------------------------------------
    def _plan(self, fmt: str | None) -> list[tuple[ModuleType, list[Path]]]:
        path = self.path
        if fmt is not None:
            module = reader(fmt)
            if path.is_file() or _accepts(module, path):
                return [(module, [path])]
            files = [f for f in _files(path) if _accepts(module, f)]
            if not files:
                raise InputError(f"no {fmt} files under this directory", file=str(path))
            return _runs((module, f) for f in files)
        module, tried = _detect(path)
        if module is not None:
            return [(module, [path])]
        if path.is_file():
            raise InputError(f"cannot tell the format of this file (tried {', '.join(tried)}"
                             f"{_unavailable()}); name it with --format", file=str(path))
        found = []
        for f in _files(path):
            m, _ = _detect(f)
            if m is None:
                self.skipped_files.append(str(f))
            else:
                found.append((m, f))
        if not found:
            raise InputError(f"no file of a known format under this directory (tried {', '.join(tried)}"
                             f"{_unavailable()})", file=str(path))
        return _runs(found)

    # ---- replaying ------------------------------------------------------------------------------
    def batches(self) -> Iterator[tuple[str, Batch]]:
        for name in self.skipped_files:
            self.stats.error(f"{name}: not a file format this replay reads; skipped")
        items = _pace(self._read_all(), self.speed) if self.speed else self._read_ahead(self._read_all())
        for asset_class, batch in items:
            yield asset_class, batch
            if self._stop:
                return

    def _read_all(self) -> Iterator[tuple[str, Batch]]:
        for module, paths in self.plan:
            read = module.read_many if len(paths) > 1 else module.read
            options = self._options(read)
            counts_itself = "stats" in options
            target = paths if len(paths) > 1 else paths[0]
            items = _as_pairs(read(target, symbol=self.symbol, source=self.id, **options), self.asset_class)
            for asset_class, batch in items:
                if not counts_itself:              # readers given `stats` count messages and events
                    n = batch_len(batch)
                    self.stats.messages += n
                    self.stats.events += n
                yield asset_class, batch
                if self._stop:
                    return

    def _read_ahead(self, items: Iterator[tuple[str, Batch]]) -> Iterator[tuple[str, Batch]]:
        """Read (parse, convert) in a thread of its own while the caller writes: up to READ_AHEAD batches."""
        q: queue.Queue = queue.Queue(maxsize=READ_AHEAD)
        done, quit_ = object(), threading.Event()

        def put(item) -> bool:
            while not (quit_.is_set() or self._stop):
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    pass
            return False

        def produce() -> None:
            try:
                for item in items:
                    if not put(item):
                        return
                put(done)
            except BaseException as exc:          # handed to the consumer and raised there
                put(exc)
            finally:
                items.close()

        thread = threading.Thread(target=produce, name=f"mdcsql-replay-{self.id}", daemon=True)
        thread.start()
        try:
            while True:
                try:
                    item = q.get(timeout=0.1)
                except queue.Empty:
                    if not thread.is_alive() and q.empty():
                        return                    # stopped by stop()
                    continue
                if item is done:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            quit_.set()
            thread.join()

    def _options(self, read) -> dict:
        params = inspect.signature(read).parameters
        options = {}
        if "depth" in params:
            options["depth"] = self.depth
        if "on_error" in params:
            options["on_error"] = self._bad_line
        if "stats" in params:
            options["stats"] = self.stats
        return options

    def _bad_line(self, error: InputError, raw: bytes) -> None:
        self.stats.error(str(error))
        if self._kept_bytes + len(raw) <= MAX_KEPT_BYTES:
            self._kept_bytes += len(raw) + 1
            self.bad_lines.append((error.file or str(self.path), error.line, error.reason, raw))

    def quarantine(self, root) -> dict | None:
        """Keep the bad JSONL lines met so far in the archive's `_quarantine/` (None if there were none)."""
        if not self.bad_lines:
            return None
        from mdcsql.ingest.recovery import quarantine
        data = b"".join(raw if raw.endswith(b"\n") else raw + b"\n" for *_, raw in self.bad_lines)
        lines = [{"file": f, "line": line, "reason": reason} for f, line, reason, _ in self.bad_lines]
        return quarantine(Path(root), f"replay-{self.path.name}", data,
                          {"file": str(self.path), "reason": "bad input lines", "lines": lines,
                           "bad_lines": self.stats.errors, "kept": len(lines)})

    def stop(self) -> None:
        self._stop = True

    def close(self) -> None:
        self._stop = True                          # a read-ahead thread still running ends too


def _stats() -> SourceStats:
    try:
        from mdcsql.sources.book import ReplayStats      # counts deliberate skips by reason
    except ImportError:
        return SourceStats()
    return ReplayStats()


def _unavailable() -> str:
    missing = [name for name in FORMATS if isinstance(_load(name), str)]
    return f"; not available here: {', '.join(missing)}" if missing else ""


def _files(directory: Path) -> list[Path]:
    return sorted((p for p in directory.rglob("*") if p.is_file() and not p.name.startswith(".")),
                  key=lambda p: p.as_posix())


def _accepts(module: ModuleType, path: Path) -> bool:
    try:
        return bool(module.detect(path))
    except Exception:
        return False


def _stateful(module: ModuleType, path: Path) -> bool:
    """True for a file its reader replays with the files after it (`read_many`): Binance depth CSVs."""
    header = getattr(module, "DEPTH_HEADER", None)
    if header is None or not hasattr(module, "read_many"):
        return False
    from mdcsql.sources.book import head_bytes
    first = head_bytes(path, 4096).split(b"\n", 1)[0].rstrip(b"\r").removeprefix(b"\xef\xbb\xbf")
    return first.decode("ascii", "replace").split(",") == list(header)


def _runs(found: Iterable[tuple[ModuleType, Path]]) -> list[tuple[ModuleType, list[Path]]]:
    """Files in replay order; consecutive files a reader replays together (`_stateful`) form one run."""
    runs: list[tuple[ModuleType, list[Path]]] = []
    for module, path in found:
        if runs and runs[-1][0] is module and _stateful(module, path) and _stateful(module, runs[-1][1][-1]):
            runs[-1][1].append(path)
        else:
            runs.append((module, [path]))
    return runs


def _as_pairs(items, asset_class: str) -> Iterator[tuple[str, Batch]]:
    for item in items:
        yield item if isinstance(item, tuple) else (asset_class, item)


def _pace(items: Iterator[tuple[str, Batch]], speed: float | None) -> Iterator[tuple[str, Batch]]:
    """`paced` for (asset_class, batch) pairs, on slices of at most PACE_SLICE_S of wall time."""
    if not speed:
        yield from items
        return
    window = max(1, int(PACE_SLICE_S * speed * 1e9))
    current: list[str] = []

    def slices() -> Iterator[Batch]:
        for asset_class, batch in items:
            current[:] = [asset_class]
            yield from _time_slices(batch, window)

    for part in paced(slices(), speed):
        yield current[0], part


def _time_slices(batch: Batch, window_ns: int) -> Iterator[Batch]:
    """Cut a batch where its event time crosses a multiple of `window_ns` from its first event."""
    n = batch_len(batch)
    if n == 0:
        return
    if isinstance(batch, pa.Table):
        ts = batch.column("ts").to_numpy()
    else:
        ts = np.fromiter((e["ts"] for e in batch), np.int64, n)
    bucket = (ts - ts[0]) // window_ns
    cuts = np.flatnonzero(bucket[1:] != bucket[:-1]) + 1
    bounds = [0, *cuts.tolist(), n]
    for a, b in zip(bounds, bounds[1:]):
        yield batch.slice(a, b - a) if isinstance(batch, pa.Table) else batch[a:b]
