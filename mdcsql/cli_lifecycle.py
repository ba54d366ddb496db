"""`mdcsql policy explain`, `mdcsql tier plan|migrate`, `mdcsql retention`: thin layers over
``mdcsql.lifecycle.policy`` / ``migrate`` / ``retention``."""

from __future__ import annotations

import sys
from collections import Counter

import click

from mdcsql.cli import EXIT_FAILURE, EXIT_OK, _archive, _echo_json, _table

_ROOT = click.Path(exists=True, file_okay=False)


def _as_of_option(f):
    return click.option("--as-of", "as_of", default=None, metavar="DATE|TIMESTAMP",
                        help="Judge ages at this instant (YYYY-MM-DD or ISO-8601, UTC); default now. "
                             "Makes runs reproducible.")(f)


def _instant(text):
    from mdcsql.lifecycle.instants import parse_instant
    return parse_instant(text, what="--as-of")


@click.group()
def policy():
    """Storage policies: what would happen to each file, and why."""


@policy.command("explain")
@click.argument("root", type=_ROOT)
@_as_of_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per decision, in a list.")
@click.option("--changes-only", is_flag=True, help="Only files something would happen to.")
def policy_explain(root, as_of, as_json, changes_only):
    """List every file's decision (keep, migrate, delete, consolidate, protected) with its
    reason. A dry run: nothing changes."""
    from mdcsql.lifecycle.migrate import plan
    archive = _archive(root)
    p = plan(archive, as_of=_instant(as_of))
    decisions = [d for d in p.decisions if d.action != "keep" or not changes_only]
    if as_json:
        _echo_json({"as_of": p.as_of.isoformat(), "decisions": [d.to_dict() for d in decisions]})
        return
    if decisions:
        _table(["path", "tier", "action", "to", "age (d)", "reason"],
               [[d.path, d.tier, d.action, d.target_tier or "", "" if d.age_days is None else f"{d.age_days:.1f}",
                 d.reason] for d in decisions], title=f"policy decisions as of {p.as_of.isoformat()}")
    elif p.decisions:
        reasons = Counter(d.reason.split(":")[0] for d in p.decisions)
        click.echo(f"no file would change as of {p.as_of.isoformat()}; most common reason: "
                   f"{reasons.most_common(1)[0][0]}")
    counts = Counter(d.action for d in p.decisions)
    click.echo(", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "no files")


@click.group()
def tier():
    """Tiered storage: plan and run migrations hot -> warm -> cold -> archive."""


@tier.command("plan")
@click.argument("root", type=_ROOT)
@_as_of_option
@click.option("--json", "as_json", is_flag=True)
def tier_plan(root, as_of, as_json):
    """The migration steps `tier migrate` would run now (or at --as-of)."""
    from mdcsql.lifecycle.migrate import plan
    archive = _archive(root)
    p = plan(archive, as_of=_instant(as_of))
    _show_plan(p, as_json)


def _show_plan(p, as_json: bool) -> None:
    steps = [s.to_dict() for s in p.steps]
    if as_json:
        _echo_json({"as_of": p.as_of.isoformat(), "steps": steps})
        return
    _table(["operation", "to", "inputs", "outputs", "events", "reason"],
           [[s["operation"], s["target_tier"], "\n".join(s["inputs"]), "\n".join(s["outputs"]),
             f"{s['events']:,}", s["reason"]] for s in steps],
           title=f"tier plan as of {p.as_of.isoformat()}: {len(steps)} step(s)")


@tier.command("migrate")
@click.argument("root", type=_ROOT)
@_as_of_option
@click.option("--parallel", type=click.IntRange(1, 64), default=None,
              help="Steps run at once (default: Storage.Tiering.ParallelMigrations, else 1).")
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
@click.option("--json", "as_json", is_flag=True)
def tier_migrate(root, as_of, parallel, dry_run, as_json):
    """Run the tier plan: each step copies, verifies, swaps, records lineage, then deletes its
    inputs. Safe to interrupt: a rerun finishes or redoes what was cut off."""
    archive = _archive(root)
    tiering = archive.settings.storage.tiering
    parallel = parallel or (tiering.parallel_migrations if tiering and tiering.parallel_migrations else 1)
    p, result = _run_migrate(archive, _instant(as_of), parallel, dry_run,
                             show_bar=sys.stderr.isatty() and not dry_run)
    if dry_run:
        _show_plan(p, as_json)
        return
    if as_json:
        _echo_json(result.to_dict())
    else:
        ratio = (result.bytes_before / result.bytes_after) if result.bytes_after else 0
        click.echo(f"{result.steps_done} step(s) done, {result.steps_failed} failed: {result.files_in} file(s) "
                   f"-> {result.files_out}, {result.events:,} events, {result.bytes_before:,} -> "
                   f"{result.bytes_after:,} bytes ({ratio:.2f}x) in {result.seconds:.1f} s")
        if result.recovered.get("finished"):
            click.echo(f"finished {result.recovered['finished']} interrupted transition(s) first")
        for e in result.errors:
            click.echo(f"  failed: {e}", err=True)
    sys.exit(EXIT_OK if not result.steps_failed else EXIT_FAILURE)


def _run_migrate(archive, as_of, parallel: int, dry_run: bool, *, show_bar: bool):
    """`migrate`, with a progress bar of steps on a terminal."""
    from mdcsql.lifecycle.migrate import migrate
    if not show_bar:
        return migrate(archive, as_of=as_of, parallel=parallel, dry_run=dry_run)
    from rich.progress import Progress
    with Progress(transient=True) as bar:
        task = bar.add_task("migrating", total=None)
        return migrate(archive, as_of=as_of, parallel=parallel, dry_run=dry_run,
                       on_progress=lambda step: bar.advance(task))


@click.command()
@click.argument("root", type=_ROOT)
@_as_of_option
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@click.option("--json", "as_json", is_flag=True)
def retention(root, as_of, dry_run, as_json):
    """Delete files past their retention (never Critical data, never held or WORM-locked files;
    each deletion is logged to _catalog/deletions.jsonl)."""
    from mdcsql.lifecycle.retention import apply_retention
    archive = _archive(root)
    report = apply_retention(archive, as_of=_instant(as_of), dry_run=dry_run)
    if as_json:
        _echo_json(report)
    else:
        verb = "would delete" if dry_run else "deleted"
        for d in report["deleted"]:
            click.echo(f"{verb} {d['path']}: {d['reason']}")
        for d in report["protected"]:
            click.echo(f"kept {d['path']}: {d['reason']}", err=True)
        click.echo(f"{len(report['deleted'])} file(s) {verb}, {report['bytes']:,} bytes; "
                   f"{len(report['protected'])} protected")
    sys.exit(EXIT_OK)


@click.group()
def lifecycle():
    """The whole lifecycle job: retention, quotas, tier migration, compaction, WORM locks."""


@lifecycle.command("run")
@click.argument("root", type=_ROOT)
@_as_of_option
@click.option("--dry-run", is_flag=True, help="Show what every step would do; change nothing.")
@click.option("--parallel", type=click.IntRange(1, 64), default=1, help="Migration steps at once.")
@click.option("--json", "as_json", is_flag=True)
def lifecycle_run(root, as_of, dry_run, parallel, as_json):
    """Run every lifecycle step in order (what a nightly schedule calls): finish interrupted
    transitions, retention, quota clean-up, tier migration, compaction, WORM locks."""
    from mdcsql.lifecycle.job import run_lifecycle
    report = run_lifecycle(_archive(root), as_of=_instant(as_of), dry_run=dry_run, parallel=parallel)
    if as_json:
        _echo_json(report)
        return
    for s in report["steps"]:
        click.echo(f"{s['step']:>9}: " + _summary(s))


def _summary(s: dict) -> str:
    name = s["step"]
    if name == "recover":
        return f"{s['finished']} interrupted transition(s) finished, {s['tmp_removed']} tmp file(s) removed"
    if name == "retention":
        return f"{len(s['deleted'])} file(s) deleted ({s['bytes']:,} bytes), {len(s['protected'])} protected"
    if name == "migrate":
        return (f"{len(s['planned'])} step(s) planned, {s['steps_done']} done, {s['steps_failed']} failed, "
                f"{s['events']:,} events")
    if name == "compact":
        return f"{s.get('files_processed', 0)} file(s) merged into {s.get('files_created', 0)}"
    if name == "worm":
        return f"{len(s['locked'])} file(s) locked"
    keys = [k for k in s if k != "step"][:4]
    return ", ".join(f"{k}={s[k] if not isinstance(s[k], (list, dict)) else len(s[k])}" for k in keys)
