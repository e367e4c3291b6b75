"""``ReleaseTask``: the hooks every release task of a project shares.

A project subclasses it once, with what only the project knows, and then declares each
release task it wants as a subclass of that and of the library's task::

    class Release(mlbuild.ReleaseTask):
        inference = "tasks.inference"          # load_model, predict_proba or predict

        def release_config(self):              # a ReleaseConfig (gates, accuracy, ...)
            return load()

        def label(self):                       # the label column of the test data
            return load().schema_.label

        def model_task(self):                  # writes the output "model"
            return TrainModel()

        def test_task(self):                   # writes the output "test", a CSV
            return SplitData()

        def data_task(self):                   # optional: the raw data (output "raw")
            return FetchData()                 # for [gates.drift] and the lock's `data`

    class EvaluateAccuracy(Release, mlbuild.EvaluateAccuracy): pass
    class PublishModel(Release, mlbuild.PublishModel): pass
    class CheckDrift(Release, mlbuild.CheckDrift): pass     # with [gates.drift]

The release tasks find each other through the project: PublishModel requires the
project's subclass of ``mlbuild.EvaluateAccuracy`` that shares its hooks.
"""

from __future__ import annotations

from typing import ClassVar, Literal, TypeVar

from mlbuild.core import BuildTask
from mlbuild.errors import BuildError
from mlbuild.tasks.config import ReleaseConfig
from mlbuild.tasks.inference import Inference

T = TypeVar("T", bound="ReleaseTask")
LIBRARY = "mlbuild."


class ReleaseTask(BuildTask):
    """Base of the library's release tasks; see the module docstring."""

    #: the project's inference module (mlbuild.tasks.inference describes it)
    inference: ClassVar[str] = ""
    #: what the model predicts: the gates and metrics follow from it
    kind: ClassVar[Literal["classification", "regression"]] = "classification"
    #: packages the inference module imports: their versions change the predictions, and
    #: the serving image installs them at the host's versions
    inference_packages: ClassVar[tuple[str, ...]] = ()
    #: library modules or packages, and packages, whose code changes this task's result
    library_modules: ClassVar[tuple[str, ...]] = ()
    library_packages: ClassVar[tuple[str, ...]] = ()
    #: the output of ``data_task()`` that holds the data table (an Arrow, Parquet or CSV file)
    data_output: ClassVar[str] = "raw"

    # ------------------------------------------------------------- the project's hooks

    def release_config(self) -> ReleaseConfig:
        raise NotImplementedError(f"{type(self).__name__} must define release_config()")

    def label(self) -> str:
        raise NotImplementedError(f"{type(self).__name__} must define label()")

    def model_task(self) -> BuildTask:
        raise NotImplementedError(f"{type(self).__name__} must define model_task()")

    def test_task(self) -> BuildTask:
        raise NotImplementedError(f"{type(self).__name__} must define test_task()")

    def data_task(self) -> BuildTask | None:
        """The task whose output ``data_output`` is the data the model is trained from.

        Optional. With it, models.lock records each released model's training data (its
        ``data``), and ``[gates.drift]`` compares new data with it (CheckDrift). None (the
        default): no drift gate, and no ``data`` in the lock.
        """
        return None

    # ------------------------------------------------------------- for the library

    @property
    def code_modules(self) -> tuple[str, ...]:
        return self.library_modules

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(("mlbuild", *self.library_packages)))

    def model_api(self) -> Inference:
        return Inference(self.inference)

    @classmethod
    def hooks(cls) -> type[ReleaseTask]:
        """The project's class of hooks: its first ReleaseTask subclass outside mlbuild."""
        own = [c for c in cls.__mro__ if issubclass(c, ReleaseTask)
               and not c.__module__.startswith(LIBRARY)]
        if not own:
            raise BuildError(f"{cls.__name__} is a library task: subclass it in the project.")
        return own[-1]

    def project_task(self, library_class: type[T]) -> T:
        """An instance of the project's subclass of ``library_class`` with the same hooks."""
        return self.project_class(library_class)()

    @classmethod
    def project_class(cls, library_class: type[T]) -> type[T]:
        """The project's subclass of ``library_class`` that shares these hooks."""
        hooks = cls.hooks()
        found = [c for c in _subclasses(library_class) if issubclass(c, hooks)
                 and not c.__module__.startswith(LIBRARY)]
        leaves = [c for c in found if not any(o is not c and issubclass(o, c) for o in found)]
        if len(leaves) != 1:
            what = ("defines none" if not leaves else
                    f"defines {len(leaves)} ({', '.join(c.__name__ for c in leaves)})")
            raise BuildError(
                f"{cls.__name__} needs the project's {library_class.__name__} task, and the "
                f"project {what}.",
                hint=f"declare exactly one: class {library_class.__name__}({hooks.__name__}, "
                     f"mlbuild.{library_class.__name__}): pass.")
        return leaves[0]


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found
