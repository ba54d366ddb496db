"""Loader code written beside an export: Python (pandas), R, requirements and a sample notebook.

The PythonPandas profile's `post_export` keys choose what is written (`generate_loader_script`:
load.py and load.R, `generate_requirements`: requirements.txt, `include_sample_notebook`:
explore.ipynb). The templates live in `exports/templates/python_pandas/`; what varies per export
is the list of datasets (one per event type under `data/`, found on disk) with their format and
their time and decimal columns, so every loader gives exact types whatever the file format.

    write_loaders(export_dir)                    # after the data files are complete
    loader_code(export_dir)                      # {'python': ..., 'r': ...} for the metadata
"""

from __future__ import annotations

import json
import pprint
import re
from pathlib import Path

from mdcsql.errors import MdcsqlError

__all__ = ["TEMPLATE_DIR", "find_datasets", "write_loaders", "loader_code", "finish_loaders",
           "wants_loaders"]

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "exports" / "templates" / "python_pandas"
_SUFFIXES = (("parquet", ".parquet"), ("csv.gz", ".csv.gz"), ("csv", ".csv"),
             ("jsonl.gz", ".jsonl.gz"), ("jsonl", ".jsonl"), ("arrow", ".arrow"),
             ("feather", ".feather"))
#: decimal columns of transform outputs (bars), beside those of the event views
_BAR_DECIMALS = ("open", "high", "low", "close", "volume", "bid_open", "bid_high", "bid_low",
                 "bid_close", "last_bid_size", "ask_open", "ask_high", "ask_low", "ask_close",
                 "last_ask_size")


def _kinds(view: str) -> tuple[list[str], list[str]]:
    from mdcsql.export.request import TYPE_VIEWS
    from mdcsql.export.selection import column_kinds
    by_view = {v: t for t, v in TYPE_VIEWS.items()}
    kinds = column_kinds(by_view[view]) if view in by_view else {}
    times = [c for c, k in kinds.items() if k == "time"] or ["ts", "recv_ts"]
    decimals = [c for c, k in kinds.items() if k == "decimal"]
    return times, decimals + [c for c in _BAR_DECIMALS if c not in decimals]


def find_datasets(export_dir: str | Path, data: str = "data") -> dict[str, dict]:
    """name -> {path, format, time, decimal} of each dataset under `export_dir/data`."""
    base = Path(export_dir) / data
    if not base.is_dir():
        raise MdcsqlError(f"{export_dir}: no {data}/ folder to write loaders for")
    found: dict[str, dict] = {}
    for entry in sorted(base.iterdir()):
        name = fmt = None
        if entry.is_dir():
            if (entry / "_delta_log").is_dir():
                name, fmt = entry.name, "delta"
            elif any(entry.rglob("*.parquet")):
                name, fmt = entry.name, "parquet"
        else:
            for kind, suffix in _SUFFIXES:
                if entry.name.endswith(suffix):
                    name, fmt = entry.name[: -len(suffix)], kind
                    break
        if name and name not in found:
            times, decimals = _kinds(name)
            found[name] = {"path": f"{data}/{entry.name}", "format": fmt, "time": times,
                           "decimal": decimals}
    if not found:
        raise MdcsqlError(f"{base}: no dataset (Parquet, CSV, JSON Lines, Arrow, Feather or Delta)")
    return found


def _r_string(text: str) -> str:
    return json.dumps(text)  # a JSON string of ASCII-escaped text is a valid R string literal


def _r_vector(items: list[str]) -> str:
    return "c(" + ", ".join(_r_string(i) for i in items) + ")" if items else "character(0)"


def _r_datasets(found: dict[str, dict]) -> str:
    entries = []
    for name, info in found.items():
        key = name if re.fullmatch(r"[A-Za-z][A-Za-z0-9_.]*", name) else f"`{name}`"
        entries.append(f"  {key} = list(path = {_r_string(info['path'])}, format = "
                       f"{_r_string(info['format'])},\n    time = {_r_vector(info['time'])},\n"
                       f"    decimal = {_r_vector(info['decimal'])})")
    return "list(\n" + ",\n".join(entries) + "\n)"


def _template(name: str) -> str:
    path = TEMPLATE_DIR / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MdcsqlError(f"loader template {path} unreadable: {exc}") from None


def write_loaders(export_dir: str | Path, *, loader_script: bool = True,
                  requirements: bool = True, notebook: bool = True) -> list[Path]:
    """Write load.py + load.R, requirements.txt and explore.ipynb into `export_dir`."""
    export_dir = Path(export_dir)
    found = find_datasets(export_dir)
    written = []
    if loader_script:
        text = _template("load.py").replace("{{DATASETS}}", pprint.pformat(found, sort_dicts=True))
        written.append(_write(export_dir / "load.py", text))
        written.append(_write(export_dir / "load.R",
                              _template("load.R").replace("{{DATASETS_R}}", _r_datasets(found))))
    if requirements:
        text = _template("requirements.txt")
        if any(i["format"] == "delta" for i in found.values()):
            text += "deltalake>=1.0\n"
        written.append(_write(export_dir / "requirements.txt", text))
    if notebook:
        written.append(_write(export_dir / "explore.ipynb", _template("explore.ipynb")))
    return written


def _write(path: Path, text: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def loader_code(export_dir: str | Path) -> dict[str, str]:
    """Short loader snippets for the export metadata's `loader_code` (design's shape)."""
    found = find_datasets(export_dir)
    name = "trades" if "trades" in found else next(iter(found))
    return {"python": f"from load import load\ndf = load({name!r})",
            "r": f"source('load.R')\ndf <- load_dataset({_r_string(name)})"}


def wants_loaders(request) -> bool:
    """Does the request (its profile's post_export, in options) ask for any loader file?"""
    post = (getattr(request, "options", None) or {}).get("post_export") or {}
    return any(bool(v) for v in post.values())


def finish_loaders(ctx, sels=None) -> list[Path]:
    """The export core's hook, after the data is written: the files the profile's post_export
    asks for (request.options["post_export"], from mdcsql.export.profiles.PostExport), and the
    loader snippets of the metadata."""
    post = (ctx.request.options or {}).get("post_export") or {}
    files = write_loaders(ctx.out_dir,
                          loader_script=bool(post.get("generate_loader_script")),
                          requirements=bool(post.get("generate_requirements")),
                          notebook=bool(post.get("include_sample_notebook")))
    if post.get("generate_loader_script"):
        ctx.loader_code.update(loader_code(ctx.out_dir))
    return files
