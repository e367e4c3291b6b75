"""The jobs: the job definition, submitting, following a job's status and log, and why it
failed. Loaded when a task goes to Batch (``mlbuild.batch`` decides which)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import luigi
import luigi.task_register
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlbuild import aws
from mlbuild.batch.executor import EXPECT_ENV, BatchSettings
from mlbuild.config import Section
from mlbuild.core.manifest import MANIFEST
from mlbuild.errors import BatchError, ConfigError
from mlbuild.settings import store_uri
from mlbuild.store.s3 import S3Options

#: Tag of a job definition revision: the sha256 of the request that registered it.
SPEC_TAG = "mlbuild:spec-sha256"
FINISHED = ("SUCCEEDED", "FAILED")
UNFINISHED = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
LOG_TAIL = 40
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
#: The last line of a Python traceback: "package.module.SomeError: message".
ERROR_LINE = re.compile(r"\b([A-Za-z_][\w.]*(?:Error|Exception|Failed|Interrupt)\b:.*)$")

# ------------------------------------------------------------------ the job definition


class JobOverrides(Section):
    """The ``[batch]`` settings that replace values of the job definition file.

    Zero (or an empty image) keeps the file's value.
    """

    image: str = ""
    vcpus: Annotated[float, Field(ge=0)] = 0
    memory_mb: Annotated[int, Field(ge=0)] = 0
    timeout_s: Literal[0] | Annotated[int, Field(ge=60)] = 0
    attempts: Literal[0] | Annotated[int, Field(ge=1, le=10)] = 0


class _Open(BaseModel):
    """A part of a RegisterJobDefinition request: the keys mlbuild reads are checked, the
    rest go to Batch as they are."""

    model_config = ConfigDict(extra="allow", strict=True)


class _Container(_Open):
    image: Annotated[str, Field(min_length=1)]
    command: list[str] = []
    resourceRequirements: list[dict[str, Any]] = []


class _Timeout(_Open):
    attemptDurationSeconds: Annotated[int, Field(ge=60)] | None = None


class _RetryStrategy(_Open):
    attempts: Annotated[int, Field(ge=1, le=10)] | None = None


class JobDefinition(_Open):
    """The RegisterJobDefinition request mlbuild sends: the file, settings applied."""

    jobDefinitionName: Annotated[str, Field(pattern=NAME.pattern)]
    type: Literal["container"] = "container"
    containerProperties: _Container
    timeout: _Timeout = _Timeout()
    retryStrategy: _RetryStrategy = _RetryStrategy()


#: What a problem at a location means, worded for people (``{input!r}``: the value found).
#: The longest matching prefix of a pydantic error's location wins.
PROBLEMS: dict[tuple[str, ...], str] = {
    (): "must be a JSON object (a RegisterJobDefinition request)",
    ("jobDefinitionName",): "jobDefinitionName {input!r} must be 1-128 letters, digits, - or _",
    ("type",): "type {input!r}: only container jobs are supported",
    ("containerProperties",): "containerProperties must be an object",
    ("containerProperties", "image"): "no image: set containerProperties.image or [batch] image",
    ("containerProperties", "command"): "containerProperties.command must be a list of "
                                        "strings (the prefix of the task's command line)",
    ("containerProperties", "resourceRequirements"): "containerProperties.resourceRequirements "
                                                     "must be a list of objects",
    ("timeout",): "timeout must be an object",
    ("timeout", "attemptDurationSeconds"): "a timeout of {input!r} s: Batch needs at least 60",
    ("retryStrategy",): "retryStrategy must be an object",
    ("retryStrategy", "attempts"): "{input!r} attempts: Batch allows 1 to 10",
    # The [batch] settings (JobOverrides):
    ("vcpus",): "[batch] vcpus = {input!r} must be a number >= 0 (0: the file's)",
    ("memory_mb",): "[batch] memory_mb = {input!r} must be a whole number >= 0 (0: the file's)",
    ("timeout_s",): "[batch] timeout_s = {input!r}: Batch needs at least 60 (0: the file's)",
    ("attempts",): "[batch] attempts = {input!r}: Batch allows 1 to 10 (0: the file's)",
    ("image",): "[batch] image = {input!r} must be a string",
}


def _problems(exc: ValidationError) -> list[str]:
    """One line per problem, at most one per location, in the words of PROBLEMS."""
    lines: dict[tuple, str] = {}
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if isinstance(p, str))
        known = max((k for k in PROBLEMS if loc[:len(k)] == k), key=len)
        if known in lines:
            continue
        value = error.get("input")
        if error["type"] == "missing":
            value = None
        lines[known] = PROBLEMS[known].format(input=value)
    return list(lines.values())


def _checked(model: type[BaseModel], raw: Any, bad: Callable[[str], ConfigError]) -> None:
    try:
        model.model_validate(raw)
    except ValidationError as exc:
        raise bad("; ".join(_problems(exc))) from None


def _apply(request: dict[str, Any], overrides: JobOverrides) -> dict[str, Any]:
    """A copy of ``request`` with the overrides applied where its shape lets them apply
    (what does not fit is left for the validation to name)."""
    request = json.loads(json.dumps(request))
    container = request.get("containerProperties")
    if isinstance(container, dict):
        if overrides.image:
            container["image"] = overrides.image
        requirements = container.get("resourceRequirements", [])
        if isinstance(requirements, list) and all(isinstance(r, dict) for r in requirements):
            resources = {r.get("type"): r for r in requirements}
            for kind, value in (("VCPU", overrides.vcpus), ("MEMORY", overrides.memory_mb)):
                if value:
                    resources[kind] = {"type": kind, "value": f"{value:g}"}
            if resources:
                container["resourceRequirements"] = list(resources.values())
    if overrides.timeout_s:
        request["timeout"] = {"attemptDurationSeconds": overrides.timeout_s}
    if overrides.attempts:
        if not isinstance(request.get("retryStrategy", {}), dict):
            request["retryStrategy"] = {}
        request.setdefault("retryStrategy", {})["attempts"] = overrides.attempts
    return request


def job_definition_request(settings: BatchSettings) -> dict[str, Any]:
    """The RegisterJobDefinition request: the JSON file with the settings applied.

    The settings are checked as :class:`JobOverrides`, the result as :class:`JobDefinition`;
    every problem is named in one ConfigError.
    """
    path = settings.job_definition

    def bad(what: str) -> ConfigError:
        return ConfigError(f"{path}: {what}.",
                           hint="see configs/batch/train.json and [batch] in luigi.cfg.")

    overrides = {"image": settings.image, "vcpus": settings.vcpus,
                 "memory_mb": settings.memory_mb, "timeout_s": settings.timeout_s,
                 "attempts": settings.attempts}
    _checked(JobOverrides, overrides, bad)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise bad("no such file ([batch] job_definition names it)") from None
    except (OSError, ValueError) as exc:
        raise bad(f"not a JSON file ({exc})") from None
    if not isinstance(raw, dict):
        raise bad(PROBLEMS[()])
    request = _apply(raw, JobOverrides(**overrides))
    _checked(JobDefinition, request, bad)
    request["type"] = "container"
    return request


def spec_digest(request: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


def ensure_job_definition(client, request: dict[str, Any]) -> str:
    """The ARN of the ACTIVE revision registered from exactly ``request``, else a new one."""
    digest = spec_digest(request)
    pages = client.get_paginator("describe_job_definitions").paginate(
        jobDefinitionName=request["jobDefinitionName"], status="ACTIVE")
    for page in pages:
        for revision in page["jobDefinitions"]:
            if (revision.get("tags") or {}).get(SPEC_TAG) == digest:
                return revision["jobDefinitionArn"]
    tags = {**request.get("tags", {}), SPEC_TAG: digest}
    return client.register_job_definition(**{**request, "tags": tags})["jobDefinitionArn"]


# ------------------------------------------------------------------ the job


def job_name(task) -> str:
    """One name per result: a second worker finds the job a first one submitted."""
    return f"{task.task_family}-{task.fingerprint[:16]}"


def _flag(section: str, name: str) -> str:
    return "--" + "-".join(filter(None, (section, name))).replace("_", "-")


def command_line_args(obj, section: str = "") -> list[str]:
    """A task's (or a config section's) significant parameters as Luigi flags."""
    args: list[str] = []
    params = dict(obj.get_params())
    for name, value in obj.to_str_params(only_significant=True, only_public=True).items():
        param, flag = params[name], _flag(section, name)
        if not isinstance(param, luigi.BoolParameter):
            args += [flag, value]
        elif param.parsing == luigi.BoolParameter.EXPLICIT_PARSING:
            args += [flag, value.lower()]
        elif value == "True":
            args.append(flag)
        elif param.task_value(obj.get_task_family(), name):
            raise ConfigError(
                f"{obj.get_task_family()}: {flag} is true unless given, so a job's command "
                "line cannot make it false.", hint="declare it with "
                "luigi.BoolParameter(parsing=luigi.BoolParameter.EXPLICIT_PARSING).")
    return args


def project_config_args(task) -> list[str]:
    """The project's own Luigi config sections (e.g. ``[pipeline] config``), as flags.

    They travel with the job so that it sees what this worker sees, also when a value came
    from the worker's command line. mlbuild's and Luigi's sections stay behind: the store
    is passed in the environment, the rest belongs to each worker.
    """
    package = type(task).__module__.split(".")[0]
    args: list[str] = []
    for cls in luigi.task_register.Register._get_reg().values():
        if (isinstance(cls, type) and issubclass(cls, luigi.Config)
                and cls.__module__.split(".")[0] == package):
            args += command_line_args(cls(), cls.get_task_family())
    return args


def job_command(task, prefix: list[str]) -> list[str]:
    return [*prefix, task.task_family, *command_line_args(task), *project_config_args(task),
            "--local-scheduler", "--log-level", "INFO"]


def job_environment(task, settings: BatchSettings) -> list[dict[str, str]]:
    store = store_uri()
    if not store.startswith("s3://"):
        raise ConfigError(
            f"{task.task_family} is to run on AWS Batch ([batch] tasks), but the store is "
            f"{store!r}, which a job cannot reach.", hint="set MLBUILD_STORE=s3://bucket/prefix."
        )
    env = {"MLBUILD_STORE": store, EXPECT_ENV: f"{task.task_id} {task.fingerprint}"}
    endpoint = S3Options.from_settings().endpoint_url  # the store's own S3 endpoint, when it has one
    if endpoint:
        env["MLBUILD_S3_ENDPOINT_URL"] = endpoint
    env.update({name: os.environ[name] for name in settings.environment if name in os.environ})
    return [{"name": k, "value": v} for k, v in env.items()]


# ------------------------------------------------------------------ talking to Batch


class BatchClient:
    """The Batch and CloudWatch Logs clients (from :func:`mlbuild.aws.client`), with their
    errors translated by the shared map (:mod:`mlbuild.aws.errors`) into BatchError."""

    def __init__(self, settings: BatchSettings):
        self.settings = settings
        self.where = aws.endpoint_name(settings.endpoint_url)
        self.queue = settings.job_queue
        options = {"endpoint_url": settings.endpoint_url,
                   "max_attempts": settings.api_max_attempts,
                   "connect_timeout": settings.api_connect_timeout,
                   "read_timeout": settings.api_read_timeout, "error": BatchError}
        self.batch = aws.client("batch", label="AWS Batch", **options)
        self.logs = aws.client("logs", label="CloudWatch Logs", **options)

    def call(self, what: str, function: Callable[..., Any], *args, hint: str = "",
             resource: str = "", **kwargs) -> Any:
        """``function(*args, **kwargs)``; an AWS error in it is a BatchError saying that
        Batch could not ``what`` (``hint``: what to do when Batch refuses it)."""
        call = aws.AwsCall("AWS Batch", what, resource, endpoint=self.where,
                           attempts=self.settings.api_max_attempts)
        hints = {"refused": hint, "not_found": hint,
                 "unreachable": "check [batch] endpoint_url (MLBUILD_BATCH_ENDPOINT_URL, "
                                "AWS_ENDPOINT_URL) and the network; [batch] api_max_attempts "
                                "and api_read_timeout bound the retries.",
                 "throttled": "wait a little and run again, or raise [batch] api_max_attempts."}
        with aws.translated(call, error=BatchError, hints={k: v for k, v in hints.items() if v}):
            return function(*args, **kwargs)

    def unfinished_job(self, name: str) -> str | None:
        for job in self.jobs_named(name):
            if job["status"] in UNFINISHED:
                return job["jobId"]
        return None

    def jobs_named(self, name: str) -> list[dict[str, Any]]:
        # With a filter, ListJobs returns jobs of every status.
        pages = self.batch.get_paginator("list_jobs").paginate(
            jobQueue=self.queue, filters=[{"name": "JOB_NAME", "values": [name]}])
        return self.call(f"list the jobs of queue {self.queue!r}",
                         lambda: [j for p in pages for j in p["jobSummaryList"]],
                         hint=f"check that job queue {self.queue!r} exists ([batch] job_queue, "
                              "MLBUILD_BATCH_QUEUE).")

    def describe(self, job_id: str) -> dict[str, Any]:
        jobs = self.call("describe a job", self.batch.describe_jobs, jobs=[job_id])["jobs"]
        if not jobs:
            raise BatchError(f"AWS Batch at {self.where} no longer knows job {job_id} (Batch "
                             "forgets jobs some days after they end).", hint="run the task again.")
        return jobs[0]

    def log_events(self, group: str, stream: str, token: str | None) -> tuple[list[str], str | None]:
        """New lines of a log stream since ``token``; none while the stream does not exist."""
        kwargs = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if token:
            kwargs["nextToken"] = token
        try:
            reply = self.logs.get_log_events(**kwargs)
        except Exception as exc:
            found = aws.classify(exc)
            if found is not None and found[0] == "not_found":
                return [], token
            call = aws.AwsCall("CloudWatch Logs", "read the log stream", f"{group}/{stream}",
                               endpoint=self.where, attempts=self.settings.api_max_attempts)
            mapped = aws.translate(exc, call, error=BatchError)
            if mapped is exc:
                raise
            raise mapped from exc
        return [e["message"] for e in reply["events"]], reply.get("nextForwardToken", token)


def _log_stream(job: dict[str, Any]) -> str | None:
    """The current attempt's log stream: the job's own field, else the latest attempt's."""
    attempts = job.get("attempts") or [{}]
    return (job.get("container", {}).get("logStreamName")
            or attempts[-1].get("container", {}).get("logStreamName"))


def _exit_code(job: dict[str, Any]) -> int | None:
    """The latest attempt's exit code (the job's own field when it lists no attempts)."""
    attempts = job.get("attempts")
    return (attempts[-1] if attempts else job).get("container", {}).get("exitCode")


@dataclass
class JobLog:
    """The job's log lines: printed as they come, the last ones kept for a failure."""

    group: str
    prefix: str
    stream: str | None = None
    token: str | None = None
    tail: list[str] = field(default_factory=list)
    broken: bool = False  # reading the log failed: go on without it

    def follow(self, client: BatchClient, job: dict[str, Any]) -> int:
        stream = _log_stream(job)
        if not stream or self.broken:
            return 0
        if stream != self.stream:  # a new attempt writes a new stream
            self.stream, self.token, self.tail = stream, None, []
        total = 0
        while True:
            try:
                lines, token = client.log_events(self.group, stream, self.token)
            except Exception as exc:  # noqa: BLE001 - the job matters, its log is a courtesy
                print(f"{self.prefix} cannot read the job's log {self.group}/{stream}: {exc}; "
                      "waiting for the job without it", file=sys.stderr, flush=True)
                self.broken = True
                return total
            for line in lines:
                print(f"{self.prefix} {line}", file=sys.stderr, flush=True)
            self.tail = (self.tail + lines)[-LOG_TAIL:]
            total += len(lines)
            if not lines or token == self.token:
                self.token = token
                return total
            self.token = token


def job_failure(job: dict[str, Any], tail: list[str], exit_code: int | None,
                image: str, queue: str) -> BatchError:
    """The error of a FAILED job: status reason, exit code, the container's error line and
    its last log lines; a hint when no container ran."""
    attempts = len(job.get("attempts") or [])
    lines = [f"AWS Batch job {job['jobName']} ({job['jobId']}) {job['status']}"
             + (f" after {attempts} attempts" if attempts > 1 else "") + "."]
    reason = job.get("statusReason")
    lines.append(f"Status reason: {reason}." if reason else "Batch gave no status reason.")
    if exit_code is None and not tail:
        lines.append("No container ran.")
        return BatchError("\n".join(lines), hint=f"check that image {image!r} exists where the "
                          f"compute environment can pull it, and that job queue {queue!r} has a "
                          "VALID, ENABLED compute environment.")
    if exit_code is not None:
        lines.append(f"The container exited with code {exit_code}.")
    errors = [m.group(1) for m in map(ERROR_LINE.search, tail) if m]
    if errors:
        lines.append(f"The container's error: {errors[-1]}")
    if tail:
        lines.append(f"Its last {len(tail)} log line(s):")
        lines += [f"  {line}" for line in tail]
    return BatchError("\n".join(lines))


def failure_message(job: dict[str, Any], tail: list[str], exit_code: int | None,
                    image: str, queue: str) -> str:
    """:func:`job_failure`'s message and hint, as one text."""
    return str(job_failure(job, tail, exit_code, image, queue))


def next_delay(delay: float, changed: bool, settings: BatchSettings) -> float:
    """Backoff: short after a change, doubling while nothing happens, up to the longest."""
    return settings.poll_min_s if changed else min(delay * 2, settings.poll_max_s)


def run_on_batch(task, settings: BatchSettings | None = None) -> None:
    """Build ``task`` as a Batch job; return once its result is in the store."""
    settings = settings or BatchSettings.load()
    check_movable(task)
    request = job_definition_request(settings)
    environment = job_environment(task, settings)
    client = BatchClient(settings)
    name = job_name(task)
    prefix = f"[batch {name}]"
    definition = client.call(
        f"register job definition {request['jobDefinitionName']!r}", ensure_job_definition,
        client.batch, request, hint=f"check {settings.job_definition} against AWS Batch's "
                                    "RegisterJobDefinition request.")
    job_id = client.unfinished_job(name)
    if job_id:
        # Another worker's job: wait for it, but never terminate it on this worker's behalf.
        print(f"{prefix} attaching to job {job_id}, submitted earlier", file=sys.stderr,
              flush=True)
        job, tail = _wait(client, job_id, request, settings, prefix, owned=False)
    else:
        command = job_command(task, request["containerProperties"].get("command", []))
        with _sigterm_as_exit():
            job_id = client.call(
                "submit the job", client.batch.submit_job, jobName=name,
                jobQueue=settings.job_queue, jobDefinition=definition,
                containerOverrides={"command": command, "environment": environment},
                hint=f"check that job queue {settings.job_queue!r} exists and is ENABLED "
                     "([batch] job_queue).")["jobId"]
            print(f"{prefix} submitted job {job_id} to {settings.job_queue}: "
                  f"{' '.join(command)}", file=sys.stderr, flush=True)
            try:
                job, tail = _wait(client, job_id, request, settings, prefix, owned=True)
            except (KeyboardInterrupt, SystemExit):
                _terminate(client, job_id, "The mlbuild worker waiting for it stopped")
                raise
    if job["status"] == "FAILED":
        exit_code = _exit_code(job)
        if exit_code is None:  # some APIs give it only in the job's summary
            summary = next((j for j in client.jobs_named(name) if j["jobId"] == job_id), {})
            exit_code = summary.get("container", {}).get("exitCode")
        raise job_failure(job, tail, exit_code, request["containerProperties"]["image"],
                          settings.job_queue)
    if not task.complete():
        raise BatchError(f"AWS Batch job {name} ({job_id}) SUCCEEDED but wrote no result "
                         f"for {task} at {manifest_url(task)}.", hint="the job's command must "
                         "build that task; see its log above.")


def check_movable(task) -> None:
    """Refuse a task whose result is more than its store folder: a job cannot bring back
    what it writes elsewhere (models.lock, images in the local engine)."""
    if task.has_effects_outside_store:
        raise ConfigError(
            f"{task.task_family} cannot run on AWS Batch: its result includes effects outside "
            "the store (it defines invalidation_reason), which would stay in the job's "
            "container.", hint=f"remove {task.task_family} from [batch] tasks."
        )


@contextlib.contextmanager
def _sigterm_as_exit():
    """SIGTERM (a CI abort, a killed worker) ends the wait as Ctrl-C does, so that the job
    is terminated too. Only the main thread may set a handler; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def manifest_url(task) -> str:
    return task.store.url(f"{task.prefix}/{MANIFEST}")


def _wait(client: BatchClient, job_id: str, request: dict[str, Any], settings: BatchSettings,
          prefix: str, owned: bool) -> tuple[dict[str, Any], list[str]]:
    options = request["containerProperties"].get("logConfiguration", {}).get("options", {})
    log = JobLog(options.get("awslogs-group", "/aws/batch/job"), prefix)
    started = time.monotonic()
    status, delay = None, settings.poll_min_s
    while True:
        job = client.describe(job_id)
        changed = log.follow(client, job) > 0  # the lines first: they led to the status
        if job["status"] != status:
            changed, status = True, job["status"]
            print(f"{prefix} {status}" + (f": {job['statusReason']}" if job.get("statusReason")
                                          else ""), file=sys.stderr, flush=True)
        if status in FINISHED:
            if status == "FAILED":
                # CloudWatch may receive a stopped container's last lines a moment later,
                # and the failure message needs them.
                time.sleep(settings.poll_min_s)
                log.follow(client, job)
            return job, log.tail
        if settings.max_wait_s and time.monotonic() - started > settings.max_wait_s:
            if owned:
                _terminate(client, job_id, f"Waited longer than [batch] max_wait_s "
                                           f"({settings.max_wait_s:g} s)")
            raise BatchError(f"AWS Batch job {job_id} was still {status} after "
                             f"{settings.max_wait_s:g} s ([batch] max_wait_s)"
                             f"{'; it was terminated' if owned else ''}.",
                             hint="a job that stays RUNNABLE means the queue's "
                             "compute environment has no capacity for it (check its vCPU and "
                             "memory); else raise max_wait_s.")
        delay = next_delay(delay, changed, settings)
        time.sleep(delay)


def _terminate(client: BatchClient, job_id: str, reason: str) -> None:
    try:
        client.batch.terminate_job(jobId=job_id, reason=reason)
        print(f"[batch] terminated job {job_id}: {reason}", file=sys.stderr, flush=True)
    except Exception as exc:  # noqa: BLE001 - already failing; say so, keep the first error
        print(f"[batch] could not terminate job {job_id}: {exc}", file=sys.stderr, flush=True)


