"""Benchmark: the no-op re-run of a fan-in of 1,000 fingerprinted tasks, whole process.

    python benchmarks/noop_fanin.py [--tasks 1000] [--repeat 5] [--keep]

This file is both the driver (``__main__``) and the Luigi task module (``noop_fanin``, put
on ``PYTHONPATH``). It builds two pipelines once in a temporary folder:

* mlbuild: ``FanIn(BuildTask)`` requiring N ``Leaf(BuildTask)``;
* plain Luigi: ``PlainAll(WrapperTask)`` requiring N ``PlainLeaf`` with a ``LocalTarget``,
  so that Luigi checks every leaf's file.

Then it times the no-op re-run of each (``python -m luigi --module noop_fanin ...``),
interleaved, as whole processes: Python start, imports, scheduling and the checks. Every
no-op run is verified to have run nothing; the benchmark exits non-zero otherwise.

Last it changes the setting of one leaf (an environment variable that ``Leaf.settings()``
returns, and that ``PlainLeaf`` writes into its file) and counts the tasks each pipeline
re-runs: mlbuild notices the change (the leaf and FanIn), plain Luigi does not.

The figures are printed, never asserted; DESIGN.md "Performance budget" sets the target
(the issue's: mlbuild within 1.5x of plain Luigi).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

import luigi

from mlbuild import BuildTask

#: Which leaf reads the changed setting: ``NOOP_FANIN_CHANGED_LEAF=<i>`` gives leaf i the
#: variant "b" instead of "a". Both pipelines write the variant into the leaf's file.
CHANGED_LEAF_ENV = "NOOP_FANIN_CHANGED_LEAF"


def leaf_variant(i: int) -> str:
    return "b" if os.environ.get(CHANGED_LEAF_ENV) == str(i) else "a"


# ----------------------------------------------------------------------------- mlbuild


class Leaf(BuildTask):
    i = luigi.IntParameter()
    outputs: ClassVar = {"out": "out.txt"}

    def settings(self):
        return {"variant": leaf_variant(self.i)}

    def build(self, inputs, outputs):
        outputs["out"].write_text(f"{self.i} {leaf_variant(self.i)}\n")


class FanIn(BuildTask):
    tasks = luigi.IntParameter(default=1000)
    outputs: ClassVar = {"out": "count.txt"}

    def requires(self):
        return {f"leaf{i}": Leaf(i=i) for i in range(self.tasks)}

    def build(self, inputs, outputs):
        outputs["out"].write_text(f"{len(inputs)}\n")


# ----------------------------------------------------------------------------- plain Luigi


class PlainLeaf(luigi.Task):
    i = luigi.IntParameter()

    def output(self):
        return luigi.LocalTarget(f"plain/leaf-{self.i}.txt")

    def run(self):
        with self.output().open("w") as f:
            f.write(f"{self.i} {leaf_variant(self.i)}\n")


class PlainAll(luigi.WrapperTask):
    tasks = luigi.IntParameter(default=1000)

    def requires(self):
        return [PlainLeaf(i=i) for i in range(self.tasks)]


# ----------------------------------------------------------------------------- driver

# As the project's luigi.cfg: its exit codes, so that a failed or unscheduled task is
# non-zero, and no autoloading of Luigi's range tasks.
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


def main(argv: list[str] | None = None) -> int:
    import argparse
    import re
    import statistics
    import subprocess
    import sys
    import tempfile
    import time

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1000, help="leaves per pipeline (1000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed no-op runs each (5)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.repeat < 1:
        parser.error("--tasks and --repeat must be at least 1")

    here = Path(__file__).resolve().parent
    work = Path(tempfile.mkdtemp(prefix="noop_fanin-"))
    (work / "luigi.cfg").write_text(LUIGI_CFG)
    store, cache = work / "store", work / "cache"
    env = dict(os.environ)
    env.pop(CHANGED_LEAF_ENV, None)
    env.pop("LUIGI_CONFIG_PATH", None)
    env.update(
        MLBUILD_STORE=str(store),
        MLBUILD_CACHE=str(cache),
        PYTHONPATH=os.pathsep.join(filter(None, [str(here), os.environ.get("PYTHONPATH")])),
    )
    env.pop("MLBUILD_RUN_DIR", None)
    n = str(args.tasks)
    commands = {
        "mlbuild": [sys.executable, "-m", "luigi", "--module", "noop_fanin", "FanIn",
                    "--tasks", n, "--local-scheduler"],
        "plain": [sys.executable, "-m", "luigi", "--module", "noop_fanin", "PlainAll",
                  "--tasks", n, "--local-scheduler"],
        "floor": [sys.executable, "-c", "import luigi, mlbuild"],
    }

    def run(name: str, extra_env: dict[str, str] | None = None):
        started = time.perf_counter()
        proc = subprocess.run(commands[name], cwd=work, env={**env, **(extra_env or {})},
                              capture_output=True, text=True, check=False)
        return time.perf_counter() - started, proc

    def fail(message: str, proc=None) -> None:
        print(f"FAILED: {message}", file=sys.stderr)
        if proc is not None:
            print(f"--- exit code {proc.returncode}; last lines of its log:", file=sys.stderr)
            print("\n".join(proc.stderr.splitlines()[-30:]), file=sys.stderr)
        print(f"(files kept in {work})", file=sys.stderr)
        raise SystemExit(1)

    def ran(proc) -> int:
        """How many tasks the run says it ran; fails loudly if it failed."""
        if proc.returncode != 0:
            fail(f"{' '.join(map(str, proc.args))} exited with {proc.returncode}", proc)
        if "Did not run any tasks" in proc.stderr:
            return 0
        found = re.search(r"^\* (\d+) ran successfully:", proc.stderr, re.MULTILINE)
        if not found:
            fail("cannot find Luigi's execution summary in the log", proc)
        return int(found.group(1))

    def manifests() -> int:
        return sum("manifest.json" in files for _, _, files in os.walk(store))

    def plain_state() -> dict[str, int]:
        return {p.name: p.stat().st_mtime_ns for p in (work / "plain").iterdir()}

    def noop(name: str) -> float:
        before = manifests() if name == "mlbuild" else plain_state()
        seconds, proc = run(name)
        if name == "floor":
            if proc.returncode != 0:
                fail("python -c 'import luigi, mlbuild' failed", proc)
            return seconds
        count = ran(proc)
        after = manifests() if name == "mlbuild" else plain_state()
        if name == "mlbuild":
            changes = f"{after - before} new manifest(s) in the store"
        else:
            changes = f"{sum(after[k] != before.get(k) for k in after)} leaf file(s) rewritten"
        if count or after != before:
            fail(f"the no-op re-run of {name} was not a no-op: Luigi ran {count} task(s), "
                 f"{changes}", proc)
        return seconds

    finished = False
    try:
        print(f"Work folder: {work}")
        print(f"Building both pipelines once ({args.tasks} leaves + 1 fan-in each) ...")
        for name in ("mlbuild", "plain"):
            seconds, proc = run(name)
            count = ran(proc)
            if count != args.tasks + 1:
                fail(f"the first build of {name} ran {count} tasks, not {args.tasks + 1}", proc)
            print(f"  {name:8} built {count} tasks in {seconds:.1f} s")
        if manifests() != args.tasks + 1:
            fail(f"the store holds {manifests()} manifests, not {args.tasks + 1}")

        # One untimed no-op each: warms the file system cache and .pyc files.
        for name in ("mlbuild", "plain", "floor"):
            noop(name)

        times: dict[str, list[float]] = {"mlbuild": [], "plain": [], "floor": []}
        for r in range(args.repeat):
            order = ("mlbuild", "plain", "floor") if r % 2 == 0 else ("floor", "plain", "mlbuild")
            for name in order:
                times[name].append(noop(name))
            print(f"  run {r + 1}/{args.repeat}: "
                  + "  ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items()))

        # A change only mlbuild can see: one leaf's setting (it also changes its file).
        changed = {CHANGED_LEAF_ENV: str(args.tasks // 2)}
        before = manifests()
        _, proc = run("mlbuild", changed)
        rerun_mlbuild, new_manifests = ran(proc), manifests() - before
        if rerun_mlbuild != 2 or new_manifests != 2:
            fail(f"after changing leaf {args.tasks // 2}'s setting mlbuild re-ran "
                 f"{rerun_mlbuild} tasks ({new_manifests} new manifests), not 2", proc)
        _, proc = run("plain", changed)
        rerun_plain = ran(proc)
        stale = (work / "plain" / f"leaf-{args.tasks // 2}.txt").read_text().split()[1] != "b"
        finished = True
    finally:
        if finished and not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    low = {k: min(v) for k, v in times.items()}
    high = {k: max(v) for k, v in times.items()}
    rows = (
        ("mlbuild   FanIn", "mlbuild"),
        ("Luigi     PlainAll", "plain"),
        ("floor     import luigi, mlbuild", "floor"),
    )
    print()
    print(f"No-op re-run of a fan-in of {args.tasks} tasks: whole process, "
          f"{args.repeat} runs each, interleaved")
    print(f"  {'pipeline':34} {'median':>9} {'min':>9} {'max':>9}")
    for label, key in rows:
        print(f"  {label:34} {med[key]:8.3f}s {low[key]:8.3f}s {high[key]:8.3f}s")
    ratio_med, ratio_min = med["mlbuild"] / med["plain"], low["mlbuild"] / low["plain"]
    print(f"  {'ratio mlbuild / plain Luigi':34} {ratio_med:8.2f}x {ratio_min:8.2f}x")
    print(f"  target: within 1.5x of plain Luigi -> "
          f"{'met' if ratio_med <= 1.5 else 'NOT met'} (median)")
    print()
    print(f"After changing one leaf's setting ({CHANGED_LEAF_ENV}={args.tasks // 2}):")
    print(f"  {'pipeline':34} {'tasks re-run':>12}")
    print(f"  {'mlbuild':34} {rerun_mlbuild:>12}   (Leaf(i={args.tasks // 2}) and FanIn)")
    print(f"  {'plain Luigi':34} {rerun_plain:>12}   "
          f"({'its leaf file is now stale' if stale else 'its leaf file was rewritten'})")
    if args.keep:
        print(f"\nFiles kept in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
