"""Releasing models: models.lock, the store's model registry, and garbage collection."""


from mlbuild.release.lockfile import LockFile, ModelEntry
from mlbuild.release.registry import publish_model, pull_models, released_model, verify_lock

__all__ = [
    "LockFile",
    "ModelEntry",
    "publish_model",
    "pull_models",
    "released_model",
    "verify_lock",
]
