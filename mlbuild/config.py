"""Load a project's TOML configuration into a validated pydantic model.

Errors name the file and the dotted key, say what was expected and what was found, and
suggest a known key for a misspelt one — all problems in one message, not the first only.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from functools import cache
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from mlbuild.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class KeyProblems(ValueError):
    """What a validator raises for several problems at once: each is listed and counted
    under its own key (``{"num_leafs": "not a LightGBM parameter"}``)."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


class Section(BaseModel):
    """Base for configuration sections: unknown keys are errors; types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _known_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """The field names valid at ``loc`` (the location of an unknown key)."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part)) if isinstance(part, str) else None
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _describe(model: type[BaseModel], error: dict) -> str:
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        known = _known_keys(model, error["loc"])
        close = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return f"{key}: unknown key.{hint} Known keys here: {', '.join(known)}."
    if error["type"] == "missing":
        return f"{key}: required, but not set."
    return f"{key}: {error['msg']} (got {error.get('input')!r})."


def read_toml(path: Path) -> dict:
    """The parsed TOML at ``path``; a missing or malformed file is a ConfigError."""
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"The configuration file {path} does not exist.",
            hint="run from the project's root folder, or check the path given (--pipeline-config, or [pipeline] config in luigi.cfg).",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}.") from exc


def _problems(model: type[BaseModel], error: dict) -> list[str]:
    several = error.get("ctx", {}).get("error")
    if isinstance(several, KeyProblems):
        key = ".".join(str(p) for p in error["loc"])
        return [f"{key}.{sub}: {message}" for sub, message in several.problems.items()]
    return [_describe(model, error)]


def validate(raw: dict, model: type[M], where: str | os.PathLike) -> M:
    """``raw`` as ``model``; every problem named by its dotted key, in one ConfigError."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = [p for e in exc.errors() for p in _problems(model, e)]
        listed = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"{where} has {len(problems)} problem(s):\n{listed}") from None


@cache
def _load(path: Path, mtime_ns: int, model: type[M]) -> M:
    try:
        return validate(read_toml(path), model, path)
    except ConfigError as exc:
        # The file is at fault, not whichever task happened to read it first.
        exc.blamed_task = str(path)
        raise


def load_config(path: str | os.PathLike, model: type[M]) -> M:
    """The validated contents of ``path``; parsed once per process while the file is unchanged."""
    path = Path(path)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = -1
    return _load(path, mtime, model)
