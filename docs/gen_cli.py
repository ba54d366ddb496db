"""Regenerate docs/cli.md from the commands' own --help (run: .venv/bin/python docs/gen_cli.py).

tests/test_docs.py fails when docs/cli.md differs from what this renders, so the reference
cannot drift from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mdcsql.cli import cli  # noqa: E402

HEADER = """# Command reference

Generated from `--help` by `docs/gen_cli.py`; `tests/test_docs.py` checks it is current.

Exit codes: `0` success; `1` a handled failure (bad input, integrity problem, archive locked —
one line on stderr starting with `error:`); `2` a usage error (click) or an unexpected error (a bug);
`130` interrupted.
"""


def _walk(cmd: click.Command, path: list[str]):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.commands):
            yield from _walk(cmd.commands[name], path + [name])


def render() -> str:
    parts = [HEADER]
    for path, cmd in _walk(cli, ["mdcsql"]):
        parent = None
        for i, name in enumerate(path):
            parent = click.Context(cmd if i == len(path) - 1 else cli, info_name=name, parent=parent,
                                   terminal_width=100, max_content_width=100)
        parts.append(f"\n## {' '.join(path)}\n\n```text\n{cmd.get_help(parent).rstrip()}\n```\n")
    return "".join(parts)


if __name__ == "__main__":
    (Path(__file__).resolve().parent / "cli.md").write_text(render())
    print("wrote docs/cli.md")
