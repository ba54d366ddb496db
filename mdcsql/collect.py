"""Running a collection: pull events from a source into the archive until told to stop.

SIGINT/SIGTERM (Ctrl-C) stop the loop between batches; the archive is then closed cleanly —
everything committed, sealed and catalogued.  kill -9 instead leaves it for recovery.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager

from mdcsql.sources.sim import SimulatedMarket

CHUNK = 1_000


@contextmanager
def _stop_on_signals():
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


def collect_sim(archive, symbols: list[str], *, events: int | None = None, seconds: float | None = None,
                seed: int = 42, start_ns: int | None = None, rate: float = 5000.0,
                show_progress: bool = False, on_ack=None) -> dict:
    """Collect from the simulator: `events` of them as fast as possible, or at `rate`/s for `seconds`."""
    market = SimulatedMarket(symbols, seed=seed, start_ns=start_ns, events_per_second=rate)
    writer = archive.writer("sim")
    ingestor = writer.ingestor
    if on_ack is not None:
        ingestor.on_ack(on_ack)
    sealed_before = len(ingestor.sealed)
    written = 0
    started = time.monotonic()
    progress = task = None
    if show_progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
        progress = Progress(TextColumn("collecting"), BarColumn(), TextColumn("{task.completed:,} events"),
                            TimeElapsedColumn(), transient=True)
        task = progress.add_task("collect", total=events or (int(seconds * rate) if seconds else None))
        progress.start()
    interrupted = False
    try:
        with _stop_on_signals() as stop:
            while not stop.is_set():
                if events is not None and written >= events:
                    break
                elapsed = time.monotonic() - started
                if seconds is not None and elapsed >= seconds:
                    break
                n = CHUNK if events is None else min(CHUNK, events - written)
                if seconds is not None:      # pace to `rate` events per wall-clock second
                    due = int(min(elapsed + 0.01, seconds) * rate) - written
                    if due <= 0:
                        time.sleep(0.005)
                        continue
                    n = min(n, due)
                writer.append_many(market.take(n), normalized=True)
                written += n
                if progress:
                    progress.update(task, completed=written)
            interrupted = stop.is_set()
    finally:
        if progress:
            progress.stop()
        archive.close(seal=True)
    took = time.monotonic() - started
    return {"source": "sim", "symbols": symbols, "events": written, "seconds": took,
            "events_per_second": written / took if took else 0.0,
            "files_sealed": len(ingestor.sealed) - sealed_before,
            "duplicates_dropped": ingestor.duplicates_dropped, "interrupted": interrupted,
            "durable_events": ingestor.durable.events}
