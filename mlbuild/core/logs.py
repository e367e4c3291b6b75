"""Luigi's log without tracebacks for mlbuild's own errors.

An :class:`~mlbuild.errors.MlbuildError` says what went wrong, where, and what to do; the
stack of Luigi's worker above it says nothing more to the person reading the log. Luigi
logs a failed ``run()`` with the traceback attached and a failed ``complete()`` with the
traceback formatted into the message; this filter keeps, in both cases, Luigi's headline
and the error's last line (``mlbuild.errors.ConfigError: … Hint: …``, which a Batch job's
log is also searched for). Any other exception keeps its whole traceback.
"""

from __future__ import annotations

import logging
import re

from mlbuild.errors import MlbuildError

#: the last line of a formatted traceback whose exception is one of mlbuild's errors
_LAST_LINE = re.compile(r"\nTraceback \(most recent call last\):\n.*\n(mlbuild\.errors\.\w+: .*)\n*$",
                        re.DOTALL)


def _error_line(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"


class MlbuildErrorsWithoutTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, MlbuildError):
            record.msg = f"{record.getMessage()}\n{_error_line(exc)}"
            record.args, record.exc_info, record.exc_text = (), None, None
        elif isinstance(record.msg, str) and "Traceback (most recent call last)" in record.msg:
            message = record.getMessage()
            found = _LAST_LINE.search(message)
            if found:
                record.msg = f"{message[:found.start()]}\n{found.group(1)}"
                record.args = ()
        return True


_FILTER = MlbuildErrorsWithoutTraceback()


def install() -> None:
    """Filter Luigi's logger (idempotent)."""
    logger = logging.getLogger("luigi-interface")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
