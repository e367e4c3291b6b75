"""Data: a table's schema and its checks, and raw data fetched from a URI."""


from mlbuild.data import sources
from mlbuild.data.schema import ColumnKind, SchemaConfig, check_schema, read_csv, validate

__all__ = [
    "ColumnKind",
    "SchemaConfig",
    "check_schema",
    "read_csv",
    "sources",
    "validate",
]
