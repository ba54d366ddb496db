"""The symbol and source registries' rows: validation, and their durable JSON copies.

Design: "Symbol Naming Standardization" and "Multi-Source Data Organization › Source Registry".
The tables live in the catalog (``symbols``, ``sources``, ``symbol_mappings``); every change is
also written to ``_catalog/symbols.json`` / ``_catalog/sources.json``, which are the registries'
durable copy: a catalog created from scratch, or rebuilt, imports them again (invariant 1).

``symbols.json`` keeps the design's shape, ``{"symbols": {symbol: {...}}}``, plus two keys:
``"mappings"`` (the date-ranged aliases, a list) and ``"unknown_symbol_policy"``.

The library API over these rows is :mod:`mdcsql.registry`; this module only validates and
persists, given a :class:`~mdcsql.catalog.Catalog` (duck-typed: it needs ``execute``).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb

from mdcsql.catalog import exports
from mdcsql.errors import ConfigError
from mdcsql.sql import load_sql

__all__ = ["SOURCE_FIELDS", "SYMBOL_FIELDS", "MAPPING_FIELDS", "POLICIES", "DEFAULT_POLICY", "SINCE_EVER",
           "source_params", "symbol_params", "mapping_params", "parse_date", "read_policy", "write_policy",
           "export_sources", "export_symbols", "import_registries", "register_new_symbols",
           "read_symbols_export", "read_sources_export"]

SOURCE_FIELDS = ("id", "name", "type", "priority", "asset_classes", "data_types", "latency_ms",
                 "reliability", "cost_per_event", "enabled")
SYMBOL_FIELDS = ("symbol", "canonical", "aliases", "asset_class", "exchange", "currency", "isin",
                 "figi", "sedol")
MAPPING_FIELDS = ("alias", "canonical", "valid_from", "valid_to", "source", "note")
#: what happens to an event whose (resolved) symbol is not registered
POLICIES = ("accept", "reject", "quarantine")
DEFAULT_POLICY = "accept"
#: ``valid_from`` of a mapping valid since ever
SINCE_EVER = date(1, 1, 1)
_POLICY_STATE = "unknown_symbol_policy"


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


def _name(field: str, value, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise ConfigError(f"{field} must be a non-empty string without surrounding spaces, got {value!r}")
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


def parse_date(value, field: str) -> date | None:
    """A ``datetime.date`` from a date or ``YYYY-MM-DD`` text (None stays None)."""
    if value is None or (isinstance(value, date) and not hasattr(value, "hour")):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value) if len(value) == 10 else _bad_date(field, value)
        except ValueError:
            pass
    return _bad_date(field, value)


def _bad_date(field: str, value):
    raise ConfigError(f"{field} must be a date YYYY-MM-DD, got {value!r}")


def mapping_params(*, alias, canonical, valid_from=None, valid_to=None, source=None, note=None) -> dict:
    """Validated row of ``symbol_mappings``: ``alias`` means ``canonical`` on [valid_from, valid_to).

    ``valid_from`` None = since ever (0001-01-01); ``valid_to`` None = open-ended.
    """
    start = parse_date(valid_from, "valid_from") or SINCE_EVER
    end = parse_date(valid_to, "valid_to")
    if end is not None and end <= start:
        raise ConfigError(f"mapping {alias!r} -> {canonical!r}: valid_to {end} must be after valid_from "
                          f"{start} (the range [valid_from, valid_to) would be empty)")
    return {"alias": _name("alias", alias, required=True), "canonical": _name("canonical", canonical, required=True),
            "valid_from": start, "valid_to": end, "source": _name("source", source, required=False),
            "note": _opt("note", note, (str,))}


# ---------------------------------------------------------------------- the policy

def read_policy(catalog) -> str:
    row = catalog.execute(load_sql("queries/catalog_state_get.sql"), {"key": _POLICY_STATE}).first()
    policy = json.loads(row[0]) if row else None
    return policy if policy in POLICIES else DEFAULT_POLICY


def write_policy(catalog, policy: str) -> None:
    if policy not in POLICIES:
        raise ConfigError(f"unknown-symbol policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    catalog.execute(load_sql("queries/catalog_state_put.sql"), {"key": _POLICY_STATE, "value": json.dumps(policy)})


# ---------------------------------------------------------------------- JSON exports

def _mapping_json(row: dict) -> dict:
    return {k: (row[k].isoformat() if isinstance(row[k], date) else row[k]) for k in MAPPING_FIELDS}


def export_sources(catalog) -> None:
    rows = catalog.execute(load_sql("queries/catalog_sources_list.sql")).dicts()
    exports.write_registry(catalog.catalog_dir, exports.SOURCES_FILE, "sources", "id", rows)


def export_symbols(catalog) -> None:
    """Write ``symbols.json``: the design's ``symbols`` map, the ``mappings`` and the policy."""
    rows = catalog.execute(load_sql("queries/catalog_symbols_list.sql")).dicts()
    mappings = catalog.execute(load_sql("queries/registry_mappings_list.sql")).dicts()
    doc = {"symbols": {r["symbol"]: r for r in rows},
           "mappings": [_mapping_json(m) for m in mappings],
           "unknown_symbol_policy": read_policy(catalog)}
    exports.atomic_write(catalog.catalog_dir / exports.SYMBOLS_FILE,
                         (json.dumps(doc, indent=2, default=str) + "\n").encode())


def _read_doc(catalog_dir: Path, filename: str) -> dict:
    try:
        doc = json.loads((catalog_dir / filename).read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def read_symbols_export(catalog_dir: Path) -> tuple[list[dict], list[dict] | None, str]:
    """(symbol entries, mapping entries or None when the file has no list, policy) of ``symbols.json``."""
    doc = _read_doc(catalog_dir, exports.SYMBOLS_FILE)
    entries = doc.get("symbols")
    symbols = [e for e in entries.values() if isinstance(e, dict)] if isinstance(entries, dict) else []
    mappings = doc.get("mappings")
    mappings = [m for m in mappings if isinstance(m, dict)] if isinstance(mappings, list) else None
    policy = doc.get("unknown_symbol_policy")
    return symbols, mappings, policy if policy in POLICIES else DEFAULT_POLICY


def read_sources_export(catalog_dir: Path) -> list[dict]:
    return exports.read_registry(catalog_dir, exports.SOURCES_FILE, "sources")


def import_registries(catalog) -> None:
    """Load both JSON exports into the tables (a new catalog, or ``rebuild``).

    Sources and symbols are upserted; the mappings replace the table's rows when ``symbols.json``
    holds a ``mappings`` list (an absent or unreadable file leaves the table alone). An entry that
    no longer validates (hand-edited) is skipped.
    """
    for entry in read_sources_export(catalog.catalog_dir):
        try:
            catalog.execute(load_sql("queries/catalog_sources_upsert.sql"), source_params(**{
                k: v for k, v in entry.items() if k in SOURCE_FIELDS}))
        except (ConfigError, TypeError, duckdb.Error):
            continue
    symbols, mappings, policy = read_symbols_export(catalog.catalog_dir)
    for entry in symbols:
        try:
            catalog.execute(load_sql("queries/catalog_symbols_upsert.sql"), symbol_params(**{
                k: v for k, v in entry.items() if k in SYMBOL_FIELDS}))
        except (ConfigError, TypeError, duckdb.Error):
            continue
    if mappings is not None:
        catalog.execute(load_sql("queries/registry_mappings_forget_all.sql"))
        for entry in mappings:
            try:
                params = mapping_params(**{k: v for k, v in entry.items() if k in MAPPING_FIELDS})
                if catalog.execute(load_sql("queries/registry_mappings_overlapping.sql"),
                                   {k: params[k] for k in ("alias", "source", "valid_from", "valid_to")}).rows:
                    continue
                catalog.execute(load_sql("queries/registry_mappings_insert.sql"), params)
            except (ConfigError, TypeError, duckdb.Error):
                continue
        if (catalog.catalog_dir / exports.SYMBOLS_FILE).exists():
            write_policy(catalog, policy)


def register_new_symbols(catalog, symbols: dict[str, str | None]) -> int:
    """Register symbols first seen at ingest (``{symbol: asset_class}``) that are not registered
    yet, in one transaction, then rewrite ``symbols.json`` once. Returns how many were new."""
    known = {r[0] for r in catalog.execute(load_sql("queries/catalog_symbols_list.sql")).rows}
    new = {s: a for s, a in symbols.items() if s not in known}
    if not new:
        return 0
    with catalog.transaction():
        for symbol, asset_class in sorted(new.items()):
            catalog.execute(load_sql("queries/registry_symbols_insert_new.sql"),
                            {"symbol": symbol, "asset_class": asset_class})
    export_symbols(catalog)
    return len(new)
