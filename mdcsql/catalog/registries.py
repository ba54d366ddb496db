"""Validation of the symbol and source registries' fields (design: "Symbol Naming
Standardization", "Source Registry"). Minimal for now; a later issue extends the registries."""

from __future__ import annotations

from mdcsql.errors import ConfigError

__all__ = ["SOURCE_FIELDS", "SYMBOL_FIELDS", "source_params", "symbol_params"]

SOURCE_FIELDS = ("id", "name", "type", "priority", "asset_classes", "data_types", "latency_ms",
                 "reliability", "cost_per_event", "enabled")
SYMBOL_FIELDS = ("symbol", "canonical", "aliases", "asset_class", "exchange", "currency", "isin",
                 "figi", "sedol")


def _str_list(name: str, value) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{name} must be a list of strings, got {value!r}")
    return list(value)


def _opt(name: str, value, kinds: tuple):
    if value is not None and (not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds):
        raise ConfigError(f"{name} must be {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
    return value


def source_params(*, id, name=None, type=None, priority=None, asset_classes=None, data_types=None,
                   latency_ms=None, reliability=None, cost_per_event=None, enabled=True) -> dict:
    if not isinstance(id, str) or not id:
        raise ConfigError(f"source id must be a non-empty string, got {id!r}")
    if type not in (None, "live", "historical"):
        raise ConfigError(f"source type must be 'live' or 'historical', got {type!r}")
    if reliability is not None and not (isinstance(reliability, (int, float)) and 0 <= reliability <= 1):
        raise ConfigError(f"reliability must be between 0 and 1, got {reliability!r}")
    return {"id": id, "name": _opt("name", name, (str,)), "type": type,
            "priority": _opt("priority", priority, (int,)),
            "asset_classes": _str_list("asset_classes", asset_classes),
            "data_types": _str_list("data_types", data_types),
            "latency_ms": _opt("latency_ms", latency_ms, (int, float)),
            "reliability": reliability, "cost_per_event": _opt("cost_per_event", cost_per_event, (int, float)),
            "enabled": _opt("enabled", enabled, (bool,))}


def symbol_params(*, symbol, canonical=None, aliases=None, asset_class=None, exchange=None,
                   currency=None, isin=None, figi=None, sedol=None) -> dict:
    if not isinstance(symbol, str) or not symbol:
        raise ConfigError(f"symbol must be a non-empty string, got {symbol!r}")
    params = {"symbol": symbol, "aliases": _str_list("aliases", aliases)}
    for key, value in (("canonical", canonical), ("asset_class", asset_class), ("exchange", exchange),
                       ("currency", currency), ("isin", isin), ("figi", figi), ("sedol", sedol)):
        params[key] = _opt(key, value, (str,))
    return params
