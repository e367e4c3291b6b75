"""The layering of DESIGN.md: the library never imports the project; its layers have no circle."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "mlbuild"


def imported_modules(path: Path) -> set[str]:
    """Every absolute module a file imports, at any depth (functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside mlbuild by construction
                names.add("mlbuild." + (node.module or ""))
            elif node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def is_under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_no_library_module_imports_the_project(path):
    offending = sorted(n for n in imported_modules(path) if is_under(n, "tasks"))
    assert offending == [], f"{path.relative_to(REPO)} imports {offending}"


def test_the_layers_contract_names_every_subpackage():
    import tomllib

    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in contracts["contracts"] if c["type"] == "layers")
    named = {n.strip() for layer in layers["layers"] for n in layer.split("|")}
    held = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    held |= {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert named == held
    assert layers.get("exhaustive") is True


@pytest.mark.parametrize("package, allowed", [("docker", "images"), ("boto3", "aws")])
def test_only_one_subpackage_may_import_each_integration(package, allowed):
    # The forbidden contracts list every other part of mlbuild, so a new one must be added.
    import tomllib

    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = next(c for c in contracts["contracts"]
                    if c["type"] == "forbidden" and package in c["forbidden_modules"])
    held = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    held |= {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert {m.removeprefix("mlbuild.") for m in contract["source_modules"]} == held - {allowed}


def test_the_import_linter_contracts_are_kept():
    executable = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    assert Path(executable).exists(), "import-linter is not installed: pip install import-linter"
    result = subprocess.run(
        [executable, "--no-cache"],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    assert "The library never imports the reference project KEPT" in result.stdout
    assert "The library is layered, with no circle KEPT" in result.stdout
