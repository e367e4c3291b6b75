"""What the benchmarks share: options, timing, the comparison table, the services, Luigi.

Every benchmark under ``benchmarks/`` measures something mlbuild does beside the plain
alternative doing the same work in the same run (plain Luigi, bare boto3, a bare predict),
and prints both figures and their ratio; figures are printed, never asserted. This module
keeps them alike:

* options: :func:`parser` (``--repeat``, ``--keep``, ``--quick``) and :func:`parse`;
* timing: :func:`timed` (one call), :func:`measure` (N calls), :class:`Timings` (the
  median, best and worst of repeated runs, interleaved or not), :func:`peak_rss_mib`;
* printing: :func:`print_table`, and :func:`print_comparison` for the rows every benchmark
  ends with: the mlbuild figure, the plain alternative's, ``mlbuild / plain``;
* services: :data:`services` (``tests.services``: its ``TEST_AWS``, moto, Docker),
  :func:`clean_environ`, :func:`aws_environ`, :func:`private_moto`, :func:`docker_engine`;
* processes and Luigi: :data:`LUIGI_CFG`, :func:`work_folder`, :func:`run`,
  :func:`tasks_ran`, :func:`fail`.

Importing it puts the repository first on ``sys.path``, so that ``mlbuild``, ``tasks`` and
``tests`` are this checkout's. It imports nothing heavy: a Luigi task module that a timed
process loads must not import it (``fanin_tasks.py`` does not).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[1]
if sys.path[:1] != [str(ROOT)]:
    sys.path.insert(0, str(ROOT))

from tests import services  # re-exported: TEST_AWS, moto, luigid, Docker

# ----------------------------------------------------------------------------- options


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parser(doc: str, *, repeat: int, keep: bool = False,
           quick: dict[str, Any] | None = None) -> argparse.ArgumentParser:
    """The benchmark's parser: its docstring's first paragraph, ``--repeat`` (timed runs of
    each measured thing; medians are shown), ``--keep`` (keep the work folder) when the
    benchmark has one, ``--quick`` when ``quick`` gives the smaller defaults it stands for."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--repeat", type=positive_int, default=repeat,
                   help=f"timed runs of each; the median is shown ({repeat})")
    if keep:
        p.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    if quick:
        shown = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in quick.items())
        p.add_argument("--quick", action="store_true",
                       help=f"a quick look, not a measurement: {shown} (options given win)")
        p.set_defaults(_quick=quick)
    return p


def parse(p: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse; with ``--quick``, the quick values replace the options left at their default."""
    args = p.parse_args(argv)
    quick = vars(args).pop("_quick", None)
    if getattr(args, "quick", False):
        for name, value in quick.items():
            if getattr(args, name) == p.get_default(name):
                setattr(args, name, value)
    return args


# ----------------------------------------------------------------------------- timing


class Timings:
    """Seconds of repeated runs of one thing; runs of several things may be interleaved."""

    def __init__(self, values: Iterable[float] = ()):
        self.values = list(values)

    def add(self, seconds: float) -> float:
        self.values.append(seconds)
        return seconds

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def best(self) -> float:
        return min(self.values)

    @property
    def worst(self) -> float:
        return max(self.values)

    def __len__(self) -> int:
        return len(self.values)


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """``fn(*args, **kwargs)`` once: its ``time.perf_counter`` seconds and its result."""
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def measure(fn: Callable[[], Any], repeat: int) -> tuple[Timings, Any]:
    """``fn()`` ``repeat`` times in a row: the timings and the last result."""
    timings, result = Timings(), None
    for _ in range(repeat):
        seconds, result = timed(fn)
        timings.add(seconds)
    return timings, result


def peak_rss_mib(pid: int | None = None) -> float | None:
    """The peak resident memory (``VmHWM``, Linux) of a process, this one by default, in MiB."""
    try:
        for line in Path(f"/proc/{pid or 'self'}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# ----------------------------------------------------------------------------- printing


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """An aligned table, indented by two spaces: the first column left, the others right."""
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def seconds(value: float) -> str:
    return f"{value:.3f} s"


def ratio(a: float, b: float) -> str:
    if not b:
        return "-"
    return f"{a / b:.2f}x" if abs(a / b) >= 0.1 else f"{a / b:.4f}x"


def print_comparison(title: str, rows: Iterable[tuple[str, float, float]], *,
                     names: tuple[str, str] = ("mlbuild", "plain"),
                     fmt: Callable[[float], str] = seconds, note: str = "") -> None:
    """The comparison every benchmark ends with: for each row (what was measured, the
    mlbuild figure, the plain alternative's figure) both figures and ``mlbuild / plain``
    (below 1.00x: mlbuild took less)."""
    print(f"\n{title}")
    print_table(["", *names, "ratio"],
                [(label, fmt(a), fmt(b), ratio(a, b)) for label, a, b in rows])
    if note:
        print(f"  {note}")


# ----------------------------------------------------------------------------- services

#: Variables of the caller that must not reach a benchmark's processes.
PRIVATE_PREFIXES = ("MLBUILD_", "LUIGI_", "AWS_")


def clean_environ(**extra: str) -> dict[str, str]:
    """This process's environment without MLBUILD_*, LUIGI_* and AWS_*, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PRIVATE_PREFIXES)}
    return {**env, **extra}


def aws_environ(endpoint: str, work: Path) -> dict[str, str]:
    """The local services' AWS environment (``tests.services.TEST_AWS``, the endpoint) with
    no user configuration read and no instance metadata asked for."""
    return {**services.TEST_AWS, "AWS_ENDPOINT_URL": endpoint,
            "AWS_CONFIG_FILE": str(work / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(work / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true"}


def private_moto(work: Path, name: str = "moto") -> services.ServerProcess:
    """A moto S3 server of this benchmark on a free loopback port (not started), its files
    and the objects it spills (over ~5 MiB) under ``work``."""
    spill = work / "moto-tmp"
    spill.mkdir(parents=True, exist_ok=True)
    return services.moto(port=services.free_port(), folder=work / "services",
                         env={"TMPDIR": str(spill)}, name=name)


def docker_engine() -> tuple[str, str]:
    """The Docker engine and base image of ``make services`` (started and built if needed;
    DOCKER_HOST and MLBUILD_IMAGE_BASE override): ``(docker_host, base_image)``."""
    host = os.environ.get("DOCKER_HOST") or services.start_docker()
    services.build_base_image(host)
    return host, os.environ.get("MLBUILD_IMAGE_BASE") or services.BASE_IMAGE


# ----------------------------------------------------------------------------- Luigi

#: As the project's luigi.cfg: its exit codes, so that a failed or unscheduled task is
#: non-zero, and no autoloading of Luigi's range tasks.
LUIGI_CFG = """\
[core]
autoload_range = false

[retcode]
unhandled_exception = 20
task_failed = 21
missing_data = 22
scheduling_error = 23
not_run = 24
already_running = 25
"""


def work_folder(name: str, luigi_cfg: bool = False) -> Path:
    """A new temporary folder for one run of a benchmark, with ``LUIGI_CFG`` as its
    ``luigi.cfg`` if asked (Luigi reads it from the working directory)."""
    work = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    if luigi_cfg:
        (work / "luigi.cfg").write_text(LUIGI_CFG)
    return work


def run(cmd: Sequence[str], cwd: Path, env: dict[str, str],
        timeout: float | None = None) -> tuple[float, subprocess.CompletedProcess]:
    """A whole process, its output captured: its wall seconds and the finished process,
    whose ``cpu_seconds`` is the user + system CPU time it and its children used (less
    disturbed than wall time by other work on the machine)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds, proc = timed(subprocess.run, list(cmd), cwd=cwd, env=env, capture_output=True,
                          text=True, check=False, timeout=timeout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc.cpu_seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, proc


def tasks_ran(stderr: str) -> int | None:
    """How many tasks Luigi's execution summary says ran; None when there is no summary."""
    if "Did not run any tasks" in stderr:
        return 0
    for line in stderr.splitlines():
        if line.startswith("* ") and line.endswith(" ran successfully:"):
            return int(line.split()[1])
    return None


def fail(message: str, details: str = "", *, proc: subprocess.CompletedProcess | None = None,
         kept: str = "") -> NoReturn:
    """Stop the benchmark: the message, the failed process's exit code and last lines,
    ``details``, and where the files were kept; exit code 1."""
    print(f"FAILED: {message}", file=sys.stderr)
    if proc is not None:
        print(f"--- exit code {proc.returncode}; last lines of its log:", file=sys.stderr)
        print("\n".join((proc.stderr or "").splitlines()[-30:]), file=sys.stderr)
    if details:
        print(details, file=sys.stderr)
    if kept:
        print(f"({kept})", file=sys.stderr)
    raise SystemExit(1)
