"""The store: where every task's outputs, manifests and published models live.

A store is addressed by a root URI — a folder (the default, ``.mlbuild/store``) or, for
teams, object storage — and hands out keys relative to that root
(``TrainModel/<fingerprint>/model.txt``). Every backend keeps the same contract, which
tasks rely on and ``tests/unit/test_store.py`` checks:

* writes are atomic: a reader sees the whole object or nothing, never a partial one;
* ``put_*`` return the sha256 and size of what was written, hashed while it streamed;
* ``get_*`` verify what they read against an expected sha256 and raise
  :class:`~mlbuild.errors.IntegrityError` on a mismatch, naming the object;
* ``exists_many`` answers for many keys at once, so a backend where a request is
  expensive can answer with listings instead of one request per key.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import luigi

from mlbuild.errors import ConfigError, IntegrityError, MissingError, StoreError

CHUNK = 1 << 20


@dataclass(frozen=True)
class StaleWrite:
    """A write that never finished (a killed process's temporary file or upload)."""

    key: str
    ident: str  # what the backend needs to discard it
    started: datetime


@dataclass(frozen=True)
class ObjectInfo:
    """The digest and size of one stored object."""

    sha256: str
    size: int


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
        raise IntegrityError(
            f"{where} is corrupt: its sha256 is {actual.sha256} ({actual.size} bytes) but "
            f"{expected_sha256} was recorded. It was changed or truncated after it was written. "
            "Hint: delete the object so that the task that made it runs again."
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

    @abstractmethod
    def put_file(self, path: str | os.PathLike, key: str) -> ObjectInfo: ...

    @abstractmethod
    def put_bytes(self, data: bytes, key: str) -> ObjectInfo: ...

    @abstractmethod
    def get_file(self, key: str, dest: str | os.PathLike, sha256: str | None = None) -> ObjectInfo:
        """Download ``key`` to ``dest`` (atomically), verifying it against ``sha256``."""

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


class LocalStore(Store):
    """A store in a local folder; writes go to a temporary name and are renamed into place."""

    def __init__(self, uri: str):
        self.uri = uri
        self.root = Path(uri.removeprefix("file://"))

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise StoreError(f"Store key {key!r} must be relative and must not contain '..'.")
        return self.root / key

    def _fail(self, action: str, key: str, exc: OSError) -> StoreError:
        return StoreError(
            f"Cannot {action} {self.url(key)}: {exc.strerror or exc}. "
            f"Hint: check that the store root {str(self.root)!r} is a writable folder, or set "
            "another one with MLBUILD_STORE or [mlbuild] store in luigi.cfg."
        )

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        keys = []
        for dirpath, _, files in os.walk(base):
            for name in files:
                if ".tmp-" not in name:
                    keys.append(Path(dirpath, name).relative_to(self.root).as_posix())
        return sorted(keys)

    def _write(self, key: str, fill) -> ObjectInfo:
        dest = self._path(key)
        tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex}")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as out:
                info = fill(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise self._fail("write", key, exc) from exc
        return info

    def put_file(self, path: str | os.PathLike, key: str) -> ObjectInfo:
        try:
            src = open(path, "rb")  # noqa: SIM115 - a `with` around _write would catch StoreError
        except OSError as exc:
            raise StoreError(f"Cannot read {path} to store it as {self.url(key)}: {exc}.") from exc
        with src:
            return self._write(key, lambda out: copy_hashing(src, out))

    def put_bytes(self, data: bytes, key: str) -> ObjectInfo:
        def fill(out):
            out.write(data)
            return ObjectInfo(hashlib.sha256(data).hexdigest(), len(data))

        return self._write(key, fill)

    def _open(self, key: str):
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError as exc:
            raise MissingError(
                f"{self.url(key)} does not exist. Hint: run the task that makes it again "
                "(`mlbuild status` shows what is missing)."
            ) from exc
        except OSError as exc:
            raise self._fail("read", key, exc) from exc

    def get_file(self, key: str, dest: str | os.PathLike, sha256: str | None = None) -> ObjectInfo:
        dest = Path(dest)
        tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex}")
        with self._open(key) as src:
            try:
                with open(tmp, "wb") as out:
                    info = copy_hashing(src, out)
                check_digest(info, sha256, self.url(key))
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
        return info

    def get_bytes(self, key: str, sha256: str | None = None) -> bytes:
        with self._open(key) as src:
            data = src.read()
        check_digest(ObjectInfo(hashlib.sha256(data).hexdigest(), len(data)), sha256, self.url(key))
        return data

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def stale_writes(self, older_than: timedelta) -> list[StaleWrite]:
        cutoff = datetime.now(UTC) - older_than
        stale = []
        for dirpath, _, files in os.walk(self.root):
            for name in files:
                path = Path(dirpath, name)
                if ".tmp-" in name:
                    started = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                    if started <= cutoff:
                        key = path.relative_to(self.root).as_posix()
                        stale.append(StaleWrite(key, str(path), started))
        return sorted(stale, key=lambda s: s.key)

    def discard(self, stale: StaleWrite) -> None:
        Path(stale.ident).unlink(missing_ok=True)

    def digest(self, key: str) -> ObjectInfo:
        with self._open(key) as src:
            digest = hashlib.file_digest(src, "sha256")
            return ObjectInfo(digest.hexdigest(), src.tell())


_STORES: dict[str, Store] = {}


def open_store(uri: str) -> Store:
    """The store for ``uri`` (one instance per URI and process, so caches are shared)."""
    if uri not in _STORES:
        if uri.startswith("s3://"):
            from mlbuild.s3 import S3Store
            from mlbuild.settings import s3_options

            _STORES[uri] = S3Store(uri, s3_options())
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


class LocalCache:
    """Verified store objects on local disk, addressed by sha256.

    An object enters the cache only after its digest was checked (or computed while it
    was written), so a cached file is handed out without hashing it again. Files are
    made read-only, because builds receive them directly as their inputs.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256[2:]

    def tmpdir(self) -> Path:
        """A folder on the cache's file system, so finished files can be renamed in."""
        tmp = self.root / "tmp"
        try:
            tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"Cannot use the cache folder {str(self.root)!r}: {exc.strerror or exc}. Hint: "
                "set a writable folder with MLBUILD_CACHE or [mlbuild] cache in luigi.cfg."
            ) from exc
        return tmp

    def adopt(self, path: str | os.PathLike, sha256: str) -> Path:
        """Move a file whose digest is known into the cache; return its cached path."""
        dest = self.path(sha256)
        if dest.exists():
            os.unlink(path)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(path, 0o444)
            os.replace(path, dest)
        return dest

    def fetch(self, store: Store, key: str, sha256: str) -> Path:
        """The cached path of ``key``, downloading and verifying it only if not cached."""
        dest = self.path(sha256)
        if dest.exists():
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        store.get_file(key, dest, sha256)
        os.chmod(dest, 0o444)
        return dest
