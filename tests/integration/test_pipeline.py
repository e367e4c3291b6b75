"""The reference pipeline end to end, in real subprocesses: no-op re-runs, exact
invalidation, resume after SIGKILL, and deterministic training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import edited_digits, ok, wait_for

pytestmark = pytest.mark.integration

ALL = {"FetchData", "ValidateData", "SplitData", "CheckDrift", "TrainModel", "EvaluateAccuracy",
       "PublishModel"}
FROM_TRAIN = {"TrainModel", "EvaluateAccuracy", "PublishModel"}


def test_full_pipeline_builds_everything_and_writes_the_lock(built_project):
    families = {key.split("/")[0] for key in built_project.manifests()}
    assert families == ALL
    lock = built_project.lock.read_text()
    assert '"digits"' in lock and "sha256-" in lock
    model = next(built_project.store.glob("models/digits/sha256-*/model.txt"))
    assert model.read_bytes() == next(built_project.store.glob("TrainModel/*/model.txt")).read_bytes()


def test_second_run_is_a_no_op_and_leaves_the_lock_byte_identical(built):
    before, lock = built.manifests(), built.lock.read_bytes()
    result = ok(built.luigi())
    assert "Did not run any tasks" in result.stderr
    assert built.ran_since(before) == set()
    assert built.lock.read_bytes() == lock


def _train_iterations(project, value):
    project.edit("configs/pipeline.toml", "num_iterations = 100", f"num_iterations = {value}")


def _comment(project):
    project.edit("tasks/train.py", "class TrainModel(BuildTask):",
                 "# A comment and a blank line change no result.\n\nclass TrainModel(BuildTask):")


def _training_code(project):
    project.edit("tasks/training.py", "    table = open_table(rows)",
                 "    table = open_table(rows)\n    table = table.take(range(len(table)))")


def _threshold(project):
    project.edit("configs/pipeline.toml", "min = 0.90", "min = 0.85")


def _data_source(project):
    # The digits, as a local file with one value changed.
    edited_digits().to_csv(project.root / "digits.csv", index=False)
    project.edit("configs/pipeline.toml", 'source = "builtin:digits"', 'source = "file://digits.csv"')


EDITS = {
    "train parameter": (lambda p: _train_iterations(p, 60), FROM_TRAIN),
    "comment in a task module": (_comment, set()),
    "training code": (_training_code, FROM_TRAIN),
    "gate threshold": (_threshold, {"EvaluateAccuracy", "PublishModel"}),
    "data source": (_data_source, ALL),
}


@pytest.mark.parametrize("name", EDITS)
def test_an_edit_re_runs_exactly_the_tasks_it_affects_and_reverting_re_uses(built, name):
    edit, expected = EDITS[name]
    pristine = {rel: (built.root / rel).read_text()
                for rel in ("configs/pipeline.toml", "tasks/train.py", "tasks/training.py")}
    lock = built.lock.read_bytes()

    before = built.manifests()
    edit(built)
    ok(built.luigi())
    assert built.ran_since(before) == expected

    for rel, text in pristine.items():
        (built.root / rel).write_text(text)
    before = built.manifests()
    ok(built.luigi())
    ran = built.ran_since(before)
    # Nothing is trained again. Where the edit had published another model, the earlier
    # one is now a candidate against that released model: it is evaluated against it
    # and published again, and the lock records that comparison.
    if "TrainModel" in expected:
        # (the drift gate, too, when the data changed: the lock names the edited data now)
        assert ran == {"EvaluateAccuracy", "PublishModel"} | (expected & {"CheckDrift"})
        entry, before_entry = json.loads(built.lock.read_text()), json.loads(lock)
        assert entry["models"]["digits"]["sha256"] == before_entry["models"]["digits"]["sha256"]
        assert entry["models"]["digits"]["baseline"] is not None
    else:
        assert ran == set()
        assert built.lock.read_bytes() == lock


def test_status_names_what_changed(built):
    _train_iterations(built, 60)
    result = ok(built.mlbuild("status", "PublishModel"))
    lines = result.stdout
    assert "TrainModel()" in lines and "to run" in lines
    assert "parameter train.params.num_iterations: 100 -> 60" in lines
    assert "upstream task model (TrainModel) changed" in lines
    assert "FetchData()" in lines.split("TrainModel()")[0]
    assert lines.strip().endswith("4 of 7 complete")


def test_two_runs_in_two_empty_stores_give_byte_identical_models(built_project, project):
    ok(project.luigi())
    mine = next(project.store.glob("TrainModel/*/model.txt")).read_bytes()
    theirs = next(built_project.store.glob("TrainModel/*/model.txt")).read_bytes()
    assert mine == theirs
    assert project.lock.read_text().split('"created"')[0] == built_project.lock.read_text().split('"created"')[0]


def test_a_run_killed_during_training_resumes_and_gives_the_same_model(project, tmp_path):
    from tests.conftest import Project

    _train_iterations(project, 700)  # long enough to be killed mid-way
    reference = Project.copy_of(project.root, tmp_path / "reference")
    ok(reference.luigi())

    process = subprocess.Popen(
        [sys.executable, "-m", "luigi", "--module", "tasks", "PublishModel"],
        cwd=project.root, env=project.env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    work = project.root / ".mlbuild" / "cache" / "tmp"
    try:
        wait_for(lambda: work.is_dir() and any(work.glob("TrainModel-*")), 120, "TrainModel")
        time.sleep(0.5)  # inside lightgbm's training loop
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    families = {key.split("/")[0] for key in project.manifests()}
    # the drift gate needs no model: it may have run before training
    assert families - {"CheckDrift"} == {"FetchData", "ValidateData", "SplitData"}
    assert not project.lock.exists()
    before = project.manifests()
    ok(project.luigi())
    assert project.ran_since(before) == FROM_TRAIN | ({"CheckDrift"} - families)
    assert project.lock.read_text().split('"created"')[0] == reference.lock.read_text().split('"created"')[0]
    mine = next(project.store.glob("models/digits/*/model.txt")).read_bytes()
    assert mine == next(reference.store.glob("models/digits/*/model.txt")).read_bytes()


def test_outputs_without_a_manifest_are_not_taken_as_complete(built):
    manifest = next(built.store.glob("TrainModel/*/manifest.json"))
    manifest.unlink()  # as if the run died after the upload, before the manifest
    status = ok(built.mlbuild("status", "PublishModel")).stdout
    assert "TrainModel()" in status and "no result for this fingerprint yet" in status
    before = built.manifests()
    ok(built.luigi("TrainModel"))
    assert built.ran_since(before) == {"TrainModel"}


def test_mlbuild_run_with_workers_shows_progress_and_succeeds(project):
    result = ok(project.mlbuild("run", "PublishModel", "--workers", "2"))
    assert "7 task(s) ran, 0 already complete" in result.stderr
    assert "exit code 0" in result.stderr
    assert "TrainModel()" in result.stderr
