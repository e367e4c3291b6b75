"""The store contract (every backend) and the local store, cache and ``open_store``.

``StoreContract`` is written in the style of Luigi's ``FileSystemTargetTestMixin``: a
backend's test class inherits it and provides a ``store`` fixture that yields an empty
store. ``TestLocalStore`` runs it for the local folder; an S3 backend reuses it as is.
"""

from __future__ import annotations

import os
import re

import pytest

from mlbuild.errors import ConfigError, IntegrityError, MissingError, StoreError
from mlbuild.store import LocalCache, LocalStore, ObjectInfo, Store, open_store
from mlbuild.store.base import CHUNK

from ._helpers import files_under, is_read_only, sha256

BAD_KEYS = ["../escape.txt", "a/../../escape.txt", "a/..", "/etc/escape.txt", "/abs/key"]


class StoreContract:
    """What every store backend promises (see the docstring of ``mlbuild.store``)."""

    @pytest.fixture
    def store(self) -> Store:  # pragma: no cover - overridden by each backend
        raise NotImplementedError("a backend's test class provides an empty `store` fixture")

    # ---------------------------------------------------------------- writes

    def test_put_bytes_returns_sha256_and_size(self, store):
        data = b"hello, store\n"
        assert store.put_bytes(data, "a/b.txt") == ObjectInfo(sha256(data), len(data))

    def test_put_bytes_of_nothing(self, store):
        assert store.put_bytes(b"", "empty") == ObjectInfo(sha256(b""), 0)
        assert store.exists("empty")
        assert store.get_bytes("empty", sha256(b"")) == b""

    def test_put_file_returns_sha256_and_size_of_a_multi_chunk_file(self, store, tmp_path):
        data = os.urandom(2 * CHUNK + 12345)
        src = tmp_path / "big.bin"
        src.write_bytes(data)
        assert store.put_file(src, "big/big.bin") == ObjectInfo(sha256(data), len(data))
        assert store.get_bytes("big/big.bin", sha256(data)) == data

    def test_put_overwrites_a_key(self, store):
        store.put_bytes(b"first", "k")
        store.put_bytes(b"second", "k")
        assert store.get_bytes("k") == b"second"
        assert store.list("") == ["k"]

    def test_a_failed_write_keeps_the_old_object_and_leaves_no_partial_one(self, store):
        store.put_bytes(b"old", "k")
        # Reading /proc/self/mem fails with EIO after the write has begun: a source that
        # breaks in the middle of a transfer, without mocking anything.
        with pytest.raises(StoreError):
            store.put_file("/proc/self/mem", "k")
        with pytest.raises(StoreError):
            store.put_file("/proc/self/mem", "new")
        assert store.get_bytes("k", sha256(b"old")) == b"old"
        assert not store.exists("new")
        assert store.list("") == ["k"]

    def test_list_shows_only_finished_writes(self, store, tmp_path):
        src = tmp_path / "f.txt"
        src.write_bytes(b"file")
        store.put_file(src, "x/f.txt")
        store.put_bytes(b"bytes", "x/b.txt")
        store.put_bytes(b"again", "x/b.txt")
        assert store.list("") == ["x/b.txt", "x/f.txt"]

    # ---------------------------------------------------------------- reads

    def test_get_bytes_returns_what_was_put(self, store):
        info = store.put_bytes(b"payload", "k")
        assert store.get_bytes("k") == b"payload"
        assert store.get_bytes("k", info.sha256) == b"payload"

    def test_get_file_writes_dest_and_returns_its_digest(self, store, tmp_path):
        info = store.put_bytes(b"payload", "dir/k.bin")
        out = tmp_path / "out"
        out.mkdir()
        assert store.get_file("dir/k.bin", out / "k.bin", info.sha256) == info
        assert (out / "k.bin").read_bytes() == b"payload"
        assert os.listdir(out) == ["k.bin"]  # no temporary file left beside it

    def test_get_bytes_with_wrong_sha256_raises_integrity_error_naming_the_uri(self, store):
        store.put_bytes(b"payload", "dir/k.bin")
        wrong = sha256(b"something else")
        with pytest.raises(IntegrityError, match=re.escape(store.url("dir/k.bin"))) as caught:
            store.get_bytes("dir/k.bin", wrong)
        assert wrong in str(caught.value)
        assert sha256(b"payload") in str(caught.value)

    def test_get_file_with_wrong_sha256_raises_and_leaves_no_file(self, store, tmp_path):
        store.put_bytes(b"payload", "dir/k.bin")
        out = tmp_path / "out"
        out.mkdir()
        with pytest.raises(IntegrityError, match=re.escape(store.url("dir/k.bin"))):
            store.get_file("dir/k.bin", out / "k.bin", sha256(b"something else"))
        assert os.listdir(out) == []  # neither dest nor a temporary file

    def test_digest_is_the_sha256_and_size_of_the_object_as_it_is_now(self, store):
        store.put_bytes(b"first", "k")
        assert store.digest("k") == ObjectInfo(sha256(b"first"), 5)
        store.put_bytes(b"second!", "k")
        assert store.digest("k") == ObjectInfo(sha256(b"second!"), 7)

    def test_missing_key_raises_missing_error_naming_the_uri(self, store, tmp_path):
        uri = re.escape(store.url("no/such.key"))
        with pytest.raises(MissingError, match=uri):
            store.get_bytes("no/such.key")
        with pytest.raises(MissingError, match=uri):
            store.get_file("no/such.key", tmp_path / "dest")
        with pytest.raises(MissingError, match=uri):
            store.digest("no/such.key")
        assert not (tmp_path / "dest").exists()

    def test_url_names_the_key_under_the_store_uri(self, store):
        assert store.url("a/b.txt").endswith("/a/b.txt")
        assert store.url("a/b.txt").startswith(store.uri.rstrip("/"))

    # ---------------------------------------------------------------- listing, existence

    def test_list_is_recursive_and_sorted(self, store):
        for key in ["b/2", "a/sub/deep/3", "c", "a/1", "a/sub/0"]:
            store.put_bytes(key.encode(), key)
        assert store.list("") == ["a/1", "a/sub/0", "a/sub/deep/3", "b/2", "c"]
        assert store.list("a") == ["a/1", "a/sub/0", "a/sub/deep/3"]
        assert store.list("a/sub") == ["a/sub/0", "a/sub/deep/3"]

    def test_list_of_a_prefix_is_a_folder_not_a_string_prefix(self, store):
        store.put_bytes(b"1", "Train/fp/manifest.json")
        store.put_bytes(b"2", "TrainModel/fp/manifest.json")
        assert store.list("Train") == ["Train/fp/manifest.json"]

    def test_list_of_an_absent_prefix_is_empty(self, store):
        assert store.list("") == []
        assert store.list("nothing/here") == []

    def test_exists(self, store):
        store.put_bytes(b"x", "a/b")
        assert store.exists("a/b")
        assert not store.exists("a/c")
        assert not store.exists("a")  # a folder is not an object

    def test_exists_many_answers_for_many_keys(self, store):
        for key in ["t/1", "t/2", "u/3"]:
            store.put_bytes(b"x", key)
        asked = (k for k in ["t/1", "t/2", "u/3", "t/4", "v/5"])  # any iterable, once
        assert store.exists_many(asked) == {"t/1", "t/2", "u/3"}
        assert store.exists_many([]) == set()

    def test_delete(self, store):
        store.put_bytes(b"x", "a/b")
        store.delete("a/b")
        assert not store.exists("a/b")
        store.delete("a/b")  # deleting what is not there is not an error

    def test_target_is_a_luigi_target_for_the_key(self, store):
        target = store.target("a/b")
        assert not target.exists()
        store.put_bytes(b"x", "a/b")
        assert target.exists()
        assert str(target) == store.url("a/b")

    # ---------------------------------------------------------------- keys

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_keys_outside_the_store_are_rejected(self, store, key):
        with pytest.raises(StoreError, match="relative|\\.\\."):
            store.put_bytes(b"x", key)
        with pytest.raises(StoreError):
            store.get_bytes(key)
        with pytest.raises(StoreError):
            store.exists(key)


class TestLocalStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path) -> LocalStore:
        return LocalStore(str(tmp_path / "store"))

    def test_writes_leave_no_temporary_files(self, store, tmp_path):
        src = tmp_path / "src.bin"
        src.write_bytes(b"abc" * 1000)
        store.put_file(src, "a/x.bin")
        store.put_bytes(b"y", "a/y.bin")
        with pytest.raises(StoreError):
            store.put_file("/proc/self/mem", "a/z.bin")
        assert files_under(store.root) == ["a/x.bin", "a/y.bin"]

    def test_list_and_exists_ignore_a_write_that_was_interrupted(self, store):
        # What a writer killed before its rename leaves behind.
        store.put_bytes(b"done", "T/fp/done.txt")
        partial = store.root / "T" / "fp" / ".model.txt.tmp-0123456789abcdef"
        partial.write_bytes(b"half a mod")
        assert store.list("") == ["T/fp/done.txt"]
        assert store.list("T/fp") == ["T/fp/done.txt"]
        assert not store.exists("T/fp/model.txt")

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_rejected_keys_write_nothing_outside_the_root(self, tmp_path, key):
        store = LocalStore(str(tmp_path / "deep" / "store"))
        with pytest.raises(StoreError):
            store.put_bytes(b"x", key)
        assert files_under(tmp_path) == []

    @pytest.mark.parametrize("key", ["x.txt", "T/fp/x.txt"])
    def test_a_root_that_is_a_file_gives_a_store_error_with_path_and_remedy(self, tmp_path, key):
        root = tmp_path / "not-a-folder"
        root.write_text("I am a file")
        store = LocalStore(str(root))
        with pytest.raises(StoreError) as caught:
            store.put_bytes(b"x", key)
        message = str(caught.value)
        assert str(root) in message
        assert "MLBUILD_STORE" in message  # says how to fix it
        assert root.read_text() == "I am a file"

    def test_file_uri_is_a_local_folder(self, tmp_path):
        store = LocalStore(f"file://{tmp_path}/s")
        store.put_bytes(b"x", "k")
        assert (tmp_path / "s" / "k").read_bytes() == b"x"
        assert store.url("k") == f"file://{tmp_path}/s/k"


# -------------------------------------------------------------------- open_store


@pytest.mark.parametrize("uri", ["ftp://host/store", "gs://bucket/prefix", "http://x/y"])
def test_open_store_rejects_unknown_schemes(uri):
    with pytest.raises(ConfigError, match=re.escape(uri)):
        open_store(uri)


def test_open_store_gives_one_local_store_per_uri(tmp_path):
    first = open_store(str(tmp_path / "s"))
    assert isinstance(first, LocalStore)
    assert open_store(str(tmp_path / "s")) is first
    assert open_store(str(tmp_path / "other")) is not first


# -------------------------------------------------------------------- LocalCache


@pytest.fixture
def cache(tmp_path) -> LocalCache:
    return LocalCache(tmp_path / "cache")


@pytest.fixture
def local_store(tmp_path) -> LocalStore:
    return LocalStore(str(tmp_path / "store"))


def test_cache_fetch_returns_a_verified_read_only_copy(local_store, cache):
    info = local_store.put_bytes(b"model bytes", "m/model.txt")
    path = cache.fetch(local_store, "m/model.txt", info.sha256)
    assert path == cache.path(info.sha256)
    assert path.read_bytes() == b"model bytes"
    assert is_read_only(path)


def test_cache_fetch_of_a_corrupt_object_raises_and_caches_nothing(local_store, cache):
    local_store.put_bytes(b"tampered", "m/model.txt")
    expected = sha256(b"original")
    with pytest.raises(IntegrityError, match=re.escape(local_store.url("m/model.txt"))):
        cache.fetch(local_store, "m/model.txt", expected)
    assert files_under(cache.root) == []
    assert not cache.path(expected).exists()


def test_cache_fetch_does_not_read_the_store_again_for_a_cached_digest(local_store, cache):
    info = local_store.put_bytes(b"model bytes", "m/model.txt")
    first = cache.fetch(local_store, "m/model.txt", info.sha256)
    local_store.delete("m/model.txt")  # a second read from the store would now fail
    assert cache.fetch(local_store, "m/model.txt", info.sha256) == first
    assert first.read_bytes() == b"model bytes"


def test_cache_fetch_of_a_missing_object_raises_missing_error(local_store, cache):
    with pytest.raises(MissingError, match=re.escape(local_store.url("no/model.txt"))):
        cache.fetch(local_store, "no/model.txt", sha256(b"x"))


def test_cache_adopt_moves_the_file_in_read_only(cache):
    src = cache.tmpdir() / "out.txt"
    src.write_bytes(b"result")
    dest = cache.adopt(src, sha256(b"result"))
    assert dest == cache.path(sha256(b"result"))
    assert dest.read_bytes() == b"result"
    assert is_read_only(dest)
    assert not src.exists()


def test_cache_adopt_of_a_digest_already_cached_keeps_one_copy(cache):
    digest = sha256(b"result")
    first = cache.tmpdir() / "a"
    first.write_bytes(b"result")
    cache.adopt(first, digest)
    second = cache.tmpdir() / "b"
    second.write_bytes(b"result")
    assert cache.adopt(second, digest) == cache.path(digest)
    assert not second.exists()
    assert [p for p in files_under(cache.root) if not p.startswith("tmp/")] == [
        f"sha256/{digest[:2]}/{digest[2:]}"
    ]


# ------------------------------------------------------ one copy on disk (hard links)


def test_put_link_stores_the_file_itself_once_on_disk(local_store, tmp_path):
    src = tmp_path / "result.bin"
    src.write_bytes(b"result bytes")
    info = local_store.put_link(src, "T/fp/result.bin")
    stored = local_store.root / "T/fp/result.bin"
    assert info == ObjectInfo(sha256(b"result bytes"), 12)
    assert stored.read_bytes() == b"result bytes"
    assert stored.stat().st_ino == src.stat().st_ino  # the same file, not a copy
    assert local_store.list("T") == ["T/fp/result.bin"]  # no temporary name left


def test_cache_fetch_from_a_folder_store_links_the_verified_file(local_store, cache):
    info = local_store.put_bytes(b"model bytes", "m/model.txt")
    path = cache.fetch(local_store, "m/model.txt", info.sha256)
    assert path.stat().st_ino == (local_store.root / "m/model.txt").stat().st_ino
    assert is_read_only(path)


def test_a_result_built_into_a_folder_store_shares_one_file_with_the_cache(local_store, cache):
    out = cache.tmpdir() / "out.txt"
    out.write_bytes(b"result")
    info = local_store.put_link(out, "T/fp/out.txt")
    cached = cache.adopt(out, info.sha256)
    assert cached.stat().st_ino == (local_store.root / "T/fp/out.txt").stat().st_ino
    assert cached.stat().st_nlink == 2
    local_store.delete("T/fp/out.txt")  # gc of the store leaves the cache's name whole
    assert cached.read_bytes() == b"result"


def test_get_link_verifies_before_it_links(local_store, cache):
    local_store.put_bytes(b"tampered", "m/model.txt")
    with pytest.raises(IntegrityError):
        cache.fetch(local_store, "m/model.txt", sha256(b"original"))
    assert [p for p in files_under(cache.root) if not p.startswith("tmp/")] == []


def test_where_links_fail_the_folder_store_copies(local_store, cache, tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    src = tmp_path / "result.bin"
    src.write_bytes(b"across devices")
    info = local_store.put_link(src, "T/fp/result.bin")
    stored = local_store.root / "T/fp/result.bin"
    assert stored.read_bytes() == b"across devices"
    assert stored.stat().st_ino != src.stat().st_ino
    path = cache.fetch(local_store, "T/fp/result.bin", info.sha256)
    assert path.read_bytes() == b"across devices"
    assert path.stat().st_ino != stored.stat().st_ino
