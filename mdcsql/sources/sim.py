"""A deterministic simulated market, seen through one or more source *views*: `--source sim`.

One **market** (`SimConfig`) per seed: for each symbol a mid price on its tick grid that follows a
random walk (annualised `volatility`, moves scaled to the event rate), a quoted spread of a few
ticks, trades at the touch (buys lift the ask, sells hit the bid; realistic lot sizes, a venue,
a trade id), BBO quotes, L2 snapshots whose top level is the BBO, MBO-style order flow (add,
modify, cancel, fill of orders it keeps track of) and OHLCV bars built from its own trades.
Events arrive as a Poisson process whose rate follows a U-shaped **intraday volume curve** by
time of day in the exchange's time zone (busy open and close, quiet midday, thin extended hours,
nearly silent overnight); `events_per_second` is the mean over a whole UTC day.
Every (symbol, type) stream carries its own sequence numbers.

Each **view** (`SimView`) is one source's picture of that same market, with its own deterministic
differences: receive latency (`recv_ts − ts` = `latency_ns` + exponential jitter of mean
`jitter_ns`), dropped events (sequence gaps), duplicates (the same seq sent again), out-of-order
delivery (an event delivered after the next one of its stream), small price errors (a few ticks),
a sequence offset or its own dense renumbering (then drops leave no gap), and a subset of the
event types.  `sim_sources()` builds one `SimSource` per view — the material for quality scoring
and cross-source reconciliation (trade ids and order ids are the market's, so views join on them).

Speed: the market is generated in fixed blocks of `BLOCK` events with numpy (only order flow is
a Python loop), and a `SimSource` yields Arrow tables, one per event type and block; nothing is
done per event in Python on that path.  Determinism: the same seed, start, symbols, config and
view give the same events (numpy's PCG64 streams; reproducible with one numpy version) and so a
byte-identical archive, however the output is sliced.  See docs/sources.md.
"""

from __future__ import annotations

import itertools
import math
import time
import zlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Iterator, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa

from mdcsql.errors import ConfigError
from mdcsql.sources.base import Source

BLOCK = 65_536                  # market events generated per block (fixed: the output never depends on slicing)
DAY_NS = 86_400 * 10**9
BUCKET_NS = 300 * 10**9         # the volume curve is piecewise constant over 5-minute buckets
TYPES = ("Trade", "BboQuote", "L2Snapshot", "OrderFlow", "HistoricalBar")
TRADE, QUOTE, L2, FLOW, BAR = range(5)
ACTIONS = ("add", "modify", "cancel", "fill")
SIDES = ("buy", "sell")
_BASE_CENTS = {"AAPL": 18700, "MSFT": 37500, "SPY": 47500, "GOOGL": 14200, "AMZN": 15300, "TSLA": 21800}
_LOTS = np.array([1, 5, 10, 25, 50, 100, 200, 300, 400, 500, 1000, 2000, 5000], np.int64)
_LOT_P = np.array([2, 2, 3, 3, 5, 40, 14, 8, 6, 6, 6, 3, 2], float) / 100.0
_INTERVAL_NS = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


# ---- configuration -----------------------------------------------------------------------------

@dataclass(frozen=True)
class SimView:
    """One source's view of the market: what it gets wrong, deterministically (rates are per event)."""

    name: str = "sim"
    latency_ns: int = 100_000          # minimum receive latency
    jitter_ns: int = 50_000            # mean of the exponential latency on top of it
    gap_rate: float = 0.0              # events dropped (a sequence gap unless `renumber`)
    duplicate_rate: float = 0.0        # events sent twice (same seq; the writer drops the copy)
    out_of_order_rate: float = 0.0     # events delivered after the next event of their stream
    price_error_rate: float = 0.0      # events whose prices are off by 1..price_error_ticks ticks
    price_error_ticks: int = 1
    seq_offset: int = 0                # added to the market's sequence numbers
    renumber: bool = False             # number each stream densely itself (drops leave no gap)
    retransmit_ns: int = 1_000_000     # a duplicate arrives this much after the original
    types: tuple[str, ...] = TYPES     # event types this source carries

    def __post_init__(self) -> None:
        for name in ("gap_rate", "duplicate_rate", "out_of_order_rate", "price_error_rate"):
            value = getattr(self, name)
            if not 0.0 <= value < 0.5:
                raise ConfigError(f"SimView {self.name!r}: {name} must be in [0, 0.5), got {value}")
        if self.latency_ns < 0 or self.jitter_ns < 0 or self.retransmit_ns < 0:
            raise ConfigError(f"SimView {self.name!r}: latencies must not be negative")
        if self.price_error_ticks < 1:
            raise ConfigError(f"SimView {self.name!r}: price_error_ticks must be at least 1")
        unknown = set(self.types) - set(TYPES)
        if unknown or not self.types:
            raise ConfigError(f"SimView {self.name!r}: types must be a non-empty subset of {', '.join(TYPES)}")

    @classmethod
    def preset(cls, name: str) -> "SimView":
        """`sim-b` and `sim-c` are the standard second and third sources; any other name is clean."""
        if name == "sim-b":      # a fast vendor: a little loss, rare duplicates and reordering, offset seqs
            return cls(name, latency_ns=2_000_000, jitter_ns=1_000_000, gap_rate=0.002, duplicate_rate=0.001,
                       out_of_order_rate=0.001, price_error_rate=0.002, price_error_ticks=1,
                       seq_offset=1_000_000)
        if name == "sim-c":      # a slow consolidator: no depth or order flow, more loss, its own seqs
            return cls(name, latency_ns=15_000_000, jitter_ns=10_000_000, gap_rate=0.01, duplicate_rate=0.003,
                       out_of_order_rate=0.005, price_error_rate=0.01, price_error_ticks=2, renumber=True,
                       types=("Trade", "BboQuote", "HistoricalBar"))
        return cls(name)


@dataclass(frozen=True)
class SimConfig:
    """The simulated market (shared by every view of it)."""

    events_per_second: float = 5_000.0          # mean over a UTC day; the volume curve shapes it
    tick_sizes: Mapping[str, str] = field(default_factory=dict)    # symbol -> tick, e.g. {"BTCUSD": "0.5"}
    default_tick: str = "0.01"
    prices: Mapping[str, str] = field(default_factory=dict)        # symbol -> starting price
    spread_ticks: float = 1.5                   # mean quoted spread in ticks (≥ 1)
    volatility: float = 0.25                    # annualised, 252 days
    volume_curve: bool = True                   # False: a flat rate around the clock (e.g. crypto)
    exchange_tz: str = "America/New_York"
    session: tuple[str, str] = ("09:30", "16:00")
    extended_hours: tuple[str, str] = ("04:00", "20:00")
    open_boost: float = 3.0                     # extra rate at the open, × the midday rate
    close_boost: float = 2.0                    # extra rate at the close
    extended_level: float = 0.08                # rate in extended hours, × the midday rate
    overnight_level: float = 0.02
    trade_share: float = 0.25                   # of the non-L2 events; quotes take the rest
    order_flow: bool = True
    order_flow_share: float = 0.15
    l2_every: int = 50                          # every n-th event is an L2 snapshot (0: none)
    l2_depth: int = 5
    bar_interval: str | None = "1m"             # OHLCV bars from the trades (None: no bars)
    venues: tuple[str, ...] = ("XNAS", "XNYS", "ARCX", "BATS", "EDGX", "IEXG")
    asset_class: str = "equity"

    def __post_init__(self) -> None:
        if not self.events_per_second > 0:
            raise ConfigError(f"events_per_second must be positive, got {self.events_per_second}")
        shares = self.trade_share + (self.order_flow_share if self.order_flow else 0.0)
        if not (0 < self.trade_share and shares < 1):
            raise ConfigError("trade_share (+ order_flow_share) must be positive and below 1")
        if self.spread_ticks < 1 or self.volatility < 0 or self.l2_every < 0 or self.l2_depth < 1:
            raise ConfigError("spread_ticks ≥ 1, volatility ≥ 0, l2_every ≥ 0 and l2_depth ≥ 1 are required")
        if self.bar_interval is not None:
            interval_ns(self.bar_interval)
        try:
            ZoneInfo(self.exchange_tz)
        except (ValueError, ZoneInfoNotFoundError):
            raise ConfigError(f"exchange_tz {self.exchange_tz!r} is not a known time zone") from None
        for hhmm in (*self.session, *self.extended_hours):
            _minutes(hhmm)

    def tick(self, symbol: str) -> tuple[int, int]:
        """The symbol's tick as (units, decimals): "0.05" -> (5, 2)."""
        return _decimal_units(self.tick_sizes.get(symbol, self.default_tick), f"tick size of {symbol}")

    def start_ticks(self, symbol: str, tick: tuple[int, int]) -> int:
        units, dec = tick
        text = self.prices.get(symbol)
        if text is None:
            cents = _BASE_CENTS.get(symbol, 1000 + (sum(map(ord, symbol)) * 37) % 50000)
            price = Decimal(cents) / 100
        else:
            _decimal_units(text, f"price of {symbol}")
            price = Decimal(text)
        return max(1, int((price.scaleb(dec) / units).to_integral_value()))


def interval_ns(text: str) -> int:
    num = "".join(ch for ch in text if ch.isdigit())
    unit = text[len(num):]
    if not num or int(num) <= 0 or unit not in _INTERVAL_NS:
        raise ConfigError(f"bar_interval must look like 500ms, 1s, 1m or 1h, got {text!r}")
    return int(num) * _INTERVAL_NS[unit]


def _decimal_units(text: str, what: str) -> tuple[int, int]:
    try:
        d = Decimal(text)
    except (InvalidOperation, TypeError):
        raise ConfigError(f"{what} is not a decimal number: {text!r}") from None
    if not d.is_finite() or d <= 0:
        raise ConfigError(f"{what} must be a positive number, got {text!r}")
    dec = max(0, -d.as_tuple().exponent)
    return int(d.scaleb(dec)), dec


def _minutes(hhmm: str) -> int:
    h, _, m = hhmm.partition(":")
    if not (h.isdigit() and m.isdigit() and int(h) <= 24 and int(m) < 60 and int(h) * 60 + int(m) <= 1440):
        raise ConfigError(f"session times must look like 09:30, got {hhmm!r}")
    return int(h) * 60 + int(m)


# ---- small vectorised helpers ------------------------------------------------------------------

class _Groups:
    """Rows grouped by an integer key (stable): grouped cumsum, forward fill, position in group."""

    def __init__(self, keys: np.ndarray) -> None:
        self.n = len(keys)
        self.order = np.argsort(keys, kind="stable")
        sk = keys[self.order]
        self.sorted_keys = sk
        self.starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]]) if self.n else np.zeros(0, np.int64)
        self.lengths = np.diff(np.r_[self.starts, self.n])
        self.keys = sk[self.starts]
        self.first = np.repeat(self.starts, self.lengths)

    def _unsort(self, values: np.ndarray) -> np.ndarray:
        out = np.empty_like(values)
        out[self.order] = values
        return out

    def cumsum(self, x: np.ndarray) -> np.ndarray:
        xs = x[self.order]
        cs = np.cumsum(xs)
        cs -= np.repeat(cs[self.starts] - xs[self.starts], self.lengths)
        return self._unsort(cs)

    def cumcount(self) -> np.ndarray:
        return self._unsort(np.arange(self.n) - self.first)

    def ffill(self, x: np.ndarray, valid: np.ndarray, carry: np.ndarray) -> np.ndarray:
        """x where valid, else the group's last valid x before it, else carry[key]."""
        idx = np.maximum.accumulate(np.where(valid[self.order], np.arange(self.n), -1))
        vals = np.where(idx >= self.first, x[self.order][np.maximum(idx, 0)], carry[self.sorted_keys])
        return self._unsort(vals)

    def last(self, x: np.ndarray) -> np.ndarray:
        return x[self.order][self.starts + self.lengths - 1]


class _Clock:
    """Event times of a Poisson process whose rate follows the intraday curve (exact inversion)."""

    def __init__(self, cfg: SimConfig, start_ns: int) -> None:
        self.cfg = cfg
        self.per_day = cfg.events_per_second * 86_400.0
        self.tz = ZoneInfo(cfg.exchange_tz) if cfg.volume_curve else None
        self._tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.day = start_ns // DAY_NS
        edges, cum = self._table(self.day)
        within = start_ns - self.day * DAY_NS
        b = min(int(within // BUCKET_NS), len(cum) - 2)
        self.lam = cum[b] + (within - edges[b]) * (cum[b + 1] - cum[b]) / BUCKET_NS
        self.last = start_ns - 1

    def _table(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        """Bucket edges (ns within the UTC day) and the expected event count up to each edge."""
        t = self._tables.get(day)
        if t is None:
            edges = np.arange(0, DAY_NS + 1, BUCKET_NS, dtype=np.float64)
            level = np.ones(len(edges) - 1)
            if self.tz is not None:
                level = np.array([self._level(day * DAY_NS + int(e) + BUCKET_NS // 2) for e in edges[:-1]])
            level *= len(level) / level.sum()          # mean 1 over the UTC day
            cum = np.r_[0.0, np.cumsum(level)] * (self.per_day / len(level))
            if len(self._tables) > 64:
                self._tables.clear()
            t = self._tables[day] = (edges, cum)
        return t

    def _level(self, utc_ns: int) -> float:
        local = datetime.fromtimestamp(utc_ns // 10**9, timezone.utc).astimezone(self.tz)
        m = local.hour * 60 + local.minute + local.second / 60.0
        c = self.cfg
        open_, close = _minutes(c.session[0]), _minutes(c.session[1])
        if open_ <= m < close:
            x = (m - open_) / (close - open_)
            return 1.0 + c.open_boost * math.exp(-x / 0.06) + c.close_boost * math.exp(-(1.0 - x) / 0.04)
        lo, hi = _minutes(c.extended_hours[0]), _minutes(c.extended_hours[1])
        return c.extended_level if lo <= m < hi else c.overnight_level

    def next(self, n: int, rng: np.random.Generator) -> np.ndarray:
        lam = self.lam + np.cumsum(rng.standard_exponential(n))
        k = np.floor(lam / self.per_day).astype(np.int64)
        within = lam - k * self.per_day
        out = np.empty(n, np.int64)
        for dk in np.unique(k).tolist():
            m = k == dk
            edges, cum = self._table(self.day + dk)
            b = np.clip(np.searchsorted(cum, within[m], side="right") - 1, 0, len(cum) - 2)
            frac = (within[m] - cum[b]) / np.maximum(cum[b + 1] - cum[b], 1e-300)
            out[m] = (self.day + dk) * DAY_NS + (edges[b] + frac * BUCKET_NS).astype(np.int64)
        self.day += int(k[-1])
        self.lam = float(within[-1])
        # strictly increasing, after the previous block: ts[i] >= ts[i-1] + 1
        ar = np.arange(n, dtype=np.int64)
        out = np.maximum.accumulate(np.maximum(out - ar, self.last + 1)) + ar
        self.last = int(out[-1])
        return out


def _take(cols: dict, idx) -> dict:
    return {k: v[idx] for k, v in cols.items()}


# ---- the market --------------------------------------------------------------------------------

class _Market:
    """The one true market: blocks of events as numpy columns per type code, prices in ticks."""

    def __init__(self, symbols: list[str], cfg: SimConfig, seed: int, start_ns: int) -> None:
        self.cfg, self.symbols = cfg, symbols
        n_sym = len(symbols)
        self.rng = np.random.default_rng(seed % 2**64)
        self.ticks = [cfg.tick(s) for s in symbols]
        self.bid = np.array([cfg.start_ticks(s, t) for s, t in zip(symbols, self.ticks)], np.int64)
        self.spread = np.ones(n_sym, np.int64)
        self.seq = np.zeros((len(TYPES), n_sym), np.int64)
        self.trade_no = self.order_no = 0
        self.live: list[list[list[int]]] = [[] for _ in symbols]    # resting orders [id, side, px, qty]
        self.clock = _Clock(cfg, start_ns)
        self.count = 0            # raw events generated (the L2 cadence)
        self.pos = 0              # events of the market stream so far, bars included
        self.p_trade = cfg.trade_share
        self.p_flow = cfg.order_flow_share if cfg.order_flow else 0.0
        quotes_per_day = self.clock.per_day * (1.0 - self.p_trade - self.p_flow) / n_sym
        self.sigma = cfg.volatility / math.sqrt(252.0) / math.sqrt(max(quotes_per_day, 1.0))
        self.bar_ns = interval_ns(cfg.bar_interval) if cfg.bar_interval else 0
        self.bar = [-1] * n_sym               # open bar number per symbol
        self.bar_state: list = [None] * n_sym  # [o, h, l, c, volume]

    def block(self) -> dict[int, dict[str, np.ndarray]]:
        n, rng, cfg = BLOCK, self.rng, self.cfg
        ts = self.clock.next(n, rng)
        sym = rng.integers(0, len(self.symbols), n)
        u = rng.random(n)
        kind = np.where(u < self.p_trade, TRADE, np.where(u < self.p_trade + self.p_flow, FLOW, QUOTE))
        if cfg.l2_every:
            kind[(self.count + 1 + np.arange(n)) % cfg.l2_every == 0] = L2
        self.count += n
        # The walk: quotes move the bid (variance per quote from the daily volatility); every event
        # sees its symbol's bid and spread as of the last quote before it.
        is_q = kind == QUOTE
        sd = (self.bid * self.sigma)[sym]
        z, u2 = rng.standard_normal(n), rng.random(n)
        step = np.where(sd >= 1.0, np.rint(z * sd), np.where(u2 < sd * sd, np.sign(z), 0.0)).astype(np.int64)
        step[~is_q] = 0
        spread = np.minimum(rng.geometric(1.0 / cfg.spread_ticks, n), 20).astype(np.int64)
        g = _Groups(sym)
        bid = np.maximum(g.cumsum(step) + self.bid[sym], 1)
        spread = g.ffill(spread, is_q, self.spread)
        self.bid[g.keys], self.spread[g.keys] = g.last(bid), g.last(spread)
        ask = bid + spread
        out, where = {}, {}
        for code in (TRADE, QUOTE, L2, FLOW):
            idx = where[code] = np.flatnonzero(kind == code)
            s = sym[idx]
            cols = {"sym": s, "ts": ts[idx], "seq": self._seq(code, s), "base": ts[idx]}
            m = len(idx)
            if code == TRADE:
                side = (rng.random(m) < 0.5).astype(np.int8)
                cols.update(side=side, px=np.where(side == 0, ask[idx], bid[idx]),
                            size=rng.choice(_LOTS, m, p=_LOT_P), tid=self.trade_no + 1 + np.arange(m),
                            venue=rng.integers(0, len(cfg.venues), m).astype(np.int32))
                self.trade_no += m
            elif code == QUOTE:
                cols.update(bid=bid[idx], ask=ask[idx], bsz=rng.integers(1, 31, m) * 100,
                            asz=rng.integers(1, 31, m) * 100)
            elif code == L2:
                cols.update(bid=bid[idx], ask=ask[idx], bsz=rng.integers(1, 21, (m, cfg.l2_depth)) * 100,
                            asz=rng.integers(1, 21, (m, cfg.l2_depth)) * 100)
            else:
                cols.update(self._flow(s, bid[idx], ask[idx]))
            out[code] = cols
        # Stream positions: a bar comes right before the first event at or after its end.
        pos = self.pos + np.arange(n)
        if self.bar_ns:
            bars = out[BAR] = self._bars(out[TRADE], int(ts[-1]))
            at = np.searchsorted(ts, bars["base"], side="left")         # raw events before each bar
            bars.update(pos=self.pos + at + np.arange(len(at)), seq=self._seq(BAR, bars["sym"]))
            pos += np.searchsorted(at, np.arange(n), side="right")
            n += len(at)
        for code, idx in where.items():
            out[code]["pos"] = pos[idx]
        self.pos += n
        return out

    def _seq(self, code: int, sym: np.ndarray) -> np.ndarray:
        g = _Groups(sym)
        row = self.seq[code]
        seq = row[sym] + g.cumcount() + 1
        row[g.keys] += g.lengths
        return seq

    def _flow(self, sym: np.ndarray, bid: np.ndarray, ask: np.ndarray) -> dict:
        """Order flow against the orders this market keeps per symbol: add, modify, cancel, fill."""
        m, rng = len(sym), self.rng
        ua, up, us = rng.random(m).tolist(), rng.random(m).tolist(), rng.random(m).tolist()
        away, qty = rng.integers(0, 5, m).tolist(), rng.choice(_LOTS, m, p=_LOT_P).tolist()
        oid, act, side, px, size = [], [], [], [], []
        next_id, live = self.order_no, self.live
        for j, (s, b, k) in enumerate(zip(sym.tolist(), bid.tolist(), ask.tolist())):
            book, a = live[s], ua[j]
            if len(book) < 8 or (a < 0.40 and len(book) < 1000):
                next_id += 1
                sd = 0 if us[j] < 0.5 else 1
                o = [next_id, sd, max(1, b - away[j]) if sd == 0 else k + away[j], qty[j]]
                book.append(o)
                action, q = 0, o[3]
            else:
                i = int(up[j] * len(book))
                o = book[i]
                if a < 0.85 and a >= 0.70:          # modify: a new size
                    o[3] = qty[j]
                    action, q = 1, o[3]
                else:
                    action, q = (2, o[3]) if a < 0.70 else (3, min(qty[j], o[3]))
                    o[3] -= q
                    if action == 2 or o[3] == 0:
                        book[i] = book[-1]
                        book.pop()
            oid.append(o[0]), act.append(action), side.append(o[1]), px.append(o[2]), size.append(q)
        self.order_no = next_id
        return {"oid": np.array(oid, np.int64), "act": np.array(act, np.int8), "side": np.array(side, np.int8),
                "px": np.array(px, np.int64), "size": np.array(size, np.int64)}

    def _bars(self, t: dict, now: int) -> dict:
        """OHLCV bars of the trades; a bar is emitted once the clock has passed its end."""
        width, done = self.bar_ns, []
        if len(t["ts"]):
            b = t["ts"] // width
            order = np.lexsort((b, t["sym"]))                     # by symbol, then bar; stable
            ss, bb, px, q = t["sym"][order], b[order], t["px"][order], t["size"][order]
            starts = np.flatnonzero(np.r_[True, (ss[1:] != ss[:-1]) | (bb[1:] != bb[:-1])])
            ends = np.r_[starts[1:], len(ss)] - 1
            groups = zip(ss[starts].tolist(), bb[starts].tolist(), px[starts].tolist(),
                         np.maximum.reduceat(px, starts).tolist(), np.minimum.reduceat(px, starts).tolist(),
                         px[ends].tolist(), np.add.reduceat(q, starts).tolist())
            for s, bar, o, h, lo, c, v in groups:
                st = self.bar_state[s]
                if self.bar[s] == bar:
                    st[1], st[2], st[3], st[4] = max(st[1], h), min(st[2], lo), c, st[4] + v
                    continue
                if self.bar[s] >= 0:
                    done.append((self.bar[s], s, *st))
                self.bar[s], self.bar_state[s] = bar, [o, h, lo, c, v]
        for s, bar in enumerate(self.bar):
            if bar >= 0 and (bar + 1) * width <= now:
                done.append((bar, s, *self.bar_state[s]))
                self.bar[s] = -1
        done.sort()
        cols = np.array(done, np.int64).reshape(len(done), 7).T
        start = cols[0] * width
        return {"sym": cols[1], "ts": start, "base": start + width, "o": cols[2], "h": cols[3], "l": cols[4],
                "c": cols[5], "size": cols[6]}


# ---- a view of it ------------------------------------------------------------------------------

_PRICE_COLS = {TRADE: ("px",), QUOTE: ("bid", "ask"), L2: ("bid", "ask"), FLOW: ("px",), BAR: ("o", "h", "l", "c")}


class _ViewState:
    """Applies one SimView to the market's blocks, with its own random stream."""

    def __init__(self, view: SimView, seed: int, n_sym: int) -> None:
        self.view = view
        self.rng = np.random.default_rng([seed % 2**64, zlib.crc32(view.name.encode())])
        self.codes = tuple(c for c, t in enumerate(TYPES) if t in view.types)
        self.renum = np.zeros((len(TYPES), n_sym), np.int64)
        self.injected = {"dropped": 0, "duplicated": 0, "reordered": 0, "price_errors": 0}

    def apply(self, block: dict[int, dict], limit: int | None = None) -> dict[int, dict]:
        """This view's events of a whole market block, then only those of the first `limit` market events."""
        out = {}
        for code in self.codes:
            if code not in block or not len(block[code]["ts"]):
                continue
            cols = self._apply(code, dict(block[code]))
            market = len(block[code]["pos"])
            if limit is not None:
                cols = _take(cols, cols["orig"] < limit)
                market = int(np.count_nonzero(block[code]["pos"] < limit))
            flags = cols.pop("flags")
            copies = int(np.count_nonzero(flags & 1))
            inj = self.injected
            inj["dropped"] += market - (len(flags) - copies)
            inj["duplicated"] += copies
            inj["price_errors"] += int(np.count_nonzero((flags & 3) == 2))
            inj["reordered"] += int(np.count_nonzero(flags & 4))
            out[code] = cols
        return out

    def _apply(self, code: int, cols: dict) -> dict:
        v, rng, n = self.view, self.rng, len(cols["ts"])
        cols["orig"] = cols["pos"]            # the market position; "pos" becomes the delivery slot
        cols["flags"] = np.zeros(n, np.int8)  # 1: a duplicate copy, 2: a price error, 4: delivered late
        if v.gap_rate:
            cols = _take(cols, rng.random(n) >= v.gap_rate)
            n = len(cols["ts"])
        if v.renumber:
            g, row = _Groups(cols["sym"]), self.renum[code]
            cols["seq"] = row[cols["sym"]] + g.cumcount() + 1
            row[g.keys] += g.lengths
        elif v.seq_offset:
            cols["seq"] = cols["seq"] + v.seq_offset
        if v.price_error_rate:
            sel = np.flatnonzero(rng.random(n) < v.price_error_rate)
            off = rng.integers(1, v.price_error_ticks + 1, len(sel)) * np.where(rng.random(len(sel)) < 0.5, -1, 1)
            for name in _PRICE_COLS[code]:
                col = cols[name].copy()
                col[sel] = np.maximum(col[sel] + off, 1)
                cols[name] = col
            cols["flags"][sel] |= 2
        recv = cols["base"] + v.latency_ns
        if v.jitter_ns:
            recv = recv + rng.exponential(v.jitter_ns, n).astype(np.int64)
        cols["recv"] = recv
        if v.duplicate_rate:
            idx = np.repeat(np.arange(n), 1 + (rng.random(n) < v.duplicate_rate))
            cols = _take(cols, idx)
            copy = np.r_[False, idx[1:] == idx[:-1]]
            cols["recv"] = cols["recv"] + copy * v.retransmit_ns
            cols["flags"] = cols["flags"] | copy.astype(np.int8)
            n = len(idx)
        if v.out_of_order_rate and n > 1:
            cols = self._reorder(cols, n)
        return cols

    def _reorder(self, cols: dict, n: int) -> dict:
        """Swap disjoint pairs of consecutive events of one symbol: the first arrives after the second."""
        g = _Groups(cols["sym"])
        sel = (self.rng.random(n) < self.view.out_of_order_rate) & np.r_[g.sorted_keys[1:] == g.sorted_keys[:-1], False]
        sel &= ~np.r_[False, sel[:-1]]
        j = np.flatnonzero(sel)
        a, b = g.order[j], g.order[j + 1]
        perm = np.arange(n)
        perm[a], perm[b] = b, a
        recv = cols["recv"].copy()
        recv[a] = np.maximum(recv[a], recv[b] + 1)
        cols["recv"] = recv
        cols["flags"] = cols["flags"].copy()
        cols["flags"][a] |= 4
        out = _take(cols, perm)
        out["pos"] = cols["pos"]              # slots keep their place in the stream
        return out


# ---- canonical output --------------------------------------------------------------------------

def _fixed(v: int, dec: int) -> str:
    if not dec:
        return str(v)
    q, r = divmod(v, 10**dec)
    return f"{q}.{r:0{dec}d}"


def _dictionary(indices: np.ndarray, texts: list[str]) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(indices.astype(np.int32)), pa.array(texts, pa.string()))


def _ints(values: np.ndarray) -> pa.DictionaryArray:
    uniq, inv = np.unique(values.ravel(), return_inverse=True)
    return _dictionary(inv.ravel(), [str(x) for x in uniq.tolist()])


class _Format:
    """Canonical Arrow tables from a view's columns: decimal text through per-block dictionaries."""

    def __init__(self, symbols: list[str], ticks: list[tuple[int, int]], source: str, cfg: SimConfig) -> None:
        self.specs = sorted(set(ticks))
        self.k = len(self.specs)
        self.spec_of = np.array([self.specs.index(t) for t in ticks], np.int64)
        self.symbols = pa.array(symbols, pa.string())
        self.source, self.cfg = source, cfg

    def _prices(self, ticks: np.ndarray, sym: np.ndarray) -> tuple[np.ndarray, list[str]]:
        uniq, inv = np.unique(ticks * self.k + self.spec_of[sym], return_inverse=True)
        texts = []
        for key in uniq.tolist():
            units, dec = self.specs[key % self.k]
            texts.append(_fixed(key // self.k * units, dec))
        return inv.ravel(), texts

    def price(self, ticks: np.ndarray, sym: np.ndarray) -> pa.DictionaryArray:
        return _dictionary(*self._prices(ticks, sym))

    def _const(self, text: str, n: int) -> pa.DictionaryArray:
        return _dictionary(np.zeros(n, np.int32), [text])

    def _levels(self, top: np.ndarray, sizes: np.ndarray, sym: np.ndarray, sign: int) -> pa.ListArray:
        n, depth = sizes.shape
        m = n * depth
        pinv, ptexts = self._prices(np.maximum(top[:, None] + sign * np.arange(depth), 1).ravel(), np.repeat(sym, depth))
        uniq, sinv = np.unique(sizes.ravel(), return_inverse=True)
        texts = pa.array(ptexts + [str(x) for x in uniq.tolist()], pa.string())
        values = texts.take(pa.array(np.stack([pinv, sinv.ravel() + len(ptexts)], axis=1).ravel()))
        pairs = pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * m + 1, 2, dtype=np.int32)), values)
        return pa.ListArray.from_arrays(pa.array(np.arange(0, m + 1, depth, dtype=np.int32)), pairs)

    def table(self, code: int, c: dict) -> pa.Table:
        n, sym = len(c["ts"]), c["sym"]
        cols = {"type": self._const(TYPES[code], n),
                "symbol": pa.DictionaryArray.from_arrays(pa.array(sym.astype(np.int32)), self.symbols),
                "source": self._const(self.source, n), "ts": pa.array(c["ts"]), "recv_ts": pa.array(c["recv"]),
                "seq": pa.array(c["seq"])}
        no_venue = pa.nulls(n, pa.string())
        if code == TRADE:
            cols.update(price=self.price(c["px"], sym), size=_ints(c["size"]), side=_dictionary(c["side"], list(SIDES)),
                        trade_id=pa.array(c["tid"]).cast(pa.string()),
                        venue=_dictionary(c["venue"], list(self.cfg.venues)),
                        conditions=pa.nulls(n, pa.list_(pa.string())))
        elif code == QUOTE:
            cols.update(bid_price=self.price(c["bid"], sym), bid_size=_ints(c["bsz"]),
                        ask_price=self.price(c["ask"], sym), ask_size=_ints(c["asz"]), venue=no_venue)
        elif code == L2:
            cols.update(bids=self._levels(c["bid"], c["bsz"], sym, -1), asks=self._levels(c["ask"], c["asz"], sym, 1),
                        venue=no_venue)
        elif code == FLOW:
            cols.update(order_id=pa.array(c["oid"]).cast(pa.string()), action=_dictionary(c["act"], list(ACTIONS)),
                        side=_dictionary(c["side"], list(SIDES)), price=self.price(c["px"], sym),
                        size=_ints(c["size"]), venue=no_venue)
        else:
            cols.update(open=self.price(c["o"], sym), high=self.price(c["h"], sym), low=self.price(c["l"], sym),
                        close=self.price(c["c"], sym), volume=_ints(c["size"]),
                        interval=self._const(self.cfg.bar_interval, n))
        return pa.table(cols)


# ---- the public faces --------------------------------------------------------------------------

class SimulatedMarket:
    """One view of a simulated market: `take(n)` gives canonical event dicts, `blocks()` Arrow tables.

    `events_per_second` and `l2_every` override the config's; `source` names the view when no
    `view` is given (`SimView.preset(source)`: "sim-b", "sim-c" or a clean view).  `limit` ends
    the market after that many market events (before this view's drops and duplicates).
    Use either `take`/iteration or `blocks`, not both on one instance.
    """

    def __init__(self, symbols: Sequence[str], *, seed: int = 42, start_ns: int | None = None,
                 source: str = "sim", events_per_second: float | None = None, l2_every: int | None = None,
                 config: SimConfig | None = None, view: SimView | None = None, limit: int | None = None) -> None:
        if not symbols:
            raise ConfigError("the simulator needs at least one symbol")
        cfg = config or SimConfig()
        if events_per_second is not None:
            cfg = replace(cfg, events_per_second=events_per_second)
        if l2_every is not None:
            cfg = replace(cfg, l2_every=l2_every)
        self.config = cfg
        self.view = view or SimView.preset(source)
        self.source = self.view.name
        self.symbols = list(symbols)
        self.start_ns = start_ns if start_ns is not None else time.time_ns()
        self.limit = limit
        self._market = _Market(self.symbols, cfg, seed, self.start_ns)
        self._view = _ViewState(self.view, seed, len(self.symbols))
        self._format = _Format(self.symbols, self._market.ticks, self.source, cfg)
        self._windows: Iterator | None = None
        self._pending: list[dict] = []
        self._i = 0

    @property
    def injected(self) -> dict:
        """What this view did to the market so far: dropped, duplicated, reordered, price_errors."""
        return dict(self._view.injected)

    @property
    def market_events(self) -> int:
        return self._market.pos

    def blocks(self) -> Iterator[list[tuple[np.ndarray, pa.Table]]]:
        """Per market block: (stream positions, canonical table) for each event type of this view."""
        while self.limit is None or self._market.pos < self.limit:
            seen = self._view.apply(self._market.block(), self.limit)
            yield [(cols["pos"], self._format.table(code, cols)) for code, cols in seen.items() if len(cols["ts"])]

    def take(self, n: int) -> list[dict]:
        """The next `n` events (fewer only at the `limit`), in stream order."""
        out: list[dict] = []
        if self._windows is None:
            self._windows = (w for block in self.blocks() for w in _windows(block, itertools.repeat(4096)))
        while len(out) < n:
            if self._i >= len(self._pending):
                window = next(self._windows, None)
                if window is None:
                    break
                self._pending, self._i = _rows(window), 0
                continue
            k = min(n - len(out), len(self._pending) - self._i)
            out.extend(self._pending[self._i:self._i + k])
            self._i += k
        return out

    def __iter__(self) -> Iterator[dict]:
        return self

    def __next__(self) -> dict:
        got = self.take(1)
        if not got:
            raise StopIteration
        return got[0]


def _windows(block: list[tuple[np.ndarray, pa.Table]], sizes: Iterator[int]) -> Iterator[list]:
    """A block cut at stream positions into windows of the given sizes, each a list of (positions, table)."""
    if not block:
        return
    start, end = min(int(p[0]) for p, _ in block), max(int(p[-1]) for p, _ in block) + 1
    while start < end:
        stop = start + next(sizes)
        part = []
        for pos, table in block:
            a, b = np.searchsorted(pos, [start, stop]).tolist()
            if b > a:
                part.append((pos[a:b], table.slice(a, b - a)))
        yield part
        start = stop


def _rows(window: list[tuple[np.ndarray, pa.Table]]) -> list[dict]:
    """Canonical dicts in stream order (columnwise: far cheaper than `to_pylist` on dictionary columns)."""
    if not window:
        return []
    rows: list[dict] = []
    for _, t in window:
        cols = [(c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c).to_pylist() for c in t.columns]
        names = t.column_names
        rows.extend(dict(zip(names, values)) for values in zip(*cols))
    order = np.argsort(np.concatenate([p for p, _ in window]), kind="stable")
    return [rows[i] for i in order.tolist()]


class SimSource(Source):
    """One view of the simulator as a collection source (Arrow tables, one per event type and block).

    `rate`: events per wall-clock second (also the market's mean event rate unless `config` is
    given); None: as fast as possible.  `source_id` names the view (`SimView.preset`) unless
    `view` is given.  `limit`: stop after that many market events — give every view the same
    limit (not `collect(events=…)`, which splits one budget between threads) for archives that
    are identical from run to run.
    """

    id = "sim"
    kind = "live"
    asset_class = "equity"
    canonical = True

    def __init__(self, symbols: Sequence[str], *, seed: int = 42, start_ns: int | None = None,
                 rate: float | None = None, source_id: str | None = None, chunk: int = 1_000,
                 config: SimConfig | None = None, view: SimView | None = None, limit: int | None = None) -> None:
        super().__init__()
        if view is None:
            view = SimView.preset(source_id or "sim")
        elif source_id and source_id != view.name:
            view = replace(view, name=source_id)
        if config is None:
            config = SimConfig(events_per_second=rate) if rate else SimConfig()
        self.market = SimulatedMarket(symbols, seed=seed, start_ns=start_ns, config=config, view=view, limit=limit)
        self.id = view.name
        self.asset_class = config.asset_class
        self.rate, self.chunk = rate, chunk
        self._stop = False

    @property
    def injected(self) -> dict:
        return self.market.injected

    def batches(self) -> Iterator[pa.Table]:
        """Paced: windows of `chunk` stream positions.  Fast: whole blocks, but the first block in
        windows of 1k, 2k, 4k … positions, so an outside budget (`collect(events=…)`) cuts a slice of
        every event type rather than all of the first type."""
        started, sent = time.monotonic(), 0
        for i, block in enumerate(self.market.blocks()):
            sizes = itertools.repeat(self.chunk) if self.rate else \
                (1024 << k for k in itertools.count()) if i == 0 else itertools.repeat(1 << 62)
            for window in _windows(block, sizes):
                for _, table in window:
                    if self.rate:
                        self._wait(started, sent + table.num_rows)
                    if self._stop:
                        return
                    sent += table.num_rows
                    self.stats.messages += table.num_rows
                    self.stats.events += table.num_rows
                    yield table

    def _wait(self, started: float, due: int) -> None:
        while not self._stop:
            ahead = due / self.rate - (time.monotonic() - started)
            if ahead <= 0:
                return
            time.sleep(min(ahead, 0.05))

    def stop(self) -> None:
        self._stop = True


def sim_sources(symbols: Sequence[str], *, views: Sequence[str | SimView] = ("sim", "sim-b", "sim-c"),
                seed: int = 42, start_ns: int | None = None, rate: float | None = None,
                config: SimConfig | None = None, limit: int | None = None, chunk: int = 1_000) -> list[SimSource]:
    """One SimSource per view of the same market (same seed, start and config)."""
    start = start_ns if start_ns is not None else time.time_ns()
    out, seen = [], set()
    for v in views:
        view = SimView.preset(v) if isinstance(v, str) else v
        if view.name in seen:
            raise ConfigError(f"two simulator views are named {view.name!r}")
        seen.add(view.name)
        out.append(SimSource(symbols, seed=seed, start_ns=start, rate=rate, config=config, view=view,
                             limit=limit, chunk=chunk))
    return out
