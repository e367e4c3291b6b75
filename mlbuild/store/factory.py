"""The store factory: the one place that knows both backends, a folder and S3."""

from __future__ import annotations

from pathlib import Path

from mlbuild.errors import ConfigError
from mlbuild.store.base import Store
from mlbuild.store.local import LocalStore

_STORES: dict[str, Store] = {}


def open_store(uri: str) -> Store:
    """The store for ``uri`` (one instance per URI and process, so caches are shared)."""
    if uri not in _STORES:
        if uri.startswith("s3://"):
            from mlbuild.store.s3 import S3Store  # boto3 only when an S3 store is used

            _STORES[uri] = S3Store(uri)
        elif "://" in uri and not uri.startswith("file://"):
            raise ConfigError(
                f"Store {uri!r} has an unknown scheme. Expected a folder path, file://path "
                "or s3://bucket/prefix."
            )
        else:
            _STORES[uri] = LocalStore(uri)
    return _STORES[uri]


def locate(uri: str, within: Store | None = None) -> tuple[Store, str]:
    """The store and key of an object's URI (as models.lock records them).

    A URI under ``within`` resolves to that store, so its caches are shared; any other
    resolves to its bucket (S3) or folder (local).
    """
    if within is not None and uri.startswith(within.uri.rstrip("/") + "/"):
        return within, uri[len(within.uri.rstrip("/")) + 1:]
    if uri.startswith("s3://"):
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return open_store(f"s3://{bucket}"), key
    path = Path(uri.removeprefix("file://"))
    return open_store(str(path.parent)), path.name
