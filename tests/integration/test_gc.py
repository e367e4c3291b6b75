"""`mlbuild gc`: results that no manifest chain from models.lock or the newest runs reaches
are removed; what the lock references never is."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ok

pytestmark = pytest.mark.integration

OLD_CHAIN = {"TrainModel", "EvaluateAccuracy", "PublishModel"}


@pytest.fixture
def two_runs(built):
    """The built project, then a second run with another model: the first run's model
    chain is superseded."""
    first = built.manifests()
    built.edit("configs/pipeline.toml", "num_iterations = 100", "num_iterations = 60")
    ok(built.luigi())
    return built, first


def test_dry_run_lists_the_superseded_results_and_removes_nothing(two_runs):
    project, first = two_runs
    files = project.files()
    out = ok(project.mlbuild("gc", "--keep-runs", "1", "--dry-run")).stdout
    listed = {line.split()[2].rstrip("/") for line in out.splitlines()
              if line.startswith("would remove")}
    expected = {str(project.store / k.rsplit("/", 1)[0]).removeprefix(str(project.root) + "/")
                for k in first if k.split("/")[0] in OLD_CHAIN}
    assert {p.split("/store/")[1] for p in listed} == {e.split("/store/")[1] for e in expected}
    assert "3 result(s)" in out and " 0 bytes" not in out
    assert project.files() == files


def test_gc_removes_them_and_the_pipeline_stays_complete(two_runs):
    project, first = two_runs
    ok(project.mlbuild("gc", "--keep-runs", "1"))
    remaining = set(project.manifests())
    assert not {k for k in first if k.split("/")[0] in OLD_CHAIN} & remaining
    assert {k.split("/")[0] for k in remaining} == {
        "FetchData", "ValidateData", "SplitData", "CheckDrift", "TrainModel", "EvaluateAccuracy",
        "PublishModel"}
    ok(project.mlbuild("models", "verify"))
    before = project.manifests()
    ok(project.luigi())
    assert project.ran_since(before) == set()
    assert list(project.store.glob("models/digits/*/model.txt"))  # published models stay


def test_what_the_lock_references_is_never_removed(two_runs):
    project, _ = two_runs
    ok(project.mlbuild("gc", "--keep-runs", "0"))
    entry = json.loads(project.lock.read_text())["models"]["digits"]
    trained = [p for p in project.store.glob("TrainModel/*/manifest.json")
               if json.loads(p.read_text())["fingerprint"] == entry["fingerprint"]]
    assert len(trained) == 1
    assert {k.split("/")[0] for k in project.manifests()} == {
        "FetchData", "ValidateData", "SplitData", "TrainModel"}
    ok(project.mlbuild("models", "verify"))


def test_outputs_without_a_manifest_are_kept_and_a_corrupt_manifest_is_named(two_runs):
    project, _ = two_runs
    # A run writing this result right now: its outputs are there, its manifest is not yet.
    writing = project.store / "TrainModel" / ("0" * 32)
    writing.mkdir()
    (writing / "model.txt").write_text("half a model")
    ok(project.mlbuild("gc", "--keep-runs", "0"))
    assert (writing / "model.txt").read_text() == "half a model"

    manifest = next(project.store.glob("SplitData/*/manifest.json"))
    manifest.write_text("{not json")
    result = project.mlbuild("gc", "--dry-run")
    assert result.returncode == 7, result.stderr  # StoreError
    assert manifest.name in result.stderr and "cannot be read" in result.stderr
    assert "Traceback" not in result.stderr
