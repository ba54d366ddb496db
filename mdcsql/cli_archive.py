"""`mdcsql archive list|add|verify|lock|extend`: the perpetual archive catalog, WORM locks and
retention, from the command line (a thin layer over mdcsql.lifecycle.archive_catalog and .worm).

Registered on the main group in cli.py.
"""

from __future__ import annotations

import sys

import click

from mdcsql.cli import EXIT_FAILURE, _echo_json, _table
from mdcsql.cli_hold import _sync, make_override, override_options

_ROOT = click.Path(exists=True, file_okay=False)


def _refresh(root) -> None:
    _sync(root, "archive_catalog")


@click.group()
def archive():
    """The perpetual archive: catalog entries, signatures, WORM locks and retention.

    Example: mdcsql archive verify ./data
    """


@archive.command("list")
@click.argument("root", type=_ROOT)
@click.option("--reason", help="Only this archive reason (Regulatory, Research, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON (the design's catalog format).")
def archive_list(root, reason, as_json):
    """List the archive catalog's entries (read from _archive/<reason>/manifest.json)."""
    from mdcsql.lifecycle import archive_catalog
    entries = [e for m in archive_catalog.load_manifests(root) for e in m.entries
               if reason is None or e["archive_reason"].lower() == reason.lower()]
    if as_json:
        _echo_json({"catalog": {"version": archive_catalog.CATALOG_VERSION, "entries": entries}})
        return
    if not entries:
        click.echo("no archive entries")
        return
    _table(["path", "reason", "type", "symbols", "dates", "events", "bytes", "retention until",
            "immutable", "locked"],
           [(e["path"], e["archive_reason"], e.get("type"), ",".join(e.get("symbols") or ()),
             f"{e['date_range'].get('start')}..{e['date_range'].get('end')}", e.get("event_count"),
             e.get("size_bytes"), e.get("retention_until") or "indefinite", e.get("immutable"),
             (e.get("worm") or {}).get("locked_at") or "") for e in entries])


@archive.command("add")
@click.argument("root", type=_ROOT)
@click.argument("path")
@click.option("--created-at", help="When the file landed in the archive (default now), ISO or YYYY-MM-DD.")
def archive_add(root, path, created_at):
    """Record a file already under _archive/<reason>/ in the archive catalog."""
    from mdcsql.lifecycle import archive_catalog
    e = archive_catalog.add_entry(root, path, created_at=created_at)
    _refresh(root)
    click.echo(f"{e['path']}: entry {e['id']}, retention until {e['retention_until'] or 'indefinite'}")


@archive.command("verify")
@click.argument("root", type=_ROOT)
def archive_verify(root):
    """Check every archive manifest's signature and every entry's checksum against its file."""
    from mdcsql.lifecycle import archive_catalog
    problems = archive_catalog.verify(root)
    for p in problems:
        click.echo(f"FAIL {p}", err=True)
    if problems:
        sys.exit(EXIT_FAILURE)
    n = sum(len(m.entries) for m in archive_catalog.load_manifests(root))
    click.echo(f"archive catalog OK: {n} entries, signatures and checksums verified")


@archive.command("lock")
@click.argument("root", type=_ROOT)
@click.option("--as-of", help="Apply locks due at this instant (YYYY-MM-DD or ISO; default now).")
def archive_lock(root, as_of):
    """Apply WORM locks whose delay has elapsed: files become read-only, entries record the lock."""
    from mdcsql.lifecycle import worm
    locked = worm.lock_due(root, as_of)
    _refresh(root)
    for p in locked:
        click.echo(f"locked {p}")
    click.echo(f"{len(locked)} file(s) locked")


@archive.command("extend")
@click.argument("root", type=_ROOT)
@click.argument("entry")
@click.option("--until", required=True, help='New retention end (YYYY-MM-DD or ISO), or "never".')
@click.option("--by", required=True, help="Who changes the retention (recorded).")
@override_options
def archive_extend(root, entry, until, by, override_reason, approved_by):
    """Change an entry's retention (path or id): extend it, or shorten with an override (governance)."""
    from mdcsql.lifecycle import worm
    e = worm.extend(root, entry, until, by=by, override=make_override(by, override_reason, approved_by))
    _refresh(root)
    click.echo(f"{e['path']}: retention until {e['retention_until'] or 'indefinite'}")
