"""The exceptions of mlbuild and the exit codes they map to.

Every error a user can cause is an ``MlbuildError`` whose message says what was
wrong, where, and what to do. The command line prints the message without a
traceback and exits with the code of its kind::

    MlbuildError                      (1)  base; also any unexpected failure
    ├── ConfigError(ValueError)       (3)  bad configuration: unknown key, wrong type
    ├── DataError(ValueError)         (4)  data that breaks its schema or cannot be read
    ├── MissingError(LookupError)     (5)  missing data, upstream result or model
    ├── IntegrityError(ValueError)    (6)  a digest that does not match
    ├── StoreError(OSError)           (7)  the store cannot be read or written
    ├── GateFailed(AssertionError)    (8)  an accuracy gate did not pass
    ├── BuildError(RuntimeError)      (9)  a task broke its contract (e.g. a missing output)
    ├── ImageError(RuntimeError)     (10)  Docker engine, image build, container or registry
    ├── TestsFailed(AssertionError)  (11)  a test stage's tests failed
    └── BatchError(RuntimeError)     (12)  an AWS Batch job failed, or Batch refused it

Each also inherits the builtin a caller would already catch, as scikit-learn does.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_USAGE = 2  # argparse's own code for a bad command line
EXIT_INTERRUPTED = 130  # the shell's code for SIGINT (Ctrl-C)


class MlbuildError(Exception):
    """Root of every error mlbuild raises on purpose."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str = "", *, hint: str | None = None):
        self.message, self.hint = message, hint
        super().__init__(f"{message} Hint: {hint}." if hint else message)


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


class GateFailed(MlbuildError, AssertionError):
    exit_code = 8
    kind = "accuracy gate failed"


class BuildError(MlbuildError, RuntimeError):
    exit_code = 9
    kind = "task contract broken"


class ImageError(MlbuildError, RuntimeError):
    exit_code = 10
    kind = "image error"


class TestsFailed(MlbuildError, AssertionError):
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
    GateFailed,
    BuildError,
    ImageError,
    TestsFailed,
    BatchError,
)
