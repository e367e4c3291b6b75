"""Published models: content-addressed copies in the store, recorded in models.lock."""

from __future__ import annotations

import os
import re

import pytest

from mlbuild.errors import IntegrityError, MissingError
from mlbuild.release.lockfile import LockFile
from mlbuild.release.registry import (
    model_key,
    publish_model,
    pull_models,
    released_model,
    verify_lock,
)
from mlbuild.store import LocalCache, LocalStore, locate

from ._helpers import files_under, is_read_only, sha256

MODEL = b"tree\nversion=v4\nnum_class=10\n" * 50


@pytest.fixture
def store(tmp_path) -> LocalStore:
    return LocalStore(str(tmp_path / "store"))


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "work" / "model.txt"
    path.parent.mkdir()
    path.write_bytes(MODEL)
    return path


def publish(store, lock, model, **overrides):
    kwargs = {
        "sha256": sha256(MODEL), "filename": "model.txt", "fingerprint": "f" * 32,
        "created": "2026-11-27T18:40:02.113+00:00", "metrics": {"accuracy": 0.97},
    }
    kwargs.update(overrides)
    return publish_model(store, lock, "digits", model, **kwargs)


def test_publish_copies_to_a_content_addressed_key_and_writes_the_lock(store, model, tmp_path):
    lock = tmp_path / "models.lock"
    entry = publish(store, lock, model)
    key = f"models/digits/sha256-{sha256(MODEL)}/model.txt"
    assert model_key("digits", sha256(MODEL), "model.txt") == key
    assert store.list("") == [key]
    assert store.get_bytes(key, sha256(MODEL)) == MODEL
    assert entry.uri == store.url(key)
    assert (entry.sha256, entry.size) == (sha256(MODEL), len(MODEL))
    assert entry.metrics == {"accuracy": 0.97} and entry.fingerprint == "f" * 32
    assert LockFile.read(lock).entry("digits") == entry
    assert locate(entry.uri, store) == (store, key)


def test_publishing_the_same_model_again_leaves_the_lock_byte_identical(store, model, tmp_path):
    lock = tmp_path / "models.lock"
    publish(store, lock, model)
    before = lock.read_bytes()
    publish(store, lock, model)
    assert lock.read_bytes() == before
    assert len(store.list("models")) == 1


def test_publishing_a_model_already_in_the_store_does_not_copy_it_again(store, model, tmp_path):
    lock = tmp_path / "models.lock"
    entry = publish(store, lock, model)
    stored = store.root / locate(entry.uri, store)[1]
    old = 1_600_000_000_000_000_000
    os.utime(stored, ns=(old, old))
    publish(store, lock, model, created="2026-12-01T00:00:00+00:00")
    assert stored.stat().st_mtime_ns == old
    assert LockFile.read(lock).entry("digits").created == "2026-12-01T00:00:00+00:00"


def test_publish_keeps_other_models_in_the_lock(store, model, tmp_path):
    lock = tmp_path / "models.lock"
    publish_model(store, lock, "other", model, sha256=sha256(MODEL), filename="model.txt",
                  fingerprint="e" * 32, created="2026-01-01T00:00:00+00:00", metrics={})
    publish(store, lock, model)
    assert set(LockFile.read(lock).models) == {"digits", "other"}


def test_publishing_a_file_that_does_not_match_its_digest_stores_nothing(store, model, tmp_path):
    lock = tmp_path / "models.lock"
    with pytest.raises(IntegrityError, match=re.escape(str(model))):
        publish(store, lock, model, sha256=sha256(b"what was recorded"))
    assert store.list("") == []
    assert not lock.exists()


def test_a_uri_outside_the_store_resolves_to_its_own_folder(store, tmp_path):
    elsewhere = tmp_path / "elsewhere" / "model.txt"
    found, key = locate(str(elsewhere), store)
    assert isinstance(found, LocalStore) and found is not store
    assert (found.root, key) == (elsewhere.parent, "model.txt")


# -------------------------------------------------------------------- verify, pull


@pytest.fixture
def published(store, model, tmp_path):
    lock = tmp_path / "models.lock"
    entry = publish(store, lock, model)
    return LockFile.read(lock), locate(entry.uri, store)[1]


def test_verify_passes_an_intact_model(store, published):
    lock, _ = published
    (check,) = verify_lock(lock, store)
    assert check.name == "digits" and check.error is None
    assert check.entry == lock.entry("digits")


def test_verify_reports_a_tampered_model(store, published):
    lock, key = published
    store.put_bytes(MODEL.replace(b"v4", b"v5"), key)
    (check,) = verify_lock(lock, store)
    assert isinstance(check.error, IntegrityError)
    assert store.url(key) in str(check.error)


def test_verify_reports_a_missing_model(store, published):
    lock, key = published
    store.delete(key)
    (check,) = verify_lock(lock, store)
    assert isinstance(check.error, MissingError)
    assert store.url(key) in str(check.error)


def test_verify_checks_every_model_in_name_order(store, model, tmp_path):
    lock = tmp_path / "models.lock"
    for name in ("zeta", "alpha"):
        publish_model(store, lock, name, model, sha256=sha256(MODEL), filename="model.txt",
                      fingerprint="f" * 32, created="2026-01-01T00:00:00+00:00", metrics={})
    store.delete(model_key("zeta", sha256(MODEL), "model.txt"))
    checks = verify_lock(LockFile.read(lock), store)
    assert [(c.name, type(c.error).__name__) for c in checks] == [
        ("alpha", "NoneType"), ("zeta", "ObjectMissingError"),
    ]


@pytest.mark.parametrize("damage", ["deleted", "tampered"])
def test_verify_checks_the_store_even_when_the_model_is_cached(store, published, tmp_path,
                                                              damage):
    # Other machines and the image build read the store, not this machine's cache.
    lock, key = published
    cache = LocalCache(tmp_path / "cache")
    (pulled,) = pull_models(lock, store, cache)
    assert pulled.error is None and cache.path(sha256(MODEL)).exists()
    if damage == "deleted":
        store.delete(key)
    else:
        store.put_bytes(MODEL.replace(b"v4", b"v5"), key)
    (check,) = verify_lock(lock, store)
    expected = MissingError if damage == "deleted" else IntegrityError
    assert isinstance(check.error, expected), (
        f"the model was {damage} in the store, but verify_lock reported {check.error!r}"
    )


def test_pull_fills_the_cache_with_verified_read_only_models(store, published, tmp_path):
    lock, _ = published
    cache = LocalCache(tmp_path / "cache")
    (check,) = pull_models(lock, store, cache)
    assert check.error is None
    path = cache.path(sha256(MODEL))
    assert path.read_bytes() == MODEL
    assert is_read_only(path)


def test_pull_of_a_tampered_model_caches_nothing(store, published, tmp_path):
    lock, key = published
    store.put_bytes(MODEL.replace(b"v4", b"v5"), key)
    (check,) = pull_models(lock, store, LocalCache(tmp_path / "cache"))
    assert isinstance(check.error, IntegrityError)
    assert store.url(key) in str(check.error)
    assert files_under(tmp_path / "cache") == []


# -------------------------------------------------------------------- released_model


def test_no_released_model_without_an_entry(store, model, tmp_path):
    assert released_model(LockFile(), "digits", "f" * 32) is None
    lock = tmp_path / "models.lock"
    publish_model(store, lock, "other", model, sha256=sha256(MODEL), filename="model.txt",
                  fingerprint="e" * 32, created="2026-01-01T00:00:00+00:00", metrics={})
    assert released_model(LockFile.read(lock), "digits", "f" * 32) is None


def test_the_released_model_of_another_training_run_is_the_baseline(store, model, tmp_path):
    lock = tmp_path / "models.lock"
    entry = publish(store, lock, model, fingerprint="e" * 32,
                    baseline={"sha256": "0" * 64, "uri": "elsewhere/model.txt"})
    assert released_model(LockFile.read(lock), "digits", "f" * 32) == {
        "sha256": entry.sha256, "uri": entry.uri}


def test_a_candidate_already_published_keeps_its_recorded_baseline(store, model, tmp_path):
    # Once published, the lock names the candidate itself; it is not compared with itself.
    lock = tmp_path / "models.lock"
    publish(store, lock, model, fingerprint="f" * 32)
    assert released_model(LockFile.read(lock), "digits", "f" * 32) is None

    previous = {"sha256": "0" * 64, "uri": "models/digits/sha256-000/model.txt"}
    publish(store, lock, model, fingerprint="f" * 32, baseline=previous)
    assert LockFile.read(lock).entry("digits").baseline == previous
    assert released_model(LockFile.read(lock), "digits", "f" * 32) == previous
    assert released_model(LockFile.read(lock), "digits", "e" * 32) == {
        "sha256": sha256(MODEL), "uri": LockFile.read(lock).entry("digits").uri}
