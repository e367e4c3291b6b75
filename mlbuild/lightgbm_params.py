"""LightGBM parameters in a config, checked against LightGBM's own names and aliases.

LightGBM warns about an unknown parameter, and ``verbose = -1`` (which deterministic
training sets) hides the warning: ``num_leafs = 15`` would train with the default leaves
and exit 0. ``LightGBMParams`` is the type of a config table of LightGBM parameters: an
unknown name (with the closest known one), a number written as text, and two aliases of
one parameter are each a problem of the config, all reported at once.

The names come from the installed LightGBM (``LGBM_DumpParamAliases``), asked in a child
process so that the scheduling process neither imports LightGBM nor loads its OpenMP
runtime, and kept per LightGBM version in ``~/.cache/mlbuild`` (``XDG_CACHE_HOME``).
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
import uuid
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator

from mlbuild.config import KeyProblems

Scalar = bool | int | float | str

_ASK = ("import json, lightgbm.basic as b; "
        "print(json.dumps(b._ConfigAliases._get_all_param_aliases()))")


def _cache_file(version: str) -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "mlbuild" / f"lightgbm-parameters-{version}.json"


@cache
def known_names() -> dict[str, str] | None:
    """Every LightGBM parameter name and alias -> its canonical name; None without LightGBM."""
    try:
        version = metadata.version("lightgbm")
    except metadata.PackageNotFoundError:
        return None
    path = _cache_file(version)
    try:
        aliases = json.loads(path.read_text())
    except (OSError, ValueError):
        done = subprocess.run([sys.executable, "-c", _ASK], capture_output=True, text=True,
                              check=False, timeout=120)
        if done.returncode != 0:
            return None  # a LightGBM without the call: it checks its own parameters
        aliases = json.loads(done.stdout)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
            tmp.write_text(json.dumps(aliases, sort_keys=True))
            os.replace(tmp, path)
        except OSError:
            pass  # only a shortcut
    return {alias: name for name, names in aliases.items() for alias in [name, *names]}


def _as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_params(params: dict[str, Scalar]) -> dict[str, Scalar]:
    names = known_names()
    if names is None:
        return params
    problems, seen = {}, {}
    for key, value in params.items():
        canonical = names.get(key)
        if canonical is None:
            close = difflib.get_close_matches(key, list(names), n=1)
            problems[key] = ("not a LightGBM parameter." +
                             (f" Did you mean {names[close[0]]!r}?" if close else ""))
            continue
        if isinstance(value, str) and _as_number(value):
            problems[key] = f"{value!r} is text; write the number without quotes: {key} = {value}."
        if canonical in seen:
            problems[key] = (f"the same parameter as {seen[canonical]!r} ({canonical}); "
                             "keep one of them.")
        seen.setdefault(canonical, key)
    if problems:
        raise KeyProblems(problems)
    return params


#: A config table of LightGBM parameters, checked against LightGBM's names and aliases.
LightGBMParams = Annotated[dict[str, Scalar], AfterValidator(check_params)]
