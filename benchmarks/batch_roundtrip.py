"""Benchmark: the overhead of running a trivial task as an AWS Batch job.

    python benchmarks/batch_roundtrip.py [--repeat 3]

The task is FetchData of the built-in digits (well under a second of work). Each mode runs
it as a whole process into a fresh S3 prefix of moto's server, and the modes are
interleaved round by round:

* local: ``luigi --module tasks FetchData`` in this process's machine;
* docker run: the same command in the training image, started with the Docker SDK (the
  plain alternative: a container without Batch);
* Batch, fast polling: ``mlbuild batch submit FetchData`` with polls every 0.2-1 s;
* Batch, default polling: the same with the default 1-30 s backoff.

Batch here is moto server's, which runs each job as a container of the local engine and
moves a job through its states in 0.5 s steps; on AWS, scheduling and placement add
seconds to minutes. Needs `make services` (moto with Batch, the Docker engine, the base
image). Every run is checked to have written FetchData's manifest. Figures are printed,
never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import harness
from harness import ROOT, services


def main(argv: list[str] | None = None) -> int:
    args = harness.parse(harness.parser(__doc__, repeat=3, quick={"repeat": 1}), argv)

    import docker

    from tests.conftest import Project

    docker_host, base = harness.docker_engine()
    endpoint = services.moto().url
    if not services.answers(endpoint):
        print(f"moto is not running at {endpoint}: run `make services` first", file=sys.stderr)
        return 1
    services.create_batch_queue(endpoint)
    s3 = services.aws_client("s3", endpoint)
    bucket = f"bench-batch-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)

    with tempfile.TemporaryDirectory(prefix="batch-bench-") as tmp:
        aws = harness.aws_environ(endpoint, Path(tmp))
        copy = Project.copy_of(ROOT, Path(tmp), with_library=True)
        copy.extra_env.update(aws, DOCKER_HOST=docker_host, MLBUILD_IMAGE_BASE=base)
        project, env = copy.root, copy.env

        def checked(proc: subprocess.CompletedProcess) -> None:
            if proc.returncode != 0:
                harness.fail(f"{' '.join(proc.args[1:])} exited with {proc.returncode}",
                             proc=proc)

        print("building the training image (not timed) ...", flush=True)
        checked(subprocess.run(
            [sys.executable, "-m", "luigi", "--module", "tasks", "BuildTrainingImage"],
            cwd=project, env=env, capture_output=True, text=True, check=False))
        image = json.loads(next(copy.store.glob("BuildTrainingImage/*/image.json"))
                           .read_text())["tag"]
        engine = docker.DockerClient(base_url=docker_host)
        forward = ["--batch-environment", services.BATCH_FORWARD]

        def store(mode: str, i: int) -> str:
            return f"s3://{bucket}/{mode}-{i}"

        def local(prefix: str) -> None:
            checked(subprocess.run(
                [sys.executable, "-m", "luigi", "--module", "tasks", "FetchData"], cwd=project,
                env={**env, "MLBUILD_STORE": prefix}, capture_output=True, text=True,
                check=False))

        def docker_run(prefix: str) -> None:
            engine.containers.run(image, ["FetchData"], environment={**aws, "MLBUILD_STORE": prefix},
                                  network_mode="host", remove=True)

        def on_batch(poll: list[str]):
            def run(prefix: str) -> None:
                checked(subprocess.run(
                    [sys.executable, "-m", "mlbuild.cli", "batch", "submit", "FetchData",
                     *forward, *poll], cwd=project, capture_output=True, text=True, check=False,
                    env={**env, "MLBUILD_STORE": prefix, "MLBUILD_BATCH_IMAGE": image}))
            return run

        modes = {
            "local `luigi --module tasks FetchData`": local,
            "plain `docker run <image> FetchData`": docker_run,
            "mlbuild -> Batch, poll 0.2-1 s": on_batch(["--batch-poll-min-s", "0.2",
                                                        "--batch-poll-max-s", "1"]),
            "mlbuild -> Batch, default poll 1-30 s": on_batch([]),
        }
        times = {mode: harness.Timings() for mode in modes}
        for i in range(args.repeat):
            for n, (mode, run) in enumerate(modes.items()):
                prefix = store(f"m{n}", i)
                times[mode].add(harness.timed(run, prefix)[0])
                listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix.split("/", 3)[3] + "/")
                if not any(o["Key"].endswith("/manifest.json") for o in listed.get("Contents", [])):
                    print(f"{mode}: no FetchData manifest in {prefix}", file=sys.stderr)
                    return 1

    local, plain, *batch = (t.median for t in times.values())
    print(f"\nFetchData of the digits, whole process, {args.repeat} round(s), medians:")
    harness.print_table(["mode", "median", "vs local"], [
        (mode, f"{t.median:.2f} s", "-" if t.median == local else f"{t.median - local:+.2f} s")
        for mode, t in times.items()])
    harness.print_comparison(
        "The Batch round trip against a plain container of the same image (medians)",
        [(mode.removeprefix("mlbuild -> "), median, plain)
         for mode, median in zip(list(times)[2:], batch, strict=True)],
        names=("mlbuild -> Batch", "plain docker run"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
