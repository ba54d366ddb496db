"""`mdcsql compact ROOT` and `mdcsql split ROOT [PATH...]`: a thin layer over
mdcsql.lifecycle.compaction (docs/compaction.md).

Options override ``Storage.Compaction``. Exit 0 when every planned merge/split ran, was skipped
or was refused by the guard (legal hold, WORM — listed, the others go on); 1 when one failed
verification or could not be read (listed; its inputs are untouched).
"""

from __future__ import annotations

import sys

import click

from mdcsql.cli import EXIT_FAILURE, _echo_json

_ROOT = click.Path(exists=True, file_okay=False)


def _as_of(ctx, param, value):
    from mdcsql.errors import MdcsqlError
    from mdcsql.lifecycle.instants import parse_instant
    if value is None:
        return None
    try:
        return parse_instant(value)
    except MdcsqlError as e:
        raise click.BadParameter(str(e)) from None


def _age(ctx, param, value):
    from mdcsql.errors import MdcsqlError
    from mdcsql.lifecycle.instants import duration_seconds
    if value is None:
        return None
    text = value.strip().lower()
    value = int(text) if text.isdigit() else text
    try:
        duration_seconds(value, what="--max-file-age")
    except MdcsqlError:
        raise click.BadParameter(f"{text!r} is not a duration; give seconds or e.g. 30m, 12h, 7d, 2w") from None
    return value


def _codec(ctx, param, value):
    from mdcsql.errors import MdcsqlError
    from mdcsql.lifecycle.codecs import parse_codec
    if value is None:
        return None
    try:
        parse_codec(value)
    except MdcsqlError as e:
        raise click.BadParameter(str(e)) from None
    return value.strip().lower()


def _options(root, **overrides):
    from mdcsql.cli import _archive
    from mdcsql.lifecycle.compaction import DefragOptions
    return DefragOptions.from_settings(_archive(root).settings, **overrides)


def _report(res, items: list[dict], *, verb: str, describe) -> None:
    for item in items:
        click.echo(describe(item))
    for s in res.skipped:
        click.echo(f"skipped {len(s['paths'])} file(s): {s['reason']}: {', '.join(s['paths'])}")
    for r in res.refused:
        click.echo(f"refused: {r['reason']}")
    for e in res.errors:
        click.echo(f"error: {', '.join(e['paths'])}: {e['reason']}", err=True)
    if res.recovered.get("finished") or res.recovered.get("tmp_removed"):
        click.echo(f"first finished {res.recovered['finished']} interrupted transition(s), removed "
                   f"{res.recovered['tmp_removed']} temporary file(s)")
    for p in res.preserved:
        click.echo(f"originals kept in {p}/")
    if res.catalog_problem:
        click.echo(f"warning: {res.catalog_problem}", err=True)
    done = "would process" if res.dry_run else verb
    click.echo(f"{done} {res.files_processed} file(s) into {res.files_created}: {res.bytes_before:,} -> "
               f"{res.bytes_after:,} bytes, {res.events:,} events, {res.duration_seconds:.2f} s"
               + ("" if res.dry_run else f"; {len(res.refused)} refused, {len(res.errors)} failed"))


@click.command()
@click.argument("root", type=_ROOT)
@click.option("--as-of", callback=_as_of, metavar="DATE|TIMESTAMP",
              help="Judge file ages at this instant (YYYY-MM-DD or ISO timestamp; default now).")
@click.option("--dry-run", is_flag=True, help="List what would be merged and why; change nothing.")
@click.option("--min-file-size", type=click.IntRange(min=0), metavar="BYTES",
              help="Merge files smaller than this (Storage.Compaction.MinFileSizeBytes; default 1 MiB).")
@click.option("--max-files-per-merge", type=click.IntRange(min=2), metavar="N",
              help="At most N files per merged file (MaxFilesPerMerge; default 32).")
@click.option("--max-file-age", callback=_age, metavar="AGE",
              help="Only files sealed at least this long before --as-of, e.g. 7d (MaxFileAge; default 1d).")
@click.option("--max-file-bytes", type=click.IntRange(min=1), metavar="BYTES",
              help="A merged file stays below this size (MaxFileBytes; default 1 GiB).")
@click.option("--target-compression", callback=_codec, metavar="CODEC",
              help="Codec of merged files, e.g. zstd-12 (TargetCompression; default: the tier's).")
@click.option("--preserve-originals/--no-preserve-originals", default=None,
              help="Keep merged originals under _catalog/preserved/<transition>/ (PreserveOriginals).")
@click.option("--json", "as_json", is_flag=True, help="Print the CompactionResult as JSON.")
def compact(root, as_of, dry_run, min_file_size, max_files_per_merge, max_file_age, max_file_bytes,
            target_compression, preserve_originals, as_json):
    """Merge small sealed files of one partition (the .p2, .p3 ... parts restarts and late data
    leave) into one file each; never loses or duplicates a row.

    Example: mdcsql compact ./data --max-file-age 7d --dry-run
    """
    from mdcsql.lifecycle.compaction import compact as run
    opts = _options(root, min_file_size_bytes=min_file_size, max_files_per_merge=max_files_per_merge,
                    max_file_age=max_file_age, max_file_bytes=max_file_bytes,
                    target_compression=target_compression, preserve_originals=preserve_originals)
    res = run(root, options=opts, as_of=as_of, dry_run=dry_run)
    if as_json:
        _echo_json(res.to_dict())
    else:
        _report(res, res.merges, verb="merged", describe=lambda m: (
            f"{'would merge' if res.dry_run else 'merged'} {len(m['inputs'])} files -> {m['output']} "
            f"({m['events']:,} events, {m['bytes']:,}"
            + (f" -> {m['bytes_after']:,}" if "bytes_after" in m else "") + f" bytes; {m['reason']})"))
    if res.errors:
        sys.exit(EXIT_FAILURE)


@click.command()
@click.argument("root", type=_ROOT)
@click.argument("paths", nargs=-1)
@click.option("--max-bytes", type=click.IntRange(min=1), metavar="N",
              help="Split files larger than N bytes (Storage.Compaction.MaxFileBytes; default 1 GiB).")
@click.option("--dry-run", is_flag=True, help="List what would be split; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the SplitResult as JSON.")
def split(root, paths, max_bytes, dry_run, as_json):
    """Split sealed files larger than --max-bytes (all, or the PATHs given relative to ROOT) into
    ts ranges: the first keeps the file's part number, the others become new parts.

    Example: mdcsql split ./data cold/live/SPY/Trade/2024-01-02~lean~equity.parquet --max-bytes 100000000
    """
    from mdcsql.lifecycle.compaction import split as run
    opts = _options(root, max_file_bytes=max_bytes)
    res = run(root, list(paths) or None, options=opts, dry_run=dry_run)
    if as_json:
        _echo_json(res.to_dict())
    else:
        _report(res, res.splits, verb="split", describe=lambda s: (
            f"would split {s['input']} ({s['bytes']:,} bytes) into about {s['chunks']} files" if res.dry_run else
            f"split {s['input']} into " + ", ".join(f"{o['path']} ({o['event_count']:,} events)" for o in s["outputs"])))
    if res.errors:
        sys.exit(EXIT_FAILURE)
