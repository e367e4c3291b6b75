"""Releasing models: models.lock, the store's model registry, the history of releases
(from git) with rollback, and garbage collection."""


from mlbuild.release.history import ModelVersion, metrics_diff, model_history, rollback_model
from mlbuild.release.lockfile import LockFile, ModelEntry
from mlbuild.release.registry import publish_model, pull_models, released_model, verify_lock

__all__ = [
    "LockFile",
    "ModelEntry",
    "ModelVersion",
    "metrics_diff",
    "model_history",
    "publish_model",
    "pull_models",
    "released_model",
    "rollback_model",
    "verify_lock",
]
