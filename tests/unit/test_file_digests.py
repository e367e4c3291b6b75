"""The sha256 of a file:// source is remembered while the file's stat is unchanged."""

from __future__ import annotations

import hashlib
import os

from mlbuild.data import file_digests
from mlbuild.data.file_digests import file_sha256


def entries(env) -> list[str]:
    folder = env.cache_dir / file_digests.FOLDER
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_a_settled_file_is_hashed_once_and_a_changed_one_again(env, monkeypatch):
    monkeypatch.setattr(file_digests, "SETTLE", 0.0)
    data = env.root / "data.csv"
    data.write_text("a,b\n1,2\n")
    first = file_sha256(data)
    assert first == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert len(entries(env)) == 1
    (env.cache_dir / file_digests.FOLDER / entries(env)[0]).write_text("remembered")
    assert file_sha256(data) == "remembered"  # not read again
    data.write_text("a,b\n1,3\n")  # a write changes its stat: hashed again
    assert file_sha256(data) == hashlib.sha256(b"a,b\n1,3\n").hexdigest()


def test_a_file_written_just_now_is_not_remembered(env):
    data = env.root / "data.csv"
    data.write_text("a\n1\n")
    assert file_sha256(data) == hashlib.sha256(b"a\n1\n").hexdigest()
    assert entries(env) == []


def test_a_file_with_its_old_mtime_restored_is_still_hashed_again(env, monkeypatch):
    monkeypatch.setattr(file_digests, "SETTLE", 0.0)
    data = env.root / "data.csv"
    data.write_text("a\n1\n")
    file_sha256(data)
    st = data.stat()
    data.write_text("a\n2\n")
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))  # the ctime still moves
    assert file_sha256(data) == hashlib.sha256(b"a\n2\n").hexdigest()
