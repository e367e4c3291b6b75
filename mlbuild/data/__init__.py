"""Data: a table's schema and its checks, and raw data fetched from a URI or a series of
snapshots."""


from mlbuild.data import snapshots, sources
from mlbuild.data.schema import ColumnKind, SchemaConfig, check_schema, read_csv, validate
from mlbuild.data.tables import (
    TableView,
    open_table,
    read_frame,
    read_table,
    write_rows,
    write_table,
)

__all__ = [
    "ColumnKind",
    "SchemaConfig",
    "TableView",
    "check_schema",
    "open_table",
    "read_csv",
    "read_frame",
    "read_table",
    "snapshots",
    "sources",
    "validate",
    "write_rows",
    "write_table",
]
