"""mlbuild: continuous integration for machine-learning projects, as Luigi tasks."""

from mlbuild.core.task import BuildTask
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

# Registers the AWS Batch executor, which BuildTask consults through mlbuild.core.execution.
import mlbuild.batch  # noqa: F401  isort: skip

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
