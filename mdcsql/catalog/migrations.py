"""Versioned schema migrations: ``mdcsql/sql/migrations/NNN_name.sql``, applied in order.

Each pending file runs inside its own transaction together with its row in ``schema_version``,
so a crash leaves the catalog either before or after a migration, never half-way. Applying
twice changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from mdcsql.errors import MdcsqlError
from mdcsql.sql import list_sql, load_sql

if TYPE_CHECKING:
    from mdcsql.catalog.catalog import Catalog

__all__ = ["Migration", "available_migrations", "apply_migrations", "applied_versions"]

_NAME = re.compile(r"migrations/(?P<version>\d{3,})_(?P<name>[a-z0-9_]+)\.sql")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    relpath: str

    @property
    def sql(self) -> str:
        return load_sql(self.relpath)


def available_migrations() -> list[Migration]:
    """All migration files shipped with the package, by ascending version.

    :raises MdcsqlError: a file name that is not ``NNN_name.sql`` or a duplicated version.
    """
    found: dict[int, Migration] = {}
    for rel in list_sql("migrations"):
        m = _NAME.fullmatch(rel)
        if m is None:
            raise MdcsqlError(f"migration file mdcsql/sql/{rel} is not named NNN_name.sql")
        version = int(m["version"])
        if version in found:
            raise MdcsqlError(f"two migrations share version {version}: "
                              f"{found[version].relpath} and {rel}")
        found[version] = Migration(version, m["name"], rel)
    return [found[v] for v in sorted(found)]


def applied_versions(catalog: "Catalog") -> set[int]:
    """Versions recorded in ``schema_version`` (creating the ledger if needed)."""
    catalog.execute(load_sql("queries/catalog_schema_version_init.sql"))
    return {row[0] for row in catalog.execute(load_sql("queries/catalog_schema_version_list.sql")).rows}


def apply_migrations(catalog: "Catalog") -> list[Migration]:
    """Apply every pending migration in order; return those applied (empty when up to date).

    :raises MdcsqlError: the catalog records a version this mdcsql does not know (it was written
        by a newer release).
    """
    available = available_migrations()
    done = applied_versions(catalog)
    known = {m.version for m in available}
    unknown = sorted(done - known)
    if unknown:
        raise MdcsqlError(f"catalog {catalog.path} has schema version(s) {unknown} that this mdcsql "
                          "does not know; upgrade mdcsql, or rebuild the catalog from the tree "
                          "(delete catalog.duckdb, then: mdcsql catalog rebuild)")
    applied = []
    for migration in available:
        if migration.version in done:
            continue
        with catalog.transaction():
            catalog.execute(migration.sql)
            catalog.execute(load_sql("queries/catalog_schema_version_record.sql"),
                            {"version": migration.version, "name": migration.name,
                             "applied_at": datetime.now(timezone.utc).replace(tzinfo=None)})
        applied.append(migration)
    return applied
