"""Failures carried from task processes back to the command that started the run.

Luigi runs tasks in worker processes and keeps only a text explanation of a failure.
``mlbuild run`` needs the *kind* of each failure to choose its exit code, so a task that
fails writes a small record into the run's folder (named by ``MLBUILD_RUN_DIR``), and the
command reads the records when Luigi returns. Without that variable nothing is written.
"""

from __future__ import annotations

import json
import os
import re
import traceback as tb
from dataclasses import dataclass
from pathlib import Path

from mlbuild.errors import MlbuildError

RUN_DIR_ENV = "MLBUILD_RUN_DIR"


@dataclass(frozen=True)
class Failure:
    task: str
    kind: str  # the MlbuildError subclass name, or the foreign exception's
    exit_code: int
    message: str
    traceback: str = ""  # only for unexpected (non-mlbuild) errors
    hint: str = ""  # what to do, when the error says

    @property
    def text(self) -> str:
        """The message, and the hint on a line of its own."""
        return f"{self.message}\nHint: {self.hint}" if self.hint else self.message


def record_failure(task: str, exc: BaseException) -> None:
    known = isinstance(exc, MlbuildError)
    failure = Failure(
        task=task,
        kind=type(exc).__name__,
        exit_code=exc.exit_code if known else MlbuildError.exit_code,
        message=exc.message if known else f"{type(exc).__name__}: {exc}",
        traceback="" if known else "".join(tb.format_exception(exc)),
        hint=(exc.hint or "") if known else "",
    )
    _record("failures", task, failure.__dict__)


def read_failures(run_dir: str | os.PathLike) -> list[Failure]:
    folder = Path(run_dir, "failures")
    if not folder.is_dir():
        return []
    # In the order they happened: the first failure is usually the cause of the others.
    files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    return [Failure(**json.loads(p.read_text())) for p in files]


def _record(kind: str, task: str, data: dict) -> None:
    run_dir = os.environ.get(RUN_DIR_ENV)
    if not run_dir:
        return
    folder = Path(run_dir, kind)
    folder.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", task)[:150]
    (folder / f"{name}.json").write_text(json.dumps(data))


def record_duration(task: str, started: str, finished: str) -> None:
    """When a task that ran began and ended (ISO times), for the run's summary."""
    _record("durations", task, {"task": task, "started": started, "finished": finished})


def read_durations(run_dir: str | os.PathLike) -> list[tuple[str, float]]:
    """(task, seconds) of each task that ran, in the order they started."""
    from datetime import datetime

    folder = Path(run_dir, "durations")
    records = [json.loads(p.read_text()) for p in folder.glob("*.json")] if folder.is_dir() else []
    records.sort(key=lambda r: r["started"])
    return [(r["task"], (datetime.fromisoformat(r["finished"])
                         - datetime.fromisoformat(r["started"])).total_seconds()) for r in records]


BUILD_LOG_ENV = "MLBUILD_BUILD_LOG"


def record_build(task: str, family: str, fingerprint: str) -> None:
    """Append a line to the build log (``MLBUILD_BUILD_LOG``): which build ran, where.

    Several workers may append to their own logs; together they show that each result
    was built exactly once.
    """
    path = os.environ.get(BUILD_LOG_ENV)
    if not path:
        return
    import socket

    line = json.dumps({"task": task, "family": family, "fingerprint": fingerprint,
                       "host": socket.gethostname(), "pid": os.getpid()})
    with open(path, "a") as log:
        log.write(line + "\n")
