"""CI stages: ``mlbuild stage <name>`` runs one stage of the release cycle, and nothing else.

A stage is a test suite (pytest, with its own ``--junitxml``) or a task of the project
(run through Luigi, with a JUnit test case per task, plus one per gate for the stages
that gate accuracy). Stages are named in the ``[stages]`` section of luigi.cfg::

    [stages]
    train = TrainModel                   # a task family of the project
    unit = tests:tests/unit              # a pytest path

Every stage writes ``reports/junit/<stage>.xml`` and exits with the code of what went
wrong (see :mod:`mlbuild.errors`): tests failed 11, gate failed 8, missing data 5, bad
configuration 3, infrastructure 7 (store) or 10 (Docker, registry).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

from mlbuild.errors import ConfigError, MissingError, MlbuildError, TestsFailedError
from mlbuild.settings import reports_dir

TESTS = "tests:"


@dataclass(frozen=True)
class StageResult:
    name: str
    exit_code: int
    junit: Path
    summary: str


def definitions() -> dict[str, str]:
    import luigi.configuration

    config = luigi.configuration.get_config()
    if not config.has_section("stages"):
        return {}
    return dict(config.items("stages"))


def definition(name: str) -> str:
    stages = definitions()
    if name not in stages:
        known = ", ".join(stages) or "none"
        raise ConfigError(f"There is no stage {name!r} in the [stages] section of luigi.cfg "
                          f"(known: {known}).")
    return stages[name]


def junit_path(name: str) -> Path:
    path = Path(reports_dir(), "junit", f"{name}.xml")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def run_tests(name: str, path: str, extra: list[str]) -> StageResult:
    junit = junit_path(name)
    command = [sys.executable, "-m", "pytest", "-q", path, f"--junitxml={junit}",
               "-o", f"junit_suite_name={name}", *extra]
    code = subprocess.run(command, check=False).returncode
    # pytest: 0 passed, 1 some failed, 5 none collected; anything else is a crash.
    exit_code = {0: 0, 1: TestsFailedError.exit_code, 5: TestsFailedError.exit_code}.get(
        code, MlbuildError.exit_code)
    verdict = {0: "passed", 1: "tests failed", 5: "no tests were collected"}.get(
        code, f"pytest crashed (exit {code})")
    return StageResult(name, exit_code, junit, f"stage {name}: {verdict}")


def _task_junit(name: str, outcome, gate_report: Path | None) -> Path:
    failures = {f.task: f for f in outcome.failures}
    suite = ET.Element("testsuite", name=f"stage.{name}")
    counts = {"tests": 0, "failures": 0, "skipped": 0}
    for task, state in sorted(outcome.tasks.items()):
        case = ET.SubElement(suite, "testcase", classname=f"stage.{name}", name=task)
        counts["tests"] += 1
        if state == "failed":
            # A failure blamed on a file (a config) belongs to the task that read it.
            failure = failures.get(task) or next(
                (f for f in outcome.failures if f.task not in outcome.tasks), None)
            message = failure.text if failure else "failed"
            ET.SubElement(case, "failure", message=message.splitlines()[0][:500],
                          type=failure.kind if failure else "failure").text = message
            counts["failures"] += 1
        elif state == "blocked":
            ET.SubElement(case, "skipped", message="not run: an upstream task failed")
            counts["skipped"] += 1
        else:
            ET.SubElement(case, "system-out").text = state
    suites = ET.Element("testsuites")
    suites.append(suite)
    if gate_report is not None:  # the gates' own test cases, one per gate and slice
        suites.append(ET.parse(gate_report).getroot())
    suite.attrib.update({k: str(v) for k, v in counts.items()})
    ET.indent(suites)
    path = junit_path(name)
    path.write_text(ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n")
    return path


def gate_report(task, started: float) -> Path | None:
    """The JUnit report of the stage's gates: from the store when the task is complete
    (its reports are copied to the task's report folder too, for CI to archive), else the
    one a failing gate wrote in this run (in that folder)."""
    from mlbuild.core.task import BuildTask

    if not isinstance(task, BuildTask) or "junit" not in task.outputs:
        return None
    folder = task.report_folder()
    if task.complete():
        stored = task.fetch_outputs()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            for name, path in stored.items():
                shutil.copyfile(path, folder / task.outputs[name])
        return stored["junit"]
    failed = folder / task.outputs["junit"] if folder else None
    if failed and failed.exists() and failed.stat().st_mtime >= started:
        return failed
    return None


def run_task_stage(name: str, module: str, family: str, extra: list[str],
                   workers: int = 1) -> StageResult:
    import time

    from rich.console import Console

    from mlbuild.ci.runner import project_task, run_task
    from mlbuild.core.task import BuildTask

    started = time.time()
    console = Console(stderr=True, highlight=False)
    with project_task(module, family, extra) as task:
        outcome = run_task(task, workers=workers, console=console)
        gates = gate_report(task, started)
        report = task.report_folder() if isinstance(task, BuildTask) else None
    for failure in outcome.failures:
        console.print(f"✗ {failure.task} ({failure.kind})\n{failure.traceback or failure.text}",
                      markup=False, soft_wrap=True)
    junit = _task_junit(name, outcome, gates)
    return StageResult(name, outcome.exit_code, junit, f"stage {name}: "
                       f"{gate_verdict(gates, report)}{outcome.summary.splitlines()[-1]}")


def gate_verdict(gates: Path | None, report: Path | None) -> str:
    """What the gates concluded and where their report is, passed or not."""
    if gates is None:
        return ""
    summary = next((p.get("value") for p in ET.parse(gates).getroot().iter("property")
                    if p.get("name") == "summary"), None)
    html = report / "report.html" if report else None
    where = f"; report: {html}" if html and html.exists() else ""
    return f"{summary}{where}\n" if summary else ""


def run_in_image(name: str, module: str, args: list[str]) -> StageResult:
    """Run ``mlbuild stage <name> <args>`` in a container of the project's test image, with
    the workspace mounted at its own path, as Jenkins' ``docker.image(…).inside`` does: the
    code and reports are the workspace's, the Python and packages the image's."""
    import json
    import os
    import shlex
    import tempfile

    from mlbuild.ci.runner import project_task
    from mlbuild.images import docker

    with project_task(module, "BuildTestImage", []) as image:
        if not image.complete():
            raise MissingError(f"The test image is not built ({image} is not complete).",
                               hint="run `mlbuild stage test-image` first.")
        built = json.loads(image.fetch_outputs()["image"].read_text())
    tag = built["tag"]
    workspace = os.getcwd()
    command = shlex.join(["python", "-m", "mlbuild.cli", "stage", name, *args])
    print(f"stage {name}: running `{command}` in {tag}", flush=True)
    volumes = {workspace: {"bind": workspace, "mode": "rw"}}
    # Temporary files on the host, at the same path: a test that starts a container (the
    # engine is the host's) mounts its temporary folders, and the engine resolves a mount
    # on the host. Outside the workspace: tests make folders that are "outside git".
    temporary = tempfile.mkdtemp(prefix=f"mlbuild-stage-{name}-")
    volumes[temporary] = {"bind": temporary, "mode": "rw"}
    environment = {**_passed_in(volumes), "HOME": "/tmp", "PYTHONPATH": workspace,
                   "TMPDIR": temporary, "MLBUILD_IN_IMAGE": tag,
                   "MLBUILD_REPORTS": str(Path(reports_dir()).resolve())}
    try:
        # By ID: the image BuildTestImage built, whatever its tag names now.
        result = docker.run(
            built["id"], ["-e", "-c", command], volumes, timeout=3600, entrypoint=["sh"],
            working_dir=workspace, user=f"{os.getuid()}:{os.getgid()}", network_mode="host",
            environment=environment, group_add=_socket_groups(environment))
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    print(result.logs, end="" if result.logs.endswith("\n") else "\n")
    summary = next((line.split("; JUnit:")[0] for line in reversed(result.logs.splitlines())
                    if line.startswith(f"stage {name}")), f"stage {name}: exit {result.exit_code}")
    return StageResult(name, result.exit_code, junit_path(name), f"{summary} (in {tag})")


#: what a stage in the image sees of the host's environment: mlbuild's settings, the AWS
#: chain (the store, Batch, ECR), Luigi's config, the package index's settings (the tests
#: that build images download wheels), the branch; nothing else leaks in
PASSED_IN = ("MLBUILD_", "AWS_", "LUIGI_", "PIP_")
PASSED_IN_NAMES = ("DOCKER_HOST", "BRANCH_NAME", "CI", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
#: the passed-in settings that name a host path, mounted at the same path: folders the
#: stage writes to, and the certificates and wheels the package index's settings name
HOST_PATHS = {"MLBUILD_STORE": "rw", "MLBUILD_CACHE": "rw", "MLBUILD_WHEEL_CACHE": "rw",
              "PIP_CERT": "ro", "PIP_FIND_LINKS": "ro", "SSL_CERT_FILE": "ro",
              "REQUESTS_CA_BUNDLE": "ro", "AWS_CA_BUNDLE": "ro"}


def _passed_in(volumes: dict[str, dict[str, str]]) -> dict[str, str]:
    """The host's environment a stage needs in the container, explicitly: the variables
    named above, with the Docker engine's socket and the host paths they name mounted at
    the same path (a host path outside the workspace would not exist there). The wheel
    cache is always the host's, so that image builds in the container reuse its wheels."""
    import os

    from mlbuild.settings import wheel_cache_dir

    env = {k: v for k, v in os.environ.items()
           if k.startswith(PASSED_IN) or k in PASSED_IN_NAMES}
    env["MLBUILD_WHEEL_CACHE"] = str(wheel_cache_dir().resolve())
    Path(env["MLBUILD_WHEEL_CACHE"]).mkdir(parents=True, exist_ok=True)
    socket = env.get("DOCKER_HOST", "")
    mounts = [(socket.removeprefix("unix://"), "rw")] if socket.startswith("unix://") else []
    mounts += [(path, mode) for k, mode in HOST_PATHS.items() if k in env
               for path in env[k].split()]  # PIP_FIND_LINKS may name several
    for path, mode in mounts:
        if os.path.isabs(path) and os.path.exists(path) and not any(
                path == mounted or path.startswith(mounted + os.sep) for mounted in volumes):
            volumes[path] = {"bind": path, "mode": mode}
    return env


def _socket_groups(environment: dict[str, str]) -> list[int]:
    """The Docker socket's group, so the host's user may use the engine in the container."""
    import os

    socket = environment.get("DOCKER_HOST", "").removeprefix("unix://")
    return [os.stat(socket).st_gid] if socket and os.path.exists(socket) else []


def run_deploy_stage(module: str, environment: str, to: str | None) -> StageResult:
    """Promote the pushed image (or roll back ``to`` a digest) and write the stage's JUnit."""
    from mlbuild.ci import deploy
    from mlbuild.ci.runner import project_task
    from mlbuild.core.manifest import git_commit
    from mlbuild.release.lockfile import LockFile
    from mlbuild.settings import store_uri
    from mlbuild.store import open_store

    with project_task(module, "PushImage", []) as push:
        if not push.complete():
            raise MissingError(f"There is no pushed image to deploy: {push} is not complete.",
                               hint="run `mlbuild stage push` first (after the acceptance test).")
        pushed = push.read_manifest().extra
        publish = push.release_config().publish
    entry = LockFile.read(publish.lockfile).models.get(publish.model_name)
    name = f"deploy-{environment}"
    case = f"deploy to {environment}"
    try:
        record, changed = deploy.promote(
            open_store(store_uri()), environment, pushed["registry"], pushed["repository"],
            to or pushed["digest"], model_sha256=entry.sha256 if entry else None,
            commit=git_commit(), on_branch=deploy.branch(), rollback=to is not None)
    except MlbuildError as exc:
        write_junit(name, case, exc.message)
        raise
    write_junit(name, case, None)
    what = "rolled back to" if record.rollback and changed else (
        "now runs" if changed else "already runs")
    return StageResult(name, 0, junit_path(name),
                       f"stage deploy: {environment} {what} {record.image}; Kubernetes "
                       f"manifest: {deploy.manifest_path(environment)}")


def write_junit(name: str, case_name: str, failure: str | None) -> None:
    suite = ET.Element("testsuite", name=f"stage.{name}", tests="1",
                       failures=str(int(failure is not None)), skipped="0")
    case = ET.SubElement(suite, "testcase", classname=f"stage.{name}", name=case_name)
    if failure is not None:
        ET.SubElement(case, "failure", message=failure.splitlines()[0][:500]).text = failure
    ET.indent(suite)
    junit_path(name).write_text(ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n")


def run_stage(name: str, module: str, extra: list[str], workers: int = 1,
              tier: str | None = None) -> StageResult:
    target = definition(name)
    if target.startswith(TESTS):
        return run_tests(name, target.removeprefix(TESTS), extra)
    if tier is not None:
        extra = [*extra, "--tier", tier]
    return run_task_stage(name, module, target, extra, workers)


