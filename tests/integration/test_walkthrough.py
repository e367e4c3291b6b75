"""The README's "Start your own project", followed word for word by a new user: a fresh
folder, mlbuild installed as a package (not this checkout on a path), the project's files
as the README gives them, and FullPipeline run to AcceptanceTest."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, ok

pytestmark = pytest.mark.integration

SECTION = "## Start your own project"
#: a fenced block whose first line names the file it holds: ```python\n# cancer/model.py
FILE_BLOCK = re.compile(r"```[a-z]+\n# ([\w./-]+)\n(.*?)```", re.DOTALL)
RUN = "python -m luigi --module cancer FullPipeline"


def walkthrough() -> str:
    readme = (REPO / "README.md").read_text()
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    return readme[start:end]


def test_the_walkthrough_names_its_files_and_commands():
    text = walkthrough()
    files = dict(FILE_BLOCK.findall(text))
    assert set(files) == {"cancer/__init__.py", "cancer/model.py", "pipeline.toml", "luigi.cfg"}
    assert "pip install mlbuild" in text and RUN in text
    for path in ("cancer/__init__.py", "cancer/model.py"):  # the public API only
        assert not re.search(r"^\s*(from|import) mlbuild\.", files[path], re.MULTILINE), path


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A virtual environment with mlbuild installed from this checkout as a package; its
    dependencies come from the machine's site-packages."""
    venv = tmp_path_factory.mktemp("venv")
    ok(subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                      capture_output=True, text=True, check=False))
    # Made from inside a venv (the test image's /opt/venv, a laptop's), the new one sees the
    # base Python's site-packages, not the outer venv's, where the dependencies are: a .pth
    # adds those (after its own, so the mlbuild installed below wins).
    where = "import site; print(site.getsitepackages()[0])"
    own = subprocess.run([venv / "bin" / "python", "-c", where], capture_output=True, text=True,
                         check=True).stdout.strip()
    outer = [p for p in sys.path if p.endswith("site-packages")]
    Path(own, "outer-venv.pth").write_text("\n".join(outer) + "\n")
    ok(subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-deps",
                       str(REPO)], capture_output=True, text=True, check=False, timeout=600))
    return venv / "bin" / "python"


def test_a_new_project_from_the_walkthrough_runs_to_the_acceptance_test(
        installed, docker_env, tmp_path):
    project = tmp_path / "cancer"
    for path, text in FILE_BLOCK.findall(walkthrough()):
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(f"# {path}\n{text}")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLBUILD_", "LUIGI_", "PYTHONPATH"))}
    env.update(docker_env)
    del env["MLBUILD_IMAGE_REGISTRY"]  # no registry: FullPipeline ends at AcceptanceTest

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=project, env=env, capture_output=True, text=True,
                              check=False, timeout=900)

    where = ok(run(str(installed), "-c", "import mlbuild; print(mlbuild.__file__)")).stdout
    assert Path(where.strip()).is_relative_to(installed.parents[1]), where  # the package
    command = RUN.replace("python", str(installed), 1).split()

    first = ok(run(*command))
    assert "AcceptanceTest()" in first.stderr and "ran successfully" in first.stderr
    assert (project / "reports" / "acceptance" / "junit.xml").is_file()
    lock = json.loads((project / "models.lock").read_text())["models"]["cancer"]
    assert lock["metrics"]["accuracy"] > 0.8 and lock["baseline"] is None

    again = ok(run(*command))
    assert "Did not run any tasks" in again.stderr

    model = project / "cancer" / "model.py"
    model.write_text(model.read_text().replace("num_boost_round=50", "num_boost_round=60"))
    ok(run(*command))
    lock = json.loads((project / "models.lock").read_text())["models"]["cancer"]
    assert lock["baseline"] is not None  # compared with the model it replaced
    metrics = json.loads((project / "reports" / "accuracy" / "fast" / "metrics.json").read_text())
    change = [g for g in metrics["gates"] if g["kind"] == "change"]
    assert change and change[0]["passed"] is True
