"""models.lock: round trip, byte-stable writes, clear errors, serialised updates."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import re
from pathlib import Path

import pytest

from mlbuild.errors import ConfigError, MissingError
from mlbuild.release.lockfile import VERSION, LockFile, ModelEntry
from mlbuild.release.registry import publish_model
from mlbuild.store import LocalStore


def entry(n: int = 1, **metrics) -> ModelEntry:
    return ModelEntry(
        uri=f".mlbuild/store/models/m/sha256-{n:064x}/model.txt",
        sha256=f"{n:064x}",
        size=100 + n,
        fingerprint=f"{n:032x}",
        created="2026-11-27T18:40:02.113+00:00",
        metrics=metrics or {"accuracy": 0.97, "balanced_accuracy": 0.96},
    )


LOCK = LockFile({"zeta": entry(2), "digits": entry(1)})


def test_a_lock_round_trips(tmp_path):
    path = tmp_path / "models.lock"
    LOCK.write(path)
    assert LockFile.read(path) == LOCK
    assert LockFile.read(path).entry("digits") == entry(1)


def test_a_missing_lock_is_empty(tmp_path):
    assert LockFile.read(tmp_path / "models.lock") == LockFile()


def test_the_text_has_sorted_keys_one_field_per_line(tmp_path):
    path = tmp_path / "models.lock"
    LockFile({"zeta": entry(2, z=1, a=2), "digits": entry(1)}).write(path)
    text = path.read_text()
    assert text.index('"digits"') < text.index('"zeta"')
    assert text.index('"a": 2') < text.index('"z": 1')
    assert text.index('"models"') < text.index('"version"')
    assert text.endswith("}\n")
    raw = json.loads(text)
    assert raw["version"] == VERSION
    assert text == json.dumps(raw, sort_keys=True, indent=2) + "\n"


def test_the_text_does_not_depend_on_insertion_order():
    reordered = LockFile(dict(reversed(list(LOCK.models.items()))))
    assert list(reordered.models) != list(LOCK.models)
    assert reordered.to_text() == LOCK.to_text()


def test_writing_an_unchanged_lock_leaves_the_file_untouched(tmp_path):
    path = tmp_path / "models.lock"
    LOCK.write(path)
    old = 1_600_000_000_000_000_000
    os.utime(path, ns=(old, old))
    before = path.read_bytes()
    inode = path.stat().st_ino

    LockFile.read(path).write(path)
    LOCK.with_model("digits", entry(1)).write(path)

    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == old
    assert path.stat().st_ino == inode
    assert sorted(os.listdir(tmp_path)) == ["models.lock"]


def test_writing_a_changed_lock_replaces_it_without_leftovers(tmp_path):
    path = tmp_path / "models.lock"
    LOCK.write(path)
    LOCK.with_model("digits", entry(3)).write(path)
    assert LockFile.read(path).entry("digits") == entry(3)
    assert LockFile.read(path).entry("zeta") == entry(2)
    assert sorted(os.listdir(tmp_path)) == ["models.lock"]


@pytest.mark.parametrize(
    "text, why",
    [
        ('{"version": 2, "models": {}}', "version 2"),
        ('{"models": {}}', "version None"),
        ("this is not json", ""),
        ("[1, 2, 3]", ""),
        ('{"version": 1}', "models"),
        ('{"version": 1, "models": {"m": {"uri": "x"}}}', ""),
        ('{"version": 1, "models": {"m": "text"}}', ""),
        ("", ""),
    ],
)
def test_a_bad_lock_is_a_config_error_naming_the_file(tmp_path, text, why):
    path = tmp_path / "models.lock"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(str(path))) as caught:
        LockFile.read(path)
    assert why in str(caught.value)
    assert "Hint:" in str(caught.value)


def test_entry_of_an_unknown_model_lists_the_known_ones():
    with pytest.raises(MissingError, match=r"'ditigs'.*it has: digits, zeta") as caught:
        LOCK.entry("ditigs", "path/models.lock")
    assert "path/models.lock" in str(caught.value)


def test_entry_of_an_empty_lock_says_none():
    with pytest.raises(MissingError, match="it has: none"):
        LockFile().entry("digits")


def test_with_model_returns_a_new_lock():
    updated = LOCK.with_model("new", entry(4))
    assert set(updated.models) == {"digits", "zeta", "new"}
    assert set(LOCK.models) == {"digits", "zeta"}


DATA = {"task": "SplitData", "fingerprint": "a" * 32, "output": "train",
        "file": "train.rows.arrow", "sha256": "b" * 64, "snapshot": None}


def test_the_data_field_round_trips(tmp_path):
    path = tmp_path / "models.lock"
    with_data = LOCK.with_model("digits", dataclasses.replace(entry(1), data=DATA))
    with_data.write(path)
    assert LockFile.read(path) == with_data
    assert LockFile.read(path).entry("digits").data == DATA
    assert json.loads(path.read_text())["models"]["digits"]["data"]["snapshot"] is None


def test_a_lock_without_data_is_written_as_before_the_field_existed(tmp_path):
    text = LOCK.to_text()
    assert '"data"' not in text and '"incomparable"' not in text
    old = json.loads(text)  # what a lock written before the optional fields looks like
    assert set(old["models"]["digits"]) == {"uri", "sha256", "size", "fingerprint", "created",
                                             "metrics", "baseline"}
    path = tmp_path / "models.lock"
    path.write_text(text)
    assert LockFile.read(path).to_text() == text


def test_update_reads_changes_and_writes_the_lock(tmp_path):
    path = tmp_path / "models.lock"
    LOCK.write(path)
    written = LockFile.update(path, lambda lock: lock.with_model("new", entry(4)))
    assert LockFile.read(path) == written
    assert set(written.models) == {"digits", "zeta", "new"}


def test_update_leaves_the_lock_as_it_was_when_the_change_raises(tmp_path):
    path = tmp_path / "models.lock"
    LOCK.write(path)
    before = path.read_bytes()

    def refuse(lock):
        raise MissingError("no such model")

    with pytest.raises(MissingError):
        LockFile.update(path, refuse)
    assert path.read_bytes() == before
    # the file lock was released: the next update does not wait
    LockFile.update(path, lambda lock: lock.with_model("new", entry(4)))
    assert "new" in LockFile.read(path).models


def _publish_many(lock: str, store: str, worker: int, count: int, start) -> None:
    """One worker process: ``count`` publishes of distinct model names to one lock."""
    start.wait(timeout=60)  # all at once, so that the publishes overlap
    for i in range(count):
        model = Path(store).parent / f"model-{worker}-{i}.txt"
        model.write_bytes(f"model {worker} {i}\n".encode())
        publish_model(LocalStore(store), lock, f"m{worker}-{i}", model,
                      sha256=hashlib.sha256(model.read_bytes()).hexdigest(), filename="model.txt",
                      fingerprint=f"{worker:016x}{i:016x}", created="2026-12-01T00:00:00+00:00",
                      metrics={"accuracy": 0.9})


def test_concurrent_publishes_from_four_processes_lose_no_entry(tmp_path):
    lock, store = tmp_path / "models.lock", tmp_path / "store"
    workers, count = 4, 25
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(workers)
    processes = [spawn.Process(target=_publish_many, args=(str(lock), str(store), w, count, start))
                 for w in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    names = set(LockFile.read(lock).models)
    assert names == {f"m{w}-{i}" for w in range(workers) for i in range(count)}
