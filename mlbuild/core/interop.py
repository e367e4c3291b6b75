"""Plain Luigi tasks beside BuildTasks: their targets as fingerprinted, verified inputs, and
BuildTask outputs as plain Luigi targets.

Upstream, a ``BuildTask`` may require a plain Luigi task (typically a ``luigi.ExternalTask``
for raw data). Its output targets become the task's input files:

* ``output()`` a single target  -> ``inputs[name]["output"]``;
* ``output()`` a dict of targets -> ``inputs[name][key]`` under the dict's own keys;
* ``output()`` a list or tuple   -> ``inputs[name]["0"]``, ``["1"]``, ... (positions).

Only ``luigi.LocalTarget`` and ``luigi.contrib.s3.S3Target`` (and their subclasses) naming
one file or object are supported: mlbuild must be able to say what their content is.
The content identity of each target enters the fingerprint (under ``upstream``):

* a local file: ``sha256:<hex>`` of its bytes. Hashing a large file on every no-op run
  would cost more than the run, so digests are remembered by the file's
  ``(path, size, mtime_ns, ctime_ns, inode)``, as git's index does: in this process, and in
  ``<cache>/file-digests.json`` (a few thousand entries at most, written atomically, merged
  with what other processes wrote). Any change of that stat signature hashes the file
  again (a touched file is re-hashed and keeps its digest if its bytes did not change).
  A file changed within ``RACY_SECONDS`` of being hashed is not remembered, because
  file-system timestamps are coarse and a same-size rewrite in the same tick would look
  unchanged. The memo is a hint checked against ``stat`` each time; losing it (a race
  between processes, a deleted cache) only costs hashing again.
* an S3 object: its ETag and version id (``etag:<etag>;version:<id or ->``), from one HEAD
  request, never a download. The bucket may lie outside the store; it is reached with
  mlbuild's S3 settings (``MLBUILD_S3_ENDPOINT_URL``, ``[mlbuild] s3_endpoint_url`` or
  ``AWS_ENDPOINT_URL``), not with the target's own client.

When the task runs, every target is handed to ``build()`` as a verified, read-only file of
the local cache: a local file is copied in while its sha256 is computed; an S3 object is
downloaded on the condition that it still has the fingerprinted ETag/version, its sha256
computed while it streams. Bytes that differ from what was fingerprinted stop the build
with an :class:`~mlbuild.errors.IntegrityError`; content already in the cache is not
copied again.

Downstream, :func:`luigi_target` gives a plain Luigi task standard targets for a
BuildTask's named outputs: ``LocalTarget`` on a folder store, ``S3Target`` (with an
``S3Client`` on the store's endpoint and settings) on an S3 store.

``luigi.contrib.s3`` (and with it boto3) is never imported here unless an S3 target or an
S3 store is actually involved: the no-op check of a pipeline without them stays cheap.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import luigi

from mlbuild.errors import BuildError, DataError, IntegrityError, MissingError
from mlbuild.settings import cache_dir
from mlbuild.store import LocalCache, LocalStore, Store, copy_hashing, file_digest, locate

#: name of the single target of a plain task whose ``output()`` is one target
SINGLE = "output"
#: the memo of local file digests, in the cache folder
MEMO_FILE = "file-digests.json"
#: entries the memo keeps (most recently recorded first); older ones are hashed again
MEMO_ENTRIES = 1024
#: a file changed this recently (seconds) is hashed again next time, see the docstring
RACY_SECONDS = 2.0

SUPPORTED = "luigi.LocalTarget or luigi.contrib.s3.S3Target (or a subclass) naming one file"


# ----------------------------------------------------------------------------- targets


def _s3_module():
    """``luigi.contrib.s3`` if something already imported it: no S3Target exists otherwise."""
    return sys.modules.get("luigi.contrib.s3")


def targets(task: luigi.Task) -> dict[str, luigi.Target]:
    """The output targets of a plain Luigi task, by the names ``build()`` receives them under.

    Raises BuildError for a shape or a target type that mlbuild cannot fingerprint.
    """
    output = task.output()
    if isinstance(output, luigi.Target):
        named = {SINGLE: output}
    elif isinstance(output, Mapping):
        named = {str(key): value for key, value in output.items()}
    elif isinstance(output, list | tuple):
        named = {str(i): value for i, value in enumerate(output)}
    else:
        named = None
    if not named or not all(isinstance(t, luigi.Target) for t in named.values()):
        raise BuildError(
            f"{task} is required by a BuildTask, so its output() must be a target, "
            f"a dict of targets or a list of targets ({SUPPORTED}); got {output!r}.",
            hint="for a task that must only run first, without its outputs counting as "
                 "inputs, return it from the BuildTask's after() instead of requires().")
    for key, target in named.items():
        _kind(task, key, target)
    return named


def _kind(task: luigi.Task, key: str, target: luigi.Target) -> str:
    s3 = _s3_module()
    if s3 is not None and isinstance(target, s3.S3Target):
        if isinstance(target, s3.S3FlagTarget):
            raise BuildError(
                f"Output {key!r} of {task} is an S3FlagTarget ({target.path}), a folder "
                f"of objects; a BuildTask can take only {SUPPORTED}.",
                hint="require a task whose output() names each object as an S3Target.")
        return "s3"
    if isinstance(target, luigi.LocalTarget):
        if os.path.isdir(target.path):
            raise BuildError(
                f"Output {key!r} of {task} is the folder {target.path}; a BuildTask "
                f"can take only {SUPPORTED}.", hint="name each file as its own LocalTarget.")
        return "local"
    raise BuildError(
        f"Output {key!r} of {task} is a {type(target).__module__}."
        f"{type(target).__qualname__} ({target}); a BuildTask can only fingerprint "
        f"{SUPPORTED}.", hint="make the data available as a local file or an S3 object, or "
                          "wrap its producer in a BuildTask.")


def _s3_location(target) -> tuple[Store, str]:
    """The bucket's store and the key (``s3a://`` and ``s3n://``, Hadoop's names, too)."""
    return locate("s3://" + target.path.partition("://")[2])


def _not_made(task: luigi.Task, key: str, where: str) -> MissingError:
    exc = MissingError(
        f"Output {key!r} of {task}, {where}, does not exist, and a BuildTask "
        "requires it.", hint=f"make it (run {task.task_family}, or create the data it "
                             "names), then run again.")
    exc.upstream_not_made = True  # BuildTask.complete(): not complete yet, let Luigi run it
    return exc


def _unreadable(task: luigi.Task, key: str, path: Path, exc: OSError) -> DataError:
    return DataError(
        f"Cannot read {path.absolute()} (output {key!r} of {task}): "
        f"{exc.strerror or exc}.", hint="check that the file is readable by this user.")


def not_made(exc: BaseException) -> bool:
    """Whether ``exc`` says that a plain upstream task has not made its output yet."""
    return getattr(exc, "upstream_not_made", False)


# ----------------------------------------------------------------------------- identity


def identity(task: luigi.Task) -> dict[str, str]:
    """The content identity of each output of a plain Luigi task (what the fingerprint
    covers): ``sha256:<hex>`` for a local file, ``etag:...;version:...`` for an S3 object."""
    found = {}
    for key, target in targets(task).items():
        if _kind(task, key, target) == "s3":
            store, object_key = _s3_location(target)
            try:
                found[key] = store.version(object_key)
            except MissingError as exc:
                raise _not_made(task, key, target.path) from exc
        else:
            try:
                found[key] = f"sha256:{_memo().sha256(Path(target.path))}"
            except FileNotFoundError as exc:
                raise _not_made(task, key, os.path.abspath(target.path)) from exc
            except OSError as exc:
                raise _unreadable(task, key, Path(target.path), exc) from exc
    return found


# ----------------------------------------------------------------------------- fetching


def fetch(task: luigi.Task, fingerprinted: Mapping[str, str], cache: LocalCache) -> dict[str, Path]:
    """The outputs of a plain Luigi task as verified, read-only files of ``cache``.

    ``fingerprinted`` is what :func:`identity` returned when the fingerprint was computed;
    bytes that are not those raise IntegrityError.
    """
    memo = _memo(cache.root)
    paths = {}
    for key, target in targets(task).items():
        expected = fingerprinted.get(key)
        if expected is None:
            raise IntegrityError(
                f"Output {key!r} of {task} was not part of the fingerprint "
                f"(it had {sorted(fingerprinted)}).",
                hint="its output() must not change while a pipeline runs; run again.")
        if _kind(task, key, target) == "s3":
            paths[key] = _fetch_s3(task, key, target, expected, cache, memo)
        else:
            paths[key] = _fetch_local(task, key, Path(target.path), expected, cache)
    return paths


def _fetch_local(task, key: str, path: Path, expected: str, cache: LocalCache) -> Path:
    sha256 = expected.removeprefix("sha256:")
    cached = cache.path(sha256)
    if cached.exists():
        return cached
    tmp = cache.tmpdir() / f"{sha256}.tmp-{uuid.uuid4().hex}"
    try:
        with open(path, "rb") as src, open(tmp, "wb") as out:
            info = copy_hashing(src, out)
    except FileNotFoundError as exc:
        tmp.unlink(missing_ok=True)
        raise _not_made(task, key, str(path.absolute())) from exc
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _unreadable(task, key, path, exc) from exc
    if info.sha256 != sha256:
        tmp.unlink(missing_ok=True)
        raise IntegrityError(
            f"{path.absolute()} (output {key!r} of {task}) changed after it was "
            f"fingerprinted: its sha256 was {sha256}, it is now {info.sha256}.",
            hint="do not change input files while a pipeline runs; run again to build from "
                 "the new bytes.")
    return cache.adopt(tmp, sha256)


def _fetch_s3(task, key: str, target, expected: str, cache: LocalCache, memo: _Memo) -> Path:
    store, object_key = _s3_location(target)
    url = store.url(object_key)
    known = memo.object_sha256(url, expected)
    if known is not None and cache.path(known).exists():
        return cache.path(known)
    tmp = cache.tmpdir() / f"object.tmp-{uuid.uuid4().hex}"
    try:
        info = store.get_version(object_key, tmp, expected)
    except MissingError as exc:
        raise _not_made(task, key, url) from exc
    memo.record_object(url, expected, info.sha256)
    return cache.adopt(tmp, info.sha256)


# ----------------------------------------------------------------------------- the memo


class _Memo:
    """Digests of local files by stat signature, and of S3 versions; see the module docstring."""

    def __init__(self, path: Path):
        self.path = path
        self.files: dict[str, list[Any]] = {}  # path -> [size, mtime_ns, ctime_ns, ino, sha256]
        self.objects: dict[str, list[str]] = {}  # url -> [version, sha256]
        self._load()

    def _load(self) -> None:
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
            data = json.loads(self.path.read_text())
            self.files = {k: v for k, v in data["files"].items() if len(v) == 5}
            self.objects = {k: v for k, v in data["objects"].items() if len(v) == 2}

    def sha256(self, path: Path) -> str:
        """The sha256 of a local file, hashed only when its stat signature is new."""
        name = str(path.absolute())
        st = os.stat(name)
        signature = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        entry = self.files.get(name)
        if entry is not None and entry[:4] == signature:
            return entry[4]
        sha256 = file_digest(name).sha256
        after = os.stat(name)
        changed = [after.st_size, after.st_mtime_ns, after.st_ctime_ns, after.st_ino]
        fresh = time.time_ns() - max(after.st_mtime_ns, after.st_ctime_ns) < RACY_SECONDS * 1e9
        if changed == signature and not fresh:
            self.files.pop(name, None)
            self.files[name] = [*signature, sha256]
            self._save()
        return sha256

    def object_sha256(self, url: str, version: str) -> str | None:
        entry = self.objects.get(url)
        return entry[1] if entry is not None and entry[0] == version else None

    def record_object(self, url: str, version: str, sha256: str) -> None:
        self.objects.pop(url, None)
        self.objects[url] = [version, sha256]
        self._save()

    def _save(self) -> None:
        """Merge with what other processes recorded, keep the newest entries, replace atomically."""
        ours_files, ours_objects = self.files, self.objects
        self._load()
        self.files = _newest({**self.files, **ours_files})
        self.objects = _newest({**self.objects, **ours_objects})
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"files": self.files, "objects": self.objects}))
            os.replace(tmp, self.path)
        except OSError:  # a read-only cache: the memo is only an optimisation
            tmp.unlink(missing_ok=True)


def _newest(entries: dict[str, Any]) -> dict[str, Any]:
    return dict(list(entries.items())[-MEMO_ENTRIES:])


_MEMOS: dict[str, _Memo] = {}


def _memo(cache_root: str | os.PathLike | None = None) -> _Memo:
    """The memo of the cache folder ``cache_root`` (default: the configured cache)."""
    root = os.path.abspath(cache_root if cache_root is not None else cache_dir())
    if root not in _MEMOS:
        _MEMOS[root] = _Memo(Path(root, MEMO_FILE))
    return _MEMOS[root]


# ----------------------------------------------------------------------------- downstream


def luigi_target(store: Store, key: str) -> luigi.Target:
    """A standard Luigi target for ``key`` of ``store``, for plain Luigi tasks to read."""
    if isinstance(store, LocalStore):
        return luigi.LocalTarget(str(store.root / key))
    if store.uri.startswith("s3://"):
        from luigi.contrib.s3 import S3Target

        return S3Target(store.url(key), client=_s3_client(store))
    raise BuildError(  # pragma: no cover - open_store knows only these two
        f"No Luigi target type for store {store.uri}.", hint="use a folder or s3:// store.")


_S3_CLIENTS: dict[str, Any] = {}


def _s3_client(store):
    """One Luigi ``S3Client`` per store, on its endpoint and settings (the boto3 resource
    itself is made only when the target is used)."""
    if store.uri not in _S3_CLIENTS:
        from luigi.contrib.s3 import S3Client

        options = {"config": store.client_config()}
        if store.options.endpoint_url:
            options["endpoint_url"] = store.options.endpoint_url
        _S3_CLIENTS[store.uri] = S3Client(**options)
    return _S3_CLIENTS[store.uri]
