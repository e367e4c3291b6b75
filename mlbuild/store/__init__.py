"""The stores: one contract (``Store``), a folder and S3 as backends, and a local cache."""

from mlbuild.store.base import (
    ObjectInfo,
    StaleWrite,
    Store,
    StoredObject,
    StoreTarget,
    check_digest,
    copy_hashing,
    file_digest,
)
from mlbuild.store.cache import LocalCache
from mlbuild.store.factory import locate, open_store
from mlbuild.store.local import LocalStore

__all__ = [
    "LocalCache",
    "LocalStore",
    "ObjectInfo",
    "StaleWrite",
    "Store",
    "StoreTarget",
    "StoredObject",
    "check_digest",
    "copy_hashing",
    "file_digest",
    "locate",
    "open_store",
]
