"""BuildTask: fingerprinted outputs, manifest last, verified inputs (DESIGN.md 1-3).

The tiny tasks below run through Luigi itself (local scheduler, in this process) against
a real store and cache in a temporary folder (the ``env`` fixture).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import luigi
import pytest

from mlbuild.core import manifest as manifest_mod
from mlbuild.core.fingerprint import diff_inputs
from mlbuild.core.manifest import MANIFEST, Manifest
from mlbuild.core.task import BuildTask, flatten
from mlbuild.errors import BuildError

from ._helpers import build, files_under, is_read_only, sha256

SEEN: dict[str, dict] = {}  # what build() was handed, by task id


class USource(BuildTask):
    n = luigi.IntParameter(default=1)
    note = luigi.Parameter(default="", significant=False)
    outputs: ClassVar = {"data": "data.txt", "meta": "meta.json"}

    def build(self, inputs, outputs):
        outputs["data"].write_text(f"n={self.n}\n")
        outputs["meta"].write_text(json.dumps({"n": self.n}))
        return {"rows": self.n}


class UDouble(BuildTask):
    n = luigi.IntParameter(default=1)
    outputs: ClassVar = {"out": "out.txt"}

    def requires(self):
        return {"src": USource(n=self.n)}

    def build(self, inputs, outputs):
        path = inputs["src"]["data"]
        SEEN[self.task_id] = {
            "inputs": inputs,
            "text": path.read_text(),
            "read_only": {name: is_read_only(p) for name, p in inputs["src"].items()},
        }
        outputs["out"].write_text(path.read_text() * 2)


class UConfigured(BuildTask):
    rate = luigi.FloatParameter(default=0.1)
    outputs: ClassVar = {"out": "out.txt"}

    def settings(self):
        return {"train": {"rate": self.rate, "trees": {"n": 10}}}

    def data_digests(self):
        return {"raw": "0" * 64}

    def build(self, inputs, outputs):
        outputs["out"].write_text("ok")


class UForgetsOutput(BuildTask):
    outputs: ClassVar = {"written": "written.txt", "forgotten": "forgotten.txt"}

    def requires(self):
        return {"src": USource(n=7)}

    def build(self, inputs, outputs):
        outputs["written"].write_text("here")


class URaises(BuildTask):
    outputs: ClassVar = {"out": "out.txt"}

    def requires(self):
        return {"src": USource(n=8)}

    def build(self, inputs, outputs):
        outputs["out"].write_text("half of it")
        raise RuntimeError("the build broke half way")


class UListRequires(BuildTask):
    outputs: ClassVar = {"out": "out.txt"}

    def requires(self):
        return [USource(n=9)]

    def build(self, inputs, outputs):  # pragma: no cover - never reached
        outputs["out"].write_text("x")


class UNotATaskRequires(UListRequires):
    def requires(self):
        return {"plain": "/data/raw.csv"}


def failure_kinds(env) -> list[tuple[str, str]]:
    return [(f.kind, f.message) for f in env.failures()]


# -------------------------------------------------------------------- completeness


def test_a_task_is_complete_exactly_when_its_manifest_exists(env):
    task = USource(n=1)
    assert not task.complete()
    assert build(task).scheduling_succeeded
    assert task.complete()
    assert env.store.exists(f"{task.prefix}/{MANIFEST}")
    env.store.delete(f"{task.prefix}/{MANIFEST}")
    assert env.store.exists(f"{task.prefix}/data.txt")  # the outputs are still there
    assert not task.complete()


def test_outputs_without_a_manifest_are_not_a_result(env):
    task = USource(n=2)
    env.store.put_bytes(b"n=2\n", f"{task.prefix}/data.txt")
    env.store.put_bytes(b'{"n": 2}', f"{task.prefix}/meta.json")
    assert not task.complete()
    build(task)
    assert task.complete()


def test_outputs_live_under_family_and_fingerprint(env):
    task = USource(n=3)
    build(task)
    assert task.prefix == f"USource/{task.fingerprint}"
    assert re.fullmatch(r"[0-9a-f]{32}", task.fingerprint)
    assert env.store.list("USource") == [
        f"{task.prefix}/data.txt", f"{task.prefix}/{MANIFEST}", f"{task.prefix}/meta.json",
    ]


def test_a_complete_task_does_not_run_again(env):
    task = USource(n=4)
    build(task)
    before = env.snapshot()
    result = build(USource(n=4))
    assert result.scheduling_succeeded
    assert env.snapshot() == before
    assert "already" in result.summary_text or "complete" in result.summary_text


# -------------------------------------------------------------------- the manifest


@pytest.fixture
def known_commit(tmp_path, monkeypatch):
    """Make git_commit() answer for a fresh repository with one known commit."""
    if shutil.which("git") is None:  # e.g. in the test image, which has no git
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q",
        "--allow-empty", "-m", "one")
    commit = git("rev-parse", "HEAD")
    manifest_mod.git_commit.cache_clear()
    with monkeypatch.context() as m:
        m.chdir(repo)
        assert manifest_mod.git_commit() == commit  # cached from here on
    yield commit
    manifest_mod.git_commit.cache_clear()


def test_the_manifest_records_outputs_inputs_and_provenance(env, known_commit):
    task = USource(n=5)
    build(task)
    raw = env.store.get_bytes(f"{task.prefix}/{MANIFEST}")
    manifest = Manifest.from_json(raw, "test")
    assert manifest == task.read_manifest()
    assert manifest.family == "USource"
    assert manifest.task_id == task.task_id
    assert manifest.fingerprint == task.fingerprint
    assert manifest.inputs == task.fingerprint_inputs()
    assert manifest.inputs["params"] == {"n": "5"}  # the insignificant `note` is not there
    assert set(manifest.inputs["code"]) == {USource.__module__}
    data, meta = b"n=5\n", json.dumps({"n": 5}).encode()
    assert {n: (r.file, r.sha256, r.size) for n, r in manifest.outputs.items()} == {
        "data": ("data.txt", sha256(data), len(data)),
        "meta": ("meta.json", sha256(meta), len(meta)),
    }
    assert env.store.get_bytes(f"{task.prefix}/data.txt", manifest.outputs["data"].sha256) == data
    assert manifest.git_commit == known_commit
    assert manifest.host and manifest.python
    assert manifest.extra == {"rows": 5}
    started = datetime.fromisoformat(manifest.started)
    finished = datetime.fromisoformat(manifest.finished)
    assert started.tzinfo is not None and started <= finished


def test_settings_and_data_digests_are_part_of_the_fingerprint(env):
    inputs = UConfigured().fingerprint_inputs()
    assert inputs["params"] == {"rate": "0.1", "train.rate": 0.1, "train.trees.n": 10}
    assert inputs["data"] == {"raw": "0" * 64}
    assert UConfigured(rate=0.2).fingerprint != UConfigured().fingerprint


def test_flatten_gives_dotted_keys():
    assert flatten({"a": {"b": 1, "c": {"d": [2]}}, "e": "f"}) == {"a.b": 1, "a.c.d": [2], "e": "f"}


# -------------------------------------------------------------------- fingerprints


def test_a_parameter_changes_the_fingerprint_and_everything_downstream(env):
    one, two = UDouble(n=1), UDouble(n=2)
    assert USource(n=1).fingerprint != USource(n=2).fingerprint
    assert one.fingerprint != two.fingerprint
    lines = diff_inputs(one.fingerprint_inputs(), two.fingerprint_inputs(),
                        families={"src": "USource"})
    assert lines == ["parameter n: 1 -> 2", "upstream task src (USource) changed"]


def test_the_same_parameters_give_the_same_fingerprint(env):
    first = UDouble(n=3).fingerprint
    luigi.task_register.Register.clear_instance_cache()
    assert UDouble(n=3).fingerprint == first
    assert USource(n=3, note="a").fingerprint == USource(n=3, note="b").fingerprint


def test_reverting_a_change_finds_the_old_result_again(env):
    build(UDouble(n=1))
    build(UDouble(n=2))
    assert not UDouble(n=3).complete()
    before = env.snapshot()
    build(UDouble(n=1))
    assert env.snapshot() == before
    assert UDouble(n=1).complete() and UDouble(n=2).complete()


# -------------------------------------------------------------------- failed builds


def test_a_build_that_does_not_write_a_declared_output_fails_without_a_manifest(env):
    task = UForgetsOutput()
    result = build(task)
    assert not task.complete()
    assert "UForgetsOutput" in result.summary_text
    kinds = failure_kinds(env)
    assert [k for k, _ in kinds] == ["BuildError"]
    assert "output(s) forgotten." in kinds[0][1]  # names the missing one, and only it
    assert env.store.list("UForgetsOutput") == []


def test_a_build_that_raises_leaves_the_store_unchanged(env):
    build(USource(n=8))
    before = env.snapshot()
    task = URaises()
    build(task)
    assert not task.complete()
    assert env.snapshot() == before  # no output, no manifest, no temporary file
    assert [(f.kind, f.message) for f in env.failures()] == [
        ("RuntimeError", "RuntimeError: the build broke half way")
    ]
    assert files_under(env.cache_dir / "tmp") == []  # the work folder is gone too


@pytest.mark.parametrize("task_cls", [UListRequires, UNotATaskRequires])
def test_requires_must_return_a_dict_of_tasks(env, task_cls):
    with pytest.raises(BuildError, match=rf"{task_cls.__name__}\.requires\(\) must return"):
        _ = task_cls().fingerprint
    luigi.task_register.Register.clear_instance_cache()
    result = build(task_cls())
    assert not result.scheduling_succeeded
    assert [k for k, _ in failure_kinds(env)] == ["BuildError"]
    assert env.store.list("") == []


# -------------------------------------------------------------------- inputs


def test_upstream_outputs_are_handed_in_as_verified_read_only_local_files(env):
    task = UDouble(n=6)
    build(task)
    seen = SEEN[task.task_id]
    assert set(seen["inputs"]) == {"src"}
    assert set(seen["inputs"]["src"]) == {"data", "meta"}
    assert seen["text"] == "n=6\n"
    assert seen["read_only"] == {"data": True, "meta": True}
    for path in seen["inputs"]["src"].values():
        assert Path(path).is_relative_to(env.cache_dir)
    assert env.store.get_bytes(f"{task.prefix}/out.txt") == b"n=6\nn=6\n"


def test_fetch_outputs_gives_this_tasks_outputs_as_local_files(env):
    task = USource(n=10)
    build(task)
    env.fresh_cache("other-cache")
    paths = task.fetch_outputs()
    assert paths["data"].read_text() == "n=10\n"
    assert paths["data"].is_relative_to(env.cache_dir)


def test_a_tampered_upstream_output_stops_the_downstream_task(env):
    upstream = USource(n=11)
    build(upstream)
    key = f"{upstream.prefix}/data.txt"
    env.store.put_bytes(b"n=1100\n", key)  # changed in the store after it was recorded
    env.fresh_cache("fresh-cache")  # as on another machine: nothing cached yet
    downstream = UDouble(n=11)
    build(downstream)
    assert not downstream.complete()
    assert downstream.task_id not in SEEN  # build() never saw the bad bytes
    (failure,) = env.failures()
    assert failure.kind == "StoreIntegrityError"  # an IntegrityError of the store
    assert env.store.url(key) in failure.message
    assert env.store.list("UDouble") == []


def test_a_manifest_of_another_fingerprint_is_refused(env):
    task = USource(n=12)
    build(task)
    other = USource(n=13)
    key = f"{other.prefix}/{MANIFEST}"
    env.store.put_bytes(env.store.get_bytes(f"{task.prefix}/{MANIFEST}"), key)
    with pytest.raises(BuildError, match=re.escape(env.store.url(key))):
        other.read_manifest()


class UProgress(BuildTask):
    outputs: ClassVar = {"out": "out.txt"}

    def build(self, inputs, outputs):
        from mlbuild.store.progress import report_progress

        for i in range(1, 4):
            self.progress(i, 3, "step")
        report_progress(5, 10, "chunks predicted")  # library code, told through the task
        outputs["out"].write_text("ok")


def test_progress_reaches_the_scheduler_and_is_passed_on_at_most_once_a_second(env):
    told = []

    class Recorder(luigi.scheduler.Scheduler):
        def set_task_status_message(self, task_id, status_message):
            told.append(status_message)
            return super().set_task_status_message(task_id, status_message)

    worker = luigi.worker.Worker(scheduler=Recorder())
    with worker:
        worker.add(UProgress())
        assert worker.run()
    # The first report, then the last of each kind (the end always gets through).
    assert told == ["step 1/3", "step 3/3"]


def test_progress_outside_a_luigi_worker_is_silent(env):
    UProgress().progress(1, 2, "step")  # no worker lent the task a reporter: no error
