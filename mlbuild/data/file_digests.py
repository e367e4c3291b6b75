"""The sha256 of a local data file, kept while the file's stat says it is unchanged.

A ``file://`` source enters the fingerprint by its sha256, so without this every no-op
run would read the whole file (about 3 s for 5 GB). The digest is kept in the cache
folder under a key of the file's path, size, inode, mtime and ctime: any write changes one
of them. A file written in the last SETTLE seconds is hashed but not remembered, since a
write within the file system's timestamp granularity could leave its stat as it was.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path

from mlbuild.settings import cache_dir
from mlbuild.store import file_digest

SETTLE = 2.0
FOLDER = "file-digests"


def file_sha256(path: str | os.PathLike) -> str:
    path = Path(path).resolve()
    st = path.stat()
    identity = f"{path}|{st.st_size}|{st.st_ino}|{st.st_mtime_ns}|{st.st_ctime_ns}"
    entry = Path(cache_dir(), FOLDER, hashlib.sha256(identity.encode()).hexdigest())
    try:
        return entry.read_text()
    except OSError:
        pass
    digest = file_digest(path).sha256
    if max(st.st_mtime, st.st_ctime) < time.time() - SETTLE:
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            tmp = entry.with_name(f".{entry.name}.tmp-{uuid.uuid4().hex}")
            tmp.write_text(digest)
            os.replace(tmp, entry)
        except OSError:
            pass  # only a shortcut: the next run hashes the file again
    return digest
