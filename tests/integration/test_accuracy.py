"""The accuracy gates through the pipeline and through tests/accuracy, for real: a
planted regression fails with its own exit code and leaves its reports; the accuracy
tests judge the released model with the same gate code."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from mlbuild.errors import GateFailed
from tests.conftest import REPO, ok

pytestmark = pytest.mark.integration


def _weaken(project):
    project.edit("configs/pipeline.toml", "num_iterations = 100", "num_iterations = 3")
    project.edit("configs/pipeline.toml", "learning_rate = 0.1", "learning_rate = 0.02")


def test_a_planted_regression_fails_the_gates_with_exit_8_and_leaves_reports(built):
    lock = built.lock.read_bytes()
    _weaken(built)
    result = built.mlbuild("run", "PublishModel")
    assert result.returncode == GateFailed.exit_code, result.stderr
    assert "accuracy gates FAILED" in result.stderr
    assert "not worse than the released model" in result.stderr and "McNemar" in result.stderr
    assert built.lock.read_bytes() == lock  # nothing was published

    folder = built.root / "reports" / "accuracy" / "fast"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["passed"] is False and metrics["baseline"]["sha256"]
    change = next(g for g in metrics["gates"] if g["kind"] == "change")
    assert change["passed"] is False and change["p_value"] < 0.05
    assert "❌ FAIL" in (folder / "report.md").read_text()
    assert "<failure" in (folder / "junit.xml").read_text()
    assert "data:image/png;base64," in (folder / "report.html").read_text()


def test_the_full_tier_runs_on_the_whole_test_split(built):
    ok(built.luigi("EvaluateAccuracy", "--tier", "full"))
    metrics = json.loads((built.root / "reports/accuracy/full/metrics.json").read_text())
    stored = [json.loads(p.read_text()) for p in built.store.glob("EvaluateAccuracy/*/metrics.json")]
    fast = next(m for m in stored if m["tier"] == "fast")
    assert metrics["tier"] == "full" and metrics["plan"] is None and metrics["n"] == 450
    assert fast["plan"]["rows_needed"] == fast["n"] < 450


def _accuracy_tests(project, tier: str):
    shutil.copytree(REPO / "tests" / "accuracy", project.root / "tests" / "accuracy")
    project.extra_env["MLBUILD_ACCURACY_TIER"] = tier
    return project.run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                       "-m", "accuracy", "tests/accuracy")


@pytest.mark.parametrize("tier", ["fast", "full"])
def test_the_accuracy_tests_pass_for_the_released_model(built, tier):
    result = _accuracy_tests(built, tier)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
    assert (built.root / "reports" / "accuracy-tests" / tier / "junit.xml").exists()


def test_the_accuracy_tests_fail_when_the_gate_is_raised_above_the_model(built):
    built.edit("configs/pipeline.toml", "min = 0.90", "min = 0.99")
    result = _accuracy_tests(built, "full")
    assert result.returncode == 1
    assert "accuracy >= 0.99 (confident)" in result.stdout and "misses the limit" in result.stdout


def test_the_accuracy_tests_say_what_is_missing_on_a_fresh_clone(project):
    result = _accuracy_tests(project, "fast")
    assert result.returncode == 1
    assert "Cannot run the accuracy tests" in result.stdout and "make pipeline" in result.stdout


def test_accuracy_plan_prints_the_sample_sizes(project):
    result = ok(project.mlbuild("accuracy", "plan", "--expected", "0.95", "--drop", "0.02",
                                "--disagreement", "0.06"))
    assert "822 test rows" in result.stdout
    assert "926 rows for the paired comparison" in result.stdout
    bad = project.mlbuild("accuracy", "plan", "--expected", "0.5", "--drop", "0.6")
    assert bad.returncode == 3 and "Cannot plan" in bad.stderr
