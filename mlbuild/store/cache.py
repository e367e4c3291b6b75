"""LocalCache: verified store objects on local disk, addressed by sha256."""

from __future__ import annotations

import os
from pathlib import Path

from mlbuild.errors import StoreError
from mlbuild.store.base import Store


class LocalCache:
    """Verified store objects on local disk, addressed by sha256.

    An object enters the cache only after its digest was checked (or computed while it
    was written), so a cached file is handed out without hashing it again. Files are
    made read-only, because builds receive them directly as their inputs. With a folder
    store on the same file system, a cached file and the stored one are hard links to one
    file (``Store.put_link``, ``Store.get_link``): each result is on disk once.
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
                f"Cannot use the cache folder {str(self.root)!r}: {exc.strerror or exc}.",
                hint="set a writable folder with MLBUILD_CACHE or [mlbuild] cache in luigi.cfg.",
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
        store.get_link(key, dest, sha256)
        os.chmod(dest, 0o444)
        return dest
