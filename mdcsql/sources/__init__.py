"""Event sources: anything that yields canonical event batches for the collection loop.

`make_source` builds one from the names the CLI and the API use, importing adapters lazily (a
replay does not load the websocket client, and the other way round).
"""

from __future__ import annotations

from mdcsql.errors import ConfigError

SOURCE_KINDS = ("sim", "replay", "coinbase", "bitmex")
DEFAULT_SYMBOLS = {"sim": ["AAPL", "MSFT", "SPY"], "coinbase": ["BTC-USD"], "bitmex": ["XBTUSD"]}


def make_source(kind: str, *, symbols: list[str] | None = None, seed: int = 42, start_ns: int | None = None,
                rate: float | None = None, path=None, fmt: str | None = None, symbol: str | None = None,
                speed: float | None = None, url: str | None = None, depth: int = 10,
                source_id: str | None = None, idle_stop_s: float | None = None):
    """One source of the given kind, configured from CLI-style options.

    Example: ``make_source("replay", path="spy/20131007_trade.zip", speed=None)``
    """
    symbols = symbols or DEFAULT_SYMBOLS.get(kind)
    if kind == "sim":
        from mdcsql.sources.sim import SimSource
        return SimSource(symbols, seed=seed, start_ns=start_ns, rate=rate, source_id=source_id or "sim")
    if kind == "replay":
        if path is None:
            raise ConfigError("a replay needs --path FILE_OR_DIR")
        from mdcsql.sources.replay import ReplaySource
        return ReplaySource(path, format=fmt, symbol=symbol, source_id=source_id, speed=speed, depth=depth)
    if kind in ("coinbase", "bitmex"):
        options = {"depth": depth, "source_id": source_id, "idle_stop_s": idle_stop_s}
        if url:
            options["url"] = url
        if kind == "coinbase":
            from mdcsql.sources.coinbase import CoinbaseSource
            return CoinbaseSource(symbols, **options)
        from mdcsql.sources.bitmex import BitmexSource
        return BitmexSource(symbols, **options)
    raise ConfigError(f"unknown source {kind!r}; expected one of {', '.join(SOURCE_KINDS)}")


def make_sources(kind: str, *, views: list[str] | None = None, limit_per_view: int | None = None,
                 **options) -> list:
    """The sources of one collection: several views of the simulated market, or one source.

    Each view stops by itself after `limit_per_view` events, so a multi-view collection stays
    deterministic (a shared event budget would be split between threads by timing).

    Example: ``make_sources("sim", views=["sim", "sim-b", "sim-c"], symbols=["AAPL"], seed=7)``
    """
    if kind == "sim" and views and list(views) != ["sim"]:
        from mdcsql.sources.sim import sim_sources
        return sim_sources(options.get("symbols") or DEFAULT_SYMBOLS["sim"], views=views,
                           seed=options.get("seed", 42), start_ns=options.get("start_ns"), rate=options.get("rate"),
                           limit=limit_per_view)
    return [make_source(kind, **options)]
