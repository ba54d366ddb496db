"""The `mdcsql` command: a thin layer over the library.

Each command opens the archive, calls one library function, and renders the result.  Expected
failures (`MdcsqlError`) print one line to stderr and exit 1; anything else is a bug: exit 2.
"""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import sys
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import click

from mdcsql.errors import MdcsqlError

EXIT_OK, EXIT_FAILURE, EXIT_BUG = 0, 1, 2


def _archive(root):
    from mdcsql.archive import Archive
    return Archive.open(root)


def _echo_json(doc) -> None:
    click.echo(json.dumps(doc, indent=2, default=str))


def _progress_enabled() -> bool:
    return sys.stderr.isatty()


def _cell(value) -> str:
    """Human rendering: exact decimals without the DECIMAL(38,18) padding (187.140000… → 187.14)."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def _table(columns, rows, *, title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table
    table = Table(title=title, show_lines=False)
    for c in columns:
        table.add_column(str(c))
    for r in rows:
        table.add_row(*(_cell(v) for v in r))
    Console(width=200).print(table)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mdcsql")
def cli() -> None:
    """mdcsql: a market-data archive with an embedded DuckDB catalog.

    Example: mdcsql init ./data && mdcsql collect ./data --source sim --symbols AAPL,MSFT --events 10000
    """


@cli.command()
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--profile", help="Storage profile: Research, LowLatency or Archival.")
@click.option("--config", "config", type=click.Path(exists=True, dir_okay=False),
              help="Settings file (JSON or TOML) with a top-level Storage object.")
def init(root, profile, config):
    """Create an archive at ROOT.

    Example: mdcsql init ./data --profile Archival
    """
    from mdcsql.archive import Archive
    archive = Archive.init(root, profile=profile, config=config)
    st = archive.settings.storage
    click.echo(f"initialised {archive.root}: {st.naming_convention} × {st.date_partition}, codec {st.codec}"
               + (f", profile {archive.settings.profile}" if archive.settings.profile else ""))
    for key in archive.settings.inactive_keys():
        click.echo(f"note: {key} accepted, not yet active")


@cli.command()
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--source", help="Source name for records that do not carry one.")
@click.option("--tier-root", type=click.Choice(["live", "historical"]), default="historical", show_default=True)
@click.option("--asset-class", default="equity", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the ingest report as JSON.")
def ingest(root, files, source, tier_root, asset_class, as_json):
    """Ingest canonical or C#-collector JSONL files (plain, .gz or .zst).

    Bad lines are quarantined with a report; the exit code is 1 if there were any.

    Example: mdcsql ingest ./data trades-2024-01-15.jsonl.gz --source alpaca
    """
    from mdcsql.ingest.files import format_error, ingest_files
    archive = _archive(root)
    progress = None
    if _progress_enabled() and not as_json:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
        progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,} events"),
                            TimeElapsedColumn(), transient=True)
        task = progress.add_task("ingesting", total=None)
        progress.start()
    try:
        report = ingest_files(archive, list(files), source=source, root=tier_root, asset_class=asset_class,
                              on_progress=(lambda p, n: progress.update(task, completed=n, description=p.name))
                              if progress else None)
    finally:
        if progress:
            progress.stop()
        archive.close()
    if as_json:
        _echo_json(report.to_dict())
    else:
        click.echo(f"ingested {report.events_written:,} events from {report.files} file(s)"
                   f" ({report.duplicates_dropped:,} duplicates dropped, {len(report.errors):,} bad lines)")
    if report.errors:
        for err in report.errors[:20]:
            click.echo(f"error: {format_error(err)}", err=True)
        if len(report.errors) > 20:
            click.echo(f"error: … and {len(report.errors) - 20} more bad lines", err=True)
        for q in report.quarantined:
            click.echo(f"quarantined: {q['data_file']}", err=True)
        sys.exit(EXIT_FAILURE)


def _parse_duration(text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text or "")
    if not m:
        raise click.BadParameter(f"{text!r} is not a duration like 30s, 5m, 1h or 500ms")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def _parse_start(text: str | None) -> int | None:
    if text is None:
        return None
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            dt = datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
            return int(dt.timestamp()) * 1_000_000_000
        except ValueError:
            pass
    raise click.BadParameter(f"{text!r} is not YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)", param_hint="--start")


def _parse_speed(text: str | None) -> float | None:
    if text in (None, "", "max"):
        return None
    try:
        speed = float(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither 'max' nor a number", param_hint="--speed") from None
    if speed <= 0:
        raise click.BadParameter("must be > 0", param_hint="--speed")
    return speed


@cli.command()
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--source", "kind", type=click.Choice(["sim", "replay", "coinbase", "bitmex"]), default="sim",
              show_default=True, help="Where events come from.")
@click.option("--symbols", help="Comma-separated symbols (sim; default AAPL,MSFT,SPY) or products "
                                "(coinbase: BTC-USD,…; bitmex: XBTUSD,…).")
@click.option("--events", type=click.IntRange(min=1), help="Stop after N events.")
@click.option("--duration", help="Stop after this wall-clock time (e.g. 30s, 5m).")
@click.option("--seed", type=int, default=42, show_default=True, help="sim: random seed.")
@click.option("--start", help="sim: event time of the first event, UTC (YYYY-MM-DD[THH:MM]); default now.")
@click.option("--rate", type=float, default=5000.0, show_default=True,
              help="sim with --duration: events per wall-clock second.")
@click.option("--views", help="sim: comma-separated source views of the same market, e.g. sim,sim-b,sim-c "
                              "(each with its own gaps, latency and price differences; --events then "
                              "counts per view).")
@click.option("--path", type=click.Path(exists=True), help="replay: a file or a directory of files.")
@click.option("--speed", default="max", show_default=True, help="replay: 'max' or a multiple of real time (e.g. 10).")
@click.option("--symbol", help="replay: store under this symbol instead of the file's.")
@click.option("--format", "fmt", help="replay: lean, tardis, binance, bybit, dbn or jsonl (default: detected).")
@click.option("--url", help="coinbase/bitmex: websocket URL (default: the exchange's public feed).")
@click.option("--depth", type=int, default=10, show_default=True, help="Order-book levels in L2 snapshots.")
@click.option("--source-id", help="Store under this source id instead of the adapter's default.")
@click.option("--idle-stop", type=float, help="coinbase/bitmex: stop after this many seconds without a message.")
@click.option("--session", "session_name", help="Collect into this session (id or name; new if unknown). "
                                                "Default: the Active session, else a new automatic one.")
@click.option("--session-type", type=click.Choice(["Daily", "Weekly", "Monthly", "Custom", "Continuous"]),
              default="Custom", show_default=True, help="Type of a new session.")
@click.option("--tag", "tags", multiple=True, help="Tag a new session (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def collect(root, kind, symbols, events, duration, seed, start, rate, views, path, speed, symbol, fmt, url, depth,
            source_id, idle_stop, session_name, session_type, tags, as_json):
    """Collect events from a source into the archive (creating it if needed).

    Ctrl-C stops cleanly: everything acknowledged is sealed and catalogued.

    Example: mdcsql collect ./data --source sim --symbols AAPL,MSFT,SPY --events 100000 --seed 7 --start 2024-01-15

    Example: mdcsql collect ./data --source replay --path spy/20131007_trade.zip --speed max
    """
    from mdcsql.archive import Archive
    from mdcsql.sessions.collecting import collect as run_collection
    from mdcsql.sources import make_sources
    if kind == "sim" and events is None and duration is None:
        events = 10_000
    seconds = _parse_duration(duration) if duration else None
    archive = Archive.open(root) if (Path(root) / "_catalog" / "config.json").exists() else Archive.init(root)
    symbol_list = [s.strip() for s in symbols.split(",") if s.strip()] if symbols else None
    view_list = [v.strip() for v in views.split(",") if v.strip()] if views else None
    per_view = kind == "sim" and view_list is not None and view_list != ["sim"]
    sources = make_sources(kind, views=view_list, limit_per_view=events if per_view else None,
                           symbols=symbol_list, seed=seed, start_ns=_parse_start(start),
                           rate=rate if (kind == "sim" and seconds) else None, path=path, fmt=fmt, symbol=symbol,
                           speed=_parse_speed(speed), url=url, depth=depth, source_id=source_id,
                           idle_stop_s=idle_stop)
    summary = run_collection(archive, sources, session=session_name, type=session_type, tags=tags,
                             symbols=symbol_list or (), events=None if per_view else events, seconds=seconds,
                             show_progress=_progress_enabled() and not as_json)
    if as_json:
        _echo_json(summary)
    else:
        click.echo(f"collected {summary['events']:,} events from {kind} in {summary['seconds']:.2f}s "
                   f"({summary['events_per_second']:,.0f} events/s); sealed {summary['files_sealed']} files"
                   + (" (interrupted)" if summary["interrupted"] else "") + f"; session {summary['session']}")
        for sid, st in summary["sources"].items():
            if st["errors"] or st["failure"] or st["reconnects"] or st["gaps"]:
                click.echo(f"source {sid}: {st['errors']} error(s), {st['reconnects']} reconnect(s), "
                           f"{st['gaps']} gap(s)" + (f"; stopped: {st['failure']}" if st["failure"] else ""),
                           err=True)
    for scope, message in summary["refusals"].items():     # a quota / EnforceMonotonicity refused events
        click.echo(f"refused ({scope}; {summary['refused']:,} events refused in all): {message}", err=True)
    if summary["failed"] or summary["refused"]:
        sys.exit(EXIT_FAILURE)


@cli.command()
@click.argument("root", type=click.Path(exists=True, file_okay=False))
def seal(root):
    """Seal every hot file: fsync, checksum, compress, write its manifest.

    Example: mdcsql seal ./data
    """
    archive = _archive(root)
    try:
        manifests = archive.seal()
    finally:
        archive.close(seal=False)
    click.echo(f"sealed {len(manifests)} file(s)")
    for m in manifests:
        click.echo(f"  {m['path']}  {m['event_count']:,} events  sha256 {m['sha256'][:12]}")


@cli.command()
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True)
def recover(root, as_json):
    """Run crash recovery now (it also runs by itself whenever the archive is opened for writing).

    Example: mdcsql recover ./data
    """
    archive = _archive(root)
    report = archive.recover()
    archive.sync_catalog()
    if as_json:
        _echo_json(report.to_dict())
        return
    if report.clean:
        click.echo(f"clean: {report.durable_events:,} durable events, nothing to recover")
    else:
        click.echo(f"recovered: replayed {report.events_replayed:,} events from {report.frames_replayed} WAL "
                   f"frame(s); truncated {report.bytes_truncated:,} bytes; removed {report.tmp_removed} "
                   f"temporary file(s); completed {report.seals_completed} seal(s)")
        for q in report.quarantined:
            click.echo(f"quarantined {q['bytes']} bytes from {q['file']} at offset {q['offset']}: {q['reason']}")


def _render(result, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(result.dicts(), indent=2, default=str))
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(result.columns)
        w.writerows(result.rows)
        click.echo(buf.getvalue(), nl=False)
    else:
        _table(result.columns, result.rows)
    if getattr(result, "truncated", False):
        click.echo(f"(truncated to {len(result.rows)} rows)", err=True)


@cli.command()
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--max-rows", type=int, default=None, help="Cap the rows returned (default: all for csv/json, 1000 for table).")
def sql(root, query, fmt, max_rows):
    """Run a read-only SQL query against the catalog and its views.

    Example: mdcsql sql ./data "SELECT symbol, count(*) FROM trades GROUP BY symbol"
    """
    archive = _archive(root)
    if not archive.is_writing():
        archive.sync_catalog(timeout=2)
    with archive.catalog(read_only=True, timeout=30) as cat:
        result = cat.query(query, max_rows=max_rows if max_rows is not None else (1000 if fmt == "table" else None))
    _render(result, fmt)


@cli.group()
def catalog():
    """Catalog maintenance: rebuild from the tree, statistics."""


@catalog.command("rebuild")
@click.argument("root", type=click.Path(exists=True, file_okay=False))
def catalog_rebuild(root):
    """Recreate the catalog from the tree and manifests alone.

    Example: rm ./data/_catalog/catalog.duckdb && mdcsql catalog rebuild ./data
    """
    result = _archive(root).rebuild_catalog()
    click.echo(f"rebuilt catalog: {result.added} file(s) indexed"
               + (f", {len(result.unknown)} unrecognised path(s)" if result.unknown else ""))


@catalog.command("stats")
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True)
def catalog_stats(root, as_json):
    """Files, events and bytes by tier, source, type and state.

    Example: mdcsql catalog stats ./data --json
    """
    archive = _archive(root)
    if not archive.is_writing():
        archive.sync_catalog(timeout=2)
    with archive.catalog(read_only=True, timeout=30) as cat:
        stats = cat.stats()
    if as_json:
        _echo_json(stats)
        return
    _print_stats(stats)


def _print_stats(stats: dict) -> None:
    totals = stats.get("totals", {})
    click.echo(f"{totals.get('files', 0):,} files, {totals.get('events', 0) or 0:,} events, "
               f"{totals.get('size_bytes', 0) or 0:,} bytes stored ({totals.get('raw_bytes', 0) or 0:,} raw)")
    for dim in ("by_tier", "by_source", "by_type", "by_state"):
        rows = stats.get(dim) or []
        if rows:
            cols = list(rows[0].keys())
            _table(cols, [[r[c] for c in cols] for r in rows], title=dim.replace("_", " "))


@cli.command()
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True)
def verify(root, as_json):
    """Recompute checksums and counts of sealed files against manifests and catalog; exit 0 only if all agree.

    Example: mdcsql verify ./data --json
    """
    from mdcsql.verify import verify_archive
    archive = _archive(root)
    report = verify_archive(archive)
    if as_json:
        _echo_json(report.to_dict())
    else:
        click.echo(f"verified {report.files_checked} sealed file(s), {report.events_checked:,} events, "
                   f"{report.bytes_checked:,} bytes: " + ("all agree" if report.ok else f"{len(report.problems)} problem(s)"))
        for p in report.problems:
            click.echo(f"  {p['problem']}: {p['path']}: {p['detail']}", err=True)
        for n in getattr(report, "notes", ()):
            click.echo(f"  note: {n['path']}: {n['detail']}")
    sys.exit(EXIT_OK if report.ok else EXIT_FAILURE)


def main(argv=None) -> None:
    """Entry point: run the CLI, turning expected failures into one line and exit code 1."""
    try:
        cli.main(args=argv, prog_name="mdcsql", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_FAILURE)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except MdcsqlError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(EXIT_OK)


from mdcsql.cli_registry import symbols, sources  # noqa: E402
cli.add_command(symbols); cli.add_command(sources)


from mdcsql.cli_session import session  # noqa: E402
cli.add_command(session)


from mdcsql.cli_capacity import capacity  # noqa: E402
cli.add_command(capacity)


from mdcsql.cli_backup import backup  # noqa: E402
cli.add_command(backup)


from mdcsql.cli_hold import hold, rm  # noqa: E402
from mdcsql.cli_archive import archive  # noqa: E402
cli.add_command(hold); cli.add_command(rm); cli.add_command(archive)


from mdcsql.cli_lifecycle import lifecycle, policy, retention, tier  # noqa: E402
cli.add_command(policy); cli.add_command(tier); cli.add_command(retention); cli.add_command(lifecycle)


from mdcsql.cli_quota import quota  # noqa: E402
cli.add_command(quota)


from mdcsql.cli_compact import compact, split  # noqa: E402
cli.add_command(compact); cli.add_command(split)


from mdcsql.cli_export import export  # noqa: E402
cli.add_command(export)
