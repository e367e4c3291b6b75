"""The retrain's git: a change proposed on a new branch, the checkout left as it was."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from mlbuild.ci import git
from mlbuild.errors import ConfigError

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def sh(cwd, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    sh(root, "init", "-q", "-b", "develop")
    sh(root, "config", "user.email", "ci@example.com")
    sh(root, "config", "user.name", "CI")
    (root / "models.lock").write_text("old\n")
    (root / "other.txt").write_text("a\n")
    sh(root, "add", "-A")
    sh(root, "commit", "-q", "-m", "first")
    return root


def test_propose_commits_on_a_new_branch_and_leaves_the_checkout_as_it_was(repo):
    head = sh(repo, "rev-parse", "HEAD")
    (repo / "other.txt").write_text("b\n")
    sh(repo, "add", "other.txt")  # the user's staged change must stay staged, uncommitted
    (repo / "models.lock").write_text("edited by hand\n")
    commit = git.propose("retrain/digits/2026-12-02", {"models.lock": b"new\n"},
                         "Retrain digits\n\nGates passed.\n", repo=repo)
    assert sh(repo, "rev-parse", "HEAD") == head and sh(repo, "branch", "--show-current") == "develop"
    assert sh(repo, "rev-parse", "retrain/digits/2026-12-02") == commit
    assert sh(repo, "show", f"{commit}:models.lock") == "new"
    assert sh(repo, "show", f"{commit}:other.txt") == "a"  # the staged change is not in it
    assert sh(repo, "log", "-1", "--format=%s%n%b", commit) == "Retrain digits\nGates passed."
    assert sh(repo, "rev-parse", f"{commit}^") == head
    assert sh(repo, "diff", "--cached", "--name-only") == "other.txt"
    assert (repo / "models.lock").read_text() == "edited by hand\n"


def test_propose_refuses_protected_and_existing_branches(repo):
    for branch in ("main", "develop", "main/x"):
        with pytest.raises(ConfigError, match="protected"):
            git.propose(branch, {"models.lock": b"x\n"}, "x", repo=repo)
    git.propose("retrain/a/1", {"models.lock": b"x\n"}, "x", repo=repo)
    with pytest.raises(ConfigError, match="exists already"):
        git.propose("retrain/a/1", {"models.lock": b"y\n"}, "y", repo=repo)
    with pytest.raises(ConfigError, match="protected"):
        git.push("develop", repo=repo)


def test_push_sends_the_branch_alone(repo, tmp_path):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    sh(repo, "remote", "add", "origin", str(remote))
    git.propose("retrain/a/1", {"models.lock": b"x\n"}, "x", repo=repo)
    git.push("retrain/a/1", repo=repo)
    assert sh(remote, "for-each-ref", "--format=%(refname:short)") == "retrain/a/1"


def test_an_ignored_lock_and_a_folder_outside_git_are_refused(repo, tmp_path):
    git.check_tracked(repo / "models.lock")
    (repo / ".gitignore").write_text("ignored.lock\n")
    with pytest.raises(ConfigError, match="ignored by git") as caught:
        git.check_tracked(repo / "ignored.lock")
    assert "git add -f ignored.lock" in caught.value.hint
    outside = tmp_path / "plain"
    outside.mkdir()
    with pytest.raises(ConfigError, match="not in a git repository"):
        git.check_tracked(outside / "models.lock")
