"""The store contract: where every task's outputs, manifests and published models live.

A store is addressed by a root URI — a folder (the default, ``.mlbuild/store``) or, for
teams, object storage — and hands out keys relative to that root
(``TrainModel/<fingerprint>/model.txt``). Every backend keeps the same contract, which
tasks rely on and ``tests/unit/test_store.py`` checks:

* writes are atomic: a reader sees the whole object or nothing, never a partial one;
* ``put_*`` return the sha256 and size of what was written, hashed while it streamed;
* ``get_*`` verify what they read against an expected sha256 and raise
  :class:`~mlbuild.errors.StoreIntegrityError` (an ``IntegrityError``) on a mismatch,
  naming the object;
* every error a backend raises is a :class:`~mlbuild.errors.StoreError`: a missing key is
  an :class:`~mlbuild.errors.ObjectMissingError` (also a ``MissingError``);
* ``exists_many`` answers for many keys at once, so a backend where a request is
  expensive can answer with listings instead of one request per key.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import luigi

from mlbuild.errors import StoreIntegrityError

CHUNK = 1 << 20


@dataclass(frozen=True)
class StaleWrite:
    """A write that never finished (a killed process's temporary file or upload)."""

    key: str
    ident: str  # what the backend needs to discard it
    started: datetime


@dataclass(frozen=True)
class StoredObject:
    """Where a verified object lives: its key in the store and its sha256."""

    key: str
    sha256: str


@dataclass(frozen=True)
class ObjectInfo:
    """The digest and size of one stored object."""

    sha256: str
    size: int


@dataclass(frozen=True)
class ListedObject:
    """One object as a listing describes it, without reading it.

    ``etag`` and ``version_id`` are S3's (``None`` in a folder, and ``version_id`` also
    in a bucket that keeps no versions); ``last_modified`` is timezone-aware (UTC).
    """

    key: str
    size: int
    last_modified: datetime
    etag: str | None = None
    version_id: str | None = None


def copy_hashing(src, dst) -> ObjectInfo:
    """Copy file object ``src`` to ``dst`` and return the sha256 and size of the bytes."""
    digest = hashlib.sha256()
    size = 0
    while chunk := src.read(CHUNK):
        digest.update(chunk)
        dst.write(chunk)
        size += len(chunk)
    return ObjectInfo(digest.hexdigest(), size)


def file_digest(path: str | os.PathLike) -> ObjectInfo:
    """The sha256 and size of a local file, read once."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return ObjectInfo(digest.hexdigest(), size)


def check_digest(actual: ObjectInfo, expected_sha256: str | None, where: str) -> None:
    if expected_sha256 is not None and actual.sha256 != expected_sha256:
        raise StoreIntegrityError(
            f"{where} is corrupt: its sha256 is {actual.sha256} ({actual.size} bytes) but "
            f"{expected_sha256} was recorded. It was changed or truncated after it was written.",
            hint="delete the object so that the task that made it runs again.",
        )


class Store(ABC):
    """A root URI that hands out keys; see the module docstring for the contract."""

    uri: str

    def url(self, key: str) -> str:
        """The full URI of ``key``, for messages, manifests and models.lock."""
        return f"{self.uri.rstrip('/')}/{key}"

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    def exists_many(self, keys: Iterable[str]) -> set[str]:
        """The subset of ``keys`` that exist. Backends override this to batch requests."""
        return {key for key in keys if self.exists(key)}

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (recursively), sorted."""

    def list_objects(self, prefix: str) -> list[ListedObject]:
        """Every object whose key begins with ``prefix`` (a plain string prefix, not
        only a folder), with its size and time, sorted by key; one listing, no reads."""
        raise NotImplementedError(f"{type(self).__name__} does not list objects with metadata")

    def current_versions(self, objects: list[ListedObject]) -> list[ListedObject]:
        """``objects`` with the version id each has now, where the backend keeps versions.

        The default (a folder) keeps none and returns them as they are.
        """
        return objects

    @abstractmethod
    def put_file(self, path: str | os.PathLike, key: str) -> ObjectInfo: ...

    @abstractmethod
    def put_bytes(self, data: bytes, key: str) -> ObjectInfo: ...

    def put_link(self, path: str | os.PathLike, key: str) -> ObjectInfo:
        """Store the file at ``path``, which its writer will not change again.

        A folder store on the same file system links it instead of copying it, so a
        result is on disk once; other backends upload it (``put_file``).
        """
        return self.put_file(path, key)

    @abstractmethod
    def get_file(self, key: str, dest: str | os.PathLike, sha256: str | None = None) -> ObjectInfo:
        """Download ``key`` to ``dest`` (atomically), verifying it against ``sha256``."""

    def get_link(self, key: str, dest: str | os.PathLike, sha256: str | None = None) -> ObjectInfo:
        """Like ``get_file``, for a ``dest`` that nobody writes to (the read-only cache):
        a folder store links its file there after verifying it, instead of copying it."""
        return self.get_file(key, dest, sha256)

    @abstractmethod
    def get_bytes(self, key: str, sha256: str | None = None) -> bytes: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def stale_writes(self, older_than: timedelta) -> list[StaleWrite]:
        """Writes begun more than ``older_than`` ago that never finished."""

    @abstractmethod
    def discard(self, stale: StaleWrite) -> None: ...

    def digest(self, key: str) -> ObjectInfo:
        """The sha256 and size of a stored object, as it is now (never from a cache)."""
        with tempfile.TemporaryDirectory(prefix="mlbuild-digest-") as tmp:
            return self.get_file(key, Path(tmp, "object"))

    def target(self, key: str) -> StoreTarget:
        return StoreTarget(self, key)


class StoreTarget(luigi.Target):
    """A Luigi target for one key of a store."""

    def __init__(self, store: Store, key: str):
        self.store = store
        self.key = key

    def exists(self) -> bool:
        return self.store.exists(self.key)

    def __str__(self) -> str:
        return self.store.url(self.key)


