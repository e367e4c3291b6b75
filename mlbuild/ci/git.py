"""The git a retrain needs: propose a file change on a new branch without touching the
checkout (a commit built in a temporary index), and push that branch alone."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from mlbuild.errors import ConfigError, MlbuildError

#: branches a retrain must never write to, whatever it is asked
PROTECTED = ("main", "master", "develop")


def git(*args: str, cwd: str | os.PathLike = ".", env: dict[str, str] | None = None,
        stdin: bytes | None = None) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True,
                              check=False, timeout=120, env={**os.environ, **(env or {})})
    except FileNotFoundError:
        raise ConfigError("git is not installed here.", hint="install git.") from None
    if done.returncode != 0:
        raise MlbuildError(f"git {' '.join(args)} failed in {Path(cwd).resolve()}: "
                           f"{done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode().strip()


def toplevel(folder: str | os.PathLike) -> Path:
    """The root of the repository holding ``folder``; a ConfigError outside one."""
    try:
        return Path(git("rev-parse", "--show-toplevel", cwd=folder))
    except MlbuildError:
        raise ConfigError(f"{Path(folder).resolve()} is not in a git repository.",
                          hint="a retrain proposes its lock change as a git branch: run it "
                               "in the project's clone.") from None


def check_tracked(path: str | os.PathLike) -> None:
    """Refuse a file that git ignores: a change to it could never be proposed."""
    root = toplevel(Path(path).resolve().parent)
    relative = Path(path).resolve().relative_to(root)
    ignored = subprocess.run(["git", "check-ignore", "-q", str(relative)], cwd=root,
                             check=False).returncode == 0
    if ignored:
        raise ConfigError(f"{path} is ignored by git (.gitignore), so a new model could not "
                          "be proposed as a change to it.",
                          hint=f"remove it from .gitignore and commit it: git add -f {relative}")


def propose(branch: str, changes: dict[str, bytes], message: str,
            repo: str | os.PathLike = ".") -> str:
    """Commit ``changes`` (repository-relative path -> new content) on a new ``branch``
    made from HEAD, leaving the checkout, its index and the current branch as they were.
    Returns the commit. An existing branch with that name is an error."""
    if branch in PROTECTED or branch.split("/")[0] in PROTECTED:
        raise ConfigError(f"refusing to write to the protected branch {branch!r}.")
    root = toplevel(repo)
    if git("branch", "--list", branch, cwd=root):
        raise ConfigError(f"the branch {branch} exists already.",
                          hint=f"delete it (git branch -D {branch}) to propose it again.")
    head = git("rev-parse", "HEAD", cwd=root)
    with tempfile.TemporaryDirectory(prefix="mlbuild-git-") as tmp:
        # A private index: the user's staged changes are neither committed nor disturbed.
        env = {"GIT_INDEX_FILE": str(Path(tmp, "index"))}
        git("read-tree", head, cwd=root, env=env)
        for path, content in sorted(changes.items()):
            blob = git("hash-object", "-w", "--stdin", cwd=root, stdin=content)
            git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", cwd=root,
                env=env)
        tree = git("write-tree", cwd=root, env=env)
    commit = git("commit-tree", tree, "-p", head, "-F", "-", cwd=root, stdin=message.encode())
    git("branch", branch, commit, cwd=root)
    return commit


def push(branch: str, remote: str = "origin", repo: str | os.PathLike = ".") -> None:
    """Push ``branch`` alone to ``remote`` (never a protected branch)."""
    if branch in PROTECTED or branch.split("/")[0] in PROTECTED:
        raise ConfigError(f"refusing to push the protected branch {branch!r}.")
    git("push", remote, f"refs/heads/{branch}:refs/heads/{branch}", cwd=repo)
