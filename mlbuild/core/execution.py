"""Where a BuildTask is built: in this worker, or by an executor that takes it elsewhere.

An executor (AWS Batch is one, ``mlbuild.batch``) registers itself here; ``BuildTask``
asks this module, never the executor's own module, so the core knows no executor.
"""

from __future__ import annotations

from typing import Protocol


class Executor(Protocol):
    def check(self, task) -> None:
        """Called before the task is judged complete; raise to refuse building it here."""

    def takes(self, task) -> bool:
        """Whether this executor builds ``task`` instead of the local worker."""

    def run(self, task) -> None:
        """Build ``task`` elsewhere; return once its manifest is in the store."""


_EXECUTORS: list[Executor] = []


def register(executor: Executor) -> None:
    if executor not in _EXECUTORS:
        _EXECUTORS.append(executor)


def check(task) -> None:
    for executor in _EXECUTORS:
        executor.check(task)


def executor_for(task) -> Executor | None:
    return next((e for e in _EXECUTORS if e.takes(task)), None)
