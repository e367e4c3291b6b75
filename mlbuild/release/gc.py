"""Garbage collection of the store: results that nothing needs any more.

A result is kept when a chain of manifests reaches it (through their upstream
fingerprints) from a root:

* the models in models.lock: the task that trained each one (its ``fingerprint``);
* the newest ``keep_runs`` runs: the newest results that no other result depends on.

Everything else under ``<Family>/<fingerprint>/`` goes, manifest first, so an interrupted
collection never leaves a partial result that looks complete. Published models
(``models/``) are never collected: other branches' locks may name them. Unfinished
writes older than ``older_than`` are discarded too (``Store.stale_writes``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from mlbuild.core.manifest import MANIFEST, Manifest
from mlbuild.release.lockfile import LockFile
from mlbuild.store import StaleWrite, Store

REGISTRY = "models/"


@dataclass
class Plan:
    keep: set[str] = field(default_factory=set)          # result folders kept
    drop: dict[str, list[str]] = field(default_factory=dict)  # folder -> its keys
    drop_bytes: int = 0
    sizes: dict[str, int] = field(default_factory=dict)  # folder -> bytes of its outputs
    stale: list[StaleWrite] = field(default_factory=list)


def plan(store: Store, lock: LockFile, keep_runs: int, older_than: timedelta) -> Plan:
    keys = [k for k in store.list("") if not k.startswith(REGISTRY)]
    folders: dict[str, list[str]] = {}
    for key in keys:
        folder = key.rsplit("/", 1)[0]
        folders.setdefault(folder, []).append(key)
    manifests = {
        folder: Manifest.from_json(store.get_bytes(f"{folder}/{MANIFEST}"),
                                   store.url(f"{folder}/{MANIFEST}"))
        for folder, files in folders.items() if f"{folder}/{MANIFEST}" in files
    }
    by_fingerprint = {m.fingerprint: folder for folder, m in manifests.items()}
    upstream = {folder: [by_fingerprint[fp] for fp in m.inputs.get("upstream", {}).values()
                         if fp in by_fingerprint] for folder, m in manifests.items()}

    needed = {u for ups in upstream.values() for u in ups}
    tops = sorted((f for f in manifests if f not in needed),
                  key=lambda f: manifests[f].finished, reverse=True)
    roots = set(tops[:keep_runs])
    roots |= {by_fingerprint[e.fingerprint] for e in lock.models.values()
              if e.fingerprint in by_fingerprint}

    result = Plan()
    todo = list(roots)
    while todo:
        folder = todo.pop()
        if folder not in result.keep:
            result.keep.add(folder)
            todo.extend(upstream.get(folder, []))
    for folder, files in folders.items():
        # Outputs without a manifest are kept: a run may be writing them right now, and
        # the run that finishes them writes the manifest that makes them a result.
        if folder in result.keep or folder not in manifests:
            continue
        result.drop[folder] = sorted(files, key=lambda k: not k.endswith(MANIFEST))
        result.sizes[folder] = sum(o.size for o in manifests[folder].outputs.values())
        result.drop_bytes += result.sizes[folder]
    result.stale = store.stale_writes(older_than)
    return result


def collect(store: Store, result: Plan) -> None:
    for files in result.drop.values():
        for key in files:  # the manifest first
            store.delete(key)
    for write in result.stale:
        store.discard(write)
