"""The one interface every event source implements, and the pacing shared by replays.

A source yields *batches*: an Arrow table of one event type (the fast path, for file replays) or
a list of event dicts (canonical, or any shape `mdcsql.events.normalize` accepts).  The
collection loop (`mdcsql.collect`) feeds each batch to the archive's writer for `source.id`,
so a source never touches files, the WAL or the catalog itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Union

import pyarrow as pa

Batch = Union[pa.Table, list]


@dataclass
class SourceStats:
    """What a source counts about itself; reported per source at the end of a collection."""

    messages: int = 0            # raw messages or rows read
    events: int = 0              # events yielded
    errors: int = 0              # bad messages (each also kept in `error_samples`)
    reconnects: int = 0
    gaps: list = field(default_factory=list)      # [{"symbol", "expected", "got"}] sequence gaps seen upstream
    error_samples: list = field(default_factory=list)

    def error(self, detail: str, *, keep: int = 20) -> None:
        self.errors += 1
        if len(self.error_samples) < keep:
            self.error_samples.append(detail)

    def to_dict(self) -> dict:
        return {"messages": self.messages, "events": self.events, "errors": self.errors,
                "reconnects": self.reconnects, "gaps": len(self.gaps), "gap_details": self.gaps[:50],
                "error_samples": self.error_samples}


class Source:
    """Base class of event sources. Subclasses set `id`, `kind`, `asset_class` and implement `batches`."""

    id: str = "source"
    kind: str = "historical"          # "live" sources write under live/, "historical" under historical/
    asset_class: str = "equity"

    def __init__(self) -> None:
        self.stats = SourceStats()

    def batches(self) -> Iterator[Batch]:
        raise NotImplementedError

    def stop(self) -> None:
        """Ask a long-running (live) source to finish its current batch and end."""

    def close(self) -> None:
        """Release connections and files."""


def batch_len(batch: Batch) -> int:
    return batch.num_rows if isinstance(batch, pa.Table) else len(batch)


def batch_first_last_ts(batch: Batch) -> tuple[int, int]:
    if isinstance(batch, pa.Table):
        ts = batch.column("ts")
        return ts[0].as_py(), ts[-1].as_py()
    return batch[0]["ts"], batch[-1]["ts"]


def paced(batches: Iterable[Batch], speed: float | None, *, chunk: int = 1_000) -> Iterator[Batch]:
    """Replay at `speed` × real time by event time (`None`: as fast as possible).

    Batches are cut into chunks so pacing stays smooth; events must carry int-ns `ts`.
    """
    if not speed:
        yield from batches
        return
    wall0 = ts0 = None
    for batch in batches:
        n = batch_len(batch)
        for start in range(0, n, chunk):
            part = batch.slice(start, chunk) if isinstance(batch, pa.Table) else batch[start:start + chunk]
            first, _ = batch_first_last_ts(part)
            if wall0 is None:
                wall0, ts0 = time.monotonic(), first
            due = wall0 + (first - ts0) / 1e9 / speed
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            yield part
