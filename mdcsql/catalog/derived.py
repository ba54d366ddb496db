"""Catalog tables mirrored from files other than the data files themselves.

Invariant 1 says the catalog is derived from the tree: besides ``files`` (the indexer) and
``sessions`` (``sessions/*/manifest.json``), the lifecycle keeps state in files of its own —
lineage in manifests, deletions and refusals in append-only logs, legal holds in hold notices,
backups in their own manifests. Each module listed here mirrors one of them into its tables and
exposes ``refresh(catalog, *, forget: bool) -> None``: ``forget`` (a rebuild) re-reads everything;
otherwise only what changed. ``Catalog.rebuild`` and every full ``Catalog.sync`` call them in order.
"""

from __future__ import annotations

import importlib

__all__ = ["DERIVED_MODULES", "refresh_derived"]

#: modules with ``refresh(catalog, *, forget)``, in the order they run
DERIVED_MODULES: tuple[str, ...] = (
    "mdcsql.lifecycle.holds",
    "mdcsql.lifecycle.removal",
    "mdcsql.lifecycle.guard",
    "mdcsql.lifecycle.archive_catalog",
    "mdcsql.lifecycle.backup",
    "mdcsql.lifecycle.lineage",
    "mdcsql.lifecycle.quota_mirror",
)


def refresh_derived(catalog, *, forget: bool) -> None:
    """Run every derived table's refresh (the caller holds the catalog's write lock)."""
    for name in DERIVED_MODULES:
        importlib.import_module(name).refresh(catalog, forget=forget)
