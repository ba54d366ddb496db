"""A deterministic simulated market: the built-in source `make run` collects from.

For a given seed, symbol list and start time it always yields the same events: BBO quotes
around a random-walk mid price on a penny grid, trades at the touch, and periodic five-level
L2 snapshots, with per-stream sequence numbers and Poisson inter-arrival times.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Iterator

from mdcsql.sources.base import Source

_LOTS = ("1", "5", "10", "100", "100", "200", "500")
_STEPS = (-2, -1, 0, 0, 1, 2)
_BASE_PRICES = {"AAPL": 18700, "MSFT": 37500, "SPY": 47500, "GOOGL": 14200, "AMZN": 15300, "TSLA": 21800}


def _px(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


@dataclass
class _Book:
    mid: int            # in half-cents so the spread can be odd
    seq: dict


class SimulatedMarket:
    """Iterates canonical events; `events_per_second` is the mean event rate of the simulated clock."""

    def __init__(self, symbols: list[str], *, seed: int = 42, start_ns: int | None = None,
                 source: str = "sim", events_per_second: float = 2_000.0, l2_every: int = 50) -> None:
        if not symbols:
            raise ValueError("the simulator needs at least one symbol")
        self.symbols = list(symbols)
        self.rng = random.Random(seed)
        self.source = source
        self.ts = start_ns if start_ns is not None else time.time_ns()
        self.mean_gap_ns = 1e9 / events_per_second
        self.l2_every = l2_every
        self.books = {}
        for s in self.symbols:
            base = _BASE_PRICES.get(s, 1000 + (sum(map(ord, s)) * 37) % 50000)
            self.books[s] = _Book(mid=base * 2 + 1, seq={"Trade": 0, "BboQuote": 0, "L2Snapshot": 0})
        self._count = 0

    def _next_seq(self, book: _Book, etype: str) -> int:
        book.seq[etype] += 1
        return book.seq[etype]

    def __iter__(self) -> Iterator[dict]:
        return self

    def __next__(self) -> dict:
        rand = self.rng.random
        self.ts += max(1, int(-math.log(1.0 - rand()) * self.mean_gap_ns))
        symbol = self.symbols[int(rand() * len(self.symbols))]
        book = self.books[symbol]
        self._count += 1
        bid, ask = (book.mid - 1) // 2, (book.mid + 1) // 2
        if self._count % self.l2_every == 0:
            return {"type": "L2Snapshot", "symbol": symbol, "source": self.source, "ts": self.ts,
                    "recv_ts": self.ts + 150_000, "seq": self._next_seq(book, "L2Snapshot"),
                    "bids": [[_px(bid - i), str(100 * (1 + int(rand() * 20)))] for i in range(5)],
                    "asks": [[_px(ask + i), str(100 * (1 + int(rand() * 20)))] for i in range(5)],
                    "venue": None}
        if rand() < 0.35:
            side = "buy" if rand() < 0.5 else "sell"
            return {"type": "Trade", "symbol": symbol, "source": self.source, "ts": self.ts,
                    "recv_ts": self.ts + 120_000, "seq": self._next_seq(book, "Trade"),
                    "price": _px(ask if side == "buy" else bid), "size": _LOTS[int(rand() * len(_LOTS))],
                    "side": side, "trade_id": None, "venue": None, "conditions": None}
        book.mid += _STEPS[int(rand() * len(_STEPS))]
        bid, ask = (book.mid - 1) // 2, (book.mid + 1) // 2
        return {"type": "BboQuote", "symbol": symbol, "source": self.source, "ts": self.ts,
                "recv_ts": self.ts + 100_000, "seq": self._next_seq(book, "BboQuote"),
                "bid_price": _px(bid), "bid_size": str(100 * (1 + int(rand() * 30))),
                "ask_price": _px(ask), "ask_size": str(100 * (1 + int(rand() * 30))), "venue": None}

    def take(self, n: int) -> list[dict]:
        return [next(self) for _ in range(n)]


class SimSource(Source):
    """The simulator as a collection source: `rate` events per wall-clock second, or as fast as possible."""

    id = "sim"
    kind = "live"
    asset_class = "equity"
    canonical = True          # builds canonical dicts itself: the writer may skip validation

    def __init__(self, symbols: list[str], *, seed: int = 42, start_ns: int | None = None,
                 rate: float | None = None, source_id: str = "sim", chunk: int = 1_000) -> None:
        super().__init__()
        self.id = source_id
        self.market = SimulatedMarket(symbols, seed=seed, start_ns=start_ns, source=source_id,
                                      events_per_second=rate or 5_000.0)
        self.rate, self.chunk = rate, chunk
        self._stop = False

    def batches(self):
        started, sent = time.monotonic(), 0
        while not self._stop:
            n = self.chunk
            if self.rate:                      # pace to `rate` events per wall-clock second
                due = int((time.monotonic() - started + 0.01) * self.rate) - sent
                if due <= 0:
                    time.sleep(0.005)
                    continue
                n = min(n, due)
            batch = self.market.take(n)
            sent += n
            self.stats.messages += n
            self.stats.events += n
            yield batch

    def stop(self) -> None:
        self._stop = True
