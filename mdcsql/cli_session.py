"""`mdcsql session …`: collection sessions from the command line (a thin layer over mdcsql.sessions).

Each command opens the archive, calls the same-named function of :mod:`mdcsql.sessions`, and
renders the result; ``--json`` prints data as JSON. Registered on the main group in cli.py.
"""

from __future__ import annotations

import sys

import click

from mdcsql.cli import EXIT_FAILURE, EXIT_OK, _archive, _echo_json, _table

_ROOT = click.Path(exists=True, file_okay=False)
_STATES = ["Scheduled", "Active", "Paused", "Completed", "Failed", "Cancelled"]
_TYPES = ["Daily", "Weekly", "Monthly", "Custom", "Continuous"]


def _json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(f)


def _pairs(values, option: str) -> dict:
    out = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{v!r} is not KEY=VALUE", param_hint=option)
        out[key] = value
    return out


def _sessions():
    from mdcsql import sessions
    return sessions


def _line(s) -> str:
    st = s.statistics or {}
    return (f"{s.session_id}: {s.state} {s.type} session {s.name!r}, {st.get('total_events', 0):,} events "
            f"in {len(s.files)} file(s)")


def _done(s, as_json: bool, prefix: str = "") -> None:
    if as_json:
        _echo_json(s.to_dict())
    else:
        click.echo(prefix + _line(s))


@click.group()
def session():
    """Collection sessions: create, start, pause, resume, end, list, report, verify, compare, merge, tag.

    Example: mdcsql session list ./data --state Completed --tag Q1-2026
    """


@session.command("create")
@click.argument("root", type=_ROOT)
@click.option("--name", help="Human-readable name (default: 'Regular Trading Session - <date>').")
@click.option("--id", "session_id", help="Session id (default: <UTC date>-<name slug>, e.g. 2026-01-03-regular).")
@click.option("--type", "stype", type=click.Choice(_TYPES, case_sensitive=False), default="Custom", show_default=True)
@click.option("--symbols", default="", help="Comma-separated symbols it should collect (quality checks them).")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--category", "categories", multiple=True, help="A category, e.g. Regular (repeatable).")
@click.option("--meta", multiple=True, help="Custom metadata KEY=VALUE (repeatable).")
@click.option("--timezone", help="Time zone of the report's times, e.g. America/New_York (default UTC).")
@click.option("--market-hours", help="Market hours shown in the report, e.g. '09:30-16:00 ET'.")
@click.option("--notes", help="Free text kept in the report.")
@_json_option
def create_cmd(root, name, session_id, stype, symbols, tags, categories, meta, timezone, market_hours, notes,
               as_json):
    """Create a Scheduled session.

    Example: mdcsql session create ./data --name "Q1 earnings" --type Daily --symbols AAPL,MSFT --tag Q1-2026
    """
    config = {k: v for k, v in (("timezone", timezone), ("market_hours", market_hours)) if v}
    s = _sessions().create(_archive(root), name=name, session_id=session_id, type=stype,
                           symbols=[x.strip() for x in symbols.split(",") if x.strip()], tags=tags,
                           categories=categories, metadata=_pairs(meta, "--meta"), config=config, notes=notes)
    _done(s, as_json, "created ")


def _lifecycle(root, session_id, action, as_json, **kwargs):
    archive = _archive(root)
    try:
        s = getattr(_sessions(), action)(archive, session_id, **kwargs)
    finally:
        archive.close(seal=False)
    _done(s, as_json)


@session.command("start")
@click.argument("root", type=_ROOT)
@click.argument("session_id")
@_json_option
def start_cmd(root, session_id, as_json):
    """Start a Scheduled session: seal every hot file, make it Active. The next collector joins it.

    Needs the archive's write lock (no collector running). The session stays Active until ended.

    Example: mdcsql session start ./data 2026-01-03-regular
    """
    _lifecycle(root, session_id, "start", as_json, detach=True)


@session.command("pause")
@click.argument("root", type=_ROOT)
@click.argument("session_id")
@click.option("--note", help="Why (kept in the history and the report).")
@_json_option
def pause_cmd(root, session_id, note, as_json):
    """Pause an Active session: what is written while it is paused belongs to no session.

    Example: mdcsql session pause ./data 2026-01-03-regular --note "feed maintenance"
    """
    _lifecycle(root, session_id, "pause", as_json, note=note)


@session.command("resume")
@click.argument("root", type=_ROOT)
@click.argument("session_id")
@_json_option
def resume_cmd(root, session_id, as_json):
    """Resume a Paused session (Active again; the next collector joins it).

    Example: mdcsql session resume ./data 2026-01-03-regular
    """
    _lifecycle(root, session_id, "resume", as_json, detach=True)


@session.command("end")
@click.argument("root", type=_ROOT)
@click.argument("session_id")
@click.option("--state", type=click.Choice(["Completed", "Failed", "Cancelled"], case_sensitive=False),
              default="Completed", show_default=True)
@click.option("--note", help="Why (kept in the history and the report).")
@_json_option
def end_cmd(root, session_id, state, note, as_json):
    """End an Active or Paused session: final statistics, report, quality and checksums from its files.

    Example: mdcsql session end ./data 2026-01-03-regular
    """
    _lifecycle(root, session_id, "end", as_json, state=state, note=note)


@session.command("list")
@click.argument("root", type=_ROOT)
@click.option("--state", type=click.Choice(_STATES, case_sensitive=False))
@click.option("--tag", "tags", multiple=True, help="Only sessions with this tag (repeat: with all of them).")
@click.option("--category", help="Only sessions in this category.")
@click.option("--since", help="Only sessions active on or after this date (YYYY-MM-DD, UTC) or ISO time.")
@click.option("--until", help="Only sessions active on or before this date (inclusive) or before this ISO time.")
@click.option("--date", "on", help="Only sessions active on this date (YYYY-MM-DD, UTC).")
@_json_option
def list_cmd(root, state, tags, category, since, until, on, as_json):
    """List sessions, newest first.

    Example: mdcsql session list ./data --state Completed --tag Q1-2026 --since 2026-01-01
    """
    rows = _sessions().list_sessions(_archive(root), state=state, tag=list(tags), category=category,
                                     since=since or on, until=until or on)
    if as_json:
        _echo_json(rows)
        return
    cols = ["session_id", "state", "type", "name", "started_at", "ended_at", "total_events", "file_count",
            "quality_score", "tags"]
    _table(cols, [[", ".join(r[c]) if c == "tags" else r[c] for c in cols] for r in rows])


@session.command("show")
@click.argument("root", type=_ROOT)
@click.argument("session_id")
@click.option("--files", "with_files", is_flag=True, help="Also list its files.")
@_json_option
def show_cmd(root, session_id, with_files, as_json):
    """Show a session: state, history, holder, statistics (and its files).

    Example: mdcsql session show ./data 2026-01-03-regular --json
    """
    doc = _sessions().show(_archive(root), session_id)
    if not with_files:
        doc["files"] = len(doc["files"])
    if as_json:
        _echo_json(doc)
        return
    st = doc["statistics"]
    click.echo(f"{doc['session_id']}: {doc['name']} ({doc['type']}, {doc['state']})")
    click.echo(f"  created {doc['created_at']}, started {doc['started_at']}, ended {doc['ended_at']}")
    click.echo(f"  holder: {doc['holder']['status']}" + (f" (pid {doc['holder'].get('pid')})"
                                                         if doc["holder"].get("pid") else ""))
    click.echo(f"  tags: {', '.join(doc['tags']) or '-'}; categories: {', '.join(doc['categories']) or '-'}; "
               f"symbols: {', '.join(doc['symbols']) or '-'}")
    click.echo(f"  {st.get('total_events', 0):,} events, {st.get('file_count', 0)} files, "
               f"quality {st.get('quality_score')}")
    for h in doc["history"]:
        click.echo(f"  {h['at']}  {h['state']}" + (f"  {h['note']}" if h.get("note") else ""))
    if with_files:
        for f in doc["files"]:
            click.echo(f"  {f['path']}  {f['event_count']:,} events  sha256 {f['sha256'][:12]}")


@session.command("report")
@click.argument("root", type=_ROOT)
@click.argument("session_id")
@click.option("--refresh", is_flag=True, help="Recompute from the files even for a final session.")
@_json_option
def report_cmd(root, session_id, refresh, as_json):
    """The session report (sessions/<id>/report.json), recomputed from the files when not final.

    Example: mdcsql session report ./data 2026-01-03-regular --json
    """
    doc = _sessions().report(_archive(root), session_id, refresh_now=refresh)
    if as_json:
        _echo_json(doc)
        return
    r = doc["session_report"]
    click.echo(f"{r['session_id']}: {r['name']} ({r['type']})")
    for section in ("timing", "coverage", "volume", "quality", "files"):
        click.echo(f"  {section}: " + ", ".join(f"{k} {v}" for k, v in r[section].items()))
    click.echo(f"  notes: {r['notes']}")


@session.command("verify")
@click.argument("root", type=_ROOT)
@click.argument("session_id")
@_json_option
def verify_cmd(root, session_id, as_json):
    """Recompute checksums and counts of a session's files against manifests; exit 0 only if all agree.

    Example: mdcsql session verify ./data 2026-01-03-regular
    """
    report = _sessions().verify(_archive(root), session_id)
    if as_json:
        _echo_json(report.to_dict())
    else:
        click.echo(f"verified session {session_id}: {report.files_checked} file(s), {report.events_checked:,} "
                   f"events, {report.bytes_checked:,} bytes: "
                   + ("all agree" if report.ok else f"{len(report.problems)} problem(s)"))
        for p in report.problems:
            click.echo(f"  {p['problem']}: {p['path']}: {p['detail']}", err=True)
    sys.exit(EXIT_OK if report.ok else EXIT_FAILURE)


@session.command("tag")
@click.argument("root", type=_ROOT)
@click.argument("session_id")
@click.argument("tags", nargs=-1)
@click.option("--remove", multiple=True, help="A tag to remove (repeatable).")
@click.option("--category", "categories", multiple=True, help="A category to add (repeatable).")
@click.option("--remove-category", multiple=True, help="A category to remove (repeatable).")
@click.option("--meta", multiple=True, help="Custom metadata KEY=VALUE to set; KEY= removes it (repeatable).")
@_json_option
def tag_cmd(root, session_id, tags, remove, categories, remove_category, meta, as_json):
    """Add or remove tags and categories; set custom metadata.

    Example: mdcsql session tag ./data 2026-01-03-regular Q1-2026 Earnings --category Regular --meta desk=eq
    """
    metadata = {k: (v if v != "" else None) for k, v in _pairs(meta, "--meta").items()}
    s = _sessions().tag(_archive(root), session_id, add=tags, remove=remove, categories=categories,
                        remove_categories=remove_category, metadata=metadata)
    if as_json:
        _echo_json(s.to_dict())
    else:
        click.echo(f"{s.session_id}: tags {', '.join(s.tags) or '-'}; categories {', '.join(s.categories) or '-'}"
                   + (f"; metadata {s.metadata}" if s.metadata else ""))


@session.command("compare")
@click.argument("root", type=_ROOT)
@click.argument("a")
@click.argument("b")
@_json_option
def compare_cmd(root, a, b, as_json):
    """Compare two sessions: symbols, event counts by type/symbol/source, totals, quality, shared files.

    Example: mdcsql session compare ./data 2026-01-02-regular 2026-01-03-regular --json
    """
    doc = _sessions().compare(_archive(root), a, b)
    if as_json:
        _echo_json(doc)
        return
    sym = doc["symbols"]
    click.echo(f"a = {a}, b = {b}; symbols only in a: {', '.join(sym['only_in_a']) or '-'}; "
               f"only in b: {', '.join(sym['only_in_b']) or '-'}; in both: {len(sym['in_both'])}")
    for section in ("events_by_type", "totals", "quality"):
        rows = [[k, v["a"], v["b"], v["difference"]] for k, v in doc[section].items() if "difference" in v]
        _table([section.replace("_", " "), "a", "b", "b - a"], rows)
    f = doc["files"]
    click.echo(f"files: {f['shared']} shared, {f['only_in_a']} only in a, {f['only_in_b']} only in b")


@session.command("merge")
@click.argument("root", type=_ROOT)
@click.argument("session_ids", nargs=-1, required=True)
@click.option("--name", help="Name of the merged session.")
@click.option("--id", "session_id", help="Id of the merged session (default: <UTC date>-<name slug or 'merged'>).")
@click.option("--tag", "tags", multiple=True, help="An extra tag (repeatable).")
@_json_option
def merge_cmd(root, session_ids, name, session_id, tags, as_json):
    """Merge final sessions into a new Completed session whose files are their union (they stay as they are).

    Example: mdcsql session merge ./data 2026-01-02-regular 2026-01-03-regular --name "Week 1"
    """
    s = _sessions().merge(_archive(root), session_ids, name=name, session_id=session_id, tags=tags)
    _done(s, as_json, "merged into ")
