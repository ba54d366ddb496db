"""`mdcsql backup run|list|verify|restore`: a thin layer over mdcsql.lifecycle.backup (docs/backup.md).

``run`` takes the archive ROOT; the others work from a target directory alone (``--target``),
so a restore needs nothing of the lost archive — or from ``--root ROOT``, whose configured first
local target is used. Registered on the main group in cli.py.
"""

from __future__ import annotations

import sys

import click

from mdcsql.cli import EXIT_FAILURE, _archive, _echo_json, _progress_enabled, _table

_ROOT = click.Path(exists=True, file_okay=False)


def _bytes_progress(description: str, enabled: bool):
    """A rich progress bar over bytes on a terminal, else None; returns (progress, callback)."""
    if not enabled:
        return None, None
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                        TimeRemainingColumn(), transient=True)
    task = progress.add_task(description, total=None)
    progress.start()
    return progress, lambda done, total, path: progress.update(task, completed=done, total=total)


def _target(root, target):
    from mdcsql.lifecycle.backup import Target, resolve_targets
    if target:
        return Target(target)
    if not root:
        raise click.UsageError("give the backup target with --target PATH, or the archive with --root ROOT")
    targets, problems = resolve_targets(_archive(root).settings)
    if not targets:
        raise click.UsageError("; ".join(problems) + "; give a local target with --target PATH")
    return targets[0]


def _where(f):
    f = click.option("--target", type=click.Path(file_okay=False),
                     help="Backup target directory (default: the first local target of --root's config).")(f)
    return click.option("--root", type=_ROOT, help="Archive whose Storage.Backup.Targets to use.")(f)


@click.group()
def backup():
    """Incremental backups by checksum: run, list, verify, restore.

    Example: mdcsql backup run ./data --target /mnt/backup/mdc && mdcsql backup list --target /mnt/backup/mdc
    """


@backup.command("run")
@click.argument("root", type=_ROOT)
@click.option("--target", type=click.Path(file_okay=False), help="Back up to this directory instead of the "
                                                                 "configured Storage.Backup.Targets.")
@click.option("--dry-run", is_flag=True, help="Tell what would be copied; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON: a list, one object per target.")
def run_cmd(root, target, dry_run, as_json):
    """Back ROOT up: copy new or changed files into the target's object store, write the backup's
    manifest, then prune to Storage.Backup.RetentionBackups.

    Example: mdcsql backup run ./data --target /mnt/backup/mdc
    """
    from mdcsql.lifecycle.backup import next_run, run_backup
    archive = _archive(root)
    progress, on_progress = _bytes_progress("backing up", _progress_enabled() and not as_json)
    try:
        results = run_backup(archive, target=target, dry_run=dry_run, on_progress=on_progress)
    finally:
        if progress:
            progress.stop()
    if not dry_run:
        archive.sync_catalog(timeout=2)
    cfg = archive.settings.storage.backup
    upcoming = next_run(cfg.schedule) if cfg else None
    if as_json:
        docs = [r.to_dict() for r in results]
        for d in docs:
            d["next_run"] = upcoming.isoformat() if upcoming else None
        _echo_json(docs)
    else:
        for r in results:
            t = r.manifest["totals"]
            verb = "would copy" if dry_run else "copied"
            click.echo(f"{'dry run: ' if dry_run else ''}backup {r.id} to {r.target}: {t['files']:,} file(s), "
                       f"{t['bytes']:,} bytes; {verb} {len(r.would_copy) if dry_run else t['new_objects']:,} "
                       f"new ({t['new_bytes']:,} bytes), {t['reused_files']:,} unchanged"
                       + (f"; parent {r.manifest['parent']}" if r.manifest["parent"] else ""))
            for s in r.manifest["skipped"]:
                click.echo(f"  skipped {s['path']}: {s['reason']}")
            if r.pruned:
                click.echo(f"  pruned {len(r.pruned)} old backup(s): {', '.join(r.pruned)}")
            for p in r.manifest["problems"]:
                click.echo(f"problem: {p['path']}: {p['problem']}", err=True)
        if cfg and cfg.enabled is False:
            click.echo("note: Storage.Backup.Enabled is false: the scheduler will not run backups by itself")
        if upcoming:
            click.echo(f"schedule {cfg.schedule}: next run {upcoming.isoformat()}")
    if any(not r.ok for r in results):
        sys.exit(EXIT_FAILURE)


@backup.command("list")
@_where
@click.option("--json", "as_json", is_flag=True, help="Print the backups as JSON.")
def list_cmd(root, target, as_json):
    """List the backups of a target, oldest first.

    Example: mdcsql backup list --target /mnt/backup/mdc
    """
    t = _target(root, target)
    with t.reading():
        docs = t.manifests()
    if as_json:
        _echo_json([{k: v for k, v in d.items() if k != "files"} for d in docs])
        return
    if root:
        from mdcsql.lifecycle.backup import next_run
        cfg = _archive(root).settings.storage.backup
        if cfg and cfg.schedule:
            click.echo(f"schedule {cfg.schedule} (UTC): next run {next_run(cfg.schedule).isoformat()}"
                       + ("; Enabled is false: the scheduler will not run it" if cfg.enabled is False else ""))
    cols = ["id", "created_at", "files", "bytes", "new_objects", "new_bytes", "skipped", "parent"]
    _table(cols, [[d["id"], d["created_at"], d["totals"]["files"], d["totals"]["bytes"], d["totals"]["new_objects"],
                   d["totals"]["new_bytes"], d["totals"]["skipped"], d["parent"] or ""] for d in docs],
           title=f"backups in {t.path}")


@backup.command("verify")
@click.argument("backup_id", required=False)
@_where
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify_cmd(backup_id, root, target, as_json):
    """Check that every object of backup ID (default: every backup) is present with the right hash;
    exit 1 naming the bad paths otherwise.

    Example: mdcsql backup verify --target /mnt/backup/mdc 20240102T000000Z-1a2b3c
    """
    t = _target(root, target)
    progress, on_progress = _bytes_progress("verifying", _progress_enabled() and not as_json)
    try:
        with t.reading():
            report = t.verify(backup_id, on_progress=on_progress)
    finally:
        if progress:
            progress.stop()
    if as_json:
        _echo_json(report.to_dict())
    else:
        click.echo(f"verified {len(report.backups)} backup(s), {report.objects_checked:,} object(s), "
                   f"{report.bytes_checked:,} bytes: " + ("all present and intact" if report.ok
                                                          else f"{len(report.problems)} problem(s)"))
        for p in report.problems:
            click.echo(f"  {p['backup']}: {p['path']}: {p['problem']}", err=True)
    if not report.ok:
        sys.exit(EXIT_FAILURE)


@backup.command("restore")
@click.argument("backup_id")
@click.argument("dest", type=click.Path(file_okay=False))
@_where
@click.option("--force", is_flag=True, help="Restore into a non-empty DEST (files of the backup are overwritten).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def restore_cmd(backup_id, dest, root, target, force, as_json):
    """Restore backup ID (or 'latest') into DEST, a new or empty directory, byte for byte, and
    rebuild its catalog.

    Example: mdcsql backup restore --target /mnt/backup/mdc latest ./restored && mdcsql verify ./restored
    """
    from mdcsql.lifecycle.backup import restore_backup
    t = _target(root, target)
    progress, on_progress = _bytes_progress("restoring", _progress_enabled() and not as_json)
    try:
        result = restore_backup(t, backup_id, dest, force=force, on_progress=on_progress)
    finally:
        if progress:
            progress.stop()
    if as_json:
        _echo_json(result.to_dict())
    else:
        click.echo(f"restored backup {result.backup_id} into {result.dest}: {result.files:,} file(s), "
                   f"{result.bytes:,} bytes; catalog rebuilt with {result.catalog_files:,} data file(s)")
