"""Data snapshots: a source whose path holds a ``*`` names a series of snapshots, one picked.

``s3://bucket/digits/*/part-*.csv`` (or ``file://data/digits/*/part-*.csv``): the first
path segment holding a ``*`` is the *snapshot level* — each folder there whose name
matches it is a snapshot (``digits/2026-12-01/``) — and the rest of the pattern selects
the snapshot's *parts* (``part-0.csv``…). Segments match as shell patterns
(:func:`fnmatch.fnmatchcase`), one segment at a time, so ``*`` never crosses a ``/``.

:func:`resolve` picks one snapshot, by ``"latest"`` (the greatest name in key order) or
``"last_modified"`` (the one whose newest part was written last), from one listing: on
S3 a ListObjectsV2 of the snapshot level, then one ListObjectVersions of the chosen
snapshot for its parts' current version ids; in a folder a walk, and the parts' sha256
(remembered while their stat is unchanged, :mod:`mlbuild.data.file_digests`). Nothing is
downloaded. A :class:`Snapshot`'s :attr:`~Snapshot.identity` digests its parts' keys,
sizes, ETags (or sha256) and version ids, so a changed part changes it and an unchanged
series leaves it, and the fingerprints built on it, as they were.

:func:`fetch_snapshot` reads exactly the parts resolved: each S3 download is conditional
on the recorded ETag (and fetches the recorded version where the bucket keeps versions),
each local part is hashed again; a part that changed since is an ``IntegrityError``. The
parts, which must all have the same columns and types, become one Arrow table in part
(key) order.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import Path

from mlbuild.data.file_digests import file_sha256
from mlbuild.errors import ConfigError, DataError, IntegrityError, MissingError
from mlbuild.store import file_digest, open_store
from mlbuild.store.base import ListedObject

#: how a snapshot may be selected (``[data] snapshot`` in the reference project)
SELECTIONS = ("latest", "last_modified")
SCHEMES = ("s3://", "file://")
WILDCARDS = "*?["
SHOWN = 5  # keys named in a message, at most


def is_snapshot(source: str) -> bool:
    """Whether ``source`` names a series of snapshots: an s3:// or file:// URI with a ``*``."""
    return source.startswith(SCHEMES) and "*" in source.partition("://")[2]


@dataclass(frozen=True)
class Pattern:
    """A snapshot source taken apart.

    ``root`` is the store the keys are relative to (``s3://bucket``, or the folder above
    the snapshot level); ``base`` the key prefix of the snapshot level in it; ``level``
    the pattern of a snapshot's name; ``parts`` the patterns of a part's path inside it.
    """

    source: str
    root: str
    base: str
    level: str
    parts: tuple[str, ...]

    @property
    def local(self) -> bool:
        return not self.root.startswith("s3://")

    def uri(self, key: str) -> str:
        """The URI of a key."""
        if self.local:
            return "file://" + posixpath.normpath(posixpath.join(self.root, key))
        return f"{self.root}/{key}"

    def where(self) -> str:
        """The URI of the snapshot level's folder, for messages."""
        return f"file://{self.root}" if self.local else f"{self.root}/{self.base}"

    def split(self, key: str) -> tuple[str, bool] | None:
        """The snapshot ``key`` lies in and whether it is a part, or ``None`` outside any."""
        name, sep, rest = key[len(self.base):].partition("/")
        if not key.startswith(self.base) or not sep or not fnmatchcase(name, self.level):
            return None
        inside = rest.split("/")
        return name, len(inside) == len(self.parts) and all(
            fnmatchcase(segment, part) for segment, part in zip(inside, self.parts, strict=True))


def parse(source: str) -> Pattern:
    """Take a snapshot source apart; a ConfigError says what is wrong with a malformed one."""
    hint = "write it as s3://bucket/prefix/*/part-*.csv or file://folder/*/part-*.csv."
    if not is_snapshot(source):
        raise ConfigError(f"data.source {source!r} is not a snapshot pattern: it must be an "
                          "s3:// or file:// URI whose path holds a '*'.", hint=hint)
    if source.startswith("s3://"):
        bucket, _, path = source.removeprefix("s3://").partition("/")
        if not bucket or any(c in bucket for c in WILDCARDS):
            raise ConfigError(f"data.source {source!r} must name one bucket, without a "
                              "pattern.", hint=hint)
        segments = path.split("/")
    else:
        path = source.removeprefix("file://")
        segments = path.split("/")
        bucket = None
    level = next(i for i, s in enumerate(segments) if "*" in s)
    parts = segments[level + 1:]
    absolute = bucket is None and path.startswith("/")
    if "" in segments[1 if absolute else 0:]:
        raise ConfigError(f"data.source {source!r} has an empty path segment ('//' or a "
                          "trailing '/').", hint=hint)
    if not parts:
        raise ConfigError(
            f"data.source {source!r} has no part pattern after its snapshot level "
            f"{segments[level]!r} (the first segment with a '*'): a snapshot source names the "
            "parts inside each snapshot.", hint=hint)
    if bucket is not None:
        root, base = f"s3://{bucket}", "".join(s + "/" for s in segments[:level])
    else:  # keys are relative to the folder above the level
        root, base = "/".join(segments[:level]) or ("/" if absolute else "."), ""
    return Pattern(source, root, base, segments[level], tuple(parts))


# --------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class Part:
    """One part of a snapshot, as resolved: what it is now, without its bytes."""

    uri: str
    key: str  # relative to the pattern's root (the bucket, or the folder above the level)
    size: int
    last_modified: datetime
    etag: str | None = None  # S3
    sha256: str | None = None  # a local file
    version_id: str | None = None  # S3, where the bucket keeps versions

    @property
    def identity(self) -> dict[str, str | int]:
        """What the snapshot's identity covers for this part (its time does not count)."""
        fields = {"key": self.key, "size": self.size, "etag": self.etag,
                  "sha256": self.sha256, "version_id": self.version_id}
        return {name: value for name, value in fields.items() if value is not None}


@dataclass(frozen=True)
class Snapshot:
    """One snapshot of a source, and its parts in key order."""

    source: str
    name: str
    parts: tuple[Part, ...]

    @property
    def identity(self) -> str:
        """The sha256 of the canonical JSON of the parts' identities."""
        text = json.dumps([p.identity for p in self.parts], sort_keys=True,
                          separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def version(self) -> str:
        """``<name>@<identity>``: what the fingerprint of a task reading it holds."""
        return f"{self.name}@{self.identity}"

    @property
    def last_modified(self) -> datetime:
        return max(p.last_modified for p in self.parts)

    def manifest(self) -> dict:
        """Name, identity and parts, JSON-compatible, for a manifest's record."""
        return {"name": self.name, "identity": self.identity,
                "parts": [{"uri": p.uri, **p.identity} for p in self.parts]}


def resolve(source: str, select: str = "latest") -> Snapshot:
    """The snapshot of ``source`` that ``select`` picks; see the module docstring.

    Raises ConfigError for a malformed pattern or an unknown ``select``, MissingError
    when nothing matches or the snapshot picked holds no part.
    """
    if select not in SELECTIONS:
        raise ConfigError(f"The snapshot selection {select!r} for {source} is not one mlbuild "
                          f"knows: expected one of {', '.join(SELECTIONS)}.",
                          hint='use "latest" (greatest name) or "last_modified".')
    pattern = parse(source)
    listing = _list(pattern)
    chooser = _by_name if select == "latest" else _by_time
    return _snapshot(pattern, listing, chooser(listing))


def latest(source: str, select: str = "latest") -> Snapshot:
    """Which snapshot is current: for a schedule that asks often (e.g. nightly retraining).

    It costs one listing (a request per 1,000 keys) plus one ListObjectVersions of the
    snapshot picked, or a HeadObject per part where listing versions is denied; in a folder,
    a walk and the parts' sha256, read only when their stat changed. Nothing is downloaded.
    """
    return resolve(source, select)


def resolve_version(source: str, version: str) -> Snapshot:
    """The snapshot a fingerprint named (``<name>@<identity>``), as it is now.

    An IntegrityError when it is gone or its parts changed since: a build must read the
    bytes its fingerprint names, not a newer snapshot's.
    """
    name, sep, identity = version.partition("@")
    if not sep:
        raise ConfigError(f"{version!r} is not a snapshot version of {source} "
                          "(expected <name>@<identity>).")
    pattern = parse(source)
    listing = _list(pattern)
    if name not in listing:
        raise IntegrityError(
            f"Snapshot {name!r} of {source} was fingerprinted but is gone from "
            f"{pattern.where()}: the snapshot changed during the run.",
            hint="run again: the current snapshot is then fingerprinted and built.")
    snapshot = _snapshot(pattern, listing, name)
    if snapshot.identity != identity:
        raise _changed(snapshot, f"its identity was {identity}, it is now {snapshot.identity}")
    return snapshot


Listing = dict[str, tuple[list[ListedObject], list[ListedObject]]]  # name -> (parts, others)


def _list(pattern: Pattern) -> Listing:
    prefix = pattern.base + pattern.level[:min(
        (i for i, c in enumerate(pattern.level) if c in WILDCARDS), default=0)]
    if pattern.local and not Path(pattern.root).is_dir():
        raise MissingError(f"data.source {pattern.source}: the folder {pattern.root} does not "
                           f"exist (looked for {Path(pattern.root).resolve()}).",
                           hint="check the path in the config.")
    objects = open_store(pattern.root).list_objects(prefix)
    listing: Listing = {}
    for obj in objects:
        where = pattern.split(obj.key)
        if where is not None:
            name, is_part = where
            listing.setdefault(name, ([], []))[0 if is_part else 1].append(obj)
    if not listing:
        found = (f"{len(objects)} objects there, none inside a folder matching "
                 f"{pattern.level!r}: {_names(o.key for o in objects)}" if objects
                 else "nothing there")
        raise MissingError(
            f"No snapshot of data.source {pattern.source}: listed {pattern.where()} and found "
            f"{found}.", hint="check the source's prefix and pattern, and that snapshots have "
                              "been written there.")
    return listing


def _names(keys) -> str:
    keys = list(keys)
    more = f" and {len(keys) - SHOWN} more" if len(keys) > SHOWN else ""
    return ", ".join(keys[:SHOWN]) + more


def _by_name(listing: Listing) -> str:
    return max(listing)


def _by_time(listing: Listing) -> str:
    # The newest part; a snapshot without parts by its newest object (and then refused).
    return max(listing, key=lambda name: (max(o.last_modified for o in
                                              listing[name][0] or listing[name][1]), name))


def _snapshot(pattern: Pattern, listing: Listing, name: str) -> Snapshot:
    parts, others = listing[name]
    if not parts:
        raise MissingError(
            f"Snapshot {name!r} of data.source {pattern.source} holds no part matching "
            f"{'/'.join(pattern.parts)!r}; it holds {_names(o.key for o in others)}.",
            hint="check the part pattern, or remove the folder if it is no snapshot.")
    if pattern.local:
        resolved = [Part(pattern.uri(o.key), o.key, o.size, o.last_modified,
                         sha256=file_sha256(Path(pattern.root, o.key))) for o in parts]
    else:
        resolved = [Part(pattern.uri(o.key), o.key, o.size,
                         o.last_modified, etag=o.etag, version_id=o.version_id)
                    for o in open_store(pattern.root).current_versions(parts)]
    return Snapshot(pattern.source, name, tuple(resolved))


def _changed(snapshot: Snapshot, what: str) -> IntegrityError:
    return IntegrityError(
        f"Snapshot {snapshot.name!r} of {snapshot.source} changed during the run ({what}), so "
        "the build would read other bytes than those its fingerprint names.",
        hint="run again once the snapshot has stopped changing: it is then fingerprinted "
             "and built as it is.")


# --------------------------------------------------------------------------- fetching


def fetch_snapshot(snapshot: Snapshot, dest: str | os.PathLike) -> dict:
    """Read every part of ``snapshot``, verified, into one Arrow table at ``dest``
    (:func:`mlbuild.data.tables.write_table`), in part order; return
    :meth:`Snapshot.manifest`.

    A part whose bytes are no longer those resolved is an IntegrityError; parts whose
    columns or types differ from the first part's a DataError naming the part.
    """
    import pyarrow as pa

    from mlbuild.data.tables import write_table

    dest = Path(dest)
    pattern = parse(snapshot.source)
    read = _read_local if pattern.local else _read_s3
    tables = []
    for part in snapshot.parts:
        table = read(snapshot, pattern, part, dest)
        if tables:
            _check_same_columns(snapshot, snapshot.parts[0], tables[0], part, table)
        tables.append(table)
    write_table(pa.concat_tables(tables), dest)
    return snapshot.manifest()


def _read_local(snapshot: Snapshot, pattern: Pattern, part: Part, dest: Path):
    from mlbuild.data.tables import read_table

    path = Path(pattern.root, part.key)
    try:
        before = _signature(path)
        sha256 = file_digest(path).sha256
        table = read_table(path, f"part {part.uri} of snapshot {snapshot.name!r}")
        after = _signature(path)
    except FileNotFoundError as exc:
        raise _changed(snapshot, f"part {part.uri} is gone") from exc
    if sha256 != part.sha256 or before != after:
        raise _changed(snapshot, f"part {part.uri} had sha256 {part.sha256}, it now has "
                                 f"{sha256}" if sha256 != part.sha256 else
                                 f"part {part.uri} was written while it was read")
    return table


def _signature(path: Path) -> tuple[int, ...]:
    st = path.stat()
    return st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns


def _read_s3(snapshot: Snapshot, pattern: Pattern, part: Part, dest: Path):
    from mlbuild.data.tables import read_table

    store = open_store(pattern.root)
    download = dest.with_name(f".{dest.name}.part")
    try:
        store.get_version(part.key, download, f"etag:{part.etag};version:{part.version_id or '-'}")
        # Arrow maps the file; the mapping outlives the name, removed below.
        return read_table(download, f"part {part.uri} of snapshot {snapshot.name!r}")
    except (IntegrityError, MissingError) as exc:
        raise _changed(snapshot, f"part {part.uri} is no longer at ETag {part.etag}"
                                 + (f", version {part.version_id}" if part.version_id else "")
                       ) from exc
    finally:
        download.unlink(missing_ok=True)


def _check_same_columns(snapshot: Snapshot, first: Part, expected, part: Part, table) -> None:
    if table.schema.names != expected.schema.names:
        missing = [c for c in expected.schema.names if c not in table.schema.names]
        extra = [c for c in table.schema.names if c not in expected.schema.names]
        detail = (f"it lacks {missing} and has {extra}" if missing or extra
                  else "they are in another order")
        raise DataError(
            f"Part {part.uri} of snapshot {snapshot.name!r} has other columns than its first "
            f"part {first.uri}: {detail}.",
            hint="write every part of a snapshot with the same columns in the same order.")
    for field, other in zip(expected.schema, table.schema, strict=True):
        if field.type != other.type:
            raise DataError(
                f"Part {part.uri} of snapshot {snapshot.name!r} has column {field.name!r} of "
                f"type {other.type}, but its first part {first.uri} has {field.type}.",
                hint="write every part with the same types (in a CSV, e.g. 1.0 rather than 1 "
                     "for a float column).")
