"""mlbuild: continuous integration for machine-learning projects, as Luigi tasks.

The public API is this module's ``__all__``; the subpackages' own ``__all__`` name what
they offer to each other and to advanced use. The release tasks and the configuration
sections load on first use, so that a worker of plain BuildTasks never imports them.
"""

import importlib

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
from mlbuild.store import LocalCache, ObjectInfo, Store, StoredObject, open_store

# Registers the AWS Batch executor, which BuildTask consults through mlbuild.core.execution.
import mlbuild.batch  # noqa: F401  isort: skip

#: name -> the module that defines it, imported when the name is first used
_LAZY = {
    **dict.fromkeys(("AcceptanceTest", "BuildImage", "BuildTestImage", "BuildTrainingImage",
                     "CheckDrift", "EvaluateAccuracy",
                     "FullPipeline", "ImageConfig", "PublishConfig", "PublishModel", "PushImage",
                     "ReleaseConfig", "ReleaseTask", "BuildServiceImage",
                     "ServiceAcceptanceTest", "evaluate_released"), "mlbuild.tasks"),
    **dict.fromkeys(("Section", "load_config"), "mlbuild.config"),
    "LightGBMParams": "mlbuild.lightgbm_params",
    **dict.fromkeys(("SchemaConfig", "TableView", "open_table", "read_csv", "read_frame",
                     "read_table", "validate_schema", "write_rows", "write_table"),
                    "mlbuild.data"),
    **dict.fromkeys(("GatesConfig", "TiersConfig"), "mlbuild.accuracy"),
    "sources": "mlbuild.data",
}
_RENAMED = {"validate_schema": "validate"}


def __getattr__(name: str):
    if name not in _LAZY:
        # GateFailed and TestsFailed: the old names, importable with a DeprecationWarning.
        return _deprecated_alias(__name__, name)
    value = getattr(importlib.import_module(_LAZY[name]), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AcceptanceTest",
    "BatchError",
    "BuildError",
    "BuildImage",
    "BuildServiceImage",
    "BuildTask",
    "BuildTestImage",
    "BuildTrainingImage",
    "CheckDrift",
    "ConfigError",
    "DataError",
    "EvaluateAccuracy",
    "FullPipeline",
    "GateFailedError",
    "GatesConfig",
    "ImageConfig",
    "ImageError",
    "IntegrityError",
    "LightGBMParams",
    "LocalCache",
    "MissingError",
    "MlbuildError",
    "ObjectInfo",
    "ObjectMissingError",
    "PublishConfig",
    "PublishModel",
    "PushImage",
    "ReleaseConfig",
    "ReleaseTask",
    "SchemaConfig",
    "Section",
    "ServiceAcceptanceTest",
    "Store",
    "StoreError",
    "StoreIntegrityError",
    "StoredObject",
    "TableView",
    "TestsFailedError",
    "TiersConfig",
    "evaluate_released",
    "load_config",
    "open_store",
    "open_table",
    "read_csv",
    "read_frame",
    "read_table",
    "sources",
    "validate_schema",
    "write_rows",
    "write_table",
]
