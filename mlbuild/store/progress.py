"""Progress of long work: a bar when a person is watching (stderr is a terminal), and the
running task's progress (luigid's page, ``mlbuild run``) while a BuildTask runs.

``BuildTask.run`` sets :data:`task_progress` to the task's own ``progress`` method, so
code below the task layer (a transfer, the chunks of an evaluation) reports through
:func:`report_progress` without knowing which task runs it.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar

MIN_BYTES = 16 * 1024 * 1024  # smaller transfers finish before a bar is worth drawing

Reporter = Callable[[int, int, str], None]
#: the running task's progress (done, total, what), or None outside a task
task_progress: ContextVar[Reporter | None] = ContextVar("task_progress", default=None)


def report_progress(done: int, total: int, what: str) -> None:
    """Tell the running task's progress, if a task is running."""
    report = task_progress.get()
    if report is not None:
        report(done, total, what)


def _to_task(report: Reporter, total: int, what: str) -> Callable[[int], None]:
    """Byte counts (from boto3's threads) summed into the task's progress."""
    done, lock = 0, threading.Lock()

    def advance(n: int) -> None:
        nonlocal done
        with lock:
            done += n
            report(done, total, what)

    return advance


@contextlib.contextmanager
def transfer_progress(description: str, total: int | Callable[[], int]
                      ) -> Iterator[Callable[[int], None] | None]:
    """Yield a callback taking byte counts (as boto3's ``Callback``), or None when silent.

    ``total`` may be a function, called only when someone is told: sizing a download
    costs a request that nobody needs otherwise.
    """
    report, watching = task_progress.get(), sys.stderr.isatty()
    if report is None and not watching:
        yield None
        return
    total = total() if callable(total) else total
    if total < MIN_BYTES:
        yield None
        return
    told = [_to_task(report, total, description)] if report is not None else []
    with _bar(description, total) if watching else contextlib.nullcontext() as bar:
        if bar is not None:
            told.append(bar)
        yield lambda n: [tell(n) for tell in told]


@contextlib.contextmanager
def _bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    # On stderr, where the check above looked: stdout may be a command's output.
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task(description, total=total)
        yield lambda done: progress.advance(task, done)
