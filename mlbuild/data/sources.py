"""Raw data from a URI: ``file://path``, ``https://url`` or ``s3://bucket/key``, or a
series of snapshots, ``s3://bucket/prefix/*/part-*.csv`` or ``file://folder/*/part-*.csv``
(:mod:`mlbuild.data.snapshots`).

``version(source)`` says what identifies the current content without downloading it (a
file's sha256, an URL's ETag, an S3 object's ETag and version, a snapshot's
``<name>@<identity>``), for the fingerprint; ``fetch(source, dest)`` copies the bytes and
returns their sha256; ``fetch_table`` converts any of them into one Arrow table.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from mlbuild.data import snapshots
from mlbuild.data.file_digests import file_sha256
from mlbuild.data.snapshots import is_snapshot
from mlbuild.errors import ConfigError, IntegrityError, MissingError
from mlbuild.store import copy_hashing, file_digest, locate

SCHEMES = ("file://", "https://", "http://", "s3://")
TIMEOUT = 60


def is_uri(source: str) -> bool:
    return source.startswith(SCHEMES)


def _local_path(source: str) -> Path:
    return Path(source.removeprefix("file://"))


def version(source: str, select: str = "latest") -> str:
    """What identifies the content of ``source`` now, without downloading it.

    ``select`` picks the snapshot of a snapshot source (``"latest"`` or
    ``"last_modified"``, :func:`mlbuild.data.snapshots.resolve`); other sources ignore it.
    """
    if is_snapshot(source):
        return snapshots.resolve(source, select).version
    if source.startswith("file://"):
        path = _local_path(source)
        if not path.is_file():
            raise MissingError(f"data.source {source} does not exist (looked for "
                               f"{path.resolve()}).", hint="check the path in the config.")
        return file_sha256(path)
    if source.startswith("s3://"):
        store, key = locate(source)
        return store.version(key)
    if source.startswith(("https://", "http://")):
        return _url_version(source)
    raise ConfigError(f"data.source = {source!r} is not a URI mlbuild can fetch.",
                      hint="use file://path, https://url or s3://bucket/key.")


def _url_version(url: str) -> str:
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            headers = response.headers
    except (urllib.error.URLError, OSError) as exc:
        raise MissingError(f"Cannot reach data.source {url}: {exc}.",
                           hint="check the URL.") from exc
    found = headers.get("ETag") or headers.get("Last-Modified")
    if not found:
        raise ConfigError(f"data.source {url} sends neither ETag nor Last-Modified, so a "
                          "change could not be noticed.", hint="pin data.sha256 in the config.")
    return f"{found};{headers.get('Content-Length', '')}"


def fetch(source: str, dest: Path, pinned: str | None = None) -> str:
    """Copy ``source`` to ``dest``; return the sha256, which must equal ``pinned`` if given."""
    if is_snapshot(source):
        raise ConfigError(f"data.source {source} is a series of snapshots, not one file to "
                          "copy.", hint="read it with fetch_table, which joins the parts.")
    if source.startswith("file://"):
        with open(_local_path(source), "rb") as src, open(dest, "wb") as out:
            sha256 = copy_hashing(src, out).sha256
    elif source.startswith("s3://"):
        store, key = locate(source)
        sha256 = store.get_file(key, dest).sha256
    else:
        try:
            with urllib.request.urlopen(source, timeout=TIMEOUT) as response, \
                    open(dest, "wb") as out:
                sha256 = copy_hashing(response, out).sha256
        except (urllib.error.URLError, OSError) as exc:
            raise MissingError(f"Cannot download data.source {source}: {exc}.") from exc
    check_pin(source, sha256, pinned)
    return sha256


def fetch_table(source: str, dest: Path, pinned: str | None = None, *,
                select: str = "latest", version: str | None = None) -> str:
    """Convert the table at ``source`` (CSV, Parquet or Arrow) into an Arrow file at
    ``dest`` (:func:`mlbuild.data.tables.write_table`); return the source's sha256.

    A ``file://`` source is read where it is; a remote one is downloaded beside ``dest``
    and removed once converted, so the data is never on disk twice for long.

    A snapshot source's parts become one table (:func:`mlbuild.data.snapshots.fetch_snapshot`)
    and its ``<name>@<identity>`` is returned. Give ``version`` what :func:`version` said
    when the fingerprint was made: exactly that snapshot is read, and one that changed
    since is an IntegrityError (a newer snapshot is never mixed in). Without it,
    ``select`` picks the snapshot now. Other sources ignore both.
    """
    from mlbuild.data.tables import read_table, write_table

    if is_snapshot(source):
        if pinned:
            raise _pinned_snapshot(source)
        snapshot = (snapshots.resolve_version(source, version) if version
                    else snapshots.resolve(source, select))
        snapshots.fetch_snapshot(snapshot, dest)
        return snapshot.version
    if source.startswith("file://"):
        path = _local_path(source)
        sha256 = file_sha256(path)
        check_pin(source, sha256, pinned)
        write_table(read_table(path, f"data.source {source}"), dest)
        return sha256
    download = dest.with_name(f".{dest.name}.source")
    try:
        sha256 = fetch(source, download, pinned)
        write_table(read_table(download, f"data.source {source}"), dest)
    finally:
        download.unlink(missing_ok=True)
    return sha256


def check_file(source: str, path: Path, pinned: str | None = None) -> str:
    """The sha256 of a file made from ``source`` (e.g. generated), checked against ``pinned``."""
    sha256 = file_digest(path).sha256
    check_pin(source, sha256, pinned)
    return sha256


def _pinned_snapshot(source: str) -> ConfigError:
    return ConfigError(
        f"data.source {source} is a series of snapshots, so a pinned data.sha256 cannot "
        "match it: each snapshot is many files, and a new one is meant to be picked up.",
        hint="remove data.sha256; the snapshot's parts (keys, ETags or sha256, versions) "
             "enter the fingerprint instead.")


def check_pin(source: str, sha256: str, pinned: str | None) -> None:
    if pinned and sha256 != pinned:
        raise IntegrityError(
            f"data.source {source} has sha256 {sha256}, but data.sha256 pins {pinned}. The "
            "data changed, or the pin is wrong.",
            hint="check the source; if the change is intended, update data.sha256 in the config.")
