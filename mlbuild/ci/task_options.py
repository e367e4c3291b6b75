"""A task named on mlbuild's command line, and its options, checked before Luigi sees them.

Luigi answers a misspelt task, an option the task does not have or a bad value with its
usage text (which lists options of every registered class) or a ``ValueError`` traceback.
mlbuild names the task and the option instead, lists the task's own options, and raises
a :class:`~mlbuild.errors.ConfigError` (exit code 3).
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import re

import luigi
from luigi.cmdline_parser import CmdlineParser
from luigi.parameter import ParameterException
from luigi.task_register import Register, TaskClassException

from mlbuild.errors import ConfigError


def task_class(name: str, module: str) -> type[luigi.Task]:
    """The task class called ``name``; a "Did you mean" error if there is none."""
    try:
        return Register.get_task_cls(name)
    except TaskClassException:
        families = sorted({cls.get_task_family() for cls in Register._get_reg().values()
                           if isinstance(cls, type) and issubclass(cls, luigi.Task)})
        close = difflib.get_close_matches(name, families, n=1, cutoff=0.6)
        guess = f" Did you mean {close[0]}?" if close else ""
        raise ConfigError(f"There is no task {name!r} in the project module {module!r}.{guess}",
                          hint="`mlbuild status` lists the pipeline's tasks.") from None


def options(cls: type[luigi.Task]) -> list[str]:
    """One line per option of ``cls``: the flag, its choices or default, what it is for."""
    lines = []
    for name, param in cls.get_params():
        flag = f"--{name.replace('_', '-')}"
        choices = getattr(param, "_choices", None)
        if choices:
            flag += " {" + ",".join(sorted(map(str, choices))) + "}"
        family = cls.get_task_family()
        default = param.task_value(family, name) if param.has_task_value(family, name) else None
        # Luigi appends the choices to the description: they are shown in the flag
        detail = re.sub(r"\s*Choices: \{.*\}$", "", param.description or "")
        if default is not None and default != "":
            detail = f"{detail} (default {default})".strip()
        lines.append(f"  {flag:<28} {detail}".rstrip())
    return lines or ["  (none)"]


def _listing(cls: type[luigi.Task]) -> str:
    return f"{cls.get_task_family()}'s options:\n" + "\n".join(options(cls))


def check_args(cls: type[luigi.Task], args: list[str]) -> None:
    """Refuse an option that neither ``cls`` nor Luigi's configuration has, or a malformed
    one, before Luigi prints its usage text for it."""
    family = cls.get_task_family()
    parser = CmdlineParser._build_parser(root_task=family)
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            _, unknown = parser.parse_known_args([family, *args])
    except SystemExit:
        said = errors.getvalue().strip().splitlines()[-1:] or ["a malformed option"]
        raise ConfigError(f"{family}: {said[0].split('error: ', 1)[-1]}.\n{_listing(cls)}",
                          hint=f"`mlbuild run {family} --help` describes them.") from None
    if unknown:
        raise ConfigError(f"{family} has no option {unknown[0]}.\n{_listing(cls)}",
                          hint=f"`mlbuild run {family} --help` describes them; Luigi's own "
                               "settings are given as --section-name (e.g. --mlbuild-store).")


def bad_value(cls: type[luigi.Task], exc: Exception) -> ConfigError:
    """A parameter value Luigi could not take, as a ConfigError listing the options."""
    reason = str(exc).rstrip(".")
    choices = re.search(r"^(.*) is not a valid choice from \{(.*)\}$", reason)
    if choices:  # Luigi prints a set, in no fixed order
        listed = ", ".join(sorted(c.strip(" '") for c in choices[2].split(",")))
        reason = f"{choices[1]!r} is not one of the choices {listed}"
    return ConfigError(f"{cls.get_task_family()}: {reason}.\n{_listing(cls)}",
                       hint=f"`mlbuild run {cls.get_task_family()} --help` describes them.")


BAD_VALUE_ERRORS = (ValueError, ParameterException, argparse.ArgumentTypeError)
