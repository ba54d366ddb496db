"""`mdcsql capacity ROOT`: the storage forecast (a thin layer over mdcsql.lifecycle.capacity).

Registered on the main group in cli.py. Bad option values are usage errors (exit 2); alerts do
not change the exit code unless ``--fail-on-alert`` is given (then exit 1), for cron jobs.
"""

from __future__ import annotations

import sys

import click

from mdcsql.cli import EXIT_FAILURE, _echo_json, _table


def _horizon(ctx, param, value):
    from mdcsql.lifecycle.capacity import CapacityError, parse_horizon
    try:
        return parse_horizon(value)
    except CapacityError as e:
        raise click.BadParameter(str(e)) from None


def _as_of(ctx, param, value):
    from mdcsql.lifecycle.capacity import CapacityError, parse_as_of
    if value is None:
        return None
    try:
        parse_as_of(value)
    except CapacityError as e:
        raise click.BadParameter(str(e)) from None
    return value


def _days(value) -> str:
    if value is None:
        return "never"
    return "now" if value == 0 else f"{value:,.1f}"


def _rate(value: float, metric: str) -> str:
    from mdcsql.lifecycle.capacity import human_bytes
    return human_bytes(value) + "/day" if metric == "bytes" else f"{value:,.1f}/day"


def _amount(value: float, metric: str) -> str:
    from mdcsql.lifecycle.capacity import human_bytes
    return human_bytes(value) if metric == "bytes" else f"{value:,.0f}"


def _print(fc) -> None:
    from mdcsql.lifecycle.capacity import human_bytes
    click.echo(f"capacity forecast as of {fc.forecast_date} ({fc.basis} basis, growth fitted on "
               f"{fc.history_days:.1f} day(s) of a {fc.window_days}-day window)")
    click.echo(f"  current:   {human_bytes(fc.current_usage_bytes)} ({fc.current_usage_bytes:,} bytes) in "
               f"{fc.current_files:,} files, {fc.current_events:,} events")
    click.echo(f"  growth:    {human_bytes(fc.growth_rate_per_day)}/day, {fc.growth_files_per_day:,.1f} files/day, "
               f"{fc.growth_events_per_day:,.0f} events/day")
    click.echo(f"  in {fc.horizon_days:g} days: {human_bytes(fc.projected_usage_bytes)} "
               f"({fc.projected_usage_bytes:,} bytes)")
    full = f"{fc.estimated_full_date[:10]} ({fc.first_full_limit})" if fc.estimated_full_date else \
        "not within reach of any limit at this growth"
    click.echo(f"  full:      {full}")
    for dim in ("tier", "source", "type"):
        rows = fc.usage.get(f"by_{dim}") or []
        if rows:
            _table([dim, "files", "events", "bytes", "size", "growth/day"],
                   [(r[dim], f"{r['files']:,}", f"{r['events']:,}", f"{r['bytes']:,}", human_bytes(r["bytes"]),
                     human_bytes(r["growth_bytes_per_day"])) for r in rows], title=f"by {dim}")
    if fc.limits:
        _table(["limit", "key", "used", "of", "%", f"% in {fc.horizon_days:g}d", "growth", "days left",
                "full on"],
               [(lim.limit, lim.key or "", _amount(lim.current, lim.metric), _amount(lim.limit_value, lim.metric),
                 f"{lim.current_pct:.1f}", f"{lim.projected_pct:.1f}", _rate(lim.growth_per_day, lim.metric),
                 _days(lim.days_left), (lim.full_date or "")[:10]) for lim in fc.limits],
               title="limits")
    else:
        click.echo("no limits configured (Storage.Quotas, MaxTotalMegabytes, Tiering MaxSizeGb)")
    for a in fc.alerts:
        click.echo(f"ALERT {a.level}: {a.message}")
    if not fc.alerts:
        click.echo(f"no alerts at {fc.threshold_pct:g}%")
    for note in fc.notes:
        click.echo(f"note: {note}")


@click.command("capacity")
@click.argument("root", type=click.Path(exists=True, file_okay=False))
@click.option("--horizon", default="90d", show_default=True, callback=_horizon,
              help="How far ahead to project: 90d, 12w, 1y, 48h or a number of days.")
@click.option("--as-of", "as_of", callback=_as_of,
              help="Count only files created on/before this DATE (its whole day) or ISO TIMESTAMP; default now.")
@click.option("--threshold-pct", "threshold_pct", default=80.0, show_default=True,
              type=click.FloatRange(min=0, max=1000, min_open=True),
              help="Alert when current or projected usage reaches this percent of a limit.")
@click.option("--window", "window_days", default=28, show_default=True, type=click.IntRange(min=1),
              help="Days of history the growth fit uses.")
@click.option("--basis", type=click.Choice(["created", "period"]), default="created", show_default=True,
              help="Growth clock: when files arrived (created) or the data period they hold (period).")
@click.option("--disk/--no-disk", "include_disk", default=None,
              help="Include filesystem free space as a limit (default: only without --as-of).")
@click.option("--fail-on-alert", is_flag=True, help="Exit 1 when there is any alert.")
@click.option("--json", "as_json", is_flag=True, help="Print the StorageForecast as JSON.")
def capacity(root, horizon, as_of, threshold_pct, window_days, basis, include_disk, fail_on_alert, as_json):
    """Storage forecast from the catalog: usage, growth per day, usage at the horizon, full dates
    against quotas, MaxTotalMegabytes, tier MaxSizeGb and free disk space, and alerts.

    Example: mdcsql capacity ./data --horizon 90d --threshold-pct 80 --json
    """
    from mdcsql.lifecycle.capacity import forecast
    fc = forecast(root, horizon_days=horizon, as_of=as_of, threshold_pct=threshold_pct,
                  window_days=window_days, basis=basis, include_disk=include_disk)
    if as_json:
        _echo_json(fc.to_dict())
    else:
        _print(fc)
    if fail_on_alert and fc.alerts:
        sys.exit(EXIT_FAILURE)
