"""Benchmark: the hyper-parameter sweep on 1, 2 and 3 workers (same machine), wall times.

    python benchmarks/sweep_workers.py [--iterations 8000] [--repeat 3] [--keep]

The reference project is copied to a temporary folder, its ``configs/sweep.toml`` (K = 3
variants) set to ``num_iterations`` (8000: on the digits LightGBM's trees stop growing
early, so 800 train in about 1 s, less than Python's start) and ``num_threads = 1``, so
that on 2 CPUs two variants really train at once. The store is a fresh bucket on a private
moto server (``--endpoint`` uses a running one). The data steps are built once, untimed,
and copied into each run's own prefix; then for N = 1, 2, 3:

* one process: ``luigi --module tasks PublishModel --pipeline-config configs/sweep.toml
  --workers N`` (the local scheduler; Luigi forks a process per task);
* N processes: N such commands against one ``luigid`` (``configs/central.cfg`` and
  ``--scheduler-url``, as the README says), each with its own cache, as several machines
  sharing a scheduler and an S3 store would be.

Wall time runs from starting the process(es) to the last exit. Every run is checked from
the build logs (``MLBUILD_BUILD_LOG``): each result built exactly once, each variant once,
no data step again, and the same chosen model (sha256) in every run; the benchmark exits
non-zero otherwise. Runs are interleaved, medians printed; the speed-up is the mode's
1-worker time over its N-worker time, at best 1.5x for 3 variants on 2 CPUs. Luigi's
default ``--worker-wait-jitter`` (up to 5 s of idle sleep) is set to 0 here
(``--wait-jitter`` restores it). Figures are printed, never asserted.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import harness
from harness import ROOT as REPO
from harness import services

SWEEP = ["--pipeline-config", "configs/sweep.toml"]
SEED_FAMILIES = ("FetchData", "ValidateData", "SplitData")
MODES = ("local", "luigid")
MODE_LABELS = {"local": "one process --workers N", "luigid": "N processes on luigid"}
TIMEOUT = 3600  # seconds for one run; a hung worker fails the benchmark


def copy_project(dest: Path, iterations: int) -> int:
    """The project's files into ``dest``, with the sweep edited; returns its variant count."""
    import re
    import tomllib

    from tests.conftest import Project

    Project.copy_of(REPO, dest)
    sweep = dest / "configs" / "sweep.toml"
    text = sweep.read_text()
    edits = ((r"(?m)^num_iterations\s*=\s*\d+", f"num_iterations = {iterations}"),
             (r"(?m)^num_threads\s*=\s*\d+", "num_threads = 1"))
    for pattern, replacement in edits:
        text, count = re.subn(pattern, replacement, text)
        if count != 1:
            raise SystemExit(f"FAILED: cannot edit {pattern!r} in configs/sweep.toml "
                             f"({count} matches)")
    sweep.write_text(text)
    config = tomllib.loads(text)
    train = config["train"]
    if train["params"]["num_iterations"] != iterations or train["num_threads"] != 1:
        raise SystemExit("FAILED: the edit of configs/sweep.toml did not take")
    if not train.get("sweep"):
        raise SystemExit("FAILED: configs/sweep.toml configures no [[train.sweep]] variants")
    return len(train["sweep"])


def main(argv: list[str] | None = None) -> int:
    import json
    import shutil
    import statistics
    import subprocess
    import time
    import uuid
    from collections import Counter
    from datetime import datetime

    parser = harness.parser(__doc__, repeat=3, keep=True,
                            quick={"iterations": 800, "repeat": 1})
    parser.add_argument("--iterations", type=harness.positive_int, default=8000,
                        help="num_iterations of every variant (8000)")
    parser.add_argument("--wait-jitter", type=float, default=0.0,
                        help="luigid workers: --worker-wait-jitter, the random extra seconds "
                             "an idle worker sleeps between polls (0; Luigi's default is 5)")
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"),
                        help="a running S3 server to use (AWS_ENDPOINT_URL; default: start a "
                             "private moto server)")
    args = harness.parse(parser, argv)

    if args.endpoint and not services.answers(args.endpoint):
        raise SystemExit(f"FAILED: no S3 server answers at {args.endpoint}")

    work = harness.work_folder("sweep_workers")
    project = work / "project"
    variants = copy_project(project, args.iterations)
    bucket = f"bench-sweep-{uuid.uuid4().hex[:10]}"

    private = None
    if args.endpoint:
        endpoint = args.endpoint
    else:
        private = harness.private_moto(work)
        endpoint = private.url

    # The children see only what is set here: no MLBUILD_*, LUIGI_* or AWS_* of the caller.
    env = harness.clean_environ(**harness.aws_environ(endpoint, work),
                                MLBUILD_REPORTS=str(work / "reports"), PYTHONPATH=str(project))
    # The one-process mode: the project's luigi.cfg (local scheduler), without the lock
    # Luigi takes per command line, so that another checkout running the same command on
    # this machine cannot make a run exit early.
    local_cfg = work / "local.cfg"
    local_cfg.write_text("[core]\nno_lock = true\n")
    s3 = services.aws_client("s3", endpoint)
    luigi_cmd = [sys.executable, "-m", "luigi", "--module", "tasks"]

    def fail(message: str, details: str = "") -> None:
        where = ("the private moto server is stopped" if private
                 else f"bucket {bucket} on {endpoint}")
        harness.fail(message, details, kept=f"files kept in {work}; {where}")

    def keys(prefix: str) -> list[str]:
        found = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.extend(item["Key"] for item in page.get("Contents", ()))
        return found

    def delete(prefix: str) -> None:
        found = keys(prefix)
        for i in range(0, len(found), 1000):
            s3.delete_objects(Bucket=bucket, Delete={
                "Objects": [{"Key": k} for k in found[i:i + 1000]], "Quiet": True})

    def manifests(prefix: str, family: str) -> list[dict]:
        return [json.loads(s3.get_object(Bucket=bucket, Key=k)["Body"].read())
                for k in keys(f"{prefix}/{family}/") if k.endswith("/manifest.json")]

    def builds(logs: list[Path]) -> list[dict]:
        return [json.loads(line) for log in logs if log.exists()
                for line in log.read_text().splitlines() if line.strip()]

    def seconds(manifest: dict) -> float:
        started, finished = (datetime.fromisoformat(manifest[k]) for k in ("started", "finished"))
        return (finished - started).total_seconds()

    def run_env(prefix: str, cache: Path, log: Path, config: Path) -> dict[str, str]:
        return {**env, "MLBUILD_STORE": f"s3://{bucket}/{prefix}", "MLBUILD_CACHE": str(cache),
                "MLBUILD_BUILD_LOG": str(log), "LUIGI_CONFIG_PATH": str(config)}

    def wait_all(procs: list[subprocess.Popen], started: float) -> tuple[float, float]:
        """Wait for every process; returns the seconds until the last one exited and the CPU
        seconds (user + system) they and their children used. On the timeout it kills them
        (their process groups: they and what they started, nothing else) and fails."""
        pending, ended, cpu = list(procs), started, 0.0
        while pending:
            for proc in list(pending):
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    ended = time.perf_counter()
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    cpu += usage.ru_utime + usage.ru_stime
                    pending.remove(proc)
            if pending and time.perf_counter() - started > TIMEOUT:
                for proc in pending:
                    os.killpg(proc.pid, 9)
                    proc.wait()
                fail(f"a run took more than {TIMEOUT} s: {' '.join(pending[0].args)}")
            time.sleep(0.01)
        return ended - started, cpu

    def tail(path: Path, lines: int = 30) -> str:
        text = path.read_text(errors="replace") if path.exists() else ""
        return f"--- last lines of {path}:\n" + "\n".join(text.splitlines()[-lines:])

    def cpu_seconds(pid: int | None) -> float:
        """User + system CPU time of a process (Linux), 0 when unknown."""
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError, TypeError):
            return 0.0

    seed_keys: list[str] = []
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}  # (wall, CPU) seconds
    chosen: dict[str, tuple[str, str]] = {}  # TrainModel model sha256 -> first run that had it
    finished = False
    try:
        print(f"Work folder: {work}")
        if private is not None:
            private.start()
        s3.create_bucket(Bucket=bucket)
        print(f"S3: s3://{bucket} on {endpoint}"
              + (f" (private moto server, pid {private.pid()})" if private else ""))
        print(f"Sweep: {variants} variants (configs/sweep.toml), num_iterations = "
              f"{args.iterations}, num_threads = 1; CPUs: {os.cpu_count()} "
              f"(usable: {len(os.sched_getaffinity(0))}); load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")

        # The data steps, once, untimed.
        started = time.perf_counter()
        seed_log = work / "logs" / "seed.jsonl"
        seed_log.parent.mkdir(parents=True)
        proc = subprocess.run([*luigi_cmd, "SplitData", *SWEEP], cwd=project,
                              env=run_env("seed", work / "caches" / "seed", seed_log, local_cfg),
                              capture_output=True, text=True, check=False, timeout=TIMEOUT)
        if proc.returncode != 0:
            fail(f"building SplitData exited with {proc.returncode}",
                 "\n".join(proc.stderr.splitlines()[-30:]))
        built = Counter(b["family"] for b in builds([seed_log]))
        if set(built) != set(SEED_FAMILIES) or set(built.values()) != {1}:
            fail(f"building SplitData built {dict(built)}, not each of {SEED_FAMILIES} once")
        seed_keys = keys("seed/")
        print(f"Data steps built once in {time.perf_counter() - started:.1f} s "
              f"({len(seed_keys)} objects under s3://{bucket}/seed/, untimed)")

        def timed_run(mode: str, workers: int, r: int) -> tuple[float, float]:
            name = f"{mode}-{workers}w-{r + 1}"
            prefix = f"runs/{name}"
            for key in seed_keys:
                s3.copy_object(Bucket=bucket, Key=f"{prefix}/{key.removeprefix('seed/')}",
                               CopySource={"Bucket": bucket, "Key": key})
            (project / "models.lock").unlink(missing_ok=True)
            processes = 1 if mode == "local" else workers
            caches = [work / "caches" / name / str(i) for i in range(processes)]
            logs = [work / "logs" / f"{name}-{i}.jsonl" for i in range(processes)]
            scheduler = None
            if mode == "local":
                commands = [[*luigi_cmd, "PublishModel", *SWEEP, "--workers", str(workers)]]
                envs = [run_env(prefix, caches[0], logs[0], local_cfg)]
            else:
                folder = work / "luigid" / name
                scheduler = services.luigid(services.free_port(), folder)
                central = project / "configs" / "central.cfg"  # as the README says
                commands = [[*luigi_cmd, "PublishModel", *SWEEP, "--scheduler-url",
                             scheduler.url, "--worker-keep-alive", "--worker-wait-interval", "0.2",
                             "--worker-wait-jitter", str(args.wait_jitter)]] * workers
                envs = [run_env(prefix, caches[i], logs[i], central) for i in range(workers)]
                scheduler.start()
            errs = [log.with_suffix(".err") for log in logs]
            moto_cpu = cpu_seconds(private.pid() if private else None)
            procs: list[subprocess.Popen] = []
            try:
                started, started_at = time.perf_counter(), time.time()
                for cmd, e, err in zip(commands, envs, errs, strict=True):
                    with open(err, "w") as stderr:
                        procs.append(subprocess.Popen(cmd, cwd=project, env=e,
                                                      stdout=subprocess.DEVNULL, stderr=stderr,
                                                      start_new_session=True))
                wall, cpu = wait_all(procs, started)
            finally:
                for proc in procs:  # interrupted: stop the workers this run started
                    if proc.returncode is None:
                        os.killpg(proc.pid, 9)
                        proc.wait()
                if scheduler is not None:
                    scheduler.stop()
            moto_cpu = cpu_seconds(private.pid() if private else None) - moto_cpu

            allowed = (0,) if mode == "local" else (0, 24, 25)
            for proc, err in zip(procs, errs, strict=True):
                if proc.returncode not in allowed:
                    fail(f"{name}: a worker exited with {proc.returncode}", tail(err))
            done = builds(logs)
            counts = Counter((b["family"], b["fingerprint"]) for b in done)
            families = Counter(family for family, _ in counts)
            twice = {k: v for k, v in counts.items() if v != 1}
            expected = {"TrainVariant": variants, "TrainModel": 1, "EvaluateAccuracy": 1,
                        "PublishModel": 1}
            if twice or dict(families) != expected:
                fail(f"{name}: the build logs show {dict(families)} "
                     f"(built more than once: {twice}), not {expected}",
                     "\n".join(tail(err, 15) for err in errs))
            trained = manifests(prefix, "TrainModel")
            if len(trained) != 1:
                fail(f"{name}: {len(trained)} TrainModel manifests under {prefix}, not 1")
            sha = trained[0]["outputs"]["model"]["sha256"]
            lock = json.loads((project / "models.lock").read_text())
            locked = lock["models"]["digits"]["sha256"]
            if locked != sha:
                fail(f"{name}: models.lock names model {locked[:12]}, TrainModel built "
                     f"{sha[:12]}")
            chosen.setdefault(sha, (name, str(trained[0].get("extra", {}).get("chosen"))))
            if len(chosen) != 1:
                fail("the chosen model differs between runs: " + "; ".join(
                    f"{s[:12]} (variant {v}) first in {n}" for s, (n, v) in chosen.items()))

            published = manifests(prefix, "PublishModel")[0]
            ready = datetime.fromisoformat(published["finished"]).timestamp() - started_at
            per_process = Counter(i for i, log in enumerate(logs) if log.exists()
                                  for b in builds([log]) if b["family"] == "TrainVariant")
            variant_pids = {b["pid"] for b in done if b["family"] == "TrainVariant"}
            variant_manifests = manifests(prefix, "TrainVariant")
            variant_s = [seconds(m) for m in variant_manifests]
            span = seconds({
                "started": min(m["started"] for m in variant_manifests),
                "finished": max(m["finished"] for m in variant_manifests)})
            spread = "/".join(str(per_process.get(i, 0)) for i in range(workers))
            detail = (f"variants per process {spread}" if mode == "luigid"
                      else f"variants in {len(variant_pids)} forked process(es)"
                      if workers > 1 else "variants in the one process")
            print(f"  {name:14} {wall:5.1f} s, CPU {cpu:5.1f} s; published at {ready:5.1f} s; "
                  f"variants {span:5.1f} s, each {min(variant_s):.1f}-{max(variant_s):.1f} s; "
                  f"{detail}" + (f"; moto CPU {moto_cpu:.1f} s" if private else ""), flush=True)
            if not args.keep:
                delete(f"{prefix}/")
                shutil.rmtree(work / "caches" / name, ignore_errors=True)
            return wall, cpu

        print(f"Timed runs ({args.repeat} of each): wall time and CPU time of the run's "
              "processes; when PublishModel finished; from the manifests, the variants' span "
              "(first start to last end) and each one's build; who built them:")
        order = [(mode, n) for n in (1, 2, 3) for mode in MODES]
        started = time.perf_counter()
        for r in range(args.repeat):
            for mode, n in order if r % 2 == 0 else reversed(order):
                results.setdefault((mode, n), []).append(timed_run(mode, n, r))
        total = time.perf_counter() - started
        finished = True
    finally:
        if finished and not args.keep:
            try:
                delete("")
                s3.delete_bucket(Bucket=bucket)
            except Exception as exc:  # noqa: BLE001 - cleanup only; the figures stand
                print(f"(could not remove bucket {bucket}: {exc})", file=sys.stderr)
        if private is not None:
            private.stop()
        if finished and not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    med = {key: statistics.median(w for w, _ in v) for key, v in results.items()}
    med_cpu = {key: statistics.median(c for _, c in v) for key, v in results.items()}
    (sha, (_, variant)), = chosen.items()
    print()
    print(f"The sweep: {variants} TrainVariant tasks (num_iterations {args.iterations}, "
          f"num_threads 1), then TrainModel, EvaluateAccuracy and PublishModel, on S3; "
          f"median of {args.repeat} run(s) each")
    print(f"CPUs: {os.cpu_count()} (usable by this process: {len(os.sched_getaffinity(0))}); "
          f"load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    harness.print_table(["workers", *(f"{MODE_LABELS[m]} {h}" for m in MODES
                                      for h in ("s", "speed-up"))], [
        (n, *(cell for mode in MODES for cell in (
            f"{med[mode, n]:.1f}", f"{med[mode, 1] / med[mode, n]:.2f}x"))) for n in (1, 2, 3)])
    harness.print_comparison(
        "N processes on luigid against one process --workers N (median wall time)",
        [(f"{n} worker(s)", med["luigid", n], med["local", n]) for n in (1, 2, 3)],
        names=(MODE_LABELS["luigid"], MODE_LABELS["local"]))
    print("  CPU seconds of the workers' processes (median), 1/2/3 workers: " + "; ".join(
        f"{'one process' if mode == 'local' else 'on luigid'} "
        + "/".join(f"{med_cpu[mode, n]:.1f}" for n in (1, 2, 3)) for mode in MODES))
    print()
    print(f"Every run built each result once; the same model every time: TrainModel chose "
          f"variant {variant}, sha256 {sha[:16]}… (timed runs: {total:.0f} s in all)")
    if args.keep:
        where = ("the private moto server is stopped" if private
                 else f"objects in s3://{bucket}/ on {endpoint}")
        print(f"\nFiles kept in {work}; {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
