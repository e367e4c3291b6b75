"""Benchmark: the pipeline up to PublishModel at data scale, beside a one-file script.

    python benchmarks/scale_pipeline.py [--rows 1000000] [--features 50] [--repeat 1]

Generates a seeded ``builtin:synthetic``-style CSV once (two classes; 1,000,000 x 50 is
about 450 MiB), then runs, interleaved, each as a whole process:

* plain: ``scale_script.py``, which reads the CSV with pandas, splits it 75/25 stratified,
  trains LightGBM with the same parameters and scores the test part;
* mlbuild: ``luigi --module tasks PublishModel`` on a copy of the reference project whose
  config reads that CSV (``file://``), in a new local store and cache.

It prints the wall time and peak resident memory of each, the pipeline's time per task
(from its manifests), and the bytes on disk in the store and the cache (each file once,
however many hard links it has) beside the size of the data written once (FetchData's
table). The issue's targets: wall time at most 1.3x the script's, peak memory at most
1.5x, store + cache at most 1.2x the data. The run fails if the pipeline's accuracy is
more than 5 points under the script's: then the two did not do the same work.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import harness

CONFIG = """\
[data]
source = "file://{csv}"

[schema]
label = "label"
allowed_labels = [0, 1]

[schema.columns]
"f*" = "number"
label = "integer"

[split]
test_fraction = 0.25
seed = 42

[train]
num_threads = 2

[train.params]
objective = "binary"
num_iterations = 100
learning_rate = 0.1
num_leaves = 31
seed = 42

# A gate that tests something: the fast tier then scores a few hundred rows.
[[gates.threshold]]
metric = "accuracy"
min = 0.97

[accuracy]
expected = 0.99

[publish]
model_name = "scale"
lockfile = "models.lock"
"""


def make_data(path: Path, rows: int, features: int) -> None:
    """The CSV both sides read, written in slices so that only the generated array and one
    slice of text are in memory at once."""
    from tasks.fetch import synthetic_frame

    frame = synthetic_frame(rows, features, 2, seed=0)
    step = 1_000_000
    for start in range(0, rows, step):
        frame.iloc[start:start + step].to_csv(path, index=False, header=start == 0,
                                              mode="w" if start == 0 else "a")


def measured(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """A whole process: its wall seconds, its peak resident memory in MiB, its output."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        harness.fail(f"{' '.join(cmd[:4])} exited {proc.returncode}", output[-4000:])
    return seconds, usage.ru_maxrss / 1024, output


def project_copy(work: Path, csv: Path) -> Path:
    project = work / "project"
    shutil.copytree(harness.ROOT / "tasks", project / "tasks",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (project / "configs").mkdir()
    (project / "configs" / "pipeline.toml").write_text(CONFIG.format(csv=csv))
    shutil.copy(harness.ROOT / "luigi.cfg", project / "luigi.cfg")
    return project


def disk_bytes(*folders: Path) -> int:
    """Bytes of the files under ``folders``, each file (inode) counted once."""
    seen: dict[tuple[int, int], int] = {}
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                st = path.stat()
                seen[(st.st_dev, st.st_ino)] = st.st_size
    return sum(seen.values())


def per_task(store: Path) -> dict[str, float]:
    times = {}
    for manifest in store.glob("*/*/manifest.json"):
        m = json.loads(manifest.read_text())
        span = datetime.fromisoformat(m["finished"]) - datetime.fromisoformat(m["started"])
        times[m["family"]] = span.total_seconds()
    return times


def accuracy_of(store: Path) -> tuple[float, int]:
    (manifest,) = store.glob("EvaluateAccuracy/*/manifest.json")
    extra = json.loads(manifest.read_text())["extra"]
    return extra["metrics"]["accuracy"], extra["n"]


def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__, repeat=1, keep=True, quick={"rows": 100_000})
    parser.add_argument("--rows", type=harness.positive_int, default=1_000_000)
    parser.add_argument("--features", type=harness.positive_int, default=50)
    parser.add_argument("--data", type=Path, metavar="CSV",
                        help="measure on this CSV (e.g. data.csv of a run kept with --keep) "
                             "instead of generating one; --rows and --features are ignored")
    args = harness.parse(parser, argv)
    work = harness.work_folder("mlbuild-scale")
    if args.data:
        csv = args.data.resolve()
        with open(csv) as f:
            args.features = len(f.readline().split(",")) - 1
            args.rows = sum(1 for _ in f)
    else:
        csv = work / "data.csv"
        print(f"Generating {args.rows:,} rows x {args.features} features ...", flush=True)
        make_data(csv, args.rows, args.features)
    print(f"  {csv.stat().st_size / 2**20:,.1f} MiB of CSV")

    env = harness.clean_environ(PYTHONPATH=str(harness.ROOT))
    script = [sys.executable, str(Path(__file__).with_name("scale_script.py")), str(csv)]
    wall = {"plain": harness.Timings(), "mlbuild": harness.Timings()}
    rss = {"plain": [], "mlbuild": []}
    for n in range(args.repeat):
        seconds, peak, out = measured(script, work, env)
        wall["plain"].add(seconds)
        rss["plain"].append(peak)
        plain = json.loads(out.strip().splitlines()[-1])
        project = project_copy(work / f"run-{n}", csv)
        store, cache = project / ".mlbuild" / "store", project / ".mlbuild" / "cache"
        seconds, peak, _ = measured(
            [sys.executable, "-m", "luigi", "--module", "tasks", "PublishModel",
             "--local-scheduler"], project,
            {**env, "PYTHONPATH": f"{project}{os.pathsep}{harness.ROOT}"})
        wall["mlbuild"].add(seconds)
        rss["mlbuild"].append(peak)

    accuracy, n_eval = accuracy_of(store)
    print(f"\nAccuracy: script {plain['accuracy']:.4f} on {plain['test_rows']:,} test rows; "
          f"pipeline {accuracy:.4f} on the {n_eval:,} rows of its fast tier")
    if accuracy < plain["accuracy"] - 0.05:
        harness.fail("the pipeline's model is far less accurate than the script's",
                     kept=f"kept {work}")
    print("\nThe pipeline's time per task (its last run):")
    harness.print_table(["task", "seconds"], [(f, f"{s:.2f}") for f, s in
                                             sorted(per_task(store).items(), key=lambda i: -i[1])])
    (table,) = store.glob("FetchData/*/raw.arrow")
    on_disk, data = disk_bytes(store, cache), table.stat().st_size
    mib = lambda b: f"{b / 2**20:,.1f} MiB"
    harness.print_comparison(
        f"{args.rows:,} rows x {args.features} features, up to PublishModel "
        f"(median of {args.repeat})",
        [("wall time", wall["mlbuild"].median, wall["plain"].median)],
        names=("pipeline", "script"), note="target: at most 1.30x")
    harness.print_comparison(
        "Peak resident memory (largest run)", [("peak RSS", max(rss["mlbuild"]), max(rss["plain"]))],
        names=("pipeline", "script"), fmt=lambda v: f"{v:,.0f} MiB", note="target: at most 1.50x")
    harness.print_comparison(
        "Bytes on disk", [("store + cache / the table written once", on_disk, data)],
        names=("store+cache", "table"), fmt=mib, note="target: at most 1.20x")
    if args.keep:
        print(f"\nkept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
