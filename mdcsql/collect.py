"""Running a collection: pull batches from one or more sources into the archive until told to stop.

Each source runs in its own thread and appends through its own writer, so a source that fails
(a bad message, a disconnect, an exception) never stops the others and never loses what was
already acknowledged: its error is counted and reported.  SIGINT/SIGTERM (Ctrl-C), the time
limit or the event limit stop every source between batches; the archive is then closed cleanly —
everything committed, sealed and catalogued.  kill -9 instead leaves it for recovery.
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
from contextlib import contextmanager

from mdcsql.errors import MdcsqlError
from mdcsql.ingest.integrity import OutOfOrderError
from mdcsql.lifecycle.quotas import QuotaExceededError
from mdcsql.sources.base import Source, batch_len


@contextmanager
def stop_on_signals():
    """An Event set by SIGINT/SIGTERM while the block runs (main thread only)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Runner(threading.Thread):
    """Pumps one source's batches into the archive."""

    def __init__(self, archive, source: Source, stop: threading.Event, budget: "_Budget") -> None:
        super().__init__(name=f"mdcsql-source-{source.id}", daemon=True)
        self.archive, self.source, self.stop_event, self.budget = archive, source, stop, budget
        self.writers: dict[str, object] = {}
        self.events = 0
        self.refused = 0                       # events a quota or EnforceMonotonicity refused
        self.refusals: dict[str, str] = {}     # first refusal message per quota scope / check
        self.failure: str | None = None

    def _writer(self, asset_class: str):
        w = self.writers.get(asset_class)
        if w is None:
            root = "live" if self.source.kind == "live" else "historical"
            w = self.writers[asset_class] = self.archive.writer(self.source.id, root=root, asset_class=asset_class)
        return w

    def _append(self, w, batch) -> None:
        """Append a batch; events a quota (HardLimit) or EnforceMonotonicity refuses are counted
        and left out — the rest of the batch and the other symbols go on."""
        if hasattr(batch, "num_rows"):
            w.append_table(batch, on_refused=self._refused)
            return
        while batch:
            try:
                w.append_many(batch, normalized=getattr(self.source, "canonical", False))
                return
            except (QuotaExceededError, OutOfOrderError) as exc:
                self._refused(exc, 1)
                batch = batch[exc.index + 1:]

    def _refused(self, exc: MdcsqlError, events: int) -> None:
        self.refused += events
        self.refusals.setdefault(getattr(exc, "scope", None) or "EnforceMonotonicity", str(exc))

    def run(self) -> None:
        try:
            for item in self.source.batches():
                asset_class, batch = item if isinstance(item, tuple) else (self.source.asset_class, item)
                n = batch_len(batch)
                if not n:
                    continue
                take = self.budget.take(n)
                if take < n:
                    batch = batch.slice(0, take) if hasattr(batch, "slice") else batch[:take]
                refused_before = self.refused
                self._append(self._writer(asset_class), batch)
                self.events += take - (self.refused - refused_before)
                if self.stop_event.is_set() or self.budget.exhausted:
                    break
        except MdcsqlError as exc:
            self.failure = str(exc)
            self.source.stats.error(str(exc))
        except Exception as exc:     # a source bug must not take the others down: counted, reported
            self.failure = f"{type(exc).__name__}: {exc}"
            self.source.stats.error(traceback.format_exc(limit=5))
        finally:
            try:
                self.source.close()
            except Exception as exc:
                self.source.stats.error(f"close failed: {exc}")


class _Budget:
    """The shared event limit (`events=`), split between sources as they go."""

    def __init__(self, limit: int | None) -> None:
        self.left = limit
        self._lock = threading.Lock()

    def take(self, n: int) -> int:
        if self.left is None:
            return n
        with self._lock:
            got = min(n, self.left)
            self.left -= got
            return got

    @property
    def exhausted(self) -> bool:
        return self.left is not None and self.left <= 0


def collect(archive, sources: list[Source], *, events: int | None = None, seconds: float | None = None,
            show_progress: bool = False, on_ack=None, stop: threading.Event | None = None) -> dict:
    """Collect from `sources` until they end, `events` are stored, `seconds` pass, or a signal stops it."""
    ingestor = archive.ingestor()
    if on_ack is not None:
        ingestor.on_ack(on_ack)
    sealed_before = len(ingestor.sealed)
    budget = _Budget(events)
    started = time.monotonic()
    progress = task = None
    if show_progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
        progress = Progress(TextColumn("collecting"), BarColumn(), TextColumn("{task.completed:,} events"),
                            TimeElapsedColumn(), transient=True)
        task = progress.add_task("collect", total=events)
        progress.start()
    interrupted = False
    runners: list[_Runner] = []
    try:
        with stop_on_signals() as signalled:
            stop_all = stop or threading.Event()
            runners = [_Runner(archive, s, stop_all, budget) for s in sources]
            for r in runners:
                r.start()
            while any(r.is_alive() for r in runners):
                if signalled.is_set() or stop_all.is_set() or budget.exhausted or \
                        (seconds is not None and time.monotonic() - started >= seconds):
                    interrupted = signalled.is_set()
                    stop_all.set()
                    for s in sources:
                        s.stop()
                    break
                if progress:
                    progress.update(task, completed=sum(r.events for r in runners))
                time.sleep(0.05)
            for r in runners:
                r.join()
    finally:
        if progress:
            progress.stop()
        archive.close(seal=True)
    took = time.monotonic() - started
    written = sum(r.events for r in runners)
    return {
        "sources": {r.source.id: {**r.source.stats.to_dict(), "events_appended": r.events, "failure": r.failure,
                                  "events_refused": r.refused} for r in runners},
        "refused": sum(r.refused for r in runners),
        "refusals": {scope: msg for r in runners for scope, msg in r.refusals.items()},
        "events": written, "seconds": took, "events_per_second": written / took if took else 0.0,
        "files_sealed": len(ingestor.sealed) - sealed_before,
        "duplicates_dropped": ingestor.duplicates_dropped, "interrupted": interrupted,
        "durable_events": ingestor.durable.events,
        "failed": [r.source.id for r in runners if r.failure],
    }
