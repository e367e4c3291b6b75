"""Benchmark: the no-op re-run of a fan-in of 1,000 fingerprinted tasks, whole process.

    python benchmarks/noop_fanin.py [--store local|s3] [--tasks 1000] [--repeat 5] [--keep]

The tasks are in ``fanin_tasks.py`` (put on ``PYTHONPATH``). In a temporary folder, on the
store chosen, both pipelines are built once:

* mlbuild: ``FanIn(BuildTask)`` requiring N ``Leaf(BuildTask)``;
* plain Luigi: a WrapperTask requiring N leaves whose targets Luigi checks one by one:
  ``LocalTarget`` files (``--store local``) or ``S3Target`` objects (``--store s3``).

Then the no-op re-run of each is timed as a whole process (Python start, imports,
scheduling, the existence checks), interleaved, beside the floor (``python -c "import
luigi, mlbuild"``). Every no-op run is verified to have run nothing and changed nothing;
the benchmark exits non-zero otherwise.

``--store local`` (``python -m luigi --module fanin_tasks ...``) last changes the setting of
one leaf (an environment variable that ``Leaf.settings()`` returns, and that ``PlainLeaf``
writes into its file) and counts the tasks each pipeline re-runs: mlbuild notices the change
(the leaf and FanIn), plain Luigi does not.

``--store s3`` starts a private moto S3 server on a free loopback port and uses bucket
``bench`` (``MLBUILD_STORE=s3://bench/fanin``). Each run is a child ``python
benchmarks/fanin_tasks.py <Task>``, which runs Luigi in-process and counts every HTTP
request any botocore client sends. Two more rows put the per-key cost side by side:
``LeafAll`` (a WrapperTask over the same N mlbuild leaves: N existence questions, answered
from listings) and ``SharedS3PlainAll`` (plain Luigi with one ``S3Client`` shared by all
targets, its best case; it also writes the plain objects, which is not measured).

The figures are printed, never asserted; DESIGN.md "Performance budget" says what to expect
(the local no-op: at or under 1.0x plain Luigi).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
from pathlib import Path

import harness
from fanin_tasks import BUCKET, CHANGED_LEAF_ENV, REQUESTS_LINE

HERE = Path(__file__).resolve().parent

TARGET = 1.0  # mlbuild / plain Luigi, median of the local no-op


def main(argv: list[str] | None = None) -> int:
    p = harness.parser(__doc__, repeat=5, keep=True, quick={"tasks": 200, "repeat": 2})
    p.add_argument("--store", choices=("local", "s3"), default="local",
                   help="where both pipelines keep their outputs (local)")
    p.add_argument("--tasks", type=harness.positive_int, default=1000,
                   help="leaves per pipeline (1000)")
    args = harness.parse(p, argv)
    return (local if args.store == "local" else s3)(args)


def pythonpath() -> str:
    return os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))


def interleaved(names: list[str], repeat: int, noop,
                warm: list[str] | None = None) -> dict[str, harness.Timings]:
    """``repeat`` rounds of ``noop(name)`` for each name, the order reversed every other
    round, after one untimed run of each of ``warm`` (all by default), which warms the file
    system cache and the .pyc files."""
    for name in names if warm is None else warm:
        noop(name)
    times = {name: harness.Timings() for name in names}
    for r in range(repeat):
        for name in names if r % 2 == 0 else reversed(names):
            times[name].add(noop(name))
        print(f"  run {r + 1}/{repeat}: "
              + "  ".join(f"{k} {v.values[-1]:.3f} s" for k, v in times.items()), flush=True)
    return times


def print_times(title: str, rows: list[tuple[str, str]], times, extra=None) -> None:
    print(f"\n{title}")
    headers = ["pipeline", "median", "min", "max", *([extra[0]] if extra else [])]
    harness.print_table(headers, [
        (label, f"{times[k].median:.3f} s", f"{times[k].best:.3f} s", f"{times[k].worst:.3f} s",
         *([extra[1](k)] if extra else [])) for label, k in rows])


# ----------------------------------------------------------------------------- local


def local(args) -> int:
    work = harness.work_folder("noop_fanin", luigi_cfg=True)
    store = work / "store"
    env = harness.clean_environ(MLBUILD_STORE=str(store), MLBUILD_CACHE=str(work / "cache"),
                                PYTHONPATH=pythonpath())
    env.pop(CHANGED_LEAF_ENV, None)
    n = str(args.tasks)
    luigi = [sys.executable, "-m", "luigi", "--module", "fanin_tasks"]
    commands = {
        "mlbuild": [*luigi, "FanIn", "--tasks", n, "--local-scheduler"],
        "plain": [*luigi, "PlainAll", "--tasks", n, "--local-scheduler"],
        "floor": [sys.executable, "-c", "import luigi, mlbuild"],
    }

    def fail(message: str, proc=None):
        harness.fail(message, proc=proc, kept=f"files kept in {work}")

    def run(name: str, extra_env: dict[str, str] | None = None):
        return harness.run(commands[name], work, {**env, **(extra_env or {})})

    def ran(proc) -> int:
        """How many tasks the run says it ran; fails loudly if it failed."""
        if proc.returncode != 0:
            fail(f"{' '.join(proc.args)} exited with {proc.returncode}", proc)
        count = harness.tasks_ran(proc.stderr)
        if count is None:
            fail("cannot find Luigi's execution summary in the log", proc)
        return count

    def manifests() -> int:
        return sum("manifest.json" in files for _, _, files in os.walk(store))

    def plain_state() -> dict[str, int]:
        return {p.name: p.stat().st_mtime_ns for p in (work / "plain").iterdir()}

    cpu = {name: harness.Timings() for name in commands}

    def noop(name: str) -> float:
        before = manifests() if name == "mlbuild" else plain_state()
        seconds, proc = run(name)
        cpu[name].add(proc.cpu_seconds)
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

        times = interleaved(list(commands), args.repeat, noop)
        for timings in cpu.values():
            del timings.values[:1]  # the warm-up's

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
            shutil.rmtree(work, ignore_errors=True)

    print_times(f"No-op re-run of a fan-in of {args.tasks} tasks, local store: whole process, "
                f"{args.repeat} runs each, interleaved",
                [("mlbuild   FanIn", "mlbuild"), ("Luigi     PlainAll", "plain"),
                 ("floor     import luigi, mlbuild", "floor")], times)
    mlbuild, plain = times["mlbuild"], times["plain"]
    ratio = mlbuild.median / plain.median
    harness.print_comparison(
        "mlbuild FanIn against plain Luigi PlainAll, no-op re-run", [
            ("median", mlbuild.median, plain.median),
            ("min", mlbuild.best, plain.best),
            ("CPU time (user + system), median", cpu["mlbuild"].median, cpu["plain"].median),
        ], names=("mlbuild", "plain Luigi"),
        note=f"floor, import luigi, mlbuild: {times['floor'].median:.3f} s, CPU "
             f"{cpu['floor'].median:.3f} s\n  target: at or under {TARGET:.1f}x plain Luigi (median) -> "
             f"{'met' if ratio <= TARGET else 'NOT met'}")
    print(f"\nAfter changing one leaf's setting ({CHANGED_LEAF_ENV}={args.tasks // 2}):")
    harness.print_table(["pipeline", "tasks re-run"], [
        (f"mlbuild (Leaf(i={args.tasks // 2}) and FanIn)", rerun_mlbuild),
        ("plain Luigi (its leaf file is now stale)" if stale
         else "plain Luigi (its leaf file was rewritten)", rerun_plain)])
    if args.keep:
        print(f"\nFiles kept in {work}")
    return 0


# ----------------------------------------------------------------------------- S3


def s3(args) -> int:
    work = harness.work_folder("s3_noop_fanin", luigi_cfg=True)
    server = harness.private_moto(work)
    env = harness.clean_environ(
        **harness.aws_environ(server.url, work),
        MLBUILD_STORE=f"s3://{BUCKET}/fanin",
        MLBUILD_CACHE=str(work / "cache"),
        MLBUILD_REPORTS=str(work / "reports"),
        PYTHONPATH=pythonpath(),
    )
    n = str(args.tasks)
    child = [sys.executable, str(HERE / "fanin_tasks.py")]
    commands = {
        "mlbuild": [*child, "FanIn", "--tasks", n],
        "leaves": [*child, "LeafAll", "--tasks", n],
        "plain": [*child, "S3PlainAll", "--tasks", n],
        "shared": [*child, "SharedS3PlainAll", "--tasks", n],
        "floor": [sys.executable, "-c", "import luigi, mlbuild, boto3"],
    }
    # The plain objects are written through SharedS3PlainAll: the same tasks, objects and
    # Luigi code, without a boto3 resource per target (a third faster; it is not measured).
    builds = {"mlbuild": commands["mlbuild"], "plain": commands["shared"]}
    prefixes = {"mlbuild": "fanin/", "leaves": "fanin/", "plain": "plain/", "shared": "plain/"}

    def fail(message: str, proc=None):
        harness.fail(message, proc=proc,
                     kept=f"files kept in {work}; moto log in {server.logfile}")

    def outcome(proc) -> tuple[int, int, int]:
        """Tasks run, requests of all clients and of mlbuild's store; fails if it failed."""
        if proc.returncode != 0:
            fail(f"{' '.join(proc.args)} exited with {proc.returncode}", proc)
        lines = proc.stdout.strip().splitlines()
        counts = lines[-1].split() if lines else []
        if len(counts) != 3 or counts[0] != REQUESTS_LINE:
            fail(f"the child printed no request count (stdout: {proc.stdout[-500:]!r})", proc)
        ran = harness.tasks_ran(proc.stderr)
        if ran is None:
            fail("cannot find Luigi's execution summary in the log", proc)
        return ran, int(counts[1]), int(counts[2])

    client = harness.services.aws_client("s3", server.url)

    def snapshot(prefix: str = "") -> dict[str, tuple[str, object]]:
        """Every object under ``prefix`` -> (ETag, LastModified)."""
        objects = {}
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", ()):
                objects[item["Key"]] = (item["ETag"], item["LastModified"])
        return objects

    objects: dict[str, tuple[str, object]] = {}
    requests: dict[str, list[int]] = {name: [] for name in commands}
    built: dict[str, tuple[float, int, int]] = {}

    def noop(name: str) -> float:
        seconds, proc = harness.run(commands[name], work, env)
        if name == "floor":
            if proc.returncode != 0:
                fail("python -c 'import luigi, mlbuild, boto3' failed", proc)
            return seconds
        count, sent, by_store = outcome(proc)
        if name in ("mlbuild", "leaves") and sent != by_store:
            fail(f"the child counted {sent} requests but mlbuild's store counted {by_store}: "
                 "the counting is wrong", proc)
        prefix = prefixes[name]
        before = {k: v for k, v in objects.items() if k.startswith(prefix)}
        after = snapshot(prefix)
        changed = sorted(k for k in after.keys() | before.keys() if after.get(k) != before.get(k))
        objects.update(after)
        if count or changed:
            fail(f"the no-op re-run of {name} was not a no-op: Luigi ran {count} task(s), "
                 f"{len(changed)} object(s) changed in the bucket (e.g. {changed[:3]})", proc)
        requests[name].append(sent)
        return seconds

    finished = False
    try:
        print(f"Work folder: {work}")
        server.start()
        print(f"moto S3 server: {server.url} (pid {server.pid()})")
        client.create_bucket(Bucket=BUCKET)
        print(f"Building both pipelines once ({args.tasks} leaves + 1 fan-in each) ...")
        for name in ("mlbuild", "plain"):
            seconds, proc = harness.run(builds[name], work, env)
            count, sent, _ = outcome(proc)
            if count != args.tasks + 1:
                fail(f"the first build of {name} ran {count} tasks, not {args.tasks + 1}", proc)
            built[name] = (seconds, count, sent)
            print(f"  {name:8} built {count} tasks in {seconds:.1f} s, {sent} S3 requests")
        objects.update(snapshot())
        manifests = sum(key.endswith("/manifest.json") for key in objects)
        plain = sum(key.startswith("plain/") for key in objects)
        if manifests != args.tasks + 1:
            fail(f"the store holds {manifests} manifests, not {args.tasks + 1}")
        if plain != args.tasks:
            fail(f"the bucket holds {plain} plain objects, not {args.tasks}")

        # The plain ones are not warmed: their 1,000 requests dominate, and a warm-up
        # would add half a minute. The warm-ups' request counts are dropped.
        warm = ["mlbuild", "leaves", "floor"]
        times = interleaved(list(commands), args.repeat, noop, warm)
        for name in warm:
            del requests[name][:1]
        finished = True
    finally:
        server.stop()
        if finished and not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    def sent(key: str) -> str:
        if key == "floor":
            return "-"
        lo, hi = min(requests[key]), max(requests[key])
        return str(lo) if lo == hi else f"{lo}-{hi}"

    print_times(f"No-op re-run of a fan-in of {args.tasks} tasks on S3 (moto server): whole "
                f"process, {args.repeat} runs each, interleaved", [
                    ("mlbuild      FanIn", "mlbuild"),
                    ("plain Luigi  S3PlainAll (S3Target)", "plain"),
                    ("mlbuild      LeafAll (N leaves asked)", "leaves"),
                    ("plain Luigi  SharedS3PlainAll (1 S3Client)", "shared"),
                    ("floor        import luigi, mlbuild, boto3", "floor"),
                ], times, extra=("S3 requests", sent))
    pairs = [("FanIn / S3PlainAll", "mlbuild", "plain"),
             ("FanIn / SharedS3PlainAll", "mlbuild", "shared"),
             ("LeafAll / S3PlainAll", "leaves", "plain"),
             ("LeafAll / SharedS3PlainAll", "leaves", "shared")]
    harness.print_comparison("mlbuild against plain Luigi on S3, no-op re-run (median time)",
                             [(label, times[a].median, times[b].median) for label, a, b in pairs],
                             names=("mlbuild", "plain Luigi"))

    harness.print_comparison("... and S3 requests (median)",
                             [(label, statistics.median(requests[a]), statistics.median(requests[b]))
                              for label, a, b in pairs],
                             names=("mlbuild", "plain Luigi"), fmt=lambda x: f"{x:g}")
    print("\n  first builds (untimed detail): " + "; ".join(
        f"{builds[name][2]} {s:.1f} s, {c} tasks, {q} S3 requests"
        for name, (s, c, q) in built.items()))
    if args.keep:
        print(f"\nFiles kept in {work} (the server is stopped)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
