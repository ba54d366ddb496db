"""mdcsql: a market-data archive whose metadata lives in an embedded DuckDB catalog."""

__version__ = "0.1.0"
