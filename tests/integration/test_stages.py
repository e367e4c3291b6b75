"""`mlbuild stage` for real — exit codes and JUnit files — and the Jenkinsfile it serves."""

from __future__ import annotations

import json
import os
import re
import uuid
import xml.etree.ElementTree as ET

import pytest

from mlbuild.ci.cycle import load_cycle
from mlbuild.errors import GateFailedError, ImageError, StoreError, TestsFailedError
from tests.conftest import REPO, ok
from tests.services import free_port

pytestmark = pytest.mark.integration


def _junit(project, stage: str) -> ET.Element:
    return ET.parse(project.root / "reports" / "junit" / f"{stage}.xml").getroot()


def _cases(root: ET.Element) -> dict[str, str]:
    """testcase name -> passed / failure / skipped."""
    result = {}
    for case in root.iter("testcase"):
        kind = "failure" if case.find("failure") is not None else (
            "skipped" if case.find("skipped") is not None else "passed")
        result[case.get("name")] = kind
    return result


def test_the_train_stage_runs_the_tasks_up_to_the_model(project):
    result = ok(project.mlbuild("stage", "train"))
    assert "exit code 0" in result.stdout
    cases = _cases(_junit(project, "train"))
    assert cases == {f"{t}()": "passed" for t in
                     ("FetchData", "ValidateData", "SplitData", "TrainModel")}


def test_the_fetch_test_data_stage(project):
    ok(project.mlbuild("stage", "fetch-test-data"))
    assert "SplitData()" in _cases(_junit(project, "fetch-test-data"))


def test_a_failing_gate_fails_the_accuracy_stage_with_exit_8_and_junit_per_gate(built):
    built.edit("configs/pipeline.toml", "min = 0.90", "min = 0.99")
    result = built.mlbuild("stage", "accuracy", "--tier", "full")
    assert result.returncode == GateFailedError.exit_code, result.stderr
    root = _junit(built, "accuracy")
    cases = _cases(root)
    assert cases["EvaluateAccuracy(tier=full)"] == "failure"
    assert cases["accuracy >= 0.99 (confident)"] == "failure"
    assert cases["macro_f1 >= 0.85 (point)"] == "passed"
    failure = next(c for c in root.iter("testcase") if c.get("name").startswith("accuracy >="))
    assert "misses the limit 0.99" in failure.find("failure").get("message")


def test_the_accuracy_stage_passes_and_reports_its_gates(built):
    ok(built.mlbuild("stage", "accuracy"))
    cases = _cases(_junit(built, "accuracy"))
    assert cases["EvaluateAccuracy(tier=fast)"] == "passed"
    assert "accuracy >= 0.9 (confident)" in cases


def _test_stage(project, body: str):
    checks = project.root / "checks"
    checks.mkdir()
    (checks / "test_example.py").write_text(body)
    project.edit("luigi.cfg", "unit = tests:tests/unit", "unit = tests:checks")
    return project.mlbuild("stage", "unit")


def test_a_test_stage_passes_with_pytest_junit(project):
    result = _test_stage(project, "def test_ok():\n    assert 1 + 1 == 2\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert _cases(_junit(project, "unit")) == {"test_ok": "passed"}


def test_a_test_stage_with_a_failing_test_exits_11(project):
    result = _test_stage(project, "def test_ok():\n    pass\n\n\ndef test_bad():\n"
                                  "    assert 1 + 1 == 3\n")
    assert result.returncode == TestsFailedError.exit_code
    assert _cases(_junit(project, "unit")) == {"test_ok": "passed", "test_bad": "failure"}


def test_an_unreachable_store_is_an_infrastructure_exit_code(project, s3_env):
    project.extra_env.update(s3_env, AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}",
                             MLBUILD_STORE="s3://any/ml")
    result = project.mlbuild("stage", "train", "--mlbuild-s3-max-attempts", "1")
    assert result.returncode == StoreError.exit_code, result.stderr
    assert "Cannot reach S3" in result.stderr
    assert "failure" in _cases(_junit(project, "train")).values()


def test_an_unreachable_docker_engine_fails_the_image_stage_with_exit_10(built):
    built.extra_env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
    result = built.mlbuild("stage", "image")
    assert result.returncode == ImageError.exit_code, result.stderr
    assert _cases(_junit(built, "image"))["BuildImage()"] == "failure"


def test_an_unknown_stage_is_a_configuration_error(project):
    result = project.mlbuild("stage", "deploy-to-mars")
    assert result.returncode == 3 and "no stage 'deploy-to-mars'" in result.stderr


# ------------------------------------------------- the declared cycle and its Jenkinsfile

ORDER = ["train", "image", "test-image", "unit --in-image", "integration --in-image", "acceptance",
         "service-acceptance", "fetch-test-data", "accuracy --tier fast --in-image",
         "accuracy --tier full --in-image", "retrain --push", "push", "deploy --env staging",
         "deploy --env production"]
CYCLE = load_cycle(REPO / "configs" / "ci.toml")


def test_the_cycle_runs_the_stages_in_the_release_order():
    called = [c.removeprefix("mlbuild stage ") for s in CYCLE.stages for c in s.run
              if c.startswith("mlbuild stage ")]
    assert called == ORDER


def test_every_declared_step_is_a_make_target_or_a_known_stage():
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.MULTILINE))
    config = (REPO / "luigi.cfg").read_text().split("[stages]")[1]
    stages = set(re.findall(r"^([\w-]+)\s*=", config, re.MULTILINE))
    for stage in CYCLE.stages:
        for command in stage.run:
            words = command.split()
            if words[0] == "make":
                assert set(words[1:]) <= targets, command
            else:
                assert words[:2] == ["mlbuild", "stage"], command
                assert words[2] in stages or words[2] in ("deploy", "retrain"), command


def test_the_jenkinsfile_schedules_the_full_tier_deploys_only_from_main_and_publishes():
    text = (REPO / "Jenkinsfile").read_text()
    assert re.search(r"triggers\s*\{\s*(//[^\n]*\n\s*)*cron\(", text)
    runs = {(branch, timer): {s.name for s, on in CYCLE.plan(branch, timer) if on}
            for branch in ("main", "develop", "feature/x") for timer in (False, True)}
    assert "Accuracy (full)" in runs[("main", True)] and "Accuracy (full)" in runs[("develop", True)]
    assert "Accuracy (full)" not in runs[("feature/x", True)] | runs[("main", False)]
    assert "Accuracy (fast)" in runs[("feature/x", False)] - runs[("main", True)]
    assert {b for (b, _), names in runs.items() if "Push" in names} == {"main", "develop"}
    assert {b for (b, _), names in runs.items() if "Deploy to staging" in names} == {"develop"}
    assert {b for (b, _), names in runs.items()
            if "Deploy to production" in names} == {"main"}
    assert "junit " in text and "reports/junit/*.xml" in text
    assert "archiveArtifacts" in text and "models.lock" in text
    assert "publishHTML(target: [reportName: 'Accuracy (fast tier)'" in text
    assert "withCredentials" in text
    assert not re.search(r"AKIA[0-9A-Z]{12}|aws_secret_access_key\s*=", text, re.IGNORECASE)


def test_mlbuild_ci_follows_the_declaration(project):
    (project.root / "Jenkinsfile").write_text((REPO / "Jenkinsfile").read_text())
    dry = ok(project.mlbuild("ci", "--dry-run")).stdout.splitlines()
    assert dry[0] == "== Setup: make install"
    assert "== Accuracy (full): skipped on main" in dry
    scheduled = ok(project.mlbuild("ci", "--dry-run", "--scheduled", "--branch", "develop")).stdout
    assert "accuracy --tier full" in scheduled and "Push: skipped" in scheduled


def test_the_acceptance_and_push_stages_with_a_real_engine_and_registry(built, docker_env):
    built.extra_env.update(docker_env)
    ok(built.mlbuild("stage", "image"))
    ok(built.mlbuild("stage", "acceptance"))
    cases = _cases(_junit(built, "acceptance"))
    assert cases["AcceptanceTest()"] == "passed"
    assert cases["accuracy >= 0.9 (confident)"] == "passed"  # the gates, inside the image
    ok(built.mlbuild("stage", "push"))
    assert _cases(_junit(built, "push"))["PushImage()"] == "passed"

    # Stricter gates: the acceptance stage fails with exit 8, its gates' JUnit still there.
    built.edit("configs/pipeline.toml", "min = 0.90", "min = 0.99")
    result = built.mlbuild("stage", "acceptance")
    assert result.returncode == GateFailedError.exit_code, result.stderr
    cases = _cases(_junit(built, "acceptance"))
    assert cases["AcceptanceTest()"] == "failure"
    assert cases["accuracy >= 0.99 (confident)"] == "failure"


def _deploy(project, env: str, branch: str, *more: str):
    project.extra_env["BRANCH_NAME"] = branch
    return project.mlbuild("stage", "deploy", "--env", env, *more)


def test_deploy_promotes_the_pushed_digest_and_rolls_back(built, docker_env):
    from mlbuild.ci.deploy import history
    from mlbuild.images.docker import registry_digest
    from mlbuild.store import LocalStore

    built.extra_env.update(docker_env)
    # A repository of its own: the registry outlives a test run, so the environments' tags
    # of test/digits may exist already.
    built.edit("configs/pipeline.toml", 'repository = "test/digits"',
               f'repository = "test/deploy-{uuid.uuid4().hex[:12]}"')
    ok(built.mlbuild("stage", "push"))
    pushed = json.loads(next(built.store.glob("PushImage/*/push.json")).read_text())
    registry, repository, first = pushed["registry"], pushed["repository"], pushed["digest"]
    store = LocalStore(str(built.store))

    def agree(env: str, digest: str, records: int) -> None:
        assert registry_digest(registry, repository, env) == digest
        past = history(store, env)
        assert len(past) == records and past[0].digest == digest
        manifest = (built.root / "reports" / "deploy" / env / "deployment.yaml").read_text()
        assert f"image: {registry}/{repository}@{digest}" in manifest

    refused = _deploy(built, "production", "develop")  # Gitflow: production is main's
    assert refused.returncode == 3 and "production is deployed from main" in refused.stderr
    refused = _deploy(built, "production", "main")  # staging holds nothing yet
    assert refused.returncode == 5 and "takes only the image staging holds" in refused.stderr
    assert registry_digest(registry, repository, "production") is None

    staged = ok(_deploy(built, "staging", "develop")).stdout
    assert f"staging now runs {registry}/{repository}@{first}" in staged
    agree("staging", first, 1)
    again = ok(_deploy(built, "staging", "develop")).stdout
    assert "staging already runs" in again
    agree("staging", first, 1)  # a no-op: no second record
    ok(_deploy(built, "production", "main"))
    agree("production", first, 1)
    assert _cases(_junit(built, "deploy-production")) == {"deploy to production": "passed"}

    # A new model: a new image, pushed and staged; then staging is rolled back.
    built.edit("configs/pipeline.toml", "num_iterations = 100", "num_iterations = 60")
    ok(built.mlbuild("stage", "push"))
    second = next(json.loads(p.read_text())["digest"]
                  for p in built.store.glob("PushImage/*/push.json")
                  if json.loads(p.read_text())["digest"] != first)
    ok(_deploy(built, "staging", "develop"))
    agree("staging", second, 2)
    assert history(store, "staging")[0].replaced == first
    rolled = ok(_deploy(built, "staging", "develop", "--to", first)).stdout
    assert f"staging rolled back to {registry}/{repository}@{first}" in rolled
    agree("staging", first, 3)
    assert history(store, "staging")[0].rollback and history(store, "staging")[0].replaced == second
    listed = ok(built.mlbuild("deploy", "history", "--env", "staging")).stdout.splitlines()
    assert len(listed) == 3 and "rollback" in listed[0] and first in listed[0]
    # Production still holds the first; it cannot take what staging no longer holds.
    refused = _deploy(built, "production", "main", "--to", second)
    assert refused.returncode == 5 and "production never held" in refused.stderr
    agree("production", first, 1)


def test_the_unit_stage_runs_in_the_test_image_and_its_junit_reaches_the_host(project,
                                                                              docker_env):
    project.extra_env.update(docker_env)
    # A repository of its own: the same project has the same fingerprint, so the same tag,
    # which another test's build would take.
    repository = f"test/stages-{uuid.uuid4().hex[:12]}"
    project.edit("configs/pipeline.toml", 'repository = "test/digits"',
                 f'repository = "{repository}"')
    (project.root / "tests" / "unit").mkdir(parents=True)
    (project.root / "tests" / "unit" / "test_where.py").write_text(
        "import os, sys\n\n\n"
        "def test_runs_in_the_test_image():\n"
        f"    assert os.environ['MLBUILD_IN_IMAGE'].startswith('{repository}-test:')\n"
        "    assert sys.prefix == '/opt/venv' and os.path.exists('/.dockerenv')\n\n\n"
        "def test_the_docker_engine_is_passed_in():\n"
        "    import docker\n"
        "    assert docker.DockerClient(base_url=os.environ['DOCKER_HOST']).ping()\n")
    refused = project.mlbuild("stage", "unit", "--in-image")
    assert refused.returncode == 5 and "mlbuild stage test-image" in refused.stderr
    ok(project.mlbuild("stage", "test-image"))
    result = ok(project.mlbuild("stage", "unit", "--in-image"))
    assert f"stage unit: passed (in {repository}-test:" in result.stdout
    junit = project.root / "reports" / "junit" / "unit.xml"
    assert _cases(_junit(project, "unit")) == {"test_runs_in_the_test_image": "passed",
                                              "test_the_docker_engine_is_passed_in": "passed"}
    assert junit.stat().st_uid == os.getuid()  # the host's, not the container's root
    # The accuracy stage in the image: the pipeline up to the gates runs there, on the
    # workspace's store; the gates' JUnit and report reach the host.
    accuracy = ok(project.mlbuild("stage", "accuracy", "--in-image"))
    assert "accuracy gates passed" in accuracy.stdout and f"(in {repository}-test:" in accuracy.stdout
    cases = _cases(_junit(project, "accuracy"))
    assert cases["EvaluateAccuracy(tier=fast)"] == cases["accuracy >= 0.9 (confident)"] == "passed"
    assert (project.root / "reports" / "accuracy" / "fast" / "report.html").exists()
