"""Load the SQL files shipped in the package data folder ``mdcsql/sql/``.

All DDL, views and queries live as ``.sql`` files named after what they define
(``migrations/NNN_name.sql``, ``views/<view>.sql``, ``queries/<name>.sql``); Python code asks for
them by relative path. The top-level ``sql/`` folder of the repository is a symlink to this one.

Example: ``load_sql("queries/seal_stats.sql")``.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

__all__ = ["load_sql", "list_sql"]

_PACKAGE = "mdcsql"
_DIR = "sql"


def _resource(relpath: str):
    parts = [p for p in relpath.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts) or "\\" in relpath:
        raise ValueError(f"invalid SQL resource path {relpath!r}: expected e.g. 'queries/name.sql'")
    node = resources.files(_PACKAGE).joinpath(_DIR)
    for p in parts:
        node = node.joinpath(p)
    return node


@lru_cache(maxsize=256)
def load_sql(relpath: str) -> str:
    """Text of ``mdcsql/sql/<relpath>``.

    :param relpath: POSIX path below ``mdcsql/sql/``, e.g. ``"views/trades.sql"``.
    :raises FileNotFoundError: no such SQL file.
    """
    node = _resource(relpath)
    if not node.is_file():
        raise FileNotFoundError(f"no SQL file mdcsql/sql/{relpath}")
    return node.read_text(encoding="utf-8")


def list_sql(folder: str) -> list[str]:
    """Sorted relative paths of the ``.sql`` files directly inside ``mdcsql/sql/<folder>``.

    Example: ``list_sql("migrations") == ["migrations/001_core.sql", ...]``.
    """
    node = _resource(folder)
    if not node.is_dir():
        return []
    return sorted(f"{folder.strip('/')}/{child.name}" for child in node.iterdir()
                  if child.name.endswith(".sql") and child.is_file())
