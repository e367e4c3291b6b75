"""The accuracy gates through the pipeline and through tests/accuracy, for real: a
planted regression fails with its own exit code and leaves its reports; the accuracy
tests judge the released model with the same gate code."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from mlbuild.errors import GateFailedError
from tests.conftest import REPO, ok

pytestmark = pytest.mark.integration


def _weaken(project):
    project.edit("configs/pipeline.toml", "num_iterations = 100", "num_iterations = 3")
    project.edit("configs/pipeline.toml", "learning_rate = 0.1", "learning_rate = 0.02")


def test_a_planted_regression_fails_the_gates_with_exit_8_and_leaves_reports(built):
    lock = built.lock.read_bytes()
    _weaken(built)
    result = built.mlbuild("run", "PublishModel")
    assert result.returncode == GateFailedError.exit_code, result.stderr
    assert "accuracy gates FAILED" in result.stderr
    assert "not worse than the released model" in result.stderr and "Tango" in result.stderr
    assert built.lock.read_bytes() == lock  # nothing was published

    folder = built.root / "reports" / "accuracy" / "fast"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["passed"] is False and metrics["baseline"]["sha256"]
    change = next(g for g in metrics["gates"] if g["kind"] == "change")
    assert change["passed"] is False and change["details"]["mode"] == "non-inferiority"
    assert change["p_value"] > 0.05  # it could not show it is within the margin
    assert "❌ **FAIL**" in (folder / "report.md").read_text()
    assert "<failure" in (folder / "junit.xml").read_text()
    assert '<img src="plots.png"' in (folder / "report.html").read_text()
    assert (folder / "plots.png").read_bytes().startswith(b"\x89PNG")
    assert (folder / "report.css").is_file()


def test_the_full_tier_runs_on_the_whole_test_split(built):
    ok(built.luigi("EvaluateAccuracy", "--tier", "full"))
    metrics = json.loads((built.root / "reports/accuracy/full/metrics.json").read_text())
    stored = [json.loads(p.read_text()) for p in built.store.glob("EvaluateAccuracy/*/metrics.json")]
    fast = next(m for m in stored if m["tier"] == "fast")
    assert metrics["tier"] == "full" and metrics["plan"] is None and metrics["n"] == 450
    assert fast["plan"]["rows_needed"] == fast["n"] < 450
    # The lock releases this very model (the first run published it): say so, not "none".
    change = next(g for g in metrics["gates"] if g["kind"] == "change")
    assert change["passed"] is None and "releases this candidate itself" in change["reason"]
    assert "no released model" not in change["reason"]
    counts = metrics["counts"]
    assert metrics["summary"].endswith(f"{counts['passed']} passed, 0 failed of "
                                       f"{counts['gated']} gated; {counts['not_gated']} not gated")
    assert counts["not_gated"] >= 1


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


def test_accuracy_plan_sizes_the_configured_gates(project):
    result = ok(project.mlbuild("accuracy", "plan"))
    lines = result.stdout.splitlines()
    rows = int(lines[0].split()[0])
    assert "accuracy >= 0.9 (confident): 188 rows" in result.stdout
    assert "discordance 0.03 ([accuracy] discordance)" in result.stdout
    assert f"at {rows} rows: fails a good model with probability" in result.stdout
    assert "each slice class: accuracy >= 0.65: " in result.stdout
    # the fast tier uses what the plan says
    ok(project.luigi("EvaluateAccuracy"))
    metrics = json.loads((project.root / "reports/accuracy/fast/metrics.json").read_text())
    assert metrics["n"] == metrics["plan"]["rows"] == rows


def test_accuracy_plan_answers_from_flags_alone_and_refuses_what_cannot_be(project):
    (project.root / "empty.toml").write_text("")
    flags = ok(project.mlbuild("accuracy", "plan", "--pipeline-config", "empty.toml",
                               "--expected", "0.95", "--limit", "0.90"))
    assert flags.stdout.startswith("188 rows")
    missing = project.mlbuild("accuracy", "plan", "--pipeline-config", "nope.toml")
    assert missing.returncode == 3 and "nope.toml does not exist" in missing.stderr
    worse = project.mlbuild("accuracy", "plan", "--power", "1.5")
    assert worse.returncode == 3 and "power" in worse.stderr
    paired = ok(project.mlbuild("accuracy", "plan", "--margin", "0.02", "--discordance",
                                "0.06"))
    assert "discordance 0.06 ([accuracy] discordance)" in paired.stdout
    bad = project.mlbuild("accuracy", "plan", "--expected", "0.5", "--limit", "0.6")
    assert bad.returncode == 3 and "Cannot plan" in bad.stderr and "Hint" in bad.stderr


def _without_feature(project, feature: str):
    from tasks.fetch import digits_frame

    digits_frame().drop(columns=[feature]).to_csv(project.root / "digits.csv", index=False)
    project.edit("configs/pipeline.toml", 'source = "builtin:digits"',
                 'source = "file://digits.csv"')


def test_a_released_model_needing_a_removed_feature_fails_the_change_gate(built):
    lock = built.lock.read_bytes()
    _without_feature(built, "pixel_3_4")
    result = built.mlbuild("run", "PublishModel")
    assert result.returncode == GateFailedError.exit_code, result.stdout + result.stderr
    assert "pixel_3_4" in result.stderr and "accept_incomparable" in result.stderr
    assert "Traceback" not in result.stderr and "KeyError" not in result.stderr
    assert built.lock.read_bytes() == lock

    built.edit("configs/pipeline.toml", "margin = 0.03", "margin = 0.03\naccept_incomparable = true")
    ok(built.mlbuild("run", "PublishModel"))
    entry = json.loads(built.lock.read_text())["models"]["digits"]
    assert entry["incomparable"]["missing_features"] == ["pixel_3_4"]
    assert "accept_incomparable" in entry["incomparable"]["accepted_by"]
