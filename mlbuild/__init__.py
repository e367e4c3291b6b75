"""mlbuild: continuous integration for machine-learning projects, as Luigi tasks."""

from mlbuild.errors import (
    BatchError,
    BuildError,
    ConfigError,
    DataError,
    GateFailed,
    ImageError,
    IntegrityError,
    MissingError,
    MlbuildError,
    StoreError,
    TestsFailed,
)
from mlbuild.store import LocalCache, ObjectInfo, Store, open_store
from mlbuild.task import BuildTask

__all__ = [
    "BatchError",
    "BuildError",
    "BuildTask",
    "ConfigError",
    "DataError",
    "GateFailed",
    "ImageError",
    "IntegrityError",
    "LocalCache",
    "MissingError",
    "MlbuildError",
    "ObjectInfo",
    "Store",
    "StoreError",
    "TestsFailed",
    "open_store",
]
