"""`mdcsql hold add|release|list` and `mdcsql rm`: legal holds and removal by hand, from the
command line (a thin layer over mdcsql.lifecycle.holds and mdcsql.lifecycle.removal).

Registered on the main group in cli.py.
"""

from __future__ import annotations

import click

from mdcsql.cli import _echo_json, _table

_ROOT = click.Path(exists=True, file_okay=False)


def _hold_doc(h) -> dict:
    return {"hold_id": h.hold_id, "active": h.active, **h.to_notice()}


@click.group()
def hold():
    """Legal holds: a held path or symbol/date range cannot be deleted by anything.

    Example: mdcsql hold add ./data --id case_12345 --reason "SEC inquiry" --symbol AAPL --from 2024-01-01 --to 2024-03-31 --by alice
    """


@hold.command("add")
@click.argument("root", type=_ROOT)
@click.option("--id", "hold_id", required=True, help="Hold id, e.g. the case number (case_12345).")
@click.option("--reason", required=True, help="Why the data is held.")
@click.option("--path", "paths", multiple=True, help="Path prefix or glob relative to ROOT (repeatable).")
@click.option("--symbol", "symbols", multiple=True, help="Held symbol (repeatable).")
@click.option("--type", "type_", help="Held event type (Trade, BboQuote, ...).")
@click.option("--source", help="Held source id.")
@click.option("--from", "date_from", help="First held day, YYYY-MM-DD (UTC).")
@click.option("--to", "date_to", help="Last held day, YYYY-MM-DD (UTC, inclusive).")
@click.option("--by", help="Who places the hold.")
@click.option("--json", "as_json", is_flag=True, help="Print the notice as JSON.")
def hold_add(root, hold_id, reason, paths, symbols, type_, source, date_from, date_to, by, as_json):
    """Place a legal hold (writes _archive/legal_holds/<ID>/hold_notice.json)."""
    from mdcsql.lifecycle import holds
    h = holds.add_hold(root, hold_id, reason=reason, paths=paths, symbols=symbols, type=type_,
                       source=source, date_from=date_from, date_to=date_to, by=by)
    _sync(root)
    if as_json:
        _echo_json(_hold_doc(h))
    else:
        click.echo(f"hold {h.hold_id} placed: {h.describe()}")


@hold.command("release")
@click.argument("root", type=_ROOT)
@click.argument("hold_id")
@click.option("--by", required=True, help="Who releases the hold.")
@click.option("--reason", required=True, help="Why it is released.")
def hold_release(root, hold_id, by, reason):
    """Release a hold (its notice is kept, with who released it, when and why)."""
    from mdcsql.lifecycle import holds
    h = holds.release_hold(root, hold_id, by=by, reason=reason)
    _sync(root)
    click.echo(f"hold {h.hold_id} released by {h.released_by}")


@hold.command("list")
@click.argument("root", type=_ROOT)
@click.option("--all", "include_released", is_flag=True, help="Include released holds.")
@click.option("--json", "as_json", is_flag=True, help="Print the holds as JSON.")
def hold_list(root, include_released, as_json):
    """List legal holds (active ones unless --all), read from their notices."""
    from mdcsql.lifecycle import holds
    found = holds.list_holds(root, include_released=include_released)
    if as_json:
        _echo_json([_hold_doc(h) for h in found])
        return
    if not found:
        click.echo("no legal holds" if include_released else "no active legal holds")
        return
    _table(["id", "state", "reason", "scope", "created", "by", "released"],
           [(h.hold_id, "active" if h.active else "released", h.reason, h.describe(),
             h.to_notice()["created_at"], h.created_by or "",
             f"{h.to_notice()['released_at']} by {h.released_by}: {h.release_reason}" if not h.active else "")
            for h in found])


def _sync(root, module: str = "holds") -> None:
    """Mirror the changed notices (or log) into the catalog now (best effort: the next sync does
    it too)."""
    import importlib
    from mdcsql.catalog import Catalog
    from mdcsql.errors import ArchiveLockedError
    refresh = importlib.import_module(f"mdcsql.lifecycle.{module}").refresh
    try:
        with Catalog.open(root, timeout=2.0) as cat, cat.write_lock(module):
            refresh(cat, forget=False)
    except ArchiveLockedError:
        pass


def override_options(f):
    """--by, --override-reason, --approved-by: an explicit, logged override of a governance lock."""
    f = click.option("--approved-by", "approved_by", multiple=True,
                     help="An approver of this override (repeatable; Storage.Archive.ApproversForDelete).")(f)
    f = click.option("--override-reason", help="Lift a governance-mode WORM lock, saying why (logged).")(f)
    return f


def make_override(by, override_reason, approved_by):
    from mdcsql.errors import MdcsqlError
    from mdcsql.lifecycle.guard import Override
    if override_reason is None:
        if approved_by:
            raise MdcsqlError("--approved-by is part of an override: give --override-reason too")
        return None
    if not by:
        raise MdcsqlError("an override needs --by (who decides it)")
    return Override(by=by, reason=override_reason, approved_by=tuple(approved_by))


@click.command("rm")
@click.argument("root", type=_ROOT)
@click.argument("paths", nargs=-1, required=True)
@click.option("--reason", required=True, help="Why the files are deleted (recorded).")
@click.option("--by", help="Who deletes them (recorded; default: the OS user).")
@override_options
def rm(root, paths, reason, by, override_reason, approved_by):
    """Delete data files by hand, through the guard (legal holds, WORM) and the deletion log.

    PATHS are relative to ROOT. Refused files are named with the hold or lock that protects them,
    and the attempt is logged in _catalog/refusals.jsonl.

    Example: mdcsql rm ./data live/AAPL/Trade/2024-01-02~sim~equity.jsonl.gz --reason "bad feed" --by alice
    """
    from mdcsql.lifecycle.guard import ProtectedError
    from mdcsql.lifecycle.removal import remove_files
    override = make_override(by, override_reason, approved_by)
    try:
        done = remove_files(root, list(paths), action="manual", reason=reason, actor=by, override=override)
    except ProtectedError:
        _sync(root, "guard")               # the refusals table shows the attempt at once
        raise
    for rec in done.records:
        click.echo(f"deleted {rec['path']}")
