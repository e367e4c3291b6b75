"""Shared fixtures: a copy of the reference project that tests can edit and run.

Each test gets its own folder holding ``tasks/``, ``configs/`` and ``luigi.cfg``, with
the store, cache and models.lock inside it. Commands run in real subprocesses with that
folder first on ``PYTHONPATH``, so edits to the copied code are what runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import services
from tests.services import TEST_AWS

REPO = Path(__file__).resolve().parents[1]
PROJECT_FILES = ("tasks", "configs", "luigi.cfg")
#: where copies of the reference project put their images (for mlbuild/<name>)
TEST_IMAGES = "test/"
#: the pipeline up to the published model; FullPipeline adds the image stages, which
#: only the image tests (with a Docker engine) run
CORE = "PublishModel"


class Project:
    def __init__(self, root: Path):
        self.root = root
        self.extra_env: dict[str, str] = {}
        self.store = root / ".mlbuild" / "store"
        self.lock = root / "models.lock"

    @classmethod
    def copy_of(cls, source: Path, dest: Path, with_state: bool = False,
                with_library: bool = False) -> Project:
        """Copy the project's files; ``with_state`` also copies its store, cache and lock;
        ``with_library`` the mlbuild package too (what the training image is built from)."""
        dest.mkdir(parents=True, exist_ok=True)
        extra = ((".mlbuild", "models.lock") if with_state else ()) + (
            ("mlbuild",) if with_library else ())
        for name in PROJECT_FILES + extra:
            src = source / name
            if src.is_dir():
                shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
            elif src.exists():
                shutil.copy2(src, dest / name)
        if source.resolve() == REPO:
            # The tests' images go to repositories of their own (test/digits, not
            # mlbuild/digits): the engine and registry may be the workspace's (CI's
            # integration stage runs on the agent's), whose images a test must not retag.
            for config in (dest / "configs").glob("*.toml"):
                config.write_text(config.read_text().replace('repository = "mlbuild/',
                                                             f'repository = "{TEST_IMAGES}'))
        # Luigi refuses a command line that is already running on this machine (its pid
        # lock): a lock folder per project lets test runs of other checkouts go on at once.
        # It is set in a config file of its own, outside what images copy (luigi.cfg).
        locks = dest / ".mlbuild" / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        (dest / ".mlbuild" / "test-luigi.cfg").write_text(f"[core]\nlock_pid_dir = {locks}\n")
        return cls(dest)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLBUILD_", "LUIGI_"))}
        # The project first; then this checkout, so its mlbuild is the one tested (a git
        # worktree beside an editable install of another checkout included).
        env["PYTHONPATH"] = os.pathsep.join((str(self.root), str(REPO)))
        if (self.root / ".mlbuild" / "test-luigi.cfg").exists():
            env["LUIGI_CONFIG_PATH"] = str(self.root / ".mlbuild" / "test-luigi.cfg")
        env.update(self.extra_env)
        return env

    python = sys.executable

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(args, check=False, cwd=self.root, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def luigi(self, task: str = CORE, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-m", "luigi", "--module", "tasks", task, *args,
                        timeout=timeout)

    def mlbuild(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-m", "mlbuild.cli", *args, timeout=timeout)

    def edit(self, relpath: str, old: str, new: str) -> None:
        path = self.root / relpath
        text = path.read_text()
        assert old in text, f"{old!r} not in {relpath}"
        path.write_text(text.replace(old, new, 1))

    def one_training_thread(self, config: str = "configs/pipeline.toml") -> None:
        """For tests that train in several processes at once: LightGBM's OpenMP threads
        spin while they wait, so two trainings of 2 threads on 2 cores can take 100 times
        as long (seen in CI: over 300 s for a 1 s training). One thread each shares fairly."""
        self.edit(config, "num_threads = 2", "num_threads = 1")

    def manifests(self) -> dict[str, str]:
        """Every manifest in the store -> the time its task finished."""
        return {
            str(p.relative_to(self.store)): json.loads(p.read_text())["finished"]
            for p in self.store.rglob("manifest.json")
        }

    def files(self) -> dict[str, str]:
        """Every file in the store -> its sha256."""
        return {
            str(p.relative_to(self.store)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in self.store.rglob("*") if p.is_file()
        }

    def ran_since(self, before: dict[str, str]) -> set[str]:
        """Families of the tasks that wrote a manifest since the snapshot ``before``."""
        after = self.manifests()
        return {key.split("/")[0] for key, finished in after.items() if before.get(key) != finished}


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def edited_digits():
    """The digits with one pixel of one row changed: new data, the same split.

    Removing rows reshuffles the split, and the released model, trained on other rows,
    would then be compared on rows it was trained on: an unfair comparison the change gate
    rightly cannot pass. An edit of values keeps the rows each side of the split.
    """
    from tasks.fetch import digits_frame

    frame = digits_frame()
    frame.loc[0, "pixel_2_3"] += 1
    return frame


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="session")
def built_project(tmp_path_factory) -> Project:
    """The reference project, run once end to end; copy it, never edit it."""
    project = Project.copy_of(REPO, tmp_path_factory.mktemp("built"))
    ok(project.luigi())
    return project


@pytest.fixture
def project(tmp_path) -> Project:
    """A fresh copy of the reference project with an empty store."""
    return Project.copy_of(REPO, tmp_path / "project")


@pytest.fixture
def built(built_project, tmp_path) -> Project:
    """A copy of the built project: its store holds a complete run."""
    return Project.copy_of(built_project.root, tmp_path / "built", with_state=True)


# ------------------------------------------------------------------------------- S3

@pytest.fixture(scope="session")
def s3_endpoint():
    """The S3 API server: MLBUILD_TEST_S3_ENDPOINT, or the one `make services` starts."""
    url = os.environ.get("MLBUILD_TEST_S3_ENDPOINT")
    if url:
        yield url
        return
    server = services.moto()
    ours = not services.answers(server.url)
    server.start()
    yield server.url
    if ours:
        server.stop()


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch) -> dict[str, str]:
    """The AWS environment for the test server, set in this process too."""
    env = {**TEST_AWS, "AWS_ENDPOINT_URL": s3_endpoint}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def s3_client(endpoint: str):
    return services.aws_client("s3", endpoint)


@pytest.fixture
def bucket(s3_env) -> str:
    """A new, empty bucket on the test server."""
    import uuid

    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_client(s3_env["AWS_ENDPOINT_URL"]).create_bucket(Bucket=name)
    return name


@pytest.fixture
def private_moto(tmp_path):
    """A moto server of this test's own, which it may pause, resume or stop."""
    server = services.moto(port=services.free_port(), folder=tmp_path / "services")
    server.start()
    yield server
    server.stop()


# ----------------------------------------------------------------------- Docker


@pytest.fixture(scope="session")
def docker_env() -> dict[str, str]:
    """A Docker engine, a registry on loopback and the local base images (started here
    when `make services` has not), as the environment the pipeline reads."""
    url = services.start_docker()
    services.registry().start()
    services.build_base_images(url)
    return readme_services_env()


def readme_services_env() -> dict[str, str]:
    """The environment the README's line (`eval "$(python3 -m tests.services env)"`) gives a
    shell, run as written: the image tests run with it, so the line is tested too."""
    line = next(s.strip() for s in (REPO / "README.md").read_text().splitlines()
                if "tests.services env" in s and s.startswith("    eval "))
    names = ("DOCKER_HOST", "MLBUILD_IMAGE_BASE", "MLBUILD_TEST_IMAGE_BASE",
             "MLBUILD_IMAGE_REGISTRY")
    clean = {k: v for k, v in os.environ.items() if k not in names}
    clean["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{clean.get('PATH', '')}"
    shown = subprocess.run(["bash", "-c", f"{line} && env"], cwd=REPO, env=clean, check=True,
                           capture_output=True, text=True).stdout
    found = dict(v.split("=", 1) for v in shown.splitlines() if v.split("=", 1)[0] in names)
    assert set(found) == set(names), f"{line} set {found}"
    return found


def docker_client(env: dict[str, str]):
    import docker

    return docker.DockerClient(base_url=env["DOCKER_HOST"], timeout=600)
