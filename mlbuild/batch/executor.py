"""Which tasks go to AWS Batch, and the executor BuildTask consults for them: cheap to
import, because every worker asks it about every task."""


from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import luigi

from mlbuild.errors import ConfigError

#: Set by AWS Batch in every job's container.
JOB_ID_ENV = "AWS_BATCH_JOB_ID"
#: "<task_id> <fingerprint>": what the submitting worker expects the job to build.
EXPECT_ENV = "MLBUILD_BATCH_EXPECT"


class batch(luigi.Config):  # lower case: the section name in luigi.cfg
    tasks = luigi.Parameter(
        default="", description="Task families to run as AWS Batch jobs (comma or space "
        "separated). MLBUILD_BATCH_TASKS overrides.")
    job_definition = luigi.Parameter(
        default="configs/batch/train.json",
        description="A RegisterJobDefinition request, as JSON (relative to the project).")
    job_queue = luigi.Parameter(default="mlbuild", description="The job queue. "
                                "MLBUILD_BATCH_QUEUE overrides.")
    image = luigi.Parameter(default="", description="The job's image, instead of the file's. "
                            "MLBUILD_BATCH_IMAGE overrides.")
    vcpus = luigi.FloatParameter(default=0, description="vCPUs per job (0: the file's).")
    memory_mb = luigi.IntParameter(default=0, description="Memory per job in MiB (0: the file's).")
    timeout_s = luigi.IntParameter(default=0, description="Seconds an attempt may run, at "
                                   "least 60 (0: the file's, else no limit).")
    attempts = luigi.IntParameter(default=0, description="Attempts per job, 1-10 (0: the file's).")
    environment = luigi.Parameter(
        default="", description="Names of environment variables passed on to the job, when "
        "set (e.g. AWS_ENDPOINT_URL). MLBUILD_STORE is always passed.")
    endpoint_url = luigi.Parameter(default="", description="Batch and CloudWatch Logs "
                                   "endpoint; empty: AWS_ENDPOINT_URL or AWS. "
                                   "MLBUILD_BATCH_ENDPOINT_URL overrides.")
    api_max_attempts = luigi.IntParameter(
        default=5, description="Attempts per Batch or CloudWatch Logs API request (botocore's "
        "standard retries: exponential backoff, throttling retried). Not the job's attempts.")
    api_connect_timeout = luigi.FloatParameter(
        default=10.0, description="Seconds to connect to the Batch and Logs APIs.")
    api_read_timeout = luigi.FloatParameter(
        default=60.0, description="Seconds to wait for an answer of the Batch and Logs APIs.")
    poll_min_s = luigi.FloatParameter(default=1.0, description="First wait between polls.")
    poll_max_s = luigi.FloatParameter(default=30.0, description="Longest wait between polls.")
    max_wait_s = luigi.FloatParameter(default=0, description="Give up (and terminate the job) "
                                      "after this many seconds; 0: wait as long as it runs.")


@dataclass(frozen=True)
class BatchSettings:
    tasks: frozenset[str]
    job_definition: Path
    job_queue: str
    image: str = ""
    vcpus: float = 0
    memory_mb: int = 0
    timeout_s: int = 0
    attempts: int = 0
    environment: tuple[str, ...] = ()
    endpoint_url: str = ""
    poll_min_s: float = 1.0
    poll_max_s: float = 30.0
    max_wait_s: float = 0
    api_max_attempts: int = 5
    api_connect_timeout: float = 10.0
    api_read_timeout: float = 60.0

    @classmethod
    def load(cls) -> BatchSettings:
        config = batch()
        env = os.environ.get
        return cls(
            tasks=frozenset(_names(env("MLBUILD_BATCH_TASKS", config.tasks))),
            job_definition=Path(config.job_definition),
            job_queue=env("MLBUILD_BATCH_QUEUE") or config.job_queue,
            image=env("MLBUILD_BATCH_IMAGE") or config.image,
            vcpus=config.vcpus, memory_mb=config.memory_mb, timeout_s=config.timeout_s,
            attempts=config.attempts, environment=tuple(_names(config.environment)),
            endpoint_url=env("MLBUILD_BATCH_ENDPOINT_URL") or config.endpoint_url,
            poll_min_s=config.poll_min_s, poll_max_s=config.poll_max_s,
            max_wait_s=config.max_wait_s, api_max_attempts=config.api_max_attempts,
            api_connect_timeout=config.api_connect_timeout,
            api_read_timeout=config.api_read_timeout,
        )


def _names(text: str) -> list[str]:
    return [n for n in re.split(r"[,\s]+", text) if n]


# ------------------------------------------------------------------ which tasks, checks


def runs_on_batch(task: luigi.Task, settings: BatchSettings | None = None) -> bool:
    """Whether this worker hands ``task`` to Batch (never inside a Batch job)."""
    if os.environ.get(JOB_ID_ENV):
        return False
    return task.task_family in (settings or BatchSettings.load()).tasks


def check_expected(task) -> None:
    """Inside a job: refuse to build anything but what the submitting worker expects."""
    expected = os.environ.get(EXPECT_ENV, "").split()
    if len(expected) == 2 and expected[0] == task.task_id and expected[1] != task.fingerprint:
        raise ConfigError(
            f"This job computes fingerprint {task.fingerprint} for {task}, but the worker that "
            f"submitted it expects {expected[1]}: the job's image holds other code, "
            "configuration or packages.",
            hint="build and push the training image from this checkout (`make train-image`) "
                 "and name it in [batch] image.",
        )


class BatchExecutor:
    """The executor BuildTask consults (``mlbuild.core.execution``). Deciding which tasks go
    to Batch is cheap; the jobs' machinery (mlbuild.batch.jobs) loads when one does."""

    def check(self, task) -> None:
        check_expected(task)

    def takes(self, task) -> bool:
        return runs_on_batch(task)

    def run(self, task) -> None:
        from mlbuild.batch.jobs import run_on_batch

        run_on_batch(task)
