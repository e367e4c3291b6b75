"""Beyond one machine: several workers, one luigid, one S3 store — each result is built
exactly once, and the result equals a single worker's."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from tests import services
from tests.conftest import Project, ok, wait_for

pytestmark = pytest.mark.integration

SWEEP = ["--pipeline-config", "configs/sweep.toml"]


def test_three_workers_on_one_scheduler_build_each_result_once(project, s3_env, bucket,
                                                               tmp_path):
    scheduler = services.luigid(services.free_port(), tmp_path / "luigid")
    scheduler.start()
    # The README's command: configs/central.cfg turns the local scheduler off.
    project.extra_env.update(s3_env, MLBUILD_STORE=f"s3://{bucket}/team",
                             LUIGI_CONFIG_PATH="configs/central.cfg")
    central = ["--scheduler-url", scheduler.url]
    project.one_training_thread("configs/sweep.toml")
    logs = [tmp_path / f"builds-{i}.log" for i in range(3)]
    # The data steps first, so that the three variants are there to share at once.
    prepare = tmp_path / "builds-prepare.log"
    project.extra_env["MLBUILD_BUILD_LOG"] = str(prepare)
    try:
        ok(project.luigi("SplitData", *SWEEP, *central))
        workers = [subprocess.Popen(
            [sys.executable, "-m", "luigi", "--module", "tasks", "PublishModel", *SWEEP, *central,
             "--worker-keep-alive", "--worker-wait-interval", "0.2"],
            cwd=project.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**project.env, "MLBUILD_CACHE": str(tmp_path / f"cache-{i}"),
                 "MLBUILD_BUILD_LOG": str(log)})
            for i, log in enumerate(logs)]
        errors = [w.communicate(timeout=600)[1] for w in workers]
    finally:
        scheduler.stop()
    # Luigi exits 24 or 25 (luigi.cfg [retcode] not_run, already_running) when another
    # worker held or ran a task this one was asked for; no worker may fail.
    for worker, err in zip(workers, errors, strict=True):
        assert worker.returncode in (0, 24, 25), err[-3000:]

    builds = [json.loads(line) for log in [prepare, *logs] if log.exists()
              for line in log.read_text().splitlines()]
    counts = Counter((b["family"], b["fingerprint"]) for b in builds)
    assert counts and set(counts.values()) == {1}, counts
    families = Counter(family for family, _ in counts)
    assert families["TrainVariant"] == 3 and families["PublishModel"] == 1
    assert sum(1 for log in logs if log.exists()) >= 2, "\n\n".join(e[-2500:] for e in errors)

    single = Project.copy_of(project.root, tmp_path / "single")
    ok(single.luigi("PublishModel", *SWEEP))
    lock = json.loads(project.lock.read_text())["models"]["digits"]
    assert lock["sha256"] == json.loads(single.lock.read_text())["models"]["digits"]["sha256"]


def test_a_worker_killed_mid_task_hands_its_task_on(project, s3_env, bucket, tmp_path):
    import os
    import signal

    folder = tmp_path / "luigid"
    folder.mkdir()
    (folder / "scheduler.cfg").write_text(
        "[scheduler]\nworker_disconnect_delay = 2\nretry_delay = 1\n")
    scheduler = services.luigid(services.free_port(), folder)
    scheduler.env["LUIGI_CONFIG_PATH"] = str(folder / "scheduler.cfg")
    scheduler.start()
    central = ["--scheduler-url", scheduler.url]
    project.edit("configs/sweep.toml", "num_iterations = 100", "num_iterations = 300")
    project.extra_env.update(s3_env, MLBUILD_STORE=f"s3://{bucket}/team",
                             LUIGI_CONFIG_PATH="configs/central.cfg")
    command = [sys.executable, "-m", "luigi", "--module", "tasks", "PublishModel", *SWEEP,
               *central, "--worker-keep-alive", "--worker-wait-interval", "0.2"]
    try:
        ok(project.luigi("SplitData", *SWEEP, *central))
        doomed_cache = tmp_path / "cache-doomed"
        doomed = subprocess.Popen(command, cwd=project.root, start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env={**project.env, "MLBUILD_CACHE": str(doomed_cache)})
        wait_for(lambda: any((doomed_cache / "tmp").glob("TrainVariant-*")), 120,
                 "the first worker to begin a variant")
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait()
        survivor = subprocess.run(command, cwd=project.root, capture_output=True, text=True,
                                  check=False,
                                  timeout=600,
                                  env={**project.env, "MLBUILD_CACHE": str(tmp_path / "cache")})
    finally:
        scheduler.stop()
    assert survivor.returncode in (0, 24, 25), survivor.stderr[-3000:]

    single = Project.copy_of(project.root, tmp_path / "single")
    single.extra_env.clear()
    ok(single.luigi("PublishModel", *SWEEP))
    lock = json.loads(project.lock.read_text())["models"]["digits"]
    assert lock["sha256"] == json.loads(single.lock.read_text())["models"]["digits"]["sha256"]
