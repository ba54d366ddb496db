"""`mdcsql symbols …` and `mdcsql sources …`: thin commands over :mod:`mdcsql.registry`.

Each command opens the archive's registries, calls one library method and renders the result.
Failures are MdcsqlErrors: one line on stderr, exit 1 (see `mdcsql.cli.main`).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click

__all__ = ["symbols", "sources"]

_ROOT = click.argument("root", type=click.Path(exists=True, file_okay=False))


def _json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


def _echo_json(doc) -> None:
    click.echo(json.dumps(doc, indent=2, default=str))


def _table(columns: list[str], rows: list, title: str | None = None) -> None:
    from mdcsql.cli import _table as render          # the CLI's one table style (imported late: no cycle)
    render(columns, [[", ".join(v) if isinstance(v, list) else v for v in r] for r in rows], title=title)


def _registries(root, *, write: bool = False):
    from mdcsql.registry import open_registries
    return open_registries(root, write=write)


# ---------------------------------------------------------------------- symbols

@click.group()
def symbols() -> None:
    """Symbol registry: canonical symbols, identifiers, date-ranged aliases, unknown-symbol policy.

    Example: mdcsql symbols alias ./data FB META --from 2012-05-18 --to 2022-06-09
    """


@symbols.command("list")
@_ROOT
@click.option("--mappings", is_flag=True, help="List the date-ranged mappings instead of the symbols.")
@_json_option
def symbols_list(root, mappings, as_json):
    """List the registered symbols (or, with --mappings, the date-ranged aliases).

    Example: mdcsql symbols list ./data --mappings
    """
    with _registries(root) as reg:
        if mappings:
            found = [m.to_dict() for m in reg.symbols.mappings()]
            columns = ["alias", "canonical", "valid_from", "valid_to", "source", "note"]
        else:
            found = reg.symbols.symbols()
            columns = ["symbol", "canonical", "aliases", "asset_class", "exchange", "currency", "isin", "figi", "sedol"]
        policy = reg.symbols.unknown_symbol_policy
    if as_json:
        _echo_json(found)
        return
    _table(columns, [[r[c] for c in columns] for r in found])
    click.echo(f"{len(found)} {'mapping' if mappings else 'symbol'}(s); unknown-symbol policy: {policy}")


@symbols.command("add")
@_ROOT
@click.argument("symbol")
@click.option("--canonical", help="Canonical symbol (default: SYMBOL itself).")
@click.option("--alias", "aliases", multiple=True, help="An undated alias (repeat for several); replaces the list.")
@click.option("--asset-class")
@click.option("--exchange")
@click.option("--currency")
@click.option("--isin")
@click.option("--figi")
@click.option("--sedol")
def symbols_add(root, symbol, canonical, aliases, asset_class, exchange, currency, isin, figi, sedol):
    """Register a symbol, or update one (options not given keep their values).

    Example: mdcsql symbols add ./data AAPL --alias AAPL.O --alias US0378331005 --exchange NASDAQ --isin US0378331005
    """
    with _registries(root, write=True) as reg:
        row = reg.symbols.add(symbol, canonical=canonical, aliases=list(aliases) or None, asset_class=asset_class,
                              exchange=exchange, currency=currency, isin=isin, figi=figi, sedol=sedol)
    click.echo(f"registered {row['symbol']}" + (f" (canonical {row['canonical']})" if row["canonical"] != row["symbol"] else ""))


@symbols.command("alias")
@_ROOT
@click.argument("alias")
@click.argument("canonical")
@click.option("--from", "valid_from", metavar="YYYY-MM-DD", help="First UTC day it applies (inclusive); default: since ever.")
@click.option("--to", "valid_to", metavar="YYYY-MM-DD", help="First UTC day it no longer applies (exclusive); default: open-ended.")
@click.option("--source", help="Only for events of this source (default: every source).")
@click.option("--note", help="Free text kept with the mapping (provenance).")
def symbols_alias(root, alias, canonical, valid_from, valid_to, source, note):
    """Map ALIAS to CANONICAL on the UTC days [--from, --to); refuses an overlapping mapping.

    Example: mdcsql symbols alias ./data FB META --from 2012-05-18 --to 2022-06-09
    """
    with _registries(root, write=True) as reg:
        mapping = reg.symbols.add_mapping(alias, canonical, valid_from, valid_to, source=source, note=note)
    click.echo(f"mapped {mapping}")


@symbols.command("unalias")
@_ROOT
@click.argument("alias")
@click.option("--from", "valid_from", metavar="YYYY-MM-DD", help="Start day of the mapping to remove (default: since ever).")
@click.option("--source", help="Source scope of the mapping to remove.")
def symbols_unalias(root, alias, valid_from, source):
    """Remove the mapping of ALIAS that starts on --from.

    Example: mdcsql symbols unalias ./data FB --from 2012-05-18
    """
    with _registries(root, write=True) as reg:
        gone = reg.symbols.remove_mapping(alias, valid_from, source=source)
    for m in gone:
        click.echo(f"removed {m}")


@symbols.command("import-lean-map")
@_ROOT
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--symbol", help="Canonical symbol (default: the file's last ticker, upper-cased).")
@click.option("--source", help="Only for events of this source (default: every source).")
@_json_option
def symbols_import_lean_map(root, file, symbol, source, as_json):
    """Import a Lean map file (yyyyMMdd,ticker[,exchange[,mode]]) as date-ranged aliases.

    Each row means "up to and including this date the ticker was X"; see docs/registries.md.
    Importing the same file again changes nothing.

    Example: mdcsql symbols import-lean-map ./data lean/equity/usa/map_files/meta.csv
    """
    with _registries(root, write=True) as reg:
        added = reg.symbols.import_lean_map_file(file, symbol=symbol, source=source)
    if as_json:
        _echo_json([m.to_dict() for m in added])
        return
    for m in added:
        click.echo(f"mapped {m}")


@symbols.command("resolve")
@_ROOT
@click.argument("symbol")
@click.option("--date", "day", metavar="YYYY-MM-DD", help="UTC day (default: today).")
@click.option("--source", help="Resolve as for events of this source.")
@_json_option
def symbols_resolve(root, symbol, day, source, as_json):
    """Print the canonical symbol SYMBOL stood for on --date.

    Example: mdcsql symbols resolve ./data FB --date 2020-01-02
    """
    day = day or datetime.now(timezone.utc).date().isoformat()
    with _registries(root) as reg:
        canonical = reg.symbols.resolve_on(symbol, day, source)
    if as_json:
        _echo_json({"symbol": symbol, "date": day, "source": source, "canonical": canonical})
    else:
        click.echo(canonical)


@symbols.command("policy")
@_ROOT
@click.argument("policy", required=False, type=click.Choice(["accept", "reject", "quarantine"]))
def symbols_policy(root, policy):
    """Show or set what happens to events of an unregistered symbol.

    accept (default) stores them and registers the symbol; reject refuses the event with an error
    naming the field; quarantine keeps it in _quarantine/ with a record instead of storing it.
    A running collector picks a change up when its write path restarts.

    Example: mdcsql symbols policy ./data reject
    """
    with _registries(root, write=policy is not None) as reg:
        if policy is not None:
            reg.symbols.set_unknown_symbol_policy(policy)
        click.echo(f"unknown-symbol policy: {reg.symbols.unknown_symbol_policy}")


# ---------------------------------------------------------------------- sources

_SOURCE_COLUMNS = ["id", "name", "type", "priority", "asset_classes", "data_types", "latency_ms", "reliability",
                   "cost_per_event", "enabled"]


@click.group()
def sources() -> None:
    """Source registry: the data sources, their priority, latency, cost, and whether they may write.

    Example: mdcsql sources add ./data alpaca --name "Alpaca Markets" --type live --priority 1 --asset-class equity
    """


@sources.command("list")
@_ROOT
@_json_option
def sources_list(root, as_json):
    """List the registered sources, by priority.

    Example: mdcsql sources list ./data --json
    """
    with _registries(root) as reg:
        found = reg.sources.list()
    if as_json:
        _echo_json(found)
        return
    _table(_SOURCE_COLUMNS, [[r[c] for c in _SOURCE_COLUMNS] for r in found])


@sources.command("add")
@_ROOT
@click.argument("source_id", metavar="ID")
@click.option("--name")
@click.option("--type", "type_", type=click.Choice(["live", "historical"]))
@click.option("--priority", type=int, help="1 = preferred.")
@click.option("--asset-class", "asset_classes", multiple=True, help="Repeat for several; replaces the list.")
@click.option("--data-type", "data_types", multiple=True, help="Event type (Trade, BboQuote, …); repeat for several.")
@click.option("--latency-ms", type=float)
@click.option("--reliability", type=float, help="Between 0 and 1.")
@click.option("--cost-per-event", type=float)
@click.option("--enabled/--disabled", default=None, help="Whether it may write (a new source: enabled).")
def sources_add(root, source_id, name, type_, priority, asset_classes, data_types, latency_ms, reliability,
                cost_per_event, enabled):
    """Register a source, or update one (options not given keep their values).

    Example: mdcsql sources add ./data ib --name "Interactive Brokers" --type live --priority 2 --asset-class equity --asset-class futures --latency-ms 5
    """
    with _registries(root, write=True) as reg:
        row = reg.sources.register(source_id, name=name, type=type_, priority=priority,
                                   asset_classes=list(asset_classes) or None, data_types=list(data_types) or None,
                                   latency_ms=latency_ms, reliability=reliability, cost_per_event=cost_per_event,
                                   enabled=enabled)
    click.echo(f"registered source {row['id']} ({'enabled' if row['enabled'] else 'disabled'})")


@sources.command("show")
@_ROOT
@click.argument("source_id", metavar="ID")
@_json_option
def sources_show(root, source_id, as_json):
    """Show one source's registry entry.

    Example: mdcsql sources show ./data alpaca
    """
    with _registries(root) as reg:
        row = reg.sources.get(source_id)
    if as_json:
        _echo_json(row)
        return
    for c in _SOURCE_COLUMNS:
        value = row[c]
        click.echo(f"{c:15} {', '.join(value) if isinstance(value, list) else '' if value is None else value}")


@sources.command("enable")
@_ROOT
@click.argument("source_id", metavar="ID")
def sources_enable(root, source_id):
    """Allow a registered source to write again.

    Example: mdcsql sources enable ./data polygon
    """
    with _registries(root, write=True) as reg:
        reg.sources.enable(source_id)
    click.echo(f"source {source_id} enabled")


@sources.command("disable")
@_ROOT
@click.argument("source_id", metavar="ID")
def sources_disable(root, source_id):
    """Refuse writes from a registered source (a running collector: from its next writer).

    Example: mdcsql sources disable ./data polygon
    """
    with _registries(root, write=True) as reg:
        reg.sources.disable(source_id)
    click.echo(f"source {source_id} disabled")
