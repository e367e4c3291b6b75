"""Model history from git's history of models.lock; metric diffs; rollback after verifying.

Each test builds a real git repository in tmp_path: the lock in a subfolder, three
releases of "digits" (and a second model) committed one by one, the models published to
a folder store.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from mlbuild.cli import main
from mlbuild.errors import ConfigError, MissingError, ObjectMissingError, StoreIntegrityError
from mlbuild.release import history
from mlbuild.release.lockfile import LockFile, ModelEntry
from mlbuild.release.registry import publish_model
from mlbuild.store import LocalStore, locate

from ._helpers import sha256

# The history is git's: where git is missing (the test image has none) there is nothing to test.
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

ACCURACY = [0.95, 0.9611, 0.9722]


@dataclass
class Repo:
    root: Path
    lock: Path
    store: LocalStore
    models: list[bytes]  # the bytes of digits' three releases, oldest first
    commits: list[str]  # the three commits, oldest first

    def git(self, *args: str) -> str:
        return git(self.root, *args)

    def sha(self, release: int) -> str:
        return sha256(self.models[release])

    def publish(self, name: str, data: bytes, day: int, metrics: dict) -> ModelEntry:
        path = self.root / "work" / f"{name}-{day}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        return publish_model(self.store, self.lock, name, path, sha256=sha256(data),
                             filename="model.txt", fingerprint=f"{day:032x}",
                             created=f"2026-12-0{day}T10:00:00+00:00", metrics=metrics)

    def commit(self, day: int, message: str) -> str:
        self.git("add", str(self.lock.relative_to(self.root)))
        date = f"2026-12-0{day}T12:00:00+00:00"
        subprocess.run(["git", "commit", "-q", "-m", message], cwd=self.root, check=True,
                       env={**GIT_ENV, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date})
        return self.git("rev-parse", "HEAD")


GIT_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/nonexistent",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example",
           "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example"}


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True,
                          env=GIT_ENV).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Repo:
    root = tmp_path / "repo"
    (root / "project").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    made = Repo(root, root / "project" / "models.lock", LocalStore(str(tmp_path / "store")),
                [f"digits release {n}\n".encode() * 50 for n in (1, 2, 3)], [])
    for n, accuracy in enumerate(ACCURACY, start=1):
        made.publish("digits", made.models[n - 1], n, {"accuracy": accuracy, "n": 360})
        if n == 1:
            made.publish("other", b"another model\n", 1, {"rmse": 3.5})
        made.commit(n, f"Release {n} of digits")
        made.commits.append(made.git("rev-parse", "HEAD"))
    return made


def object_path(repo: Repo, release: int) -> Path:
    entry = [v for v in history.model_history(repo.lock, "digits") if v.sha256 == repo.sha(release)]
    return repo.store.root / locate(entry[0].entry.uri, repo.store)[1]


def test_history_lists_the_three_releases_newest_first_with_what_each_replaced(repo):
    versions = history.model_history(repo.lock, "digits", repo.store)
    assert [v.sha256 for v in versions] == [repo.sha(2), repo.sha(1), repo.sha(0)]
    assert [v.replaced for v in versions] == [repo.sha(1), repo.sha(0), None]
    assert [v.commit.sha for v in versions] == repo.commits[::-1]
    assert [v.commit.short for v in versions] == [c[:12] for c in repo.commits[::-1]]
    assert [v.commit.date for v in versions] == [f"2026-12-0{n}T12:00:00+00:00" for n in (3, 2, 1)]
    assert {v.commit.author for v in versions} == {"Ada"}
    assert versions[0].commit.subject == "Release 3 of digits"
    assert [v.entry.metrics["accuracy"] for v in versions] == ACCURACY[::-1]
    assert [v.entry.created[:10] for v in versions] == ["2026-12-03", "2026-12-02", "2026-12-01"]
    assert [v.current for v in versions] == [True, False, False]
    assert [v.in_store for v in versions] == ["present"] * 3
    # the other model was released once, in the first commit
    [other] = history.model_history(repo.lock, "other")
    assert other.commit.sha == repo.commits[0] and other.in_store is None


def test_history_says_which_bytes_the_store_lost_or_changed(repo):
    object_path(repo, 0).unlink()
    corrupt = object_path(repo, 1)
    corrupt.chmod(0o644)
    corrupt.write_bytes(b"changed")
    versions = history.model_history(repo.lock, "digits", repo.store, verify=True)
    assert [v.in_store for v in versions] == ["intact", "corrupt", "missing"]
    assert [v.in_store for v in history.model_history(repo.lock, "digits", repo.store)] == [
        "present", "present", "missing"]


def test_an_uncommitted_release_is_listed_first(repo):
    fourth = b"digits release 4\n" * 50
    repo.publish("digits", fourth, 4, {"accuracy": 0.98, "n": 360})
    versions = history.model_history(repo.lock, "digits")
    assert versions[0].commit is None and versions[0].sha256 == sha256(fourth)
    assert versions[0].replaced == repo.sha(2) and versions[0].current
    assert "uncommitted" in "\n".join(versions[0].lines())
    assert len(versions) == 4


def test_a_rollback_commit_is_a_version_that_replaced_the_newer_model(repo):
    history.rollback_model(repo.lock, "digits", repo.sha(0)[:10], repo.store)
    repo.commit(4, "Roll back digits")
    versions = history.model_history(repo.lock, "digits")
    assert [v.sha256 for v in versions] == [repo.sha(0), repo.sha(2), repo.sha(1), repo.sha(0)]
    assert versions[0].replaced == repo.sha(2)
    assert [v.current for v in versions] == [True, False, False, False]


def test_diff_prints_the_metric_changes_as_a_markdown_table(repo):
    changes = history.metrics_diff(repo.lock, "HEAD~2", "HEAD")
    assert history.markdown_table(changes, "HEAD~2", "HEAD") == (
        "| model | metric | HEAD~2 | HEAD | change |\n"
        "| --- | --- | --- | --- | --- |\n"
        "| digits | accuracy | 0.95 | 0.9722 | +0.0222 |")
    everything = history.metrics_diff(repo.lock, "HEAD~2", "HEAD", everything=True)
    assert history.markdown_table(everything, "HEAD~2", "HEAD").splitlines()[2:] == [
        "| digits | accuracy | 0.95 | 0.9722 | +0.0222 |",
        "| digits | n | 360 | 360 |  |",
        "| other | rmse | 3.5 | 3.5 |  |"]


def test_diff_against_the_working_tree_shows_models_added_and_removed(repo):
    assert history.markdown_table(history.metrics_diff(repo.lock), "HEAD", None) == (
        "no metric changes between HEAD and the working tree")
    lock = LockFile.read(repo.lock)
    LockFile({"digits": lock.models["digits"], "new": lock.models["other"]}).write(repo.lock)
    assert history.markdown_table(history.metrics_diff(repo.lock), "HEAD", None).splitlines() == [
        "| model | metric | HEAD | working tree | change |",
        "| --- | --- | --- | --- | --- |",
        "| new | rmse | - | 3.5 | model added |",
        "| other | rmse | 3.5 | - | model removed |"]


def test_diff_of_an_unknown_revision_names_it(repo):
    with pytest.raises(MissingError, match="'nosuchrev' is not a revision") as caught:
        history.metrics_diff(repo.lock, "nosuchrev")
    assert caught.value.hint


def test_rollback_to_a_sha256_prefix_writes_that_entry_after_verifying_it(repo):
    other = LockFile.read(repo.lock).models["other"]
    result = history.rollback_model(repo.lock, "digits", repo.sha(0)[:7], repo.store)
    lock = LockFile.read(repo.lock)
    assert lock.models["digits"].sha256 == repo.sha(0)
    assert lock.models["digits"] == LockFile.from_text(
        repo.git("show", f"{repo.commits[0]}:project/models.lock"), "first").models["digits"]
    assert lock.models["other"] == other
    assert result.changed and result.before.sha256 == repo.sha(2)
    text = "\n".join(result.lines())
    assert f"sha256:{repo.sha(0)[:12]} (from commit {repo.commits[0][:12]})" in text
    assert f"replaces sha256:{repo.sha(2)[:12]}" in text and "verified" in text
    assert "accuracy: 0.9722 -> 0.95" in text
    assert "Next: commit the lock" in text


def test_rollback_to_a_revision_takes_the_lock_of_that_commit(repo):
    result = history.rollback_model(repo.lock, "digits", "HEAD~1", repo.store)
    assert LockFile.read(repo.lock).models["digits"].sha256 == repo.sha(1)
    assert result.version.commit.sha == repo.commits[1]
    # rolling back to what the lock already names changes nothing
    again = history.rollback_model(repo.lock, "digits", repo.commits[1], repo.store)
    assert not again.changed and "nothing changed" in again.lines()[0]


def test_rollback_to_bytes_the_store_lost_is_refused_and_the_lock_unchanged(repo):
    before = repo.lock.read_bytes()
    object_path(repo, 0).unlink()
    with pytest.raises(ObjectMissingError, match=r"Cannot roll back digits .* does not exist") \
            as caught:
        history.rollback_model(repo.lock, "digits", repo.sha(0)[:12], repo.store)
    assert caught.value.exit_code == 5 and "history digits --verify" in caught.value.hint
    assert repo.lock.read_bytes() == before


def test_rollback_to_changed_bytes_is_refused_and_the_lock_unchanged(repo):
    before = repo.lock.read_bytes()
    corrupt = object_path(repo, 1)
    corrupt.chmod(0o644)
    corrupt.write_bytes(b"changed")
    with pytest.raises(StoreIntegrityError, match="is corrupt") as caught:
        history.rollback_model(repo.lock, "digits", "HEAD~1", repo.store)
    assert caught.value.exit_code == 6 and "delete that object" in caught.value.hint
    assert repo.lock.read_bytes() == before


def test_rollback_to_something_that_is_neither_a_version_nor_a_revision(repo):
    with pytest.raises(MissingError, match="'abc12' is neither .* at least 7 hex digits"):
        history.rollback_model(repo.lock, "digits", "abc12", repo.store)
    with pytest.raises(MissingError, match="'main~9' is neither"):
        history.rollback_model(repo.lock, "digits", "main~9", repo.store)
    lock = LockFile.read(repo.lock)
    LockFile({"other": lock.models["other"]}).write(repo.lock)
    repo.commit(4, "Retire digits")
    with pytest.raises(MissingError, match=r"at commit \w+ \(HEAD\) has no model named 'digits'"):
        history.rollback_model(repo.lock, "digits", "HEAD", repo.store)


def test_an_ambiguous_sha256_prefix_is_refused(repo, monkeypatch):
    released = history.model_history(repo.lock, "digits")
    same_start = [replace(v, entry=replace(v.entry, sha256=f"abcdef0{i}" + "0" * 56))
                  for i, v in enumerate(released)]
    monkeypatch.setattr(history, "model_history", lambda *args, **kwargs: same_start)
    with pytest.raises(ConfigError, match="matches 3 versions"):
        history.find_version(repo.lock, "digits", "abcdef0")


def test_a_folder_outside_git_is_a_clear_error(tmp_path):
    lock = tmp_path / "plain" / "models.lock"
    lock.parent.mkdir()
    LockFile().write(lock)
    with pytest.raises(MissingError, match="is not in a git repository") as caught:
        history.model_history(lock, "digits")
    assert "--lock" in caught.value.hint


def test_a_lock_never_committed_is_a_clear_error(repo):
    lock = repo.root / "elsewhere" / "models.lock"
    lock.parent.mkdir()
    LockFile.read(repo.lock).write(lock)
    with pytest.raises(MissingError, match="never committed") as caught:
        history.model_history(lock, "digits")
    assert "git add -f elsewhere/models.lock" in caught.value.hint


def test_an_unknown_model_names_the_ones_in_the_history(repo):
    with pytest.raises(MissingError, match=r"named 'ditigs' \(its history has: digits, other\)"):
        history.model_history(repo.lock, "ditigs")


# The command line: each command's output, through mlbuild.cli.main.

@pytest.fixture
def cli(repo, monkeypatch):
    monkeypatch.setenv("MLBUILD_STORE", str(repo.store.root))

    def run(*args: str) -> int:
        return main(["models", *args, "--lock", str(repo.lock)])
    return run


def test_cli_history(repo, cli, capsys):
    assert cli("history", "digits") == 0
    blocks = capsys.readouterr().out.strip().split("\n\n")
    assert len(blocks) == 3
    first = blocks[0].splitlines()
    assert first[0] == f"digits  sha256:{repo.sha(2)}  (in the lock now)"
    assert first[1] == (f"  released  commit {repo.commits[2][:12]}  2026-12-03T12:00:00+00:00  "
                        "by Ada  'Release 3 of digits'")
    assert first[3] == "  metrics   accuracy=0.9722, n=360"
    assert first[4] == f"  replaced  sha256:{repo.sha(1)[:12]}"
    assert first[5].startswith("  in store  present  ")
    assert blocks[2].splitlines()[4] == "  replaced  -"

    assert cli("history", "digits", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [v["sha256"] for v in listed] == [repo.sha(2), repo.sha(1), repo.sha(0)]
    assert listed[1]["commit"] == repo.commits[1] and listed[1]["replaced"] == repo.sha(0)


def test_cli_diff(repo, cli, capsys):
    assert cli("diff", "HEAD~1", "HEAD") == 0
    assert capsys.readouterr().out.splitlines() == [
        "| model | metric | HEAD~1 | HEAD | change |",
        "| --- | --- | --- | --- | --- |",
        "| digits | accuracy | 0.9611 | 0.9722 | +0.0111 |"]
    assert cli("diff") == 0
    assert capsys.readouterr().out == "no metric changes between HEAD and the working tree\n"


def test_cli_rollback_and_its_refusal(repo, cli, capsys):
    assert cli("rollback", "digits", "--to", repo.sha(0)[:8]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{repo.lock}: digits sha256:{repo.sha(0)[:12]} (from commit ")
    assert "Next: commit the lock" in out
    assert LockFile.read(repo.lock).models["digits"].sha256 == repo.sha(0)

    before = repo.lock.read_bytes()
    object_path(repo, 1).unlink()
    assert cli("rollback", "digits", "--to", "HEAD~1") == ObjectMissingError.exit_code
    err = capsys.readouterr().err
    assert err.startswith("mlbuild: missing data or dependency: Cannot roll back digits to "
                          f"sha256:{repo.sha(1)[:12]}")
    assert repo.lock.read_bytes() == before
