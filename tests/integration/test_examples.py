"""examples/: projects built only from mlbuild's public API, run to their acceptance test."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.conftest import REPO, Project, ok

pytestmark = pytest.mark.integration

EXAMPLE = REPO / "examples" / "diabetes"


@pytest.fixture
def diabetes(tmp_path, docker_env) -> Project:
    shutil.copytree(EXAMPLE, tmp_path / "diabetes",
                    ignore=shutil.ignore_patterns("__pycache__", ".mlbuild", "reports",
                                                  "models.lock"))
    project = Project(tmp_path / "diabetes")
    project.extra_env.update({k: v for k, v in docker_env.items()
                              if k != "MLBUILD_IMAGE_REGISTRY"})  # ends at AcceptanceTest
    return project


def run(project: Project, task: str = "FullPipeline"):
    return project.run(project.python, "-m", "luigi", "--module", "diabetes", task,
                       timeout=900)


def test_the_example_is_small_and_uses_only_the_public_api():
    lines = sum(len(p.read_text().splitlines()) for p in EXAMPLE.rglob("*.py"))
    assert lines < 200


def test_the_regression_example_runs_to_its_acceptance_test_and_gates_a_change(diabetes):
    first = ok(run(diabetes))
    assert "AcceptanceTest()" in first.stderr and "ran successfully" in first.stderr
    report = json.loads((diabetes.root / "reports/acceptance/metrics.json").read_text())
    assert report["model_kind"] == "regression" and report["passed"] is True
    assert {g["metric"] for g in report["gates"] if g["kind"] == "threshold"} == {"rmse", "mae"}
    lock = json.loads(diabetes.lock.read_text())["models"]["diabetes"]
    assert lock["uri"].endswith("/model.json") and 30 < lock["metrics"]["mae"] < 55

    assert "Did not run any tasks" in ok(run(diabetes)).stderr

    diabetes.edit("pipeline.toml", "alpha = 0.1", "alpha = 0.2")
    ok(run(diabetes, "PublishModel"))
    evaluated = json.loads((diabetes.root / "reports/accuracy/fast/metrics.json").read_text())
    change = next(g for g in evaluated["gates"] if g["kind"] == "change")
    assert change["metric"] == "mae" and change["passed"] is True
    assert json.loads(diabetes.lock.read_text())["models"]["diabetes"]["baseline"]
