"""Tasks as AWS Batch jobs, for real: moto server's Batch API runs each job as a container of
the training image in the local Docker engine, against moto's S3 as the shared store."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import uuid

import pytest

from mlbuild.errors import BatchError, ConfigError
from tests import services
from tests.conftest import REPO, TEST_AWS, Project, ok, s3_client, wait_for

pytestmark = pytest.mark.integration

TRAIN_PREFIX = "team"


@pytest.fixture(scope="session")
def batch_endpoint(s3_endpoint, docker_env) -> str:
    """moto with Batch (jobs run in the test engine) and the job queue ``mlbuild``."""
    server = services.batch_moto(docker_host=docker_env["DOCKER_HOST"])
    if server.url != s3_endpoint:
        pytest.fail(f"the tests' S3 server {s3_endpoint} is not the Batch server {server.url}")
    services.create_batch_queue(server.url)
    return server.url


@pytest.fixture(scope="session")
def training_image(tmp_path_factory, docker_env) -> tuple[Project, str]:
    """The reference project with the library, and its training image, built once."""
    project = Project.copy_of(REPO, tmp_path_factory.mktemp("batch"), with_library=True)
    project.extra_env.update(docker_env)
    ok(project.luigi("BuildTrainingImage"))
    record = next(project.store.glob("BuildTrainingImage/*/image.json"))
    return project, json.loads(record.read_text())["tag"]


@pytest.fixture
def on_batch(training_image, batch_endpoint, docker_env, bucket, tmp_path):
    """A copy of that project whose store is on S3 and whose jobs run that image."""
    source, tag = training_image
    project = Project.copy_of(source.root, tmp_path / "project", with_library=True)
    project.extra_env.update(docker_env, **TEST_AWS, AWS_ENDPOINT_URL=batch_endpoint,
                             MLBUILD_STORE=f"s3://{bucket}/{TRAIN_PREFIX}",
                             MLBUILD_BATCH_IMAGE=tag,
                             MLBUILD_BUILD_LOG=str(tmp_path / "builds.log"))
    project.edit("luigi.cfg", "[batch]\n", f"[batch]\nenvironment = {services.BATCH_FORWARD}\n"
                 "poll_min_s = 0.2\npoll_max_s = 1\n")
    return project, bucket


def batch_client(endpoint: str):
    return services.aws_client("batch", endpoint)


def keys(endpoint: str, bucket: str) -> list[str]:
    listed = s3_client(endpoint).list_objects_v2(Bucket=bucket, Prefix=f"{TRAIN_PREFIX}/")
    return [o["Key"] for o in listed.get("Contents", [])]


def built(project) -> set[str]:
    log = project.root.parent / "builds.log"
    return {json.loads(line)["family"] for line in log.read_text().splitlines()} if log.exists() else set()


def test_train_model_runs_as_a_batch_job_and_the_pipeline_continues_to_the_end(
        on_batch, built_project, batch_endpoint):
    project, bucket = on_batch
    project.edit("luigi.cfg", "tasks =\n", "tasks = TrainModel\n")
    result = ok(project.luigi("FullPipeline", timeout=600))
    # The job's own log lines, streamed to the worker's stderr as they came.
    job = re.search(r"\[batch (TrainModel-[0-9a-f]{16})\]", result.stderr).group(1)
    assert re.search(rf"\[batch {job}\] .*done\s+TrainModel\(\)", result.stderr), result.stderr
    assert f"[batch {job}] SUCCEEDED" in result.stderr
    # The worker built every step but TrainModel, whose result the job wrote to the store.
    assert built(project) == {"FetchData", "ValidateData", "SplitData", "CheckDrift",
                              "EvaluateAccuracy",
                              "PublishModel", "BuildImage", "AcceptanceTest", "PushImage"}
    assert any(k.startswith(f"{TRAIN_PREFIX}/TrainModel/") and k.endswith("/manifest.json")
               for k in keys(batch_endpoint, bucket))
    # The released model is the one a local single-worker run releases, byte for byte.
    released = json.loads(project.lock.read_text())["models"]["digits"]["sha256"]
    assert released == json.loads(built_project.lock.read_text())["models"]["digits"]["sha256"]

    again = ok(project.luigi("FullPipeline"))
    assert "[batch" not in again.stderr
    submitted = re.findall(r"submitted job (\S+)", result.stderr)
    assert len(submitted) == 1, result.stderr
    described = batch_client(batch_endpoint).describe_jobs(jobs=submitted)["jobs"]
    assert [j["status"] for j in described] == ["SUCCEEDED"]


def test_a_job_failing_in_its_container_fails_the_task_with_the_containers_error(
        on_batch, batch_endpoint):
    project, bucket = on_batch
    ok(project.mlbuild("run", "SplitData"))
    train_key = next(k for k in keys(batch_endpoint, bucket)
                     if k.startswith(f"{TRAIN_PREFIX}/SplitData/") and k.endswith("/train.rows.arrow"))
    s3 = s3_client(batch_endpoint)
    s3.put_object(Bucket=bucket, Key=train_key, Body=b"label,pixel_0\n1,2\n")
    project.extra_env["MLBUILD_BATCH_TASKS"] = "TrainModel"
    result = project.mlbuild("run", "TrainModel")
    assert result.returncode == BatchError.exit_code, result.stderr
    assert "The container exited with code 21" in result.stderr  # luigi.cfg [retcode]
    assert re.search(r"The container's error: .*IntegrityError: .*train\.rows\.arrow", result.stderr)
    assert not any("/TrainModel/" in k for k in keys(batch_endpoint, bucket))


def test_a_job_definition_naming_a_missing_image_gives_a_clear_error(on_batch):
    project, _ = on_batch
    ok(project.mlbuild("run", "SplitData"))
    missing = f"127.0.0.1:{services.REGISTRY_PORT}/nobody/missing:{uuid.uuid4().hex[:8]}"
    project.extra_env.update(MLBUILD_BATCH_IMAGE=missing)
    result = project.mlbuild("batch", "submit", "TrainModel")
    assert result.returncode == BatchError.exit_code, result.stderr
    assert "No container ran" in result.stderr and missing in result.stderr
    assert "Traceback" not in result.stderr


def test_a_job_whose_image_holds_other_configuration_stops_before_building(on_batch,
                                                                          batch_endpoint):
    project, bucket = on_batch
    ok(project.mlbuild("run", "SplitData"))
    before = keys(batch_endpoint, bucket)
    # This checkout trains 90 iterations; the image was built when it said 100.
    project.edit("configs/pipeline.toml", "num_iterations = 100", "num_iterations = 90")
    result = project.mlbuild("batch", "submit", "TrainModel")
    assert result.returncode == BatchError.exit_code, result.stderr
    assert "The container exited with code 23" in result.stderr  # [retcode] scheduling_error
    assert re.search(r"The container's error: .*ConfigError: This job computes fingerprint "
                     r"\w+ for TrainModel\(\), but the worker that submitted it expects",
                     result.stderr), result.stderr
    assert keys(batch_endpoint, bucket) == before  # nothing built, nothing written


def test_a_job_that_succeeds_without_the_result_fails_the_task(on_batch):
    project, _ = on_batch
    ok(project.mlbuild("run", "SplitData"))
    # A command prefix that makes the job print Luigi's help and exit 0.
    project.edit("configs/batch/train.json", '"command": []', '"command": ["--help"]')
    result = project.mlbuild("batch", "submit", "TrainModel")
    assert result.returncode == BatchError.exit_code, result.stderr
    assert "SUCCEEDED but wrote no result for TrainModel()" in result.stderr


def test_batch_submit_needs_the_upstream_results_and_skips_a_finished_one(on_batch):
    project, _ = on_batch
    result = project.mlbuild("batch", "submit", "TrainModel")
    assert result.returncode == 5, result.stderr  # MissingError
    assert "SplitData()" in result.stderr

    ok(project.mlbuild("run", "SplitData"))
    ok(project.mlbuild("batch", "submit", "FetchData"))
    assert "already complete" in ok(project.mlbuild("batch", "submit", "FetchData")).stdout


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_worker_terminates_its_job(on_batch, batch_endpoint, tmp_path, sig, code):
    project, bucket = on_batch
    ok(project.mlbuild("run", "SplitData"))
    log = tmp_path / "submit.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "mlbuild.cli", "batch", "submit",
                                    "TrainModel"], cwd=project.root, env=project.env,
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    client = batch_client(batch_endpoint)

    def status() -> str | None:
        submitted = re.search(r"submitted job (\S+)", log.read_text())
        return submitted and client.describe_jobs(jobs=[submitted[1]])["jobs"][0]["status"]

    try:
        wait_for(lambda: status() in ("STARTING", "RUNNING") or process.poll() is not None,
                 120, "the job to start")
    finally:
        process.send_signal(sig)
        process.wait(timeout=60)
    assert process.returncode == code, log.read_text()
    job_id = re.search(r"submitted job (\S+)", log.read_text())[1]
    wait_for(lambda: status() == "FAILED", 60, "the job to stop")
    job = client.describe_jobs(jobs=[job_id])["jobs"][0]
    assert job["statusReason"] == "The mlbuild worker waiting for it stopped"
    assert not any("/TrainModel/" in k for k in keys(batch_endpoint, bucket))


def test_a_local_store_is_refused(training_image, tmp_path):
    project = Project.copy_of(training_image[0].root, tmp_path / "local")
    project.extra_env["MLBUILD_BATCH_TASKS"] = "TrainModel"
    result = project.mlbuild("run", "TrainModel")
    assert result.returncode == ConfigError.exit_code, result.stderr
    assert "MLBUILD_STORE=s3://" in result.stderr


@pytest.mark.parametrize("setting, named", [
    ({"MLBUILD_BATCH_QUEUE": "no-such-queue"}, "Job queue no-such-queue does not exist"),
    ({"MLBUILD_BATCH_ENDPOINT_URL": f"http://127.0.0.1:{services.free_port()}"}, "did not answer"),
])
def test_a_missing_queue_or_an_unreachable_endpoint_fails_clearly(on_batch, setting, named):
    project, _ = on_batch
    ok(project.mlbuild("run", "SplitData"))
    project.extra_env.update(setting)
    result = project.mlbuild("batch", "submit", "TrainModel", timeout=300)
    assert result.returncode == BatchError.exit_code, result.stderr
    assert named in result.stderr and "Traceback" not in result.stderr


def test_the_same_request_reuses_its_job_definition_and_an_unfinished_job_is_found(
        batch_endpoint, monkeypatch):
    from mlbuild import batch

    for name, value in TEST_AWS.items():
        monkeypatch.setenv(name, value)
    settings = batch.BatchSettings(tasks=frozenset(), job_definition=REPO / "configs/batch/train.json",
                                   job_queue="mlbuild", endpoint_url=batch_endpoint,
                                   image="mlbuild/model-train:reuse",
                                   attempts=2)
    client = batch.BatchClient(settings)
    request = batch.job_definition_request(settings)
    request["jobDefinitionName"] = f"reuse-{uuid.uuid4().hex[:8]}"
    first = batch.ensure_job_definition(client.batch, request)
    assert batch.ensure_job_definition(client.batch, request) == first
    changed = {**request, "retryStrategy": {"attempts": 3}}
    second = batch.ensure_job_definition(client.batch, changed)
    assert second != first and second.endswith(":2")

    name = f"Reuse-{uuid.uuid4().hex[:16]}"
    # An image that does not exist: the job stays unfinished only briefly, then fails.
    job = client.batch.submit_job(jobName=name, jobQueue="mlbuild", jobDefinition=first)["jobId"]
    assert client.unfinished_job(name) == job
    wait_for(lambda: client.describe(job)["status"] in batch.FINISHED, 60, "the job to end")
    assert client.unfinished_job(name) is None


def test_sweep_variants_run_as_parallel_jobs_and_give_the_local_sweeps_model(
        on_batch, batch_endpoint, tmp_path):
    project, bucket = on_batch
    project.extra_env["MLBUILD_BATCH_TASKS"] = "TrainVariant"
    sweep = ["--pipeline-config", "configs/sweep.toml"]
    result = ok(project.luigi("TrainModel", *sweep, "--workers", "3", timeout=600))
    jobs = set(re.findall(r"submitted job (\S+)", result.stderr))
    assert len(jobs) == 3, result.stderr
    # The job's command carries the worker's --pipeline-config: the jobs trained the sweep.
    assert result.stderr.count("--pipeline-config configs/sweep.toml") >= 3
    described = batch_client(batch_endpoint).describe_jobs(jobs=sorted(jobs))["jobs"]
    assert {j["status"] for j in described} == {"SUCCEEDED"}
    assert max(j["startedAt"] for j in described) < min(j["stoppedAt"] for j in described), (
        "the three jobs did not run at the same time")

    local = Project.copy_of(project.root, tmp_path / "local")
    ok(local.luigi("TrainModel", *sweep))
    model = next(local.store.glob("TrainModel/*/model.txt")).read_bytes()
    key = next(k for k in keys(batch_endpoint, bucket)
               if k.startswith(f"{TRAIN_PREFIX}/TrainModel/") and k.endswith("/model.txt"))
    assert s3_client(batch_endpoint).get_object(Bucket=bucket, Key=key)["Body"].read() == model
