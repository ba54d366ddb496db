"""`mdcsql export profiles [--root ROOT] [--show NAME] [--json]`: the export profiles on offer."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mdcsql.export.profiles import list_profiles, load_profile


@click.command("profiles")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path),
              help="Archive whose own profiles (ROOT/_catalog/export_profiles/) are listed too.")
@click.option("--show", "show", metavar="NAME", help="Print one profile with every effective value.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def profiles_cmd(root, show, as_json):
    """List export profiles (the design's four and your own), or --show one.

    Example: mdcsql export profiles --show PythonPandas
    """
    if show:
        profile = load_profile(show, root)
        doc = {"name": profile.name, "path": profile.path, **profile.to_dict()}
        click.echo(json.dumps(doc, indent=2))
        return
    infos = list_profiles(root)
    if as_json:
        click.echo(json.dumps([i.__dict__ for i in infos], indent=2))
        return
    width = max((len(i.name) for i in infos), default=4)
    for i in infos:
        extra = f"  {i.description}" if i.description else ""
        click.echo(f"{i.name:<{width}}  {i.format:<20} {i.origin:<8}{extra}".rstrip())
