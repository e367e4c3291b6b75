"""AWS Batch, without Batch: the request, the command, the failure message, the backoff, and
which tasks go to Batch. tests/integration/test_batch.py runs real jobs."""

from __future__ import annotations

import json
from pathlib import Path

import luigi
import pytest

from mlbuild import batch
from mlbuild.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
DEFINITION = REPO / "configs" / "batch" / "train.json"


def settings(**changes) -> batch.BatchSettings:
    return batch.BatchSettings(**{"tasks": frozenset({"Train"}), "job_definition": DEFINITION,
                                  "job_queue": "mlbuild", **changes})


def test_the_request_is_the_file_with_the_settings_applied():
    request = batch.job_definition_request(settings(image="registry/train:abc", vcpus=4,
                                                    memory_mb=8192, timeout_s=600, attempts=3))
    container = request["containerProperties"]
    assert container["image"] == "registry/train:abc"
    assert {r["type"]: r["value"] for r in container["resourceRequirements"]} == {
        "VCPU": "4", "MEMORY": "8192"}
    assert request["timeout"] == {"attemptDurationSeconds": 600}
    assert request["retryStrategy"] == {"attempts": 3}
    # Without settings, the file as it is.
    assert batch.job_definition_request(settings()) == json.loads(DEFINITION.read_text())


def test_the_spec_digest_changes_with_the_request_only():
    request = batch.job_definition_request(settings())
    assert batch.spec_digest(request) == batch.spec_digest(json.loads(json.dumps(request)))
    assert batch.spec_digest(request) != batch.spec_digest({**request, "timeout": {
        "attemptDurationSeconds": 61}})


@pytest.mark.parametrize("text, words", [
    ("[]", "must be a JSON object"),
    ("{not json", "not a JSON file"),
    ('{"jobDefinitionName": "has space", "containerProperties": {"image": "i"}}',
     "jobDefinitionName"),
    ('{"jobDefinitionName": "ok", "type": "multinode", "containerProperties": {}}',
     "only container jobs"),
    ('{"jobDefinitionName": "ok", "containerProperties": {}}', "no image"),
    ('{"jobDefinitionName": "ok", "containerProperties": {"image": "i", "command": "luigi"}}',
     "command must be a list"),
    (('{"jobDefinitionName": "ok", "containerProperties": {"image": "i"}, '
     '"timeout": {"attemptDurationSeconds": 30}}'), "at least 60"),
    (('{"jobDefinitionName": "ok", "containerProperties": {"image": "i"}, '
     '"retryStrategy": {"attempts": 11}}'), "1 to 10"),
])
def test_a_bad_job_definition_names_the_file_and_the_problem(tmp_path, text, words):
    path = tmp_path / "job.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=words) as raised:
        batch.job_definition_request(settings(job_definition=path))
    assert str(path) in str(raised.value)


def test_a_missing_job_definition_file_says_which_setting_names_it(tmp_path):
    with pytest.raises(ConfigError, match=r"no such file \(\[batch\] job_definition"):
        batch.job_definition_request(settings(job_definition=tmp_path / "nope.json"))


def test_settings_too_small_for_batch_are_refused():
    with pytest.raises(ConfigError, match="at least 60"):
        batch.job_definition_request(settings(timeout_s=10))
    with pytest.raises(ConfigError, match="1 to 10"):
        batch.job_definition_request(settings(attempts=20))


class Sample(luigi.Task):
    variant = luigi.IntParameter()
    fast = luigi.BoolParameter()
    label = luigi.Parameter(default="label")
    fingerprint = "f" * 64
    has_effects_outside_store = False


def test_the_job_command_carries_the_task_and_its_parameters():
    command = batch.job_command(Sample(variant=2, fast=True), ["prefix"])
    assert command[:7] == ["prefix", "Sample", "--variant", "2", "--fast", "--label", "label"]
    assert command[-3:] == ["--local-scheduler", "--log-level", "INFO"]
    assert "--fast" not in batch.job_command(Sample(variant=2), [])


def test_the_projects_own_config_sections_travel_with_the_job_and_mlbuilds_do_not():
    import tasks
    from tasks.train import TrainModel

    assert tasks  # the project's module registers its Config classes
    command = batch.job_command(TrainModel(), [])
    assert command[0] == "TrainModel"
    assert "--pipeline-config" in command
    assert not any(arg.startswith(("--mlbuild-", "--batch-", "--core-")) for arg in command)


def test_the_job_name_is_one_per_result():
    assert batch.job_name(Sample(variant=1)) == "Sample-" + "f" * 16
    assert batch.NAME.match(batch.job_name(Sample(variant=1)))


def test_only_named_tasks_go_to_batch_and_never_from_inside_a_job(monkeypatch):
    monkeypatch.delenv(batch.JOB_ID_ENV, raising=False)
    named = settings(tasks=frozenset({"Sample"}))
    assert batch.runs_on_batch(Sample(variant=1), named)
    assert not batch.runs_on_batch(Sample(variant=1), settings())
    monkeypatch.setenv(batch.JOB_ID_ENV, "1234")
    assert not batch.runs_on_batch(Sample(variant=1), named)


def test_the_task_list_comes_from_luigi_cfg_or_the_environment(monkeypatch):
    monkeypatch.delenv("MLBUILD_BATCH_TASKS", raising=False)
    config = luigi.configuration.get_config()
    before = config.get("batch", "tasks", None)
    config.set("batch", "tasks", "TrainModel, TrainVariant")
    try:
        assert batch.BatchSettings.load().tasks == {"TrainModel", "TrainVariant"}
        monkeypatch.setenv("MLBUILD_BATCH_TASKS", "FetchData")
        assert batch.BatchSettings.load().tasks == {"FetchData"}
    finally:
        config.set("batch", "tasks", before or "")


def test_a_job_refuses_to_build_another_fingerprint_than_expected(monkeypatch):
    task = Sample(variant=1)
    monkeypatch.setenv(batch.EXPECT_ENV, f"{task.task_id} {'0' * 64}")
    with pytest.raises(ConfigError, match="other code, configuration or packages"):
        batch.check_expected(task)
    monkeypatch.setenv(batch.EXPECT_ENV, f"{task.task_id} {task.fingerprint}")
    batch.check_expected(task)
    monkeypatch.setenv(batch.EXPECT_ENV, f"Other(x=1) {'0' * 64}")  # not this task: no check
    batch.check_expected(task)


def test_a_local_store_cannot_be_reached_by_a_job(monkeypatch):
    monkeypatch.setenv("MLBUILD_STORE", "/tmp/store")
    with pytest.raises(ConfigError, match="MLBUILD_STORE=s3://"):
        batch.job_environment(Sample(variant=1), settings())


def test_the_job_environment_has_the_store_the_expectation_and_the_named_variables(monkeypatch):
    monkeypatch.setenv("MLBUILD_STORE", "s3://bucket/team")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://s3")
    monkeypatch.delenv("NOT_SET_HERE", raising=False)
    env = {e["name"]: e["value"] for e in batch.job_environment(
        Sample(variant=1), settings(environment=("AWS_ENDPOINT_URL", "NOT_SET_HERE")))}
    assert env == {"MLBUILD_STORE": "s3://bucket/team", "AWS_ENDPOINT_URL": "http://s3",
                   batch.EXPECT_ENV: f"{Sample(variant=1).task_id} {'f' * 64}"}


JOB = {"jobName": "TrainModel-0123456789abcdef", "jobId": "j-1", "status": "FAILED"}


def test_a_failure_gives_the_reason_the_exit_code_the_error_and_the_last_lines():
    tail = ["INFO: start", "Traceback (most recent call last):",
            "mlbuild.errors.IntegrityError: s3://b/train.csv has sha256 1, not 2", "INFO: end"]
    message = batch.failure_message({**JOB, "statusReason": "Essential container exited",
                                     "attempts": [{}, {}]}, tail, 21, "img", "q")
    assert "TrainModel-0123456789abcdef (j-1) FAILED after 2 attempts." in message
    assert "Status reason: Essential container exited." in message
    assert "The container exited with code 21." in message
    assert ("The container's error: mlbuild.errors.IntegrityError: s3://b/train.csv has sha256 "
            "1, not 2") in message
    assert message.endswith("  INFO: end")


def test_a_job_that_never_ran_a_container_says_so_and_names_the_image_and_queue():
    message = batch.failure_message(JOB, [], None, "registry/missing:1", "mlbuild")
    assert "Batch gave no status reason." in message
    assert "No container ran" in message and "'registry/missing:1'" in message
    assert "'mlbuild'" in message


def test_the_log_is_the_current_attempts_and_the_exit_code_the_latest_attempts():
    running = {"container": {"logStreamName": "a2"},  # attempt 2 runs; attempts[] lists 1
               "attempts": [{"container": {"exitCode": 2, "logStreamName": "a1"}}]}
    assert batch._log_stream(running) == "a2"
    assert batch._log_stream({"attempts": [{"container": {"logStreamName": "a1"}}]}) == "a1"
    never_ran = {"container": {"exitCode": 2},
                 "attempts": [{"container": {"exitCode": 2}}, {"container": {}}]}
    assert batch._exit_code(never_ran) is None  # not the older attempt's code
    assert batch._exit_code({"container": {"exitCode": 3}}) == 3
    assert batch._exit_code({}) is None


class Explicit(luigi.Task):
    fast = luigi.BoolParameter(parsing=luigi.BoolParameter.EXPLICIT_PARSING)
    slow = luigi.BoolParameter(default=True)


def test_bool_parameters_on_the_job_command_line():
    assert batch.command_line_args(Explicit(fast=False)) == ["--fast", "false", "--slow"]
    with pytest.raises(ConfigError, match="Explicit: --slow is true unless given"):
        batch.command_line_args(Explicit(fast=True, slow=False))


def test_a_task_with_effects_outside_the_store_is_refused():
    from mlbuild import BuildTask

    class Publishes(BuildTask):
        def invalidation_reason(self):
            return None

    with pytest.raises(ConfigError, match="Publishes cannot run on AWS Batch"):
        batch.check_movable(Publishes())

    class Trains(BuildTask):
        pass

    batch.check_movable(Trains())


class FakeBatch:
    """A stand-in for BatchClient: a job that is already there, or one it submits."""

    def __init__(self, existing: str | None, wait_error: BaseException):
        self.existing, self.wait_error = existing, wait_error
        self.submitted, self.terminated = [], []
        self.batch = self

    def call(self, what, function, *args, hint="", **kwargs):
        return function(*args, **kwargs)

    def unfinished_job(self, name):
        return self.existing

    def submit_job(self, **request):
        self.submitted.append(request)
        return {"jobId": "new-job"}

    def terminate_job(self, jobId, reason):
        self.terminated.append((jobId, reason))

    def describe(self, job_id):
        raise self.wait_error


@pytest.mark.parametrize("existing, error, terminated", [
    (None, KeyboardInterrupt(), [("new-job", "The mlbuild worker waiting for it stopped")]),
    (None, SystemExit(143), [("new-job", "The mlbuild worker waiting for it stopped")]),
    (None, batch.BatchError("describe failed"), []),  # a failed poll: the job goes on
    ("their-job", KeyboardInterrupt(), []),  # another worker's job is never terminated
])
def test_only_an_interrupted_worker_terminates_and_only_its_own_job(monkeypatch, existing,
                                                                    error, terminated):
    fake = FakeBatch(existing, error)
    monkeypatch.setattr(batch.jobs, "BatchClient", lambda settings: fake)
    monkeypatch.setattr(batch.jobs, "ensure_job_definition", lambda client, request: "arn:def")
    monkeypatch.setenv("MLBUILD_STORE", "s3://bucket/team")
    with pytest.raises(type(error)):
        batch.run_on_batch(Sample(variant=1), settings())
    assert fake.terminated == terminated
    assert len(fake.submitted) == (0 if existing else 1)


def test_polling_backs_off_while_nothing_happens_and_starts_over_on_a_change():
    s = settings(poll_min_s=1, poll_max_s=8)
    delays, delay = [], s.poll_min_s
    for changed in (False, False, False, False, True, False):
        delay = batch.next_delay(delay, changed, s)
        delays.append(delay)
    assert delays == [2, 4, 8, 8, 1, 2]
