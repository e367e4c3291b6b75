"""Fixtures shared by the unit tests: real temporary stores and caches, no mocks."""

from __future__ import annotations

import luigi.task_register
import pytest

from mlbuild.core.runlog import RUN_DIR_ENV
from mlbuild.store import LocalStore, open_store

from ._helpers import Env


@pytest.fixture
def env(tmp_path, monkeypatch) -> Env:
    store_dir = tmp_path / "store"
    cache_dir = tmp_path / "cache"
    run_dir = tmp_path / "run"
    monkeypatch.setenv("MLBUILD_STORE", str(store_dir))
    monkeypatch.setenv("MLBUILD_CACHE", str(cache_dir))
    monkeypatch.setenv(RUN_DIR_ENV, str(run_dir))
    store = open_store(str(store_dir))
    assert isinstance(store, LocalStore)
    return Env(tmp_path, store, cache_dir, run_dir, monkeypatch)


@pytest.fixture(autouse=True)
def _fresh_luigi_instances():
    """Luigi reuses task instances per parameters; each test starts without them."""
    luigi.task_register.Register.clear_instance_cache()
    yield
    luigi.task_register.Register.clear_instance_cache()
