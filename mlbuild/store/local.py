"""LocalStore: a store in a folder, with atomic writes by rename."""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mlbuild.errors import ObjectMissingError, StoreError
from mlbuild.store.base import (
    ListedObject,
    ObjectInfo,
    StaleWrite,
    Store,
    check_digest,
    copy_hashing,
)


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
            f"Cannot {action} {self.url(key)}: {exc.strerror or exc}.",
            hint=f"check that the store root {str(self.root)!r} is a writable folder, or set "
                 "another one with MLBUILD_STORE or [mlbuild] store in luigi.cfg.",
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

    def list_objects(self, prefix: str) -> list[ListedObject]:
        folder = prefix.rpartition("/")[0]
        base = self._path(folder) if folder else self.root
        found = []
        for dirpath, _, files in os.walk(base):
            for name in files:
                path = Path(dirpath, name)
                key = path.relative_to(self.root).as_posix()
                if ".tmp-" in name or not key.startswith(prefix):
                    continue
                try:
                    st = path.stat()
                except FileNotFoundError:  # removed while we walked
                    continue
                found.append(ListedObject(
                    key, st.st_size, datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC)))
        return sorted(found, key=lambda o: o.key)

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

    def put_link(self, path: str | os.PathLike, key: str) -> ObjectInfo:
        """A hard link to ``path`` under ``key``: the result is on disk once, shared with
        the cache. Across file systems (or where links fail) the file is copied."""
        try:
            with open(path, "rb") as src:
                info = ObjectInfo(hashlib.file_digest(src, "sha256").hexdigest(), src.tell())
        except OSError as exc:
            raise StoreError(f"Cannot read {path} to store it as {self.url(key)}: {exc}.") from exc
        if not self._link(Path(path), self._path(key)):
            return self.put_file(path, key)
        return info

    def get_link(self, key: str, dest: str | os.PathLike, sha256: str | None = None) -> ObjectInfo:
        """Verify the stored file, then hard-link it at ``dest`` (copy it if links fail)."""
        with self._open(key) as src:
            info = ObjectInfo(hashlib.file_digest(src, "sha256").hexdigest(), src.tell())
        check_digest(info, sha256, self.url(key))
        if not self._link(self._path(key), Path(dest)):
            return self.get_file(key, dest, sha256)
        return info

    @staticmethod
    def _link(src: Path, dest: Path) -> bool:
        """Link ``src`` at ``dest`` atomically (a temporary name, then a rename)."""
        tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex}")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, tmp)
            os.replace(tmp, dest)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            return False
        return True

    def put_bytes(self, data: bytes, key: str) -> ObjectInfo:
        def fill(out):
            out.write(data)
            return ObjectInfo(hashlib.sha256(data).hexdigest(), len(data))

        return self._write(key, fill)

    def _open(self, key: str):
        try:
            return open(self._path(key), "rb")
        except FileNotFoundError as exc:
            raise ObjectMissingError(
                f"{self.url(key)} does not exist.",
                hint="run the task that makes it again (`mlbuild status` shows what is missing).",
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


