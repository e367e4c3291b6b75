"""Fingerprints: the hash that addresses a task's outputs (DESIGN.md, invariant 1).

A fingerprint covers everything that can change a task's result:

* ``family``    — the task family;
* ``params``    — its significant Luigi parameters and the settings it declares;
* ``code``      — the AST digest of its own module and of the modules it declares;
* ``packages``  — the versions of the packages it declares;
* ``data``      — the digests of external data it reads;
* ``upstream``  — the fingerprints of every task it requires.

These parts are kept (in each manifest) as well as hashed, so that ``mlbuild status``
can say which of them changed.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any

from mlbuild.errors import BuildError, ConfigError

# Bump when the meaning of a fingerprint changes, so old results are not mistaken for new.
SCHEMA = 1


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest_of(inputs: dict[str, Any]) -> str:
    text = canonical_json({"schema": SCHEMA, **inputs})
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class _StripDocstrings(ast.NodeTransformer):
    """Docstrings document code; like comments they do not change what it computes."""

    def _strip(self, node):
        self.generic_visit(node)
        first = node.body[0] if node.body else None
        if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
            node.body = node.body[1:] or [ast.Pass()]
        return node

    visit_Module = visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _strip


@cache
def code_digest(module: str) -> str:
    """The sha256 of a module's syntax tree: comments, docstrings and layout do not count.

    Computed once per module and process.
    """
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:  # a parent package is missing
        spec = None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise BuildError(
            f"Cannot fingerprint the code of module {module!r}: no Python source was found for "
            "it.", hint="list only importable pure-Python modules in a task's code_modules."
        )
    if spec.submodule_search_locations:  # a package: every module in it
        files = sorted(Path(spec.origin).parent.rglob("*.py"))
    else:
        files = [Path(spec.origin)]
    digest = hashlib.sha256()
    for path in files:
        tree = _StripDocstrings().visit(ast.parse(path.read_text(encoding="utf-8"),
                                                  filename=str(path)))
        dumped = ast.dump(tree, annotate_fields=False, include_attributes=False)
        if len(files) == 1:
            return hashlib.sha256(dumped.encode()).hexdigest()
        digest.update(f"{path.relative_to(Path(spec.origin).parent)}\0".encode())
        digest.update(hashlib.sha256(dumped.encode()).digest())
    return digest.hexdigest()


@cache
def package_version(name: str) -> str:
    """The installed version of ``name`` (extras, as in ``moto[server]``, name no package)."""
    try:
        return importlib.metadata.version(name.split("[")[0])
    except importlib.metadata.PackageNotFoundError as exc:
        raise ConfigError(
            f"A task declares the package {name!r}, which is not installed.",
            hint="install it, or remove it from the task's `packages`.",
        ) from exc


def diff_inputs(old: dict[str, Any], new: dict[str, Any],
                families: dict[str, str] | None = None) -> list[str]:
    """Say, one line each, what differs between two sets of fingerprint inputs.

    ``families`` maps upstream names to task families, to name them in the lines.
    """
    families = families or {}
    lines = []
    for part, noun in (
        ("params", "parameter"),
        ("code", "code module"),
        ("packages", "package"),
        ("data", "data"),
        ("upstream", "upstream task"),
    ):
        before, after = old.get(part, {}), new.get(part, {})
        for key in sorted(set(before) | set(after)):
            if key not in before:
                lines.append(f"{noun} {key}: new ({_short(after[key])})")
            elif key not in after:
                lines.append(f"{noun} {key}: removed (was {_short(before[key])})")
            elif before[key] != after[key]:
                if part == "upstream" and key in families:
                    lines.append(f"{noun} {key} ({families[key]}) changed")
                elif part in ("code", "upstream"):
                    lines.append(f"{noun} {key} changed")
                else:
                    lines.append(f"{noun} {key}: {_short(before[key])} -> {_short(after[key])}")
    return lines


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else canonical_json(value)
    return text if len(text) <= 60 else text[:57] + "..."
