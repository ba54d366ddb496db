"""``mdcsql export``: exports for external analysis (docs/export.md).

    mdcsql export ROOT --format F [--symbols A,B] [--types Trade,BboQuote] [--from …] [--to …] --dest DIR
    mdcsql export ROOT --profile NAME --dest DIR …
    mdcsql export verify DIR [--root ROOT]
    mdcsql export history ROOT [--json]
    mdcsql export schedules ROOT [--json]

``export`` is a group whose first argument is either a subcommand or the archive ROOT (then the
``run`` subcommand runs): ``mdcsql export ./data …`` and ``mdcsql export run ./data …`` are the
same (the second form for an archive directory named like a subcommand).
"""

from __future__ import annotations

import sys

import click

from mdcsql.cli import EXIT_FAILURE, _echo_json, _progress_enabled

_ROOT = click.Path(exists=True, file_okay=False)


def _formats_text() -> str:
    from mdcsql.export.formats import format_names
    return ", ".join(format_names())


class _ExportGroup(click.Group):
    """A group that treats a first argument that is not a subcommand as ``run``'s ROOT."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def format_help_text(self, ctx, formatter):
        super().format_help_text(ctx, formatter)
        with formatter.section("Formats"):
            formatter.write_text(_formats_text())


@click.group(cls=_ExportGroup, context_settings={"help_option_names": ["-h", "--help"]})
def export() -> None:
    """Export archive data for pandas, R, Lean and databases; verify and list exports.

    Example: mdcsql export ./data --format Parquet --symbols AAPL,MSFT --types Trade --from 2024-01-02
    --to 2024-01-05 --dest ./out

    Example: mdcsql export verify ./out/parquet-20240106T060000Z-1a2b3c4d
    """


def _request_from(root, fmt, profile, **kw):
    from mdcsql.errors import MdcsqlError
    from mdcsql.export.request import ExportRequest
    options, transforms = {}, []
    if profile:
        try:
            from mdcsql.export.profiles import load_profile
        except ImportError:
            raise MdcsqlError(f"--profile {profile}: export profiles are not available in this build") from None
        prof = load_profile(profile, root)
        fmt = fmt or prof.export_format
        options = prof.options.model_dump() if hasattr(prof.options, "model_dump") else dict(prof.options)
        options["post_export"] = prof.post_export.model_dump() if hasattr(prof.post_export, "model_dump") else {}
        transforms = list(prof.transforms)
    if not fmt:
        raise MdcsqlError(f"give --format (one of: {_formats_text()}) or --profile NAME")
    return ExportRequest.build(format=fmt, profile=profile, options=options, transforms=transforms, **kw)


@export.command("run")
@click.argument("root", type=_ROOT)
@click.option("--format", "fmt", metavar="FORMAT", help="Export format (see 'mdcsql export --help' for the list).")
@click.option("--profile", help="Export profile (PythonPandas, QuantConnectLean, TimescaleDB, Research or your own).")
@click.option("--symbols", help="Comma-separated symbols (default: every symbol).")
@click.option("--types", help="Comma-separated event types, e.g. Trade,BboQuote (default: every type present).")
@click.option("--from", "start", metavar="DATE|TS", help="Start, UTC, inclusive: YYYY-MM-DD or ISO-8601.")
@click.option("--to", "end", metavar="DATE|TS", help="End, UTC: a date includes that whole day; a timestamp is exclusive.")
@click.option("--dest", required=True, type=click.Path(file_okay=False), help="Directory that receives the export.")
@click.option("--name", help="Name of the export directory under --dest (default: FORMAT-TIMESTAMP-ID).")
@click.option("--source", "sources", multiple=True, help="Only these sources (repeatable or comma-separated).")
@click.option("--dedupe", is_flag=True, help="One row per (source, symbol, seq, ts); identical rows when seq is missing.")
@click.option("--compression", help="Override the format's compression (e.g. zstd for Parquet).")
@click.option("--incremental", metavar="NAME", help="Only data newer than NAME's previous run (watermarks per symbol/source).")
@click.option("--schedule", metavar="CRON", help="Store this export as schedule NAME (--incremental or --name) "
              "with a cron expression instead of running it; the ops scheduler runs it.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def run(root, fmt, profile, symbols, types, start, end, dest, name, sources, dedupe, compression, incremental,
        schedule, as_json):
    """Export events of archive ROOT into a new directory under --dest (atomically)."""
    from mdcsql.errors import MdcsqlError
    from mdcsql.export import history
    from mdcsql.export.exporter import run_export
    if incremental and not fmt and not profile:          # rerun of an incremental export
        last = history.last_run(root, incremental)
        if last is None:
            raise MdcsqlError(f"--incremental {incremental}: no previous run; give --format or --profile")
        prev = last["request"]
        fmt, profile = prev["format"], prev.get("profile")
        symbols, types, sources = symbols or prev["symbols"], types or prev["types"], sources or prev["sources"]
        dedupe = dedupe or prev.get("dedupe", False)
    request = _request_from(root, fmt, profile, destination=dest, symbols=symbols, types=types, start=start,
                            end=end, sources=sources, dedupe=dedupe, compression=compression, name=name,
                            incremental=incremental)
    if schedule:
        key = incremental or name
        if not key:
            raise MdcsqlError("--schedule needs --incremental NAME or --name NAME to name the schedule")
        entry = history.save_schedule(root, key, schedule, request.to_dict())
        if as_json:
            _echo_json(entry)
        else:
            click.echo(f"scheduled export {key} ({schedule}); next run {entry['next_run']} "
                       "(runs are started by the scheduler of the ops issue)")
        return
    if _progress_enabled() and not as_json:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
        with Progress(SpinnerColumn(), TextColumn("exporting"), TextColumn("{task.completed:,} events"),
                      TimeElapsedColumn(), transient=True) as bar:
            task = bar.add_task("export", total=None)
            result = run_export(root, request, progress=lambda n: bar.advance(task, n))
    else:
        result = run_export(root, request)
    if as_json:
        _echo_json({"export_id": result.export_id, "path": str(result.path), "format": result.format,
                    "events": result.events, "bytes": result.bytes, "files": result.files,
                    "seconds": round(result.seconds, 3), "notes": result.notes})
        return
    for note in result.notes:
        click.echo(f"note: {note}")
    click.echo(f"exported {result.events:,} events ({result.bytes:,} bytes, {len(result.files)} files) as "
               f"{result.format} to {result.path} in {result.seconds:.2f} s")


@export.command("verify")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option("--root", type=_ROOT, help="Archive to compare with (default: the one the metadata names).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify(directory, root, as_json):
    """Check an export's checksums and completeness against the archive; exit 1 on any problem."""
    from mdcsql.export.verify import verify_export
    res = verify_export(directory, root=root)
    if as_json:
        _echo_json(res.to_dict())
    else:
        for note in res.notes:
            click.echo(f"note: {note}")
        for issue in res.issues:
            click.echo(f"problem: {issue}", err=True)
        expected = "?" if res.expected_events is None else f"{res.expected_events:,}"
        click.echo(f"{'ok' if res.is_valid else 'FAILED'}: {res.actual_events:,} events in the export, "
                   f"{expected} expected; {len(res.issues)} problem(s)")
    if not res.is_valid:
        sys.exit(EXIT_FAILURE)


@export.command("history")
@click.argument("root", type=_ROOT)
@click.option("--name", help="Only runs of this incremental export.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
def history_cmd(root, name, as_json):
    """List the exports made from archive ROOT (oldest first)."""
    from mdcsql.cli import _table
    from mdcsql.export import history
    recs = [r for r in history.records(root) if name is None or r.get("incremental") == name]
    if as_json:
        _echo_json(recs)
        return
    _table(["created_at", "name", "format", "events", "bytes", "files", "incremental", "path"],
           [(r.get("created_at"), r.get("name"), r.get("format"), r.get("events"), r.get("bytes"),
             len(r.get("files") or []), r.get("incremental") or "", r.get("path")) for r in recs],
           title=f"{len(recs)} export(s)")


@export.command("schedules")
@click.argument("root", type=_ROOT)
@click.option("--json", "as_json", is_flag=True, help="Print the schedules as JSON.")
def schedules_cmd(root, as_json):
    """List stored export schedules and their next run (UTC)."""
    from mdcsql.cli import _table
    from mdcsql.export import history
    entries = history.schedules(root)
    if as_json:
        _echo_json(entries)
        return
    _table(["name", "cron", "next_run", "format", "incremental", "destination"],
           [(e["name"], e["cron"], e["next_run"], e["template"].get("format"), e["incremental"],
             e["template"].get("destination")) for e in entries], title=f"{len(entries)} schedule(s)")


from mdcsql.export.cli_profiles import profiles_cmd  # noqa: E402  (export profiles, docs/export-profiles.md)

export.add_command(profiles_cmd)
