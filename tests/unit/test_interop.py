"""interop: plain Luigi targets as fingerprinted, verified inputs; outputs as Luigi targets.

Local files only (S3 targets run against a real S3 server in
tests/integration/test_luigi_interop.py). Tasks run through Luigi in this process against
a real store and cache in a temporary folder (the ``env`` fixture).
"""

from __future__ import annotations

import os
import re
import time
from typing import ClassVar

import luigi
import luigi.task_register
import pytest
from luigi.execution_summary import LuigiStatusCode

from mlbuild.ci.status import task_state
from mlbuild.core import interop
from mlbuild.core.task import BuildTask
from mlbuild.errors import BuildError, MissingError

from ._helpers import build, is_read_only

SEEN: dict[str, dict] = {}


class Raw(luigi.ExternalTask):
    path = luigi.Parameter()

    def output(self):
        return luigi.LocalTarget(self.path)


class RawPair(luigi.ExternalTask):
    folder = luigi.Parameter()

    def output(self):
        return {"a": luigi.LocalTarget(f"{self.folder}/a.txt"),
                "b": luigi.LocalTarget(f"{self.folder}/b.txt")}


class RawList(RawPair):
    def output(self):
        return list(super().output().values())


class MakesRaw(luigi.Task):
    """A runnable plain task: Luigi must run it before the BuildTask that requires it."""

    path = luigi.Parameter()

    def output(self):
        return luigi.LocalTarget(self.path)

    def run(self):
        with self.output().open("w") as f:
            f.write("made by a plain task\n")


class Elsewhere(luigi.Target):
    def exists(self):
        return True


class Foreign(luigi.ExternalTask):
    arg = luigi.Parameter(default="")

    def output(self):
        return Elsewhere()


class Nothing(luigi.WrapperTask):
    pass


class Consume(BuildTask):
    """Copies whatever its plain upstream hands in; ``upstream`` picks which one."""

    upstream_task = luigi.TaskParameter()
    arg = luigi.Parameter()
    outputs: ClassVar = {"out": "out.txt"}

    def requires(self):
        return {"raw": self.upstream_task(self.arg)}

    def build(self, inputs, outputs):
        files = inputs["raw"]
        SEEN[self.task_id] = {
            "names": sorted(files),
            "read_only": all(is_read_only(p) for p in files.values()),
            "paths": dict(files),
        }
        outputs["out"].write_text("".join(files[k].read_text() for k in sorted(files)))


def consume(task_cls, arg) -> Consume:
    return Consume(upstream_task=task_cls, arg=str(arg))


def fresh(task_cls, arg) -> Consume:
    """A new instance (as in a new process): nothing remembered on the task object."""
    luigi.task_register.Register.clear_instance_cache()
    return consume(task_cls, arg)


@pytest.fixture
def memo(monkeypatch):
    """A fresh in-process memo, counting the files actually hashed."""
    monkeypatch.setattr(interop, "_MEMOS", {})
    hashed: list[str] = []
    digest = interop.file_digest

    def counting(path):
        hashed.append(str(path))
        return digest(path)

    monkeypatch.setattr(interop, "file_digest", counting)
    return hashed


def age(path, seconds: float = 3600) -> None:
    """Set the file's mtime in the past (beyond the racy window)."""
    then = time.time() - seconds
    os.utime(path, (then, then))


# ------------------------------------------------------------------------ inputs


def test_a_plain_local_target_reaches_build_as_a_verified_read_only_cached_file(env, memo):
    raw = env.root / "raw.csv"
    raw.write_text("x,y\n1,2\n")
    task = consume(Raw, raw)
    assert not task.complete()
    assert build(task).scheduling_succeeded
    assert task.complete()
    seen = SEEN[task.task_id]
    assert seen["names"] == ["output"] and seen["read_only"]
    assert seen["paths"]["output"].is_relative_to(env.cache_dir)
    assert env.store.get_bytes(f"{task.prefix}/out.txt") == b"x,y\n1,2\n"
    assert raw.stat().st_mode & 0o200  # the user's own file is left as it was
    manifest = task.read_manifest()
    assert manifest.inputs["upstream"]["raw"] == {"output": f"sha256:{interop.file_digest(raw).sha256}"}


@pytest.mark.parametrize("task_cls, names", [(RawPair, ["a", "b"]), (RawList, ["0", "1"])])
def test_a_dict_of_targets_keeps_its_keys_and_a_list_is_named_by_position(env, memo, task_cls,
                                                                             names):
    (env.root / "a.txt").write_text("A")
    (env.root / "b.txt").write_text("B")
    task = consume(task_cls, env.root)
    assert build(task).scheduling_succeeded
    assert SEEN[task.task_id]["names"] == names
    assert env.store.get_bytes(f"{task.prefix}/out.txt") == b"AB"


def test_a_runnable_plain_task_runs_first(env, memo):
    path = env.root / "made.txt"
    task = consume(MakesRaw, path)
    assert not task.complete()  # not an error: the plain task has not run yet
    assert env.failures() == []
    assert build(task).scheduling_succeeded
    assert path.read_text() == "made by a plain task\n"
    assert fresh(MakesRaw, path).complete()


# ------------------------------------------------------------------------ fingerprints


def test_a_touched_but_identical_file_keeps_its_fingerprint(env, memo):
    raw = env.root / "raw.csv"
    raw.write_text("1,2\n")
    before = consume(Raw, raw).fingerprint
    os.utime(raw, (time.time() + 5, time.time() + 5))
    assert fresh(Raw, raw).fingerprint == before
    assert memo == [str(raw.absolute())] * 2  # hashed again (new mtime), same digest


def test_changed_content_changes_the_fingerprint_even_at_the_same_size(env, memo):
    raw = env.root / "raw.csv"
    raw.write_text("1,2\n")
    before = consume(Raw, raw).fingerprint
    raw.write_text("3,4\n")  # same size, perhaps the same timestamp tick
    assert fresh(Raw, raw).fingerprint != before


def test_an_unchanged_file_is_hashed_once_per_stat_signature_across_processes(env, memo,
                                                                              monkeypatch):
    raw = env.root / "raw.csv"
    raw.write_text("1,2\n")
    age(raw)
    monkeypatch.setattr(interop, "RACY_SECONDS", 0.0)  # ctime is always now after utime
    first = consume(Raw, raw).fingerprint
    assert fresh(Raw, raw).fingerprint == first
    monkeypatch.setattr(interop, "_MEMOS", {})  # a new process: only the file on disk
    assert fresh(Raw, raw).fingerprint == first
    assert memo == [str(raw.absolute())]
    assert (env.cache_dir / interop.MEMO_FILE).is_file()


def test_a_freshly_written_file_is_not_remembered(env, memo):
    raw = env.root / "raw.csv"
    raw.write_text("1,2\n")
    first = consume(Raw, raw).fingerprint
    assert fresh(Raw, raw).fingerprint == first
    assert len(memo) == 2  # within RACY_SECONDS of its change: hashed each time


def test_a_broken_memo_file_is_ignored(env, memo, monkeypatch):
    raw = env.root / "raw.csv"
    raw.write_text("1,2\n")
    env.cache_dir.mkdir(parents=True, exist_ok=True)
    (env.cache_dir / interop.MEMO_FILE).write_text("{not json")
    assert consume(Raw, raw).fingerprint


def test_a_file_changed_after_fingerprinting_stops_the_build(env, memo):
    raw = env.root / "raw.csv"
    raw.write_text("1,2\n")
    task = consume(Raw, raw)
    assert not task.complete()  # the fingerprint is taken now
    raw.write_text("9,9,9\n")
    build(task)
    assert not task.complete()
    assert task.task_id not in SEEN
    (failure,) = env.failures()
    assert failure.kind == "IntegrityError"
    assert str(raw.absolute()) in failure.message and "changed after it was fingerprinted" in failure.message
    assert env.store.list("Consume") == []


# ------------------------------------------------------------------------ errors


def test_a_missing_file_is_a_missing_error_naming_the_target_and_its_task(env, memo):
    path = env.root / "absent.csv"
    with pytest.raises(MissingError, match=re.escape(str(path))) as raised:
        interop.identity(Raw(path=str(path)))
    assert "Raw(path=" in str(raised.value) and "Hint:" in str(raised.value)
    task = consume(Raw, path)
    assert not task.complete()  # Luigi then reports the missing external data
    assert build(task).status == LuigiStatusCode.MISSING_EXT
    assert env.failures() == []
    state = task_state(fresh(Raw, path))
    assert not state.complete and str(path) in state.reasons[0]


def test_an_unsupported_target_type_is_a_build_error_saying_what_is_supported(env, memo):
    with pytest.raises(BuildError, match=r"Elsewhere.*can only fingerprint luigi\.LocalTarget "
                                         r"or luigi\.contrib\.s3\.S3Target"):
        _ = consume(Foreign, "").fingerprint


def test_a_plain_task_without_outputs_is_refused(env, memo):
    with pytest.raises(BuildError, match=r"output\(\) must be a target.*Hint: .*after\(\)"):
        interop.identity(Nothing())


def test_a_folder_target_is_refused(env, memo):
    with pytest.raises(BuildError, match=r"is the folder"):
        interop.identity(Raw(path=str(env.root)))


# ------------------------------------------------------------------------ downstream


class Source(BuildTask):
    outputs: ClassVar = {"data": "data.txt", "meta": "meta.json"}

    def build(self, inputs, outputs):
        outputs["data"].write_text("some data\n")
        outputs["meta"].write_text("{}")


class PlainReader(luigi.Task):
    dest = luigi.Parameter()

    def requires(self):
        return Source()

    def output(self):
        return luigi.LocalTarget(self.dest)

    def run(self):
        with self.input()["data"].open("r") as f, self.output().open("w") as out:
            out.write(f.read().upper())


def test_a_plain_task_reads_named_outputs_through_local_targets(env):
    dest = env.root / "upper.txt"
    assert build(PlainReader(dest=str(dest))).scheduling_succeeded
    assert dest.read_text() == "SOME DATA\n"
    targets = Source().output()
    assert set(targets) == {"data", "meta"}
    assert all(isinstance(t, luigi.LocalTarget) for t in targets.values())
    assert targets["data"].path == str(env.store.root / Source().prefix / "data.txt")


def test_completeness_is_the_manifest_not_the_output_targets(env):
    task = Source()
    for target in task.output().values():
        os.makedirs(os.path.dirname(target.path), exist_ok=True)
        with open(target.path, "w") as f:
            f.write("left behind by a crash")
    assert not task.complete()
    build(task)
    assert task.complete() and task.result_exists()
    os.unlink(task.output()["meta"].path)
    assert task.complete()  # a lost output file is found by verification, not here
