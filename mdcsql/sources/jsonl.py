"""Replay of JSON-lines files: mdcsql's canonical records or the C# Market Data Collector's.

A reader module of the replay dispatcher (`mdcsql.sources.replay`): `FORMAT`, `DEFAULT_SOURCE`,
`detect(path)` and `read(path, …)`.  Plain, gzip and zstd files are read through
`mdcsql.events.iter_file` (the codec comes from the magic bytes), so every line is validated and
normalised exactly as `mdcsql ingest` does it, and batches hold canonical dicts.

Bad lines never stop the replay and are never dropped silently: each one is handed to `on_error`
(the dispatcher counts it in the source's stats, with samples, and keeps the raw bytes for
quarantine), or counted in `stats`; with neither, the first bad line raises its `InputError`.
A record's own `source` is kept; `source` only fills records that have none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from mdcsql import events as ev
from mdcsql.errors import InputError, NotFoundError
from mdcsql.sources.base import SourceStats

FORMAT = "jsonl"
DEFAULT_SOURCE = "jsonl"
BATCH = 5_000

OnError = Callable[[InputError, bytes], None]


def detect(path) -> bool:
    """True when the file's first non-blank line is a JSON object shaped like an event record."""
    path = Path(path)
    if not path.is_file():
        return False
    lines = ev.iter_file(path)
    try:
        _, item, raw = next(lines)
    except (StopIteration, InputError, NotFoundError, OSError):
        return False
    finally:
        lines.close()
    if isinstance(item, dict):
        return True
    try:
        record = ev.decode_line(raw)
    except InputError:
        return False
    if not isinstance(record, dict):
        return False
    kind = record.get("type")
    return "payload" in record or kind in ev.EVENT_TYPES or (isinstance(kind, int) and "timestamp" in record)


def read(path, *, symbol: str | None = None, source: str | None = None, asset_class: str = "equity",
         on_error: OnError | None = None, stats: SourceStats | None = None,
         batch: int = BATCH) -> Iterator[tuple[str, list[dict]]]:
    """Yield `(asset_class, [canonical event dicts])` in file order, `batch` events at a time.

    :param symbol: store every event under this symbol instead of its own.
    :param source: the source of records that carry none (default "jsonl").
    :param on_error: called with `(InputError, raw line)` for each bad line, which is then skipped.
    :param stats: counts lines read (`messages`), events yielded and, without `on_error`, bad lines.
    :raises NotFoundError: the file does not exist.
    :raises InputError: a bad line when neither `on_error` nor `stats` is given.
    """
    source = source or DEFAULT_SOURCE
    out: list[dict] = []
    for _line_no, item, raw in ev.iter_file(Path(path), source=source):
        if stats is not None:
            stats.messages += 1
        if isinstance(item, InputError):
            if on_error is not None:
                on_error(item, raw)
            elif stats is not None:
                stats.error(str(item))
            else:
                raise item
            continue
        if symbol is not None:
            item["symbol"] = symbol
        if stats is not None:
            stats.events += 1
        out.append(item)
        if len(out) >= batch:
            yield asset_class, out
            out = []
    if out:
        yield asset_class, out
