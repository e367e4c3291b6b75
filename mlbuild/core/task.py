"""``BuildTask``: a Luigi task whose outputs are fingerprinted, verified and resumable.

A subclass declares its named ``outputs`` and writes them in :meth:`BuildTask.build`;
the base class does the rest::

    class TrainModel(BuildTask):
        outputs = {"model": "model.txt"}
        code_modules = ("tasks.training",)      # code it depends on, besides its own module
        packages = ("lightgbm",)                # packages whose version changes its result

        def requires(self):
            return {"split": SplitData()}

        def settings(self):                     # configuration that changes its result
            return {"train": load_config().train.model_dump()}

        def build(self, inputs, outputs):
            train(inputs["split"]["train"], outputs["model"])

``build`` receives its upstream outputs as verified, read-only local files and writes
its own outputs to local paths. Afterwards the base class uploads them to
``<store>/<Family>/<fingerprint>/`` and writes the manifest last; the task is complete
exactly when that manifest exists (and ``invalidation_reason()`` is None).

Plain Luigi tasks mix in both ways (:mod:`mlbuild.core.interop`):

* ``requires()`` may name a plain Luigi task whose outputs are ``LocalTarget``s or
  ``S3Target``s (raw data, typically a ``luigi.ExternalTask``). Their content (a file's
  sha256, an object's ETag and version) enters the fingerprint, and ``build`` receives them
  as verified local files: ``inputs[name]["output"]`` for a single target, the dict's own
  keys for a dict of targets. While such a task has not made its output, this task is not
  complete, so Luigi runs that task (or reports the missing external data) first.
* ``output()`` is a dict of output name -> standard Luigi target (``LocalTarget`` on a
  folder store, ``S3Target`` on an S3 store), so a plain task that requires a BuildTask
  reads ``self.input()["model"].open("r")``. Completeness does not come from these
  targets but from the manifest.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import luigi

from mlbuild.core import execution, interop, logs
from mlbuild.core import fingerprint as fp
from mlbuild.core.manifest import (
    MANIFEST,
    Manifest,
    OutputRecord,
    git_commit,
    host,
    now,
    python_version,
)
from mlbuild.core.runlog import record_build, record_duration, record_failure
from mlbuild.errors import BuildError, MissingError, MlbuildError
from mlbuild.settings import cache_dir, store_uri
from mlbuild.store import LocalCache, Store, StoredObject, open_store
from mlbuild.store.progress import task_progress

log = logging.getLogger("mlbuild")
#: seconds between two progress reports of one task
PROGRESS_EVERY = 1.0
logs.install()  # Luigi logs mlbuild's errors as their messages, not as tracebacks

Inputs = dict[str, dict[str, Path]]


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``, so a change can be named by its dotted key."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


@contextlib.contextmanager
def _blaming(task: luigi.Task):
    """Mark an mlbuild error raised inside as ``task``'s, unless a deeper task has it."""
    try:
        yield
    except MlbuildError as exc:
        if not hasattr(exc, "blamed_task"):
            exc.blamed_task = str(task)
        raise


def blamed(exc: BaseException, task: luigi.Task) -> str:
    """The task an error is about: the one whose own inputs raised it, else ``task``."""
    return getattr(exc, "blamed_task", None) or str(task)


class BuildTask(luigi.Task):
    """Base class of every fingerprinted task; see the module docstring."""

    #: output name -> file name in the task's store folder
    outputs: ClassVar[Mapping[str, str]] = {}
    #: modules whose code the result depends on, besides the task's own module
    code_modules: ClassVar[tuple[str, ...]] = ()
    #: packages whose installed version changes the result
    packages: ClassVar[tuple[str, ...]] = ()

    # ----------------------------------------------------------------- for subclasses

    def requires(self) -> Mapping[str, luigi.Task]:
        """Upstream tasks by name: BuildTasks, or plain Luigi tasks (see the module docstring)."""
        return {}

    def after(self) -> Mapping[str, luigi.Task]:
        """Tasks that must be complete before this one runs, without entering its fingerprint.

        Like Make's order-only prerequisites: for an effect this task reads that another
        task writes outside the store (e.g. models.lock), when that task's fingerprint
        carries more than this one depends on.
        """
        return {}

    def deps(self) -> list[luigi.Task]:
        return super().deps() + luigi.task.flatten(self.after())

    def settings(self) -> Mapping[str, Any]:
        """Configuration values that change the result (JSON-compatible)."""
        return {}

    def data_digests(self) -> Mapping[str, str]:
        """Digests of external data the task reads, keyed by a name for messages."""
        return {}

    def invalidation_reason(self) -> str | None:
        """Why a stored result no longer counts, for tasks with effects outside the store.

        For example a task that writes a file kept in git: after a checkout that file may
        no longer say what the result recorded. ``None`` (the default) when it still counts.
        """
        return None

    @property
    def has_effects_outside_store(self) -> bool:
        """Whether the result is more than the store folder (it defines invalidation_reason)."""
        return type(self).invalidation_reason is not BuildTask.invalidation_reason

    def report_folder(self) -> Path | None:
        """Where the task copies its reports for CI to archive, also when it then fails
        (``mlbuild stage`` reads a failed run's ``junit.xml`` there). ``None``: no reports."""
        return None

    def build(self, inputs: Inputs, outputs: dict[str, Path]) -> Mapping[str, Any] | None:
        """Write every declared output to its path in ``outputs``.

        May return a JSON-compatible mapping, kept in the manifest as ``extra``.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement build()")

    # ----------------------------------------------------------------- machinery

    @classmethod
    def get_params(cls) -> list[tuple[str, luigi.Parameter]]:
        """Luigi's ``get_params``, computed once per class instead of once per call.

        Luigi scans ``dir(cls)`` on every call and calls it about five times for each task
        instance (instance cache, ``__init__``, type check, ``task_id``, fingerprint):
        ~0.1 s of a 0.45 s no-op run of 1,000 tasks. Parameters are class attributes, fixed
        when the class is defined, so the answer does not change.
        """
        cached = cls.__dict__.get("_mlbuild_params")
        if cached is None:
            cached = cls._mlbuild_params = tuple(super().get_params())
        return list(cached)

    @property
    def store(self) -> Store:
        return open_store(store_uri())

    def upstream(self) -> dict[str, luigi.Task]:
        required = self.requires()
        if not isinstance(required, Mapping) or not all(
            isinstance(t, luigi.Task) for t in required.values()
        ):
            raise BuildError(
                f"{self.task_family}.requires() must return a dict of name -> task "
                f"(a BuildTask or a plain Luigi task), got {required!r}, so that every "
                "upstream result is named and fingerprinted.",
                hint='return {"name": Task(...)} and read inputs["name"] in build().')
        return dict(required)

    def fingerprint_inputs(self) -> dict[str, Any]:
        """Everything the fingerprint covers, computed once per task instance."""
        cached = self.__dict__.get("_fingerprint_inputs")
        if cached is None:
            upstream = self.upstream()
            with _blaming(self):  # a bad config or missing data is this task's, not its users'
                params = dict(self.to_str_params(only_significant=True, only_public=True))
                params.update(flatten(self.settings()))
                modules = dict.fromkeys((*self.task_modules(), *self.code_modules))
                cached = {
                    "family": self.task_family,
                    "params": params,
                    "code": {m: fp.code_digest(m) for m in modules},
                    "packages": {p: fp.package_version(p) for p in self.packages},
                    "data": dict(self.data_digests()),
                }
            cached["upstream"] = {
                n: t.fingerprint if isinstance(t, BuildTask) else interop.identity(t)
                for n, t in upstream.items()
            }
            self.__dict__["_fingerprint_inputs"] = cached
        return cached

    @classmethod
    def task_modules(cls) -> list[str]:
        """The modules of the class and of its bases up to BuildTask: a library task's own
        code is fingerprinted as the project's is."""
        cached = cls.__dict__.get("_mlbuild_modules")  # fixed when the class is defined
        if cached is None:
            cached = cls._mlbuild_modules = tuple(
                c.__module__ for c in cls.__mro__ if issubclass(c, BuildTask) and c is not BuildTask)
        return list(cached)

    @property
    def fingerprint(self) -> str:
        cached = self.__dict__.get("_fingerprint")
        if cached is None:
            cached = self.__dict__["_fingerprint"] = fp.digest_of(self.fingerprint_inputs())
        return cached

    @property
    def prefix(self) -> str:
        return f"{self.task_family}/{self.fingerprint}"

    def output(self) -> dict[str, luigi.Target]:
        """Output name -> a standard Luigi target, for plain Luigi tasks that require this one.

        They read the stored files without mlbuild's verification; BuildTasks receive
        verified files instead (:meth:`fetch_outputs`). Not what completeness is made of.
        """
        return {name: interop.luigi_target(self.store, f"{self.prefix}/{file}")
                for name, file in self.outputs.items()}

    def result_exists(self) -> bool:
        """Whether the manifest of this fingerprint is in the store (a result was made),
        whether or not :meth:`invalidation_reason` still lets it count."""
        return self.store.exists(f"{self.prefix}/{MANIFEST}")

    def complete(self) -> bool:
        try:
            execution.check(self)  # e.g. in a Batch job: before anything is built
            return self.result_exists() and self.invalidation_reason() is None
        except MissingError as exc:
            if not interop.not_made(exc):
                record_failure(blamed(exc, self), exc)
                raise
            # A plain upstream task has not made its output yet: Luigi runs it (or reports
            # the missing external data) and this task's fingerprint is computed after.
            log.info("%s is not complete: %s", self, exc)
            return False
        except BaseException as exc:
            # Raised while Luigi schedules: record it, as run() failures are.
            record_failure(blamed(exc, self), exc)
            raise

    def read_manifest(self) -> Manifest:
        key = f"{self.prefix}/{MANIFEST}"
        manifest = Manifest.from_json(self.store.get_bytes(key), self.store.url(key))
        if manifest.fingerprint != self.fingerprint:
            raise BuildError(
                f"{self.store.url(key)} records fingerprint {manifest.fingerprint}, not "
                f"{self.fingerprint}.", hint="the store was edited by hand; delete that folder.")
        return manifest

    def stored_outputs(self) -> dict[str, StoredObject]:
        """Where each output is stored, as the manifest records it."""
        return {name: StoredObject(f"{self.prefix}/{rec.file}", rec.sha256)
                for name, rec in self.read_manifest().outputs.items()}

    def fetch_outputs(self, cache: LocalCache | None = None) -> dict[str, Path]:
        """This task's outputs as verified local files (from the cache when already there)."""
        return self._fetch(self.stored_outputs(), cache or LocalCache(cache_dir()))

    def _fetch(self, stored: Mapping[str, StoredObject], cache: LocalCache) -> dict[str, Path]:
        return {name: cache.fetch(self.store, obj.key, obj.sha256) for name, obj in stored.items()}

    def progress(self, done: int, total: int, what: str = "") -> None:
        """Say how far ``build`` is (e.g. boosting round 40 of 100): luigid's page shows it,
        and so does ``mlbuild run``. Cheap to call often: it is passed on once a second."""
        moment = time.monotonic()
        if done < total and moment - self.__dict__.get("_progress_at", 0.0) < PROGRESS_EVERY:
            return
        self.__dict__["_progress_at"] = moment
        # Luigi's worker lends a running task these two; elsewhere nobody is told.
        tell, percent = (getattr(self, name, None)
                         for name in ("set_status_message", "set_progress_percentage"))
        if tell is not None and percent is not None:
            tell(f"{what} {done}/{total}".strip())
            percent(round(100 * done / total) if total else 0)

    def origin(self, path: str | os.PathLike) -> StoredObject:
        """Where an input file that ``build`` received is stored: a task can then write
        a small file that refers to it (e.g. a row view of a table) instead of a copy."""
        found = self.__dict__.get("_origins", {}).get(Path(path))
        if found is None:
            raise BuildError(
                f"{self.task_family}.origin({str(path)!r}): that is not an input file of "
                "this run; only the outputs of upstream BuildTasks have a stored origin.")
        return found

    def run(self) -> None:
        executor = execution.executor_for(self)
        if executor is not None:
            return executor.run(self)
        reporting = task_progress.set(self.progress)  # transfers and evaluations report here
        try:
            self._run_here()
        finally:
            task_progress.reset(reporting)

    def _run_here(self) -> None:
        started = now()
        cache = LocalCache(cache_dir())
        fingerprinted = self.fingerprint_inputs()["upstream"]
        inputs, origins = {}, {}
        for name, task in self.upstream().items():
            if isinstance(task, BuildTask):
                stored = task.stored_outputs()
                inputs[name] = task._fetch(stored, cache)
                origins.update({inputs[name][n]: stored[n] for n in stored})
            else:
                inputs[name] = interop.fetch(task, fingerprinted[name], cache)
        self.__dict__["_origins"] = origins
        work = Path(tempfile.mkdtemp(prefix=f"{self.task_family}-", dir=cache.tmpdir()))
        try:
            paths = {name: work / file for name, file in self.outputs.items()}
            extra = self.build(inputs, paths) or {}
            missing = sorted(name for name, path in paths.items() if not path.is_file())
            if missing:
                raise BuildError(
                    f"{self.task_family}.build() did not write its declared output(s) "
                    f"{', '.join(missing)}. Every name in `outputs` must be written."
                )
            records = {}
            for name, path in paths.items():
                os.chmod(path, 0o444)  # before it is shared: a link in the store, one in the cache
                info = self.store.put_link(path, f"{self.prefix}/{path.name}")
                records[name] = OutputRecord(path.name, info.sha256, info.size)
                cache.adopt(path, info.sha256)
            manifest = Manifest(
                family=self.task_family,
                task_id=self.task_id,
                fingerprint=self.fingerprint,
                inputs=self.fingerprint_inputs(),
                outputs=records,
                started=started,
                finished=now(),
                git_commit=git_commit(),
                host=host(),
                python=python_version(),
                extra=dict(extra),
            )
            # Last: from this moment the task is complete.
            self.store.put_bytes(manifest.to_json(), f"{self.prefix}/{MANIFEST}")
            record_build(str(self), self.task_family, self.fingerprint)
            record_duration(str(self), manifest.started, manifest.finished)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def on_failure(self, exception: BaseException) -> str:
        record_failure(str(self), exception)
        if isinstance(exception, MlbuildError):
            return f"{exception.kind}: {exception}"
        return super().on_failure(exception)
