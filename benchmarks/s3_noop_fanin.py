"""Benchmark: the no-op re-run of a fan-in of 1,000 fingerprinted tasks on S3, whole process.

    python benchmarks/s3_noop_fanin.py [--tasks 1000] [--repeat 5] [--keep]

This file is both the driver (``__main__``) and the Luigi task module (``s3_noop_fanin``).
The driver starts a private moto S3 server on a free loopback port (``tests.services``),
points the children at it (dummy AWS credentials, ``AWS_ENDPOINT_URL``,
``MLBUILD_STORE=s3://bench/fanin``), and builds two pipelines once in bucket ``bench``:

* mlbuild: ``FanIn(BuildTask)`` requiring N ``Leaf(BuildTask)``;
* plain Luigi: ``PlainAll(WrapperTask)`` requiring N ``PlainLeaf`` whose output is a
  ``luigi.contrib.s3.S3Target`` (``s3://bench/plain/leaf-<i>.txt``), so that Luigi checks
  every leaf's object. (Its objects are written by ``SharedPlainAll``, below: the same
  objects, built faster.)

Then it times the no-op re-run of each as a whole process (Python start, imports,
scheduling, the existence checks), interleaved, and counts the HTTP requests each sends to
S3. Two more rows put the per-key cost side by side: ``LeafAll`` (a WrapperTask over the
same N mlbuild leaves, so mlbuild answers N existence questions, from listings) and
``SharedPlainAll`` (plain Luigi with one ``S3Client`` shared by all targets, its best case:
``S3Target(path)`` alone makes a boto3 resource per target).

Each run is a child ``python benchmarks/s3_noop_fanin.py --child <Task> ...`` which counts
every request any botocore client sends (a ``before-send`` handler on every client), runs
Luigi in-process exactly as ``python -m luigi`` does (same exit codes), and prints the count
as its last line. Every no-op run is verified to have run nothing and to have changed no
object in the bucket; the benchmark exits non-zero otherwise. The figures are printed,
never asserted; DESIGN.md "Performance budget" says what to expect.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    # Run under the module name ``s3_noop_fanin`` (as ``luigi --module`` would), so the
    # task classes are registered once and their code digest does not depend on how the
    # file was started. sys.path[0] is this file's folder.
    import s3_noop_fanin

    raise SystemExit(s3_noop_fanin.child(sys.argv[2:]))

from pathlib import Path
from typing import ClassVar

import luigi

from mlbuild import BuildTask

BUCKET = "bench"
PLAIN_ROOT = f"s3://{BUCKET}/plain"
STORE = f"s3://{BUCKET}/fanin"
REQUESTS_LINE = "S3-REQUESTS"  # the child's last line: S3-REQUESTS <all clients> <mlbuild store>

# ----------------------------------------------------------------------------- mlbuild


class Leaf(BuildTask):
    i = luigi.IntParameter()
    outputs: ClassVar = {"out": "out.txt"}

    def build(self, inputs, outputs):
        outputs["out"].write_text(f"{self.i}\n")


class FanIn(BuildTask):
    tasks = luigi.IntParameter(default=1000)
    outputs: ClassVar = {"out": "count.txt"}

    def requires(self):
        return {f"leaf{i}": Leaf(i=i) for i in range(self.tasks)}

    def build(self, inputs, outputs):
        outputs["out"].write_text(f"{len(inputs)}\n")


class LeafAll(luigi.WrapperTask):
    """The same mlbuild leaves, each asked about: N existence checks, answered by listings."""

    tasks = luigi.IntParameter(default=1000)

    def requires(self):
        return [Leaf(i=i) for i in range(self.tasks)]


# ----------------------------------------------------------------------------- plain Luigi


class PlainLeaf(luigi.Task):
    i = luigi.IntParameter()

    def client(self):
        return None  # S3Target's default: a new S3Client (and boto3 resource) per target

    def output(self):
        from luigi.contrib.s3 import S3Target

        return S3Target(f"{PLAIN_ROOT}/leaf-{self.i}.txt", client=self.client())

    def run(self):
        with self.output().open("w") as f:
            f.write(f"{self.i}\n")


class PlainAll(luigi.WrapperTask):
    tasks = luigi.IntParameter(default=1000)

    def requires(self):
        return [PlainLeaf(i=i) for i in range(self.tasks)]


_SHARED_CLIENT = None


class SharedPlainLeaf(PlainLeaf):
    """The same objects as PlainLeaf, with one S3Client for all targets."""

    def client(self):
        global _SHARED_CLIENT
        if _SHARED_CLIENT is None:
            from luigi.contrib.s3 import S3Client

            _SHARED_CLIENT = S3Client()
        return _SHARED_CLIENT


class SharedPlainAll(luigi.WrapperTask):
    tasks = luigi.IntParameter(default=1000)

    def requires(self):
        return [SharedPlainLeaf(i=i) for i in range(self.tasks)]


# ----------------------------------------------------------------------------- child


def count_requests() -> list[int]:
    """Count every HTTP request (retries included) of every botocore client made from now on.

    boto3 sessions, resources (Luigi's S3Client) and clients (mlbuild's S3Store) all come
    from ``botocore.session.Session.create_client``; a ``before-send`` handler on each new
    client sees each request just before it is sent.
    """
    import botocore.session

    counter = [0]
    create_client = botocore.session.Session.create_client

    def count(**_):
        counter[0] += 1

    def counting_create_client(self, *args, **kwargs):
        client = create_client(self, *args, **kwargs)
        client.meta.events.register("before-send", count)
        return client

    botocore.session.Session.create_client = counting_create_client
    return counter


def child(argv: list[str]) -> int:
    """``luigi --module s3_noop_fanin <argv>`` in this process, then the request counts."""
    counter = count_requests()
    from luigi.retcodes import run_with_retcodes

    try:
        run_with_retcodes(["--module", __name__, *argv, "--local-scheduler"])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    from mlbuild.settings import store_uri
    from mlbuild.store import open_store

    store = open_store(store_uri())
    print(f"{REQUESTS_LINE} {counter[0]} {getattr(store, 'requests', 0)}", flush=True)
    return code


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

DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "AKIAMLBUILDBENCH0001",
    "AWS_SECRET_ACCESS_KEY": "mlbuild-bench-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def main(argv: list[str] | None = None) -> int:
    import argparse
    import re
    import statistics
    import subprocess
    import tempfile
    import time

    import boto3

    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here.parent))
    from tests import services

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1000, help="leaves per pipeline (1000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed no-op runs each (5)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if args.tasks < 1 or args.repeat < 1:
        parser.error("--tasks and --repeat must be at least 1")

    work = Path(tempfile.mkdtemp(prefix="s3_noop_fanin-"))
    (work / "luigi.cfg").write_text(LUIGI_CFG)
    server = services.moto(port=services.free_port(), folder=work / "services",
                           env={"TMPDIR": str(work)})
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLBUILD_", "LUIGI_", "AWS_"))}
    env.update(
        DUMMY_AWS,
        AWS_ENDPOINT_URL=server.url,
        AWS_CONFIG_FILE=str(work / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(work / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        MLBUILD_STORE=STORE,
        MLBUILD_CACHE=str(work / "cache"),
        MLBUILD_REPORTS=str(work / "reports"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(here), os.environ.get("PYTHONPATH")])),
    )
    n = str(args.tasks)
    me = [sys.executable, str(Path(__file__).resolve()), "--child"]
    commands = {
        "mlbuild": [*me, "FanIn", "--tasks", n],
        "leaves": [*me, "LeafAll", "--tasks", n],
        "plain": [*me, "PlainAll", "--tasks", n],
        "shared": [*me, "SharedPlainAll", "--tasks", n],
        "floor": [sys.executable, "-c", "import luigi, mlbuild, boto3"],
    }
    # The plain objects are written through SharedPlainAll: the same tasks, objects and
    # Luigi code, without a boto3 resource per target (a third faster; it is not measured).
    builds = {"mlbuild": commands["mlbuild"], "plain": [*me, "SharedPlainAll", "--tasks", n]}
    prefixes = {"mlbuild": "fanin/", "leaves": "fanin/", "plain": "plain/", "shared": "plain/"}

    def run(name: str, build: bool = False):
        started = time.perf_counter()
        proc = subprocess.run((builds if build else commands)[name], cwd=work, env=env,
                              capture_output=True, text=True, check=False)
        return time.perf_counter() - started, proc

    def fail(message: str, proc=None) -> None:
        print(f"FAILED: {message}", file=sys.stderr)
        if proc is not None:
            print(f"--- exit code {proc.returncode}; last lines of its log:", file=sys.stderr)
            print("\n".join(proc.stderr.splitlines()[-30:]), file=sys.stderr)
        print(f"(files kept in {work}; moto log in {server.logfile})", file=sys.stderr)
        raise SystemExit(1)

    def outcome(proc) -> tuple[int, int, int]:
        """Tasks run, requests of all clients and of mlbuild's store; fails if it failed."""
        if proc.returncode != 0:
            fail(f"{' '.join(map(str, proc.args))} exited with {proc.returncode}", proc)
        lines = proc.stdout.strip().splitlines()
        counts = lines[-1].split() if lines else []
        if len(counts) != 3 or counts[0] != REQUESTS_LINE:
            fail(f"the child printed no request count (stdout: {proc.stdout[-500:]!r})", proc)
        if "Did not run any tasks" in proc.stderr:
            ran = 0
        else:
            found = re.search(r"^\* (\d+) ran successfully:", proc.stderr, re.MULTILINE)
            if not found:
                fail("cannot find Luigi's execution summary in the log", proc)
            ran = int(found.group(1))
        return ran, int(counts[1]), int(counts[2])

    s3 = boto3.client("s3", endpoint_url=server.url, region_name=DUMMY_AWS["AWS_DEFAULT_REGION"],
                      aws_access_key_id=DUMMY_AWS["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=DUMMY_AWS["AWS_SECRET_ACCESS_KEY"])

    def snapshot(prefix: str = "") -> dict[str, tuple[str, object]]:
        """Every object under ``prefix`` -> (ETag, LastModified)."""
        objects = {}
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", ()):
                objects[item["Key"]] = (item["ETag"], item["LastModified"])
        return objects

    def manifests(objects) -> int:
        return sum(key.endswith("/manifest.json") for key in objects)

    def plain_objects(objects) -> int:
        return sum(key.startswith("plain/") for key in objects)

    state: dict[str, dict] = {}
    times: dict[str, list[float]] = {name: [] for name in commands}
    requests: dict[str, list[int]] = {name: [] for name in commands}
    built: dict[str, tuple[float, int, int]] = {}

    def noop(name: str) -> float:
        seconds, proc = run(name)
        if name == "floor":
            if proc.returncode != 0:
                fail("python -c 'import luigi, mlbuild, boto3' failed", proc)
            times[name].append(seconds)
            return seconds
        count, sent, by_store = outcome(proc)
        if name in ("mlbuild", "leaves") and sent != by_store:
            fail(f"the child counted {sent} requests but mlbuild's store counted {by_store}: "
                 "the counting is wrong", proc)
        prefix = prefixes[name]
        before = {k: v for k, v in state["objects"].items() if k.startswith(prefix)}
        after = snapshot(prefix)
        changed = sorted(k for k in after.keys() | before.keys() if after.get(k) != before.get(k))
        state["objects"].update(after)
        if count or changed:
            fail(f"the no-op re-run of {name} was not a no-op: Luigi ran {count} task(s), "
                 f"{len(changed)} object(s) changed in the bucket (e.g. {changed[:3]})", proc)
        times[name].append(seconds)
        requests[name].append(sent)
        return seconds

    finished = False
    try:
        print(f"Work folder: {work}")
        server.start()
        print(f"moto S3 server: {server.url} (pid {server.pid()})")
        s3.create_bucket(Bucket=BUCKET)
        print(f"Building both pipelines once ({args.tasks} leaves + 1 fan-in each) ...")
        for name in ("mlbuild", "plain"):
            seconds, proc = run(name, build=True)
            count, sent, _ = outcome(proc)
            if count != args.tasks + 1:
                fail(f"the first build of {name} ran {count} tasks, not {args.tasks + 1}", proc)
            built[name] = (seconds, count, sent)
            print(f"  {name:8} built {count} tasks in {seconds:.1f} s, {sent} S3 requests")
        state["objects"] = snapshot()
        if manifests(state["objects"]) != args.tasks + 1:
            fail(f"the store holds {manifests(state['objects'])} manifests, not {args.tasks + 1}")
        if plain_objects(state["objects"]) != args.tasks:
            fail(f"the bucket holds {plain_objects(state['objects'])} plain objects, "
                 f"not {args.tasks}")

        # One untimed, verified no-op each of the fast ones: warms the file system cache and
        # the .pyc files (of this module too). The plain ones take 1,000 requests, which
        # dominate; a warm-up would add half a minute.
        for name in ("mlbuild", "leaves", "floor"):
            noop(name)
            times[name].clear()
            requests[name].clear()

        order = list(commands)
        for r in range(args.repeat):
            for name in order if r % 2 == 0 else reversed(order):
                noop(name)
            print(f"  run {r + 1}/{args.repeat}: "
                  + "  ".join(f"{k} {v[-1]:.3f} s" for k, v in times.items()))
        finished = True
    finally:
        server.stop()
        if finished and not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in times.items()}
    low = {k: min(v) for k, v in times.items()}
    high = {k: max(v) for k, v in times.items()}

    def sent(key: str) -> str:
        if key == "floor":
            return "-"
        lo, hi = min(requests[key]), max(requests[key])
        return str(lo) if lo == hi else f"{lo}-{hi}"

    rows = (
        ("mlbuild      FanIn", "mlbuild"),
        ("plain Luigi  PlainAll (S3Target)", "plain"),
        ("mlbuild      LeafAll (N leaves asked)", "leaves"),
        ("plain Luigi  SharedPlainAll (1 S3Client)", "shared"),
        ("floor        import luigi, mlbuild, boto3", "floor"),
    )
    print()
    print(f"No-op re-run of a fan-in of {args.tasks} tasks on S3 (moto server): whole process, "
          f"{args.repeat} runs each, interleaved")
    print(f"  {'pipeline':43} {'median':>9} {'min':>9} {'max':>9} {'S3 requests':>12}")
    for label, key in rows:
        print(f"  {label:43} {med[key]:8.3f}s {low[key]:8.3f}s {high[key]:8.3f}s "
              f"{sent(key):>12}")
    print()
    print(f"  {'ratio':43} {'time (median)':>14} {'requests':>10}")
    for label, a, b in (
        ("mlbuild FanIn / plain Luigi PlainAll", "mlbuild", "plain"),
        ("mlbuild FanIn / SharedPlainAll", "mlbuild", "shared"),
        ("mlbuild LeafAll / plain Luigi PlainAll", "leaves", "plain"),
        ("mlbuild LeafAll / SharedPlainAll", "leaves", "shared"),
    ):
        ra, rb = statistics.median(requests[a]), statistics.median(requests[b])
        print(f"  {label:43} {med[a] / med[b]:13.3f}x {ra / rb if rb else float('nan'):9.4f}x")
    print()
    print("  first builds (untimed detail): " + "; ".join(
        f"{' '.join(builds[name][3:4])} {s:.1f} s, {c} tasks, {q} S3 requests"
        for name, (s, c, q) in built.items()))
    if args.keep:
        print(f"\nFiles kept in {work} (the server is stopped)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
