"""What would run, and why: the state of every task in a pipeline's graph.

For a task that is not complete, the reason is found by comparing its fingerprint
inputs with those recorded in the newest earlier manifest of the same task family,
naming the parameter, code module, package, data or upstream task that changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import luigi

from mlbuild.core.fingerprint import diff_inputs
from mlbuild.core.interop import not_made
from mlbuild.core.manifest import MANIFEST, Manifest
from mlbuild.core.task import BuildTask
from mlbuild.errors import MissingError


@dataclass
class TaskState:
    task: luigi.Task
    complete: bool
    fingerprint: str | None = None
    reasons: list[str] = field(default_factory=list)


def walk(root: luigi.Task) -> list[luigi.Task]:
    """Every task ``root`` needs, upstream first, each once."""
    order: list[luigi.Task] = []
    seen: set[str] = set()

    def visit(task: luigi.Task) -> None:
        if task.task_id in seen:
            return
        seen.add(task.task_id)
        for dep in task.deps():
            visit(dep)
        order.append(task)

    visit(root)
    return order


def _newest_earlier(task: BuildTask) -> Manifest | None:
    store = task.store
    best: Manifest | None = None
    for key in store.list(f"{task.task_family}/"):
        if not key.endswith(f"/{MANIFEST}") or key.startswith(f"{task.prefix}/"):
            continue
        manifest = Manifest.from_json(store.get_bytes(key), store.url(key))
        rank = (manifest.task_id == task.task_id, manifest.finished)
        if best is None or rank > (best.task_id == task.task_id, best.finished):
            best = manifest
    return best


def task_state(task: luigi.Task) -> TaskState:
    if not isinstance(task, BuildTask):
        return TaskState(task, task.complete())
    complete = task.complete()
    try:
        state = TaskState(task, complete, task.fingerprint)
    except MissingError as exc:  # a plain upstream task has not made its output yet
        if not not_made(exc):
            raise
        return TaskState(task, False, None, [str(exc)])
    if state.complete:
        return state
    if task.result_exists():
        state.reasons.append(f"its result exists, but {task.invalidation_reason()}")
        return state
    state.reasons.append("no result for this fingerprint yet")
    earlier = _newest_earlier(task)
    if earlier is None:
        state.reasons.append("no earlier result of this task in the store")
        return state
    families = {name: up.task_family for name, up in task.upstream().items()}
    changes = diff_inputs(earlier.inputs, task.fingerprint_inputs(), families)
    state.reasons.append(f"since the result of {earlier.finished[:19]} ({earlier.fingerprint[:12]}):")
    state.reasons.extend(f"  {line}" for line in changes or ["(nothing recorded differs)"])
    return state


def pipeline_state(root: luigi.Task) -> list[TaskState]:
    return [task_state(task) for task in walk(root)]
