"""Helpers shared by the unit tests (fixtures are in conftest.py)."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import luigi
import pytest

from mlbuild.core.runlog import Failure, read_failures
from mlbuild.store import LocalCache, LocalStore


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_read_only(path: Path) -> bool:
    """No write bit set. (Tests run as root, where a write attempt would succeed anyway.)"""
    return stat.S_IMODE(os.stat(path).st_mode) & 0o222 == 0


def files_under(root: Path) -> list[str]:
    """Every file under ``root``, hidden and temporary ones included (unlike Store.list)."""
    if not root.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@dataclass
class Env:
    """The store, cache and run folder the tasks of one test use (set through the env)."""

    root: Path
    store: LocalStore
    cache_dir: Path
    run_dir: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def cache(self) -> LocalCache:
        return LocalCache(self.cache_dir)

    def fresh_cache(self, name: str) -> Path:
        """Point MLBUILD_CACHE at a new, empty cache folder (as on another machine)."""
        self.cache_dir = self.root / name
        self.monkeypatch.setenv("MLBUILD_CACHE", str(self.cache_dir))
        return self.cache_dir

    def failures(self) -> list[Failure]:
        return read_failures(self.run_dir)

    def snapshot(self) -> dict[str, bytes]:
        """Every file of the store folder and its bytes, temporary files included."""
        root = self.store.root
        return {name: (root / name).read_bytes() for name in files_under(root)}


def build(*tasks: luigi.Task):
    """Run ``tasks`` with a local scheduler in this process; return Luigi's result."""
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True)
