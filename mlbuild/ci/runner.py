"""Run a project's task through Luigi, with progress, a summary and a precise exit code.

``mlbuild run`` is ``luigi --module <module> <Task>`` plus three things Luigi lacks: a
progress display, failures printed as their messages instead of tracebacks, and an exit
code that says what kind of failure stopped the run (see :mod:`mlbuild.errors`).
Progress is read from the scheduler, so it covers tasks run by worker processes and
works the same with a local scheduler and with luigid.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import luigi
import luigi.execution_summary
import luigi.interface
from luigi.cmdline_parser import CmdlineParser
from luigi.execution_summary import LuigiStatusCode
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mlbuild.ci import task_options
from mlbuild.core.runlog import RUN_DIR_ENV, Failure, read_durations, read_failures
from mlbuild.errors import ConfigError, MissingError, MlbuildError


def import_project(module: str) -> None:
    try:
        __import__(module)
    except ImportError as exc:
        raise ConfigError(
            f"Cannot import the project module {module!r}: {exc}.",
            hint="run from the project's root folder, or name the module with --module.",
        ) from exc


@contextlib.contextmanager
def project_task(module: str, task: str, args: list[str]) -> Iterator[luigi.Task]:
    """Import the project ``module`` and instantiate ``task`` from Luigi-style ``args``.

    Inside the ``with`` block, Luigi configuration given in ``args`` (``--workers 2``,
    ``--mlbuild-store s3://...``) is in force, as it is for the ``luigi`` command.
    """
    import_project(module)
    cls = task_options.task_class(task, module)
    task_options.check_args(cls, args)
    with CmdlineParser.global_instance([task, *args], allow_override=True) as parser:
        try:
            obj = parser.get_task_obj()
        except task_options.BAD_VALUE_ERRORS as exc:
            raise task_options.bad_value(cls, exc) from None
        yield obj


class _CapturingFactory(luigi.interface._WorkerSchedulerFactory):
    """Luigi's own factory, remembering the scheduler so progress can be read from it."""

    scheduler = None

    def create_local_scheduler(self):
        self.scheduler = super().create_local_scheduler()
        return self.scheduler

    def create_remote_scheduler(self, url):
        self.scheduler = super().create_remote_scheduler(url)
        return self.scheduler


#: off a terminal, seconds between two lines of one running task's progress
PROGRESS_LINE_EVERY = 10.0


class _ProgressWatcher(threading.Thread):
    """Polls the scheduler and shows task states: a bar on a terminal, lines otherwise."""

    def __init__(self, factory: _CapturingFactory, console: Console):
        super().__init__(daemon=True)
        self.factory, self.console = factory, console
        self.stop = threading.Event()
        self.seen: dict[str, str] = {}
        self.said: dict[str, float] = {}  # task id -> when its progress was last printed
        self.messages: dict[str, str] = {}  # task id -> what the running task says it is doing

    def _states(self) -> dict[str, tuple[str, str]] | None:
        scheduler = self.factory.scheduler
        if scheduler is None:
            return None
        states = {}
        try:
            for status in ("PENDING", "RUNNING", "DONE", "FAILED", "DISABLED"):
                listed = scheduler.task_list(status, "")
                if not isinstance(listed, dict) or "num_tasks" in listed:
                    continue
                for task_id, info in listed.items():
                    states[task_id] = (status, info.get("display_name") or task_id)
                    if status == "RUNNING" and info.get("status_message"):
                        self.messages[task_id] = info["status_message"]
        except RuntimeError:  # the scheduler changed while we read it; read again next tick
            return None
        return states

    def run(self) -> None:
        live = self.console.is_terminal
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=self.console, transient=True)
        bar = progress.add_task("scheduling", total=None)
        with progress if live else contextlib.nullcontext():
            while not self.stop.wait(0.25):
                self._tick(progress, bar, live)
            self._tick(progress, bar, live)

    def _tick(self, progress: Progress, bar, live: bool) -> None:
        states = self._states()
        if not states:
            return
        finished = sum(1 for s, _ in states.values() if s in ("DONE", "FAILED", "DISABLED"))
        running = [f"{name} ({self.messages[i]})" if i in self.messages else name
                   for i, (s, name) in states.items() if s == "RUNNING"]
        # Tasks that finished first, then those that started: the lines read in order.
        for task_id, (status, name) in sorted(states.items(), key=lambda s: s[1][0] == "RUNNING"):
            before = self.seen.get(task_id)
            changed = before != status and status in ("RUNNING", "DONE", "FAILED")
            # A task first seen DONE was complete already: not worth a line.
            if changed and (before is not None or status != "DONE"):
                mark = {"RUNNING": "…", "DONE": "[green]✓[/]", "FAILED": "[red]✗[/]"}[status]
                self.console.print(f"{mark} {name}", highlight=False)
            self.seen[task_id] = status
            if status == "RUNNING" and not live and task_id in self.messages:
                self._say_progress(task_id, name)
        if live:
            label = "running " + ", ".join(running[:3]) if running else "waiting"
            progress.update(bar, total=len(states), completed=finished, description=label)

    def _say_progress(self, task_id: str, name: str) -> None:
        """Off a terminal, a running task's progress every PROGRESS_LINE_EVERY seconds."""
        moment = time.monotonic()
        if moment - self.said.setdefault(task_id, moment) >= PROGRESS_LINE_EVERY:
            self.said[task_id] = moment
            self.console.print(f"… {name}: {self.messages[task_id]}", highlight=False)


@dataclass(frozen=True)
class RunOutcome:
    exit_code: int
    status: LuigiStatusCode
    failures: list[Failure]
    summary: str
    #: every task Luigi saw -> "ran", "complete", "failed" or "blocked"
    tasks: dict[str, str]


def _exit_code(status: LuigiStatusCode, failures: list[Failure]) -> int:
    if failures:
        return failures[0].exit_code
    if status in (LuigiStatusCode.SUCCESS, LuigiStatusCode.SUCCESS_WITH_RETRY):
        return 0
    if status == LuigiStatusCode.MISSING_EXT:
        return MissingError.exit_code
    return MlbuildError.exit_code


def _ran(task: luigi.Task, sets: dict, durations: list[tuple[str, float]],
         status: LuigiStatusCode) -> str:
    """The tasks that ran, each with its duration, in the order they started."""
    ran = {str(t) for t in sets.get("completed", ())}
    timed = [f"{name} {seconds:.1f} s" for name, seconds in durations if name in ran]
    untimed = sorted(ran - {name for name, _ in durations})
    if ran:
        return ", ".join(timed + untimed)
    if status == LuigiStatusCode.SUCCESS and sets.get("already_done"):
        return f"nothing: {task} is complete, and so is everything it needs"
    return "none"


def run_task(task: luigi.Task, workers: int = 1, verbose: bool = False,
             console: Console | None = None) -> RunOutcome:
    """Run ``task`` and everything it needs; never raises for a task's failure."""
    console = console or Console(stderr=True)
    factory = _CapturingFactory()
    watcher = _ProgressWatcher(factory, console)
    with tempfile.TemporaryDirectory(prefix="mlbuild-run-") as run_dir:
        previous = os.environ.get(RUN_DIR_ENV)
        os.environ[RUN_DIR_ENV] = run_dir  # inherited by Luigi's worker processes
        if not verbose:
            logging.getLogger("luigi-interface").setLevel(logging.CRITICAL)
        watcher.start()
        started = time.monotonic()
        try:
            result = luigi.build([task], worker_scheduler_factory=factory, detailed_summary=True,
                                 workers=workers, log_level="DEBUG" if verbose else "CRITICAL")
        finally:
            watcher.stop.set()
            watcher.join()
            if previous is None:
                os.environ.pop(RUN_DIR_ENV, None)
            else:
                os.environ[RUN_DIR_ENV] = previous
        failures = read_failures(run_dir)
        durations = read_durations(run_dir)
    # Luigi's own tally, as its retcodes module reads it.
    sets = luigi.execution_summary._summary_dict(result.worker)
    tally = {k: len(v) for k, v in sets.items()}
    blocked = tally.get("upstream_failure", 0) + tally.get("upstream_scheduling_error", 0)
    counts = (f"{tally.get('completed', 0)} task(s) ran, {tally.get('already_done', 0)} already "
              f"complete, {tally.get('failed', 0)} failed, {blocked} blocked")
    if not sets.get("completed") and not failures and result.status == LuigiStatusCode.SUCCESS:
        counts = "0 task(s) ran"  # Luigi looks no further than a complete task: no tally
    summary = (f"ran: {_ran(task, sets, durations, result.status)}\n"
               f"{counts}; {time.monotonic() - started:.1f} s")
    states = {"completed": "ran", "already_done": "complete", "failed": "failed",
              "scheduling_error": "failed", "upstream_failure": "blocked",
              "upstream_scheduling_error": "blocked", "upstream_missing_dependency": "blocked",
              "still_pending_ext": "blocked", "not_run": "blocked"}
    tasks = {str(t): state for key, state in states.items() for t in sets.get(key, ())}
    return RunOutcome(_exit_code(result.status, failures), result.status, failures, summary,
                      tasks)
