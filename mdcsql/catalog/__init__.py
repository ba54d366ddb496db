"""The catalog: one DuckDB file of metadata about the archive tree, with views over the tree.

Example::

    from mdcsql.catalog import Catalog
    with Catalog.open(root) as cat:            # read-write: creates / migrates the database
        cat.sync(layout)                       # reconcile the files table and views with the tree
    with Catalog.open(root, read_only=True) as cat:
        cat.query("SELECT symbol, count(*) FROM trades GROUP BY symbol").rows
"""

from mdcsql.catalog.catalog import CATALOG_FILE, Catalog, Result, SyncResult

__all__ = ["Catalog", "Result", "SyncResult", "CATALOG_FILE"]
