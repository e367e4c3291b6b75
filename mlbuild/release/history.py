"""A model's released versions, read from git's history of ``models.lock``.

The lock is committed, so git already records every release: each commit that changed a
model's sha256 published (or rolled back to) a version of it. :func:`model_history` reads
that history (``git log`` of the lock's path, then every revision's text at once through
``git cat-file --batch``) and joins it with the store: are each version's bytes still
there? :func:`metrics_diff` compares the metrics of two revisions of the lock;
:func:`rollback_model` writes an earlier version's entry back into the lock, after
verifying its bytes, so that the change gate compares the next candidate with it.

The lock as it is on disk counts as a revision of its own, the *working tree*: a version
it names that HEAD does not is listed as "uncommitted". The lock may sit in any folder of
the repository; git is asked from that folder.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlbuild.errors import ConfigError, IntegrityError, MissingError, MlbuildError
from mlbuild.release.lockfile import LockFile, ModelEntry
from mlbuild.store import Store, check_digest, locate

#: the name a revision of ``None`` (the lock on disk) has in messages and tables
WORKTREE = "working tree"
#: the shortest sha256 prefix taken for a version (git's own default abbreviation)
MIN_PREFIX = 7
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class Commit:
    sha: str
    date: str  # committer date, ISO 8601
    author: str
    subject: str

    @property
    def short(self) -> str:
        return self.sha[:12]


@dataclass(frozen=True)
class ModelVersion:
    """One released version of a model: its lock entry and the commit that released it."""

    name: str
    entry: ModelEntry
    commit: Commit | None  # None: only the lock on disk names it (uncommitted)
    replaced: str | None  # the sha256 the lock named before it, None for the first
    current: bool  # the lock on disk names this version now
    #: the store's answer: "present" (exists), "intact" (bytes hashed and matching),
    #: "missing" or "corrupt"; None when the store was not asked
    in_store: str | None = None

    @property
    def sha256(self) -> str:
        return self.entry.sha256

    def to_json(self) -> dict[str, Any]:
        commit = self.commit
        return {
            "name": self.name, "sha256": self.sha256, "created": self.entry.created,
            "commit": commit.sha if commit else None, "short": commit.short if commit else None,
            "commit_date": commit.date if commit else None,
            "author": commit.author if commit else None,
            "subject": commit.subject if commit else None,
            "metrics": self.entry.metrics, "replaced": self.replaced, "current": self.current,
            "in_store": self.in_store, "uri": self.entry.uri, "size": self.entry.size,
            "fingerprint": self.entry.fingerprint,
        }

    def lines(self) -> list[str]:
        """The version as a block of text, for a person."""
        head = f"{self.name}  sha256:{self.sha256}"
        if self.current:
            head += "  (in the lock now)"
        if self.commit is None:
            released = "uncommitted (the lock on disk differs from HEAD)"
        else:
            released = (f"commit {self.commit.short}  {self.commit.date}  by {self.commit.author}"
                        f"  {self.commit.subject!r}")
        lines = [head, f"  released  {released}", f"  created   {self.entry.created}",
                 f"  metrics   {format_metrics(self.entry.metrics) or '-'}",
                 f"  replaced  {f'sha256:{self.replaced[:12]}' if self.replaced else '-'}"]
        if self.in_store is not None:
            lines.append(f"  in store  {self.in_store}  {self.entry.uri}")
        return lines


@dataclass(frozen=True)
class MetricChange:
    """One row of a metrics diff; ``before``/``after`` are None where the metric is absent."""

    model: str
    metric: str
    before: Any
    after: Any
    model_change: str | None = None  # "added" or "removed" when the whole model is

    def change(self, precision: int = 5) -> str:
        if self.model_change:
            return f"model {self.model_change}"
        if self.before is None:
            return "added"
        if self.after is None:
            return "removed"
        if self.before == self.after:
            return ""
        if _is_number(self.before) and _is_number(self.after):
            return f"{_number(self.after - self.before, precision, sign=True)}"
        return "changed"


@dataclass(frozen=True)
class Rollback:
    name: str
    before: ModelEntry | None  # what the lock named
    version: ModelVersion  # what it names now
    lock_path: Path

    @property
    def changed(self) -> bool:
        return self.before != self.version.entry

    def lines(self) -> list[str]:
        target = self.version
        where = f"commit {target.commit.short}" if target.commit else WORKTREE
        if not self.changed:
            return [f"{self.lock_path} already names this entry of {self.name} "
                    + f"(sha256:{target.sha256[:12]}, {where}); nothing changed."]
        was = f"sha256:{self.before.sha256[:12]}" if self.before else "nothing"
        lines = [f"{self.lock_path}: {self.name} sha256:{target.sha256[:12]} (from {where}) "
                 + f"replaces {was}; its {target.entry.size} bytes were verified in the store."]
        before = flat_metrics(self.before.metrics) if self.before else {}
        for change in _metric_changes(self.name, before, flat_metrics(target.entry.metrics)):
            lines.append(f"  {change.metric}: {_cell(change.before)} -> {_cell(change.after)}")
        lines.append(f"Next: commit the lock (git commit {self.lock_path} -m 'Roll back "
                     f"{self.name} to sha256:{target.sha256[:12]}'). The change gate now "
                     "compares each candidate with this model.")
        return lines


class LockRepository:
    """A lock file inside a git work tree, and git's answers about it."""

    def __init__(self, lock_path: str | Path):
        self.path = Path(lock_path)
        self.folder = self.path.parent.resolve()
        if not self.folder.is_dir():
            raise MissingError(f"The folder of {self.path} ({self.folder}) does not exist.",
                               hint="pass --lock with the path of the project's models.lock.")
        found = self._git("rev-parse", "--show-prefix", "--show-toplevel", check=False)
        if found.returncode != 0:
            raise MissingError(
                f"{self.folder} is not in a git repository, so {self.path.name} there has no "
                f"history ({_first_line(found.stderr)}).",
                hint="run the command in the clone that commits the lock, or pass --lock with "
                     "the path of a lock inside one.")
        prefix, self.top = found.stdout.splitlines()
        #: the lock's path as git names it in REV:path (from the repository's top)
        self.spec = f"{prefix}{self.path.name}"

    def _git(self, *args: str, check: bool = True,
             stdin: bytes | None = None) -> subprocess.CompletedProcess:
        """Run git in the lock's folder: text out, or bytes when it is fed ``stdin``."""
        try:
            done = subprocess.run(["git", *args], cwd=self.folder, capture_output=True,
                                  input=stdin, text=stdin is None, check=False, timeout=120)
        except FileNotFoundError as exc:
            raise MissingError("git is not installed, and the lock's history is in git.",
                               hint="install git (e.g. apt-get install git).") from exc
        if check and done.returncode != 0:
            stderr = done.stderr if stdin is None else done.stderr.decode(errors="replace")
            raise MlbuildError(f"git {' '.join(args)} failed in {self.folder}: "
                               f"{_first_line(stderr)}.")
        return done

    def commits(self) -> list[Commit]:
        """The commits that changed the lock, the newest first."""
        out = self._git("log", "--format=%H%x1f%cI%x1f%an%x1f%s%x1e", "--", self.path.name,
                        check=False)
        if out.returncode != 0:  # e.g. a repository without any commit yet
            return []
        return [Commit(*record.strip("\n").split("\x1f", 3))
                for record in out.stdout.split("\x1e") if record.strip()]

    def locks(self, shas: list[str]) -> list[LockFile]:
        """The lock at each commit (empty where the commit deleted it), in one git call."""
        if not shas:
            return []
        query = "".join(f"{sha}:{self.spec}\n" for sha in shas).encode()
        out = self._git("cat-file", "--batch", stdin=query).stdout
        locks, at = [], 0
        for sha in shas:
            end = out.index(b"\n", at)
            header = out[at:end].decode().split()
            at = end + 1
            if header[-1] == "missing":
                locks.append(LockFile())
                continue
            size = int(header[2])
            text = out[at:at + size].decode()
            at += size + 1
            locks.append(LockFile.from_text(text, f"{self.spec} at commit {sha[:12]}"))
        return locks

    def resolve(self, revision: str) -> Commit | None:
        """The commit a revision names (a sha, branch, tag, HEAD~2 …); None if none."""
        if revision.startswith("-"):  # never let a revision pass as an option of git
            return None
        found = self._git("log", "-1", "--format=%H%x1f%cI%x1f%an%x1f%s",
                          f"{revision}^{{commit}}", "--", check=False)
        if found.returncode != 0 or not found.stdout.strip():
            return None
        return Commit(*found.stdout.strip("\n").split("\x1f", 3))

    def lock_at(self, revision: str | None) -> LockFile:
        """The lock at a revision; ``None`` is the lock on disk."""
        if revision is None:
            return LockFile.read(self.path)
        commit = self.resolve(revision)
        if commit is None:
            raise MissingError(
                f"{revision!r} is not a revision of the git repository at {self.top}.",
                hint=f"name a commit, branch or tag; `git log -- {self.spec}` lists the "
                     "commits that changed the lock.")
        return self.locks([commit.sha])[0]


def model_history(lock_path: str | Path, name: str, store: Store | None = None, *,
                  verify: bool = False) -> list[ModelVersion]:
    """Every released version of ``name``, the newest first.

    A version is a commit that changed the model's sha256 in the lock (a rollback to an
    earlier model is a version too), plus the lock on disk when it names another model
    than HEAD's. With a ``store``, each version says whether its bytes are still there:
    ``exists`` by default, the bytes hashed with ``verify``.
    """
    repo = LockRepository(lock_path)
    commits = repo.commits()
    if not commits:
        raise MissingError(
            f"{repo.spec} has no history in the git repository at {repo.top}: it was never "
            "committed.",
            hint=f"commit it (`git add -f {repo.spec} && git commit`); a team that shares an S3 "
                 "store commits its lock (the reference project's .gitignore leaves it out).")
    locks = repo.locks([c.sha for c in commits])
    on_disk = LockFile.read(repo.path).models.get(name)
    head = locks[0].models.get(name)
    versions: list[ModelVersion] = []
    previous = None
    for commit, lock in zip(reversed(commits), reversed(locks), strict=True):
        entry = lock.models.get(name)
        if entry is None or entry.sha256 == previous:
            continue
        versions.append(ModelVersion(name, entry, commit, previous, False))
        previous = entry.sha256
    if on_disk is not None and (head is None or on_disk.sha256 != head.sha256):
        versions.append(ModelVersion(name, on_disk, None, previous, False))
    if not versions:
        known = sorted({n for lock in locks for n in lock.models}) or ["none"]
        raise MissingError(
            f"No commit of {repo.spec} has a model named {name!r} (its history has: "
            f"{', '.join(known)}).", hint="check the name; `mlbuild models list` shows the lock.")
    versions.reverse()
    if on_disk is not None:  # the newest version with the sha256 the lock names now
        at = next(i for i, v in enumerate(versions) if v.sha256 == on_disk.sha256)
        versions[at] = replace(versions[at], current=True)
    if store is not None:
        states: dict[str, str] = {}
        for i, version in enumerate(versions):
            if version.sha256 not in states:
                states[version.sha256] = store_state(version.entry, store, verify=verify)
            versions[i] = replace(version, in_store=states[version.sha256])
    return versions


def store_state(entry: ModelEntry, store: Store, *, verify: bool = False) -> str:
    """"present"/"missing" from the store's ``exists``; with ``verify``, "intact"/"corrupt"
    from the bytes' sha256."""
    where, key = locate(entry.uri, store)
    if not verify:
        return "present" if where.exists(key) else "missing"
    try:
        verify_entry(entry, store)
    except MissingError:
        return "missing"
    except IntegrityError:
        return "corrupt"
    return "intact"


def verify_entry(entry: ModelEntry, store: Store) -> None:
    """Hash the stored bytes of ``entry`` (never a cached copy): ObjectMissingError if they
    are gone, StoreIntegrityError if they changed."""
    where, key = locate(entry.uri, store)
    check_digest(where.digest(key), entry.sha256, entry.uri)


def find_version(lock_path: str | Path, name: str, to: str) -> ModelVersion:
    """The version ``to`` names: a sha256 prefix (7+ hex digits) of a version in the
    history, else a git revision whose lock has ``name``."""
    versions = model_history(lock_path, name)
    wanted = to.lower()
    if len(wanted) >= MIN_PREFIX and _HEX.fullmatch(wanted):
        # oldest first, so that a sha256 released twice (rolled back to) keeps its newest
        matching = {v.sha256: v for v in reversed(versions) if v.sha256.startswith(wanted)}
        if len(matching) > 1:
            raise ConfigError(
                f"sha256 prefix {to!r} matches {len(matching)} versions of {name}: "
                f"{', '.join(sorted(matching))}.", hint="give more digits of the sha256.")
        if matching:
            return next(iter(matching.values()))
    repo = LockRepository(lock_path)
    commit = repo.resolve(to)
    if commit is None:
        shortest = (f" (a sha256 prefix needs at least {MIN_PREFIX} hex digits)"
                    if _HEX.fullmatch(wanted) and len(wanted) < MIN_PREFIX else "")
        raise MissingError(
            f"{to!r} is neither the sha256 of a released version of {name}{shortest} nor a "
            f"revision of the git repository at {repo.top}.",
            hint=f"`mlbuild models history {name}` lists its versions and their commits.")
    lock = repo.locks([commit.sha])[0]
    entry = lock.models.get(name)
    if entry is None:
        known = ", ".join(sorted(lock.models)) or "none"
        raise MissingError(
            f"{repo.spec} at commit {commit.short} ({to}) has no model named {name!r} "
            f"(it has: {known}).",
            hint=f"`mlbuild models history {name}` lists the commits that released it.")
    earlier = next((v for v in versions if v.sha256 == entry.sha256 and v.commit), None)
    return ModelVersion(name, entry, commit, earlier.replaced if earlier else None, False)


def rollback_model(lock_path: str | Path, name: str, to: str, store: Store) -> Rollback:
    """Write the lock entry of an earlier version of ``name`` (see :func:`find_version`).

    Its bytes are hashed in the store first: a version whose bytes are gone or changed is
    refused (ObjectMissingError, exit 5; StoreIntegrityError, exit 6) and the lock is left
    as it was. The lock is written under its file lock (``LockFile.update``).
    """
    version = find_version(lock_path, name, to)
    try:
        verify_entry(version.entry, store)
    except MlbuildError as exc:
        # publishing skips a key that exists, so changed bytes must go before a re-publish
        again = ("delete that object, then publish the model again" if
                 isinstance(exc, IntegrityError) else "publish that model again")
        raise type(exc)(
            f"Cannot roll back {name} to sha256:{version.sha256[:12]}: {exc.message} "
            f"{lock_path} is unchanged.",
            hint=f"roll back to a version whose bytes are in the store (`mlbuild models history "
                 f"{name} --verify`), or {again} by running the pipeline at the commit that "
                 "made it.") from exc
    before: list[ModelEntry | None] = []

    def change(lock: LockFile) -> LockFile:
        before.append(lock.models.get(name))
        return lock.with_model(name, version.entry)

    LockFile.update(lock_path, change)
    return Rollback(name, before[0], replace(version, current=True), Path(lock_path))


def metrics_diff(lock_path: str | Path, rev_a: str | None = "HEAD", rev_b: str | None = None, *,
         everything: bool = False) -> list[MetricChange]:
    """The metric changes from the lock at ``rev_a`` to the lock at ``rev_b`` (None: the
    lock on disk), model by model; ``everything`` keeps the unchanged metrics too."""
    repo = LockRepository(lock_path)
    a, b = repo.lock_at(rev_a), repo.lock_at(rev_b)
    rows: list[MetricChange] = []
    for model in sorted(set(a.models) | set(b.models)):
        ea, eb = a.models.get(model), b.models.get(model)
        before = flat_metrics(ea.metrics) if ea else {}
        after = flat_metrics(eb.metrics) if eb else {}
        whole = "added" if ea is None else "removed" if eb is None else None
        changes = _metric_changes(model, before, after, whole, everything=everything)
        if whole and not changes:  # a model without metrics still shows that it came or went
            changes = [MetricChange(model, "-", None, None, whole)]
        rows += changes
    return rows


def markdown_table(changes: list[MetricChange], rev_a: str | None, rev_b: str | None,
             precision: int = 5) -> str:
    """The changes as a Markdown table, as ``dvc metrics diff`` prints them."""
    if not changes:
        return (f"no metric changes between {rev_a or f'the {WORKTREE}'} and "
                f"{rev_b or f'the {WORKTREE}'}")
    lines = [f"| model | metric | {rev_a or WORKTREE} | {rev_b or WORKTREE} | change |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {c.model} | {c.metric} | {_cell(c.before, precision)} | "
              f"{_cell(c.after, precision)} | {c.change(precision)} |" for c in changes]
    return "\n".join(lines)


def flat_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested metrics as dotted names (``per_class.3.recall``), so each is one row."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(flat_metrics(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def format_metrics(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in sorted(flat_metrics(metrics).items()))


def _metric_changes(model: str, before: dict[str, Any], after: dict[str, Any],
                    whole: str | None = None, *, everything: bool = False) -> list[MetricChange]:
    return [MetricChange(model, metric, before.get(metric), after.get(metric), whole)
            for metric in sorted(set(before) | set(after))
            if everything or before.get(metric) != after.get(metric)]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: float, precision: int, sign: bool = False) -> str:
    if isinstance(value, float):
        value = round(value, precision)
    return f"{value:+}" if sign else f"{value}"


def _cell(value: Any, precision: int = 5) -> str:
    if value is None:
        return "-"
    return _number(value, precision) if _is_number(value) else str(value)


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or ["no message"])[0]
