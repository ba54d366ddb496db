"""`mdcsql quota status|enforce|rebalance`: a thin layer over mdcsql.lifecycle.quotas.

Registered on the main group in cli.py. Errors are MdcsqlErrors: one line on stderr, exit 1.
`status` exits 0 even when a scope is over its limit unless ``--fail-over`` (for cron jobs).
"""

from __future__ import annotations

import sys

import click

from mdcsql.cli import EXIT_FAILURE, _echo_json, _table
from mdcsql.cli_compact import _as_of       # the one --as-of parser of the lifecycle commands

__all__ = ["quota"]

_ROOT = click.argument("root", type=click.Path(exists=True, file_okay=False))

_AS_OF = click.option("--as-of", callback=_as_of, metavar="DATE|TIMESTAMP",
                      help="Evaluate as of this UTC date or ISO timestamp (default: now).")


def _open(root):
    from mdcsql.archive import Archive
    return Archive.open(root)


@click.group()
def quota() -> None:
    """Quotas: usage against limits, the enforcement job, dynamic limits.

    Example: mdcsql quota status ./data --as-of 2024-01-31
    """


@quota.command("status")
@_ROOT
@_AS_OF
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--fail-over", is_flag=True, help="Exit 1 when a scope is over a limit.")
def quota_status(root, as_of, as_json, fail_over):
    """Usage of every quota scope against its limits (from the catalog), stale streams, integrity policy.

    Example: mdcsql quota status ./data --json
    """
    from mdcsql.lifecycle.quotas import status
    doc = status(_open(root), as_of=as_of)
    if as_json:
        _echo_json(doc)
    else:
        if not doc["configured"]:
            click.echo("no quotas configured (Storage.Quotas)")
        else:
            _table(["scope", "limit", "max", "usage", "%", "enforcement", "state"],
                   [[r["scope"], r["dimension"] + (f" {r['day']}" if r["day"] else ""), f"{r['limit']:,}",
                     f"{r['usage']:,}", f"{r['pct']:.1f}", r["enforcement"], "OVER" if r["over"] else "ok"]
                    for r in doc["quotas"]], title=f"quotas as of {doc['as_of']}")
        if doc["cleanup_requests"]:
            click.echo(f"{doc['cleanup_requests']} SoftLimit cleanup request(s) logged: run mdcsql quota enforce")
        for s in doc["stale_streams"]:
            click.echo(f"stale: {s['source']}/{s['symbol']}/{s['type']} no data for {s['idle_seconds']:,.0f} s "
                       f"(threshold {s['stale_data_threshold_seconds']:,.0f} s)")
    if fail_over and doc["over"]:
        sys.exit(EXIT_FAILURE)


@quota.command("enforce")
@_ROOT
@_AS_OF
@click.option("--dry-run", is_flag=True, help="Show what would be deleted; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def quota_enforce(root, as_of, dry_run, as_json):
    """Apply each scope's enforcement: SoftLimit and DropOldest scopes over MaxBytes/MaxFiles lose
    their oldest sealed files of non-Critical types (holds and WORM respected, each deletion logged).

    Example: mdcsql quota enforce ./data --dry-run
    """
    from mdcsql.lifecycle.quotas import enforce
    doc = enforce(_open(root), as_of=as_of, dry_run=dry_run)
    if as_json:
        _echo_json(doc)
        return
    if not doc["actions"]:
        click.echo("every scope is within its limits")
    for a in doc["actions"]:
        click.echo(f"{a['scope']} {a['dimension']} {a['usage']:,} > {a['limit']:,} ({a['enforcement']}): "
                   f"{a['action']}")
        for path in a["deleted"]:
            click.echo(f"  {'would delete' if dry_run else 'deleted'} {path}")
        for s in a.get("skipped", []):
            click.echo(f"  kept {s['path']}: {s['error']}")


@quota.command("rebalance")
@_ROOT
@_AS_OF
@click.option("--apply", "do_apply", is_flag=True,
              help="Apply the proposals (needs Storage.Quotas.Dynamic.Enabled = true).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def quota_rebalance(root, as_of, do_apply, as_json):
    """Dynamic quotas: propose new MaxBytes limits (reserve, burst, inactive scopes), each with its reason.

    Example: mdcsql quota rebalance ./data --apply
    """
    from mdcsql.lifecycle.dynamic_quotas import apply, evaluate
    archive = _open(root)
    doc = evaluate(archive, as_of=as_of)
    if do_apply:
        doc["applied"] = apply(archive, doc)
    if as_json:
        _echo_json(doc)
        return
    if not doc["proposals"]:
        click.echo("no change proposed")
    for p in doc["proposals"]:
        click.echo(f"{p['scope']}: {p['current']:,} -> {p['proposed']:,}  ({p['reason']})")
    if do_apply:
        click.echo(f"applied: {len(doc['applied']['limits'])} dynamic limit(s) in effect")
    elif doc["proposals"]:
        click.echo("(proposals only; --apply to apply)" if doc["enabled"] else
                   "(proposals only: Storage.Quotas.Dynamic.Enabled is not true)")
