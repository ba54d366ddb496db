"""A price-level order book that turns snapshots and incremental updates into L2Snapshot events.

Used by the file replays (Tardis incremental_book_L2, Binance depth diffs, Bybit deltas) and meant
for the live adapters too. Prices and sizes go in as canonical decimal text (callers validate them
with `mdcsql.events.decimal_text`) and come out as the *same* text: the book orders levels by an
exact integer key (the price × 10¹⁸; a `Decimal` for the rare price with more than 18 fractional
digits, which compares exactly with the integers) and never does float arithmetic. A level whose
size is zero (`0`, `0.000`) is removed. Equal prices written differently (`1.5`, `1.50`) are one
level; the text last written is kept.

The module also holds the few pieces the replay readers share (stats, the file opener, Arrow
batching), so each reader module stays one format.

    book = OrderBook()
    book.update(True, "100.5", "2")           # bid
    book.update(False, "101", "1")            # ask
    book.update(True, "100.5", "0")           # delete the bid level
    book.l2_event("BTCUSDT", "binance", ts, depth=10)   # canonical L2Snapshot dict, or None when empty
"""

from __future__ import annotations

import csv
import io
import zipfile
from bisect import bisect_left, insort
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO, Iterable

import numpy as np
import pyarrow as pa

from mdcsql import events as ev
from mdcsql.errors import InputError
from mdcsql.sources.base import SourceStats

__all__ = ["OrderBook", "price_key", "is_zero", "ReplayStats", "open_binary", "Batcher", "NS_PER_US",
           "NS_PER_MS", "SEQ_DAY", "day_seq_base"]

_SCALE_DIGITS = 18
_KEY_CACHE_MAX = 1 << 17
_key_cache: dict[str, int | Decimal] = {}


def price_key(price: str) -> int | Decimal:
    """The exact ordering key of a canonical decimal price text: price × 10¹⁸ (an int when exact)."""
    key = _key_cache.get(price)
    if key is not None:
        return key
    neg = price[:1] == "-"
    body = price[1:] if neg else price
    whole, _, frac = body.partition(".")
    if len(frac) <= _SCALE_DIGITS and whole.isdigit() and (not frac or frac.isdigit()):
        key = int(whole + frac.ljust(_SCALE_DIGITS, "0"))
    else:                                   # very long fractions (or odd text): exact Decimal, same units
        try:
            sign, digits, exp = Decimal(body).as_tuple()
        except ArithmeticError:
            raise InputError(f"price is not a decimal number: {price!r}", field="price") from None
        if not isinstance(exp, int):
            raise InputError(f"price must be finite, got {price!r}", field="price")
        key = Decimal((sign, digits, exp + _SCALE_DIGITS))
    if neg:
        key = -key
    if len(_key_cache) >= _KEY_CACHE_MAX:
        _key_cache.clear()
    _key_cache[price] = key
    return key


def is_zero(size: str) -> bool:
    """True when canonical decimal text is zero (`0`, `0.000`): the level is to be removed."""
    return not size.lstrip("-").replace(".", "").strip("0")


class OrderBook:
    """Bids and asks as price → [price text, size text], with sorted keys for the top levels.

    Each side keeps a dict (key → level) and an ascending list of keys; bid keys are negated, so
    index 0 is the best level on both sides. An update is a dict write plus, for a new or removed
    level, one `bisect` insert or delete (a memmove; books of thousands of levels stay cheap), and
    the top `depth` levels are a slice. Level lists handed out are never mutated by the book (an
    update replaces them), so events may share them.
    """

    __slots__ = ("_bids", "_asks", "_bid_keys", "_ask_keys", "missing_deletes")

    def __init__(self) -> None:
        self._bids: dict = {}
        self._asks: dict = {}
        self._bid_keys: list = []
        self._ask_keys: list = []
        self.missing_deletes = 0        # deletes of levels the book did not hold (a sign of a gap)

    def clear(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self._bid_keys.clear()
        self._ask_keys.clear()

    def update(self, is_bid: bool, price: str, size: str) -> None:
        """Set one level (`size` zero removes it). `price`/`size` are canonical decimal text."""
        key = price_key(price)
        if is_bid:
            key = -key
            levels, keys = self._bids, self._bid_keys
        else:
            levels, keys = self._asks, self._ask_keys
        if not size.replace(".", "").strip("0"):            # is_zero, inlined (sizes are never negative)
            if levels.pop(key, None) is None:
                self.missing_deletes += 1
            else:
                del keys[bisect_left(keys, key)]
            return
        if key not in levels:
            insort(keys, key)
        levels[key] = [price, size]

    set = update            # the spelling of coinbase.PriceBook, so the live adapters can switch to this class

    def top(self, depth: int | None = None) -> tuple[list[list[str]], list[list[str]]]:
        """(bids, asks) of the best `depth` levels each (coinbase.PriceBook's `top`)."""
        return self.bids(depth), self.asks(depth)

    def level_count(self, is_bid: bool) -> int:
        return len(self._bid_keys if is_bid else self._ask_keys)

    def load(self, bids: Iterable, asks: Iterable) -> None:
        """Replace the whole book with the given [price, size] levels (zero sizes are skipped)."""
        self.clear()
        for price, size in bids:
            self.update(True, price, size)
        for price, size in asks:
            self.update(False, price, size)

    def bids(self, depth: int | None = None) -> list[list[str]]:
        """The best `depth` bid levels (all when None), best first, as [price, size] text pairs."""
        levels = self._bids
        return [levels[k] for k in (self._bid_keys if depth is None else self._bid_keys[:depth])]

    def asks(self, depth: int | None = None) -> list[list[str]]:
        levels = self._asks
        return [levels[k] for k in (self._ask_keys if depth is None else self._ask_keys[:depth])]

    def best_bid(self) -> list[str] | None:
        return self._bids[self._bid_keys[0]] if self._bid_keys else None

    def best_ask(self) -> list[str] | None:
        return self._asks[self._ask_keys[0]] if self._ask_keys else None

    def crossed(self) -> bool:
        """Best bid ≥ best ask (a stale or inconsistent book)."""
        return bool(self._bid_keys and self._ask_keys) and -self._bid_keys[0] >= self._ask_keys[0]

    @property
    def bid_levels(self) -> int:
        return len(self._bid_keys)

    @property
    def ask_levels(self) -> int:
        return len(self._ask_keys)

    def __len__(self) -> int:
        return len(self._bid_keys) + len(self._ask_keys)

    def l2_event(self, symbol: str, source: str, ts: int, *, recv_ts: int | None = None, seq: int | None = None,
                 venue: str | None = None, depth: int | None = 10) -> dict | None:
        """A canonical L2Snapshot dict of the top `depth` levels; None when the book is empty."""
        if not self._bid_keys and not self._ask_keys:
            return None
        return {"type": "L2Snapshot", "symbol": symbol, "source": source, "ts": ts, "recv_ts": recv_ts,
                "seq": seq, "bids": self.bids(depth), "asks": self.asks(depth), "venue": venue}


# ---- shared by the replay readers ---------------------------------------------------------------
NS_PER_US = 1_000
NS_PER_MS = 1_000_000
SEQ_DAY = 10**12        # seq = day number × SEQ_DAY + ordinal, for sources without a sequence number


def day_seq_base(ts_ns: int) -> int:
    """The seq base of a file whose first event is at `ts_ns`: its UTC day number × 10¹²."""
    return (ts_ns // 86_400_000_000_000) * SEQ_DAY


@dataclass
class ReplayStats(SourceStats):
    """SourceStats plus what a file replay skipped on purpose, and warnings, by reason (never silently)."""

    skipped: dict = field(default_factory=dict)      # reason -> records not turned into events
    warnings: dict = field(default_factory=dict)     # reason -> events kept but worth a look

    def skip(self, reason: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def warn(self, reason: str, n: int = 1) -> None:
        self.warnings[reason] = self.warnings.get(reason, 0) + n

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["skipped"] = dict(self.skipped)
        out["warnings"] = dict(self.warnings)
        return out


def note_skip(stats: SourceStats | None, reason: str, n: int = 1) -> None:
    """Count a deliberate skip on `stats` (a ReplayStats; a plain SourceStats keeps it as a sample)."""
    if stats is None:
        return
    if isinstance(stats, ReplayStats):
        stats.skip(reason, n)
    elif len(stats.error_samples) < 20:
        stats.error_samples.append(f"skipped: {reason}")


_GZIP, _ZSTD, _ZIP = b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"PK\x03\x04"
_READ = 1 << 18


class _Decompressed(io.RawIOBase):
    """A gzip or zstd file (several members/frames allowed) as a raw stream of its decompressed bytes.

    A stream that stops inside a member/frame, or holds bad data, does not end quietly (zstandard's
    stream_reader would): with `lines=False` reading raises InputError("truncated zstd stream" /
    "corrupt zstd stream: …"); with `lines=True` only whole lines are handed out, the stream
    ends at the last complete line before the break, and `broken` says why (the reader then raises
    at the next line, as `mdcsql.events.iter_file` does).
    """

    def __init__(self, raw, codec: str, name: str, lines: bool) -> None:
        import zlib
        import zstandard
        self._raw, self._codec, self._name, self._lines = raw, codec, name, lines
        self._gz = codec == "gzip"
        self._new = (lambda: zlib.decompressobj(31)) if self._gz else zstandard.ZstdDecompressor().decompressobj
        self._errors = (zlib.error,) if self._gz else (zstandard.ZstdError,)
        self._d, self._fed, self._pending, self._buf, self._carry = self._new(), False, b"", b"", b""
        self.broken: str | None = None

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()
        super().close()

    def _break(self, why: str) -> bool:
        if not self._lines:
            raise InputError(why, file=self._name)
        self.broken, self._carry = why, b""         # the partial line after the last newline is not handed out
        return False

    def _fill(self) -> bool:
        """Decompress more into self._buf; False at the end of the data."""
        while not self._buf:
            if self.broken:
                return False
            data = self._pending or self._raw.read(_READ)
            self._pending = b""
            if not data:
                if self._fed:
                    tail = self._d.flush() if self._gz else b""
                    if not self._d.eof:
                        return self._break(f"truncated {self._codec} stream")
                    self._fed, self._buf = False, tail
                    continue
                self._buf, self._carry = self._carry, b""
                return bool(self._buf)
            if not self._fed:
                data = data.lstrip(b"\0") if self._gz else data     # gzip allows zero padding between members
                if not data:
                    continue
            self._fed = True
            try:
                out = self._d.decompress(data, 1 << 22) if self._gz else self._d.decompress(data)
            except self._errors as exc:
                return self._break(f"corrupt {self._codec} stream: {exc}")
            self._pending = self._d.unconsumed_tail if self._gz else b""
            if self._d.eof:
                self._pending = self._d.unused_data + self._pending
                self._d, self._fed = self._new(), False
            if self._lines:
                out = self._carry + out
                cut = out.rfind(b"\n") + 1
                self._buf, self._carry = out[:cut], out[cut:]
            else:
                self._buf = out
        return True

    def readinto(self, b) -> int:
        if not self._buf and not self._fill():
            return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def unbuffered(f):
    """The decompressing stream below `open_binary`'s buffer (reads that fail keep what came before), else f."""
    raw = getattr(f, "raw", None)
    return raw if isinstance(raw, _Decompressed) else f


def broken(f) -> str | None:
    """Why a stream from `open_binary(..., lines=True)` ended early (truncated/corrupt), else None."""
    return getattr(getattr(f, "raw", None), "broken", None)


def open_binary(path: Path, *, lines: bool = False) -> BinaryIO:
    """The file's bytes, decompressed by magic: gzip, zstd, or a zip of exactly one file; else as is.

    A truncated or corrupt gzip/zstd stream raises InputError (`file` set) when reading reaches it,
    or, with `lines=True`, ends after the last whole line and is reported by `broken(f)`.
    """
    path = Path(path)
    try:
        raw = open(path, "rb")
    except FileNotFoundError:
        from mdcsql.errors import NotFoundError
        raise NotFoundError(f"{path}: no such file") from None
    magic = raw.read(4)
    raw.seek(0)
    if magic[:2] == _GZIP:
        return io.BufferedReader(_Decompressed(raw, "gzip", str(path), lines), buffer_size=1 << 20)
    if magic == _ZSTD:
        return io.BufferedReader(_Decompressed(raw, "zstd", str(path), lines), buffer_size=1 << 20)
    if magic == _ZIP:
        try:
            zf = zipfile.ZipFile(raw)
        except zipfile.BadZipFile as exc:
            raw.close()
            raise InputError(f"corrupt zip: {exc}", file=str(path)) from None
        members = [i for i in zf.infolist() if not i.is_dir()]
        if len(members) != 1:
            raw.close()
            raise InputError(f"a zip to replay must hold exactly one file, {path.name} holds {len(members)}",
                             file=str(path))
        return zf.open(members[0])
    return raw


def head_bytes(path: Path, n: int = 4096, *, lines: bool = False) -> bytes:
    """The first `n` decompressed bytes of a file (b"" when it cannot be read): for `detect`.

    `lines=True` (text formats): a cut or corrupt compressed file still shows its whole first lines.
    """
    try:
        with open_binary(path, lines=lines) as f:
            return f.read(n)
    except Exception:           # detect() must be cheap and never raise
        return b""


def text_lines(binary: BinaryIO) -> io.TextIOWrapper:
    """UTF-8 text (BOM ignored) with newlines kept as is, for the csv module."""
    return io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")


class Batcher:
    """Collects canonical event dicts of one type, column by column, into canonical Arrow tables.

    The values must already be canonical (the readers validate every price and size as they parse
    it, and `tests/test_source_feeds.py` checks `normalize(e) == e` for every event), so the table
    is built with `arrow_schema(type)` directly: `normalize_table` costs ≈ 13 µs per 20-level
    L2Snapshot, and the writer's `append_table` runs it again anyway. Level lists (`bids`, `asks`)
    are kept flat (strings + offsets) and become a list<list<string>> column without per-level
    Python conversion.
    """

    __slots__ = ("etype", "schema", "cols", "names", "levels", "n", "size")

    def __init__(self, etype: str, size: int = 8192) -> None:
        self.etype, self.size, self.n = etype, size, 0
        self.schema = ev.arrow_schema(etype)
        self.levels = tuple(f for f in ("bids", "asks") if f in self.schema.names)
        self.names = tuple(f for f in self.schema.names if f not in self.levels)
        self._reset()

    def _reset(self) -> None:
        self.cols = {name: [] for name in self.names}
        for f in self.levels:
            self.cols[f] = ([], [0])          # flat [price, size, price, size, ...], level offsets
        self.n = 0

    def add(self, event: dict) -> bool:
        """Keep `event` (a canonical dict of this type); True when a batch is full (call `take`)."""
        cols = self.cols
        for name in self.names:
            cols[name].append(event[name])
        for f in self.levels:
            flat, offsets = cols[f]
            levels = event[f]
            for level in levels:
                flat += level
            offsets.append(offsets[-1] + len(levels))
        self.n += 1
        return self.n >= self.size

    def take(self) -> pa.Table | None:
        if not self.n:
            return None
        arrays = []
        for field in self.schema:
            if field.name in self.levels:
                flat, offsets = self.cols[field.name]
                pairs = pa.ListArray.from_arrays(pa.array(np.arange(0, len(flat) + 1, 2, dtype=np.int32)),
                                                 pa.array(flat, pa.string()))
                arrays.append(pa.ListArray.from_arrays(pa.array(np.array(offsets, dtype=np.int32)), pairs,
                                                       type=field.type))
            else:
                arrays.append(pa.array(self.cols[field.name], field.type))
        self._reset()
        return pa.Table.from_arrays(arrays, schema=self.schema)


def drain(out: "Batcher", asset_class: str):
    """Yield what `out` holds (used before re-raising an InputError: completed events are not lost)."""
    table = out.take()
    if table is not None:
        yield asset_class, table


STREAM_ERRORS = (InputError, EOFError, OSError, zipfile.BadZipFile)   # what reading a (compressed) file may raise


def stream_error(exc: BaseException, file: str, line: int | None) -> InputError:
    """An error met while reading the file, as InputError at `line` (unless it names one already)."""
    if isinstance(exc, InputError):
        return exc if exc.line is not None else where(exc, file, line)
    return InputError(f"unreadable input: {exc}", file=file, line=line)


def where(err: InputError, file: str, line: int | None, field: str | None = None) -> InputError:
    """`err` again with file, line (and field, unless it names one already) filled in."""
    return InputError(err.reason, file=file, line=line, field=field if field is not None else err.field)


def csv_rows(path: Path, header: list[str] | None, width: int | None = None, *, skip_first: bool = False):
    """(line, row) of a CSV's data rows; checks the header (when given) and every row's width.

    ``skip_first`` skips a first line already checked elsewhere (e.g. by ``detect``).
    Read errors of any kind become one InputError naming the file and line."""
    width = width or len(header)
    with open_binary(path, lines=True) as f:
        reader = csv.reader(text_lines(f))
        if skip_first:
            next(reader, None)
        try:
            if header is not None:
                got = next(reader, None)
                if got != header:
                    raise InputError(f"expected the header {','.join(header)}", file=str(path), line=1)
            for row in reader:
                if not row:
                    continue
                if len(row) != width:
                    raise InputError(f"expected {width} columns, got {len(row)}", file=str(path),
                                     line=reader.line_num)
                yield reader.line_num, row
        except csv.Error as exc:
            raise InputError(f"malformed CSV: {exc}", file=str(path), line=reader.line_num) from None
        except UnicodeDecodeError as exc:
            raise InputError(f"invalid UTF-8: {exc.reason}", file=str(path), line=reader.line_num + 1) from None
        except STREAM_ERRORS as exc:
            raise stream_error(exc, str(path), reader.line_num + 1) from None
        why = broken(f)
        if why:
            raise InputError(why, file=str(path), line=reader.line_num + 1)
