"""mlbuild: continuous integration for machine-learning projects, as Luigi tasks."""

from mlbuild.core.task import BuildTask
from mlbuild.errors import (
    BatchError,
    BuildError,
    ConfigError,
    DataError,
    GateFailedError,
    ImageError,
    IntegrityError,
    MissingError,
    MlbuildError,
    ObjectMissingError,
    StoreError,
    StoreIntegrityError,
    TestsFailedError,
)
from mlbuild.errors import deprecated_alias as _deprecated_alias
from mlbuild.store import LocalCache, ObjectInfo, Store, open_store

# Registers the AWS Batch executor, which BuildTask consults through mlbuild.core.execution.
import mlbuild.batch  # noqa: F401  isort: skip

__all__ = [
    "BatchError",
    "BuildError",
    "BuildTask",
    "ConfigError",
    "DataError",
    "GateFailedError",
    "ImageError",
    "IntegrityError",
    "LocalCache",
    "MissingError",
    "MlbuildError",
    "ObjectInfo",
    "ObjectMissingError",
    "Store",
    "StoreError",
    "StoreIntegrityError",
    "TestsFailedError",
    "open_store",
]


def __getattr__(name: str):
    # GateFailed and TestsFailed: the old names, importable with a DeprecationWarning.
    return _deprecated_alias(__name__, name)
