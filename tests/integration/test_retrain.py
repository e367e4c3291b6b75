"""Continuous training: `mlbuild stage retrain` against the S3 server (snapshots), the
Docker engine and registry (the image), and a real git repository with a remote."""

from __future__ import annotations

import io
import json
import shutil
import subprocess

import pytest

from tests.conftest import ok, s3_client

pytestmark = pytest.mark.integration

PATTERN = "digits/*/part-*.csv"


def git(project, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=project.root, check=True, capture_output=True,
                          text=True).stdout.strip()


def put_snapshot(s3, bucket: str, name: str, seed: int, shift: str | None = None) -> None:
    """The digits with a little seeded noise (a new sample of the same distribution), in
    two parts; ``shift`` moves one pixel's values (drifted data)."""
    import numpy as np

    from tasks.fetch import digits_frame

    frame = digits_frame()
    noise = np.random.default_rng(seed).integers(-1, 2, size=(len(frame), 64))
    pixels = [c for c in frame.columns if c != "label"]
    frame[pixels] = np.clip(frame[pixels].to_numpy() + noise, 0, 16)
    if shift:
        frame[shift] = np.clip(frame[shift] + 8, 0, 16)
    half = len(frame) // 2
    for part, rows in enumerate((frame.iloc[:half], frame.iloc[half:])):
        text = io.StringIO()
        rows.to_csv(text, index=False)
        s3.put_object(Bucket=bucket, Key=f"digits/{name}/part-{part}.csv",
                      Body=text.getvalue().encode())


@pytest.fixture
def repo(project, s3_env, bucket, tmp_path):
    """The project in a git repository (develop, with a bare remote), its data a snapshot
    prefix on the S3 server holding one snapshot."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    s3 = s3_client(s3_env["AWS_ENDPOINT_URL"])
    put_snapshot(s3, bucket, "2026-12-01", seed=1)
    project.extra_env.update(s3_env)
    project.edit("configs/pipeline.toml", 'source = "builtin:digits"',
                 f'source = "s3://{bucket}/{PATTERN}"\nsnapshot = "latest"')
    (project.root / ".gitignore").write_text(".mlbuild/\nreports/\n__pycache__/\n")
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(project, "init", "-q", "-b", "develop")
    git(project, "config", "user.email", "ci@example.com")
    git(project, "config", "user.name", "CI")
    git(project, "remote", "add", "origin", str(remote))
    return project, s3, bucket, remote


@pytest.fixture
def released(repo, docker_env):
    """... and its model released from that snapshot (image pushed), committed."""
    project, *_ = repo
    project.extra_env.update(docker_env)
    ok(project.luigi("FullPipeline", timeout=900))
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "Release digits on 2026-12-01")
    git(project, "push", "-q", "origin", "develop")
    return repo


def retrain(project, *args: str):
    return project.mlbuild("stage", "retrain", *args, timeout=900)


def test_retrain_proposes_a_branch_for_new_data_stops_at_drift_and_skips_what_it_tried(
        released):
    project, s3, bucket, remote = released
    head, lock = git(project, "rev-parse", "HEAD"), project.lock.read_bytes()

    same = ok(retrain(project))
    assert "no new data for digits" in same.stdout and "2026-12-01" in same.stdout

    # A new snapshot: trained, gated against the released model, proposed on a branch.
    put_snapshot(s3, bucket, "2026-12-02", seed=2)
    new = ok(retrain(project, "--push"))
    branch = "retrain/digits/2026-12-02"
    assert f"proposed on branch {branch}" in new.stdout, new.stdout + new.stderr
    assert git(project, "rev-parse", "HEAD") == head and git(project, "branch",
                                                             "--show-current") == "develop"
    assert project.lock.read_bytes() == lock and git(project, "status", "--porcelain") == ""
    proposed = json.loads(git(project, "show", f"{branch}:models.lock"))["models"]["digits"]
    before = json.loads(lock)["models"]["digits"]
    assert proposed["sha256"] != before["sha256"]
    assert proposed["baseline"]["sha256"] == before["sha256"]
    assert proposed["data"]["snapshot"] == "2026-12-02"
    assert git(project, "diff", "--name-only", "HEAD", branch) == "models.lock"
    message = git(project, "log", "-1", "--format=%B", branch)
    assert message.startswith("Retrain digits on snapshot 2026-12-02")
    assert "EvaluateAccuracy: accuracy gates passed" in message
    assert "CheckDrift:" in message
    pr = (project.root / "reports" / "retrain" / "report.md").read_text()
    assert pr.startswith("# Retrain digits on snapshot 2026-12-02") and "| accuracy" in pr
    # Only that branch reached the remote; develop there is what the test pushed.
    remote_refs = subprocess.run(["git", "for-each-ref", "--format=%(refname:short)"],
                                 cwd=remote, check=True, capture_output=True, text=True).stdout
    assert sorted(remote_refs.split()) == ["develop", branch]
    assert project.store.joinpath("PushImage").exists()  # the image reached the registry

    # Drifted data: stopped at the drift gate, before training; the report names the column.
    trained = set(project.store.glob("TrainModel/*/manifest.json"))
    put_snapshot(s3, bucket, "2026-12-03", seed=3, shift="pixel_3_4")
    drifted = retrain(project)
    assert drifted.returncode == 8, drifted.stdout + drifted.stderr
    assert "CheckDrift" in drifted.stdout and "failed" in drifted.stdout
    assert "pixel_3_4" in (project.root / "reports" / "drift" / "report.html").read_text()
    assert set(project.store.glob("TrainModel/*/manifest.json")) == trained
    assert "retrain/digits/2026-12-03" not in git(project, "branch", "--list")
    assert project.lock.read_bytes() == lock

    # Nothing new since: a no-op, whatever the last verdict was.
    again = ok(retrain(project))
    assert "was tried" in again.stdout and "2026-12-03" in again.stdout


def test_a_lock_that_git_ignores_is_refused_before_any_work(repo):
    project, *_ = repo
    (project.root / ".gitignore").write_text("models.lock\n.mlbuild/\nreports/\n")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "the project, its lock ignored")
    refused = retrain(project)
    assert refused.returncode == 3 and "ignored by git" in refused.stderr
    assert not project.store.exists()  # refused before any work
