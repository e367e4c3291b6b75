"""The exceptions of mlbuild and the exit codes they map to.

Every error a user can cause is an ``MlbuildError`` whose message says what was
wrong and where, and whose ``hint`` says what to do. The command line prints both
without a traceback and exits with the code of its kind::

    MlbuildError                          (1)  base; also any unexpected failure
    ├── ConfigError(ValueError)           (3)  bad configuration: unknown key, wrong type
    ├── DataError(ValueError)             (4)  data that breaks its schema or cannot be read
    ├── MissingError(LookupError)         (5)  missing data, upstream result or model
    ├── IntegrityError(ValueError)        (6)  a digest that does not match
    ├── StoreError(OSError)               (7)  the store cannot be read or written
    │   ├── ObjectMissingError            (5)  also a MissingError: no object under that key
    │   └── StoreIntegrityError           (6)  also an IntegrityError: a stored object's bytes
    │                                          do not match the digest recorded for them
    ├── GateFailedError(AssertionError)   (8)  an accuracy gate did not pass
    ├── BuildError(RuntimeError)          (9)  a task broke its contract (e.g. a missing output)
    ├── ImageError(RuntimeError)         (10)  Docker engine, image build, container or registry
    ├── TestsFailedError(AssertionError) (11)  a test stage's tests failed
    └── BatchError(RuntimeError)         (12)  an AWS Batch job failed, or Batch refused it

Each also inherits the builtin a caller would already catch, as scikit-learn does.

Every error a store raises is a ``StoreError``, so ``except StoreError`` catches all of
them; the two refinements also belong to the kind a caller would catch without thinking
of stores (``except MissingError``, ``except IntegrityError``) and keep that kind's exit
code, so a missing object still exits with 5 and a corrupt one with 6.

``GateFailed`` and ``TestsFailed`` are deprecated aliases of ``GateFailedError`` and
``TestsFailedError``: importing them still works, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import warnings

EXIT_OK = 0
EXIT_USAGE = 2  # argparse's own code for a bad command line
EXIT_INTERRUPTED = 130  # the shell's code for SIGINT (Ctrl-C)


class MlbuildError(Exception):
    """Root of every error mlbuild raises on purpose.

    Parameters
    ----------
    message:
        What was wrong, where, what was expected and what was found.
    hint:
        What to do about it (``exc.hint``); ``str(exc)`` appends it as "Hint: …".
    """

    exit_code = 1
    kind = "error"

    def __init__(self, message: str = "", *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint or None

    def __str__(self) -> str:
        return f"{self.message} Hint: {self.hint}" if self.hint else self.message


class ConfigError(MlbuildError, ValueError):
    exit_code = 3
    kind = "configuration error"


class DataError(MlbuildError, ValueError):
    exit_code = 4
    kind = "data error"


class MissingError(MlbuildError, LookupError):
    exit_code = 5
    kind = "missing data or dependency"


class IntegrityError(MlbuildError, ValueError):
    exit_code = 6
    kind = "integrity error"


class StoreError(MlbuildError, OSError):
    exit_code = 7
    kind = "store error"


class ObjectMissingError(StoreError, MissingError):
    """A store holds no object under the key asked for (exit code and kind of MissingError)."""

    exit_code = MissingError.exit_code
    kind = MissingError.kind


class StoreIntegrityError(StoreError, IntegrityError):
    """A stored object's bytes do not match their recorded sha256 (as IntegrityError)."""

    exit_code = IntegrityError.exit_code
    kind = IntegrityError.kind


class GateFailedError(MlbuildError, AssertionError):
    exit_code = 8
    kind = "accuracy gate failed"


class BuildError(MlbuildError, RuntimeError):
    exit_code = 9
    kind = "task contract broken"


class ImageError(MlbuildError, RuntimeError):
    exit_code = 10
    kind = "image error"


class TestsFailedError(MlbuildError, AssertionError):
    __test__ = False  # a name pytest would otherwise try to collect
    exit_code = 11
    kind = "tests failed"


class BatchError(MlbuildError, RuntimeError):
    exit_code = 12
    kind = "AWS Batch error"


ERROR_KINDS: tuple[type[MlbuildError], ...] = (
    MlbuildError,
    ConfigError,
    DataError,
    MissingError,
    IntegrityError,
    StoreError,
    GateFailedError,
    BuildError,
    ImageError,
    TestsFailedError,
    BatchError,
)
"""One class per exit code: what the command line documents and maps."""

REFINED_ERRORS: tuple[type[MlbuildError], ...] = (ObjectMissingError, StoreIntegrityError)
"""Errors that belong to two kinds and take the exit code of the second."""

_DEPRECATED = {"GateFailed": GateFailedError, "TestsFailed": TestsFailedError}


def deprecated_alias(module: str, name: str) -> type[MlbuildError]:
    """The class an old name stands for, with a DeprecationWarning; AttributeError if none."""
    if name not in _DEPRECATED:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    new = _DEPRECATED[name]
    warnings.warn(f"{module}.{name} is deprecated; use {module}.{new.__name__}.",
                  DeprecationWarning, stacklevel=3)
    return new


def __getattr__(name: str) -> type[MlbuildError]:
    return deprecated_alias(__name__, name)
