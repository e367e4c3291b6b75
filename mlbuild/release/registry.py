"""Published models: immutable copies in ``<store>/models/<name>/sha256-<digest>/``.

Publishing copies a model into its content-addressed place and records it in
``models.lock``; verifying checks that what the lock names is in the store, byte for byte.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from mlbuild.errors import IntegrityError, MlbuildError
from mlbuild.release.lockfile import LockFile, ModelEntry
from mlbuild.store import LocalCache, Store, check_digest, locate


def model_key(name: str, sha256: str, filename: str) -> str:
    return f"models/{name}/sha256-{sha256}/{filename}"


def publish_model(
    store: Store,
    lock_path: str | os.PathLike,
    name: str,
    model_path: str | os.PathLike,
    *,
    sha256: str,
    filename: str,
    fingerprint: str,
    created: str,
    metrics: dict[str, Any],
    baseline: dict[str, str] | None = None,
    incomparable: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> ModelEntry:
    """Copy a model, whose digest is known, into the registry and record it in the lock.

    The copy is skipped when the content-addressed key already exists. The lock is updated
    under its file lock (``LockFile.update``), so concurrent publishes keep every entry.
    """
    key = model_key(name, sha256, filename)
    if not store.exists(key):
        stored = store.put_file(model_path, key)
        if stored.sha256 != sha256:
            store.delete(key)
            raise IntegrityError(
                f"The model file {model_path} has sha256 {stored.sha256}, but {sha256} was "
                "recorded when it was made.", hint="clear the cache folder and run again."
            )
    entry = ModelEntry(
        uri=store.url(key),
        sha256=sha256,
        size=os.path.getsize(model_path),
        fingerprint=fingerprint,
        created=created,
        metrics=metrics,
        baseline=baseline,
        incomparable=incomparable,
        data=data,
    )
    LockFile.update(lock_path, lambda lock: lock.with_model(name, entry))
    return entry


def released_model(lock: LockFile, name: str, candidate_fingerprint: str) -> dict[str, str] | None:
    """The model a candidate is compared with: the one models.lock releases.

    The lock is an input (the baseline) and an output (PublishModel updates it). Once a
    candidate is published the lock names the candidate itself; comparing it with itself
    would change its evaluation's fingerprint and make the pipeline chase its own tail.
    So when the lock names a model trained with ``candidate_fingerprint``, the baseline is
    the one that model was compared with when it was published, as the lock records.
    """
    entry = lock.models.get(name)
    if entry is None:
        return None
    if entry.fingerprint == candidate_fingerprint:
        return entry.baseline
    return {"sha256": entry.sha256, "uri": entry.uri}


@dataclass(frozen=True)
class Check:
    name: str
    entry: ModelEntry
    error: MlbuildError | None  # None when the model is present and intact


def verify_lock(lock: LockFile, store: Store) -> list[Check]:
    """Check every model in the lock against the store as it is now, byte for byte."""
    checks = []
    for name, entry in sorted(lock.models.items()):
        try:
            where, key = locate(entry.uri, store)
            check_digest(where.digest(key), entry.sha256, entry.uri)
            checks.append(Check(name, entry, None))
        except MlbuildError as exc:
            checks.append(Check(name, entry, exc))
    return checks


def pull_models(lock: LockFile, store: Store, cache: LocalCache) -> list[Check]:
    """Fetch every model in the lock into the cache (verified); already cached ones stay."""
    checks = []
    for name, entry in sorted(lock.models.items()):
        try:
            cache.fetch(*locate(entry.uri, store), entry.sha256)
            checks.append(Check(name, entry, None))
        except MlbuildError as exc:
            checks.append(Check(name, entry, exc))
    return checks
