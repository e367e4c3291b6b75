"""Run chosen tasks as AWS Batch jobs instead of in the local worker.

With ``[batch] tasks = TrainModel`` (or ``MLBUILD_BATCH_TASKS=TrainModel``), a worker that
reaches TrainModel does not build it: it registers (or reuses) the job definition in
``configs/batch/``, submits a job that runs ``luigi --module tasks TrainModel <params>`` in
the training image against the same S3 store, prints the job's status changes and log
lines as they come, and is done when the job's manifest is in the store. Everything else
(fingerprints, the store, resuming) is unchanged: the job is an ordinary worker that
builds one task, and a finished job's result is found like any other.

Inside a job (``AWS_BATCH_JOB_ID`` is set by Batch) tasks always build locally, so a job
never submits itself again. The job checks that it computes the fingerprint the worker
asked for (``MLBUILD_BATCH_EXPECT``): an image with other code fails at once instead of
training a model nobody waits for.
"""

from mlbuild.batch.executor import (
    EXPECT_ENV,
    JOB_ID_ENV,
    BatchExecutor,
    BatchSettings,
    batch,
    check_expected,
    runs_on_batch,
)
from mlbuild.core import execution

execution.register(BatchExecutor())


def __getattr__(name: str):
    # The jobs' machinery, as mlbuild.batch.<name>, loaded on first use.
    import importlib

    jobs = importlib.import_module("mlbuild.batch.jobs")
    try:
        return getattr(jobs, name)
    except AttributeError:
        raise AttributeError(f"module 'mlbuild.batch' has no attribute {name!r}") from None


__all__ = ["EXPECT_ENV", "JOB_ID_ENV", "BatchExecutor", "BatchSettings", "batch",
           "check_expected", "runs_on_batch"]
