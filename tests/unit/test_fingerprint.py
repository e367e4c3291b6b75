"""Fingerprints: code digests, the digest of the inputs, and naming what changed."""

from __future__ import annotations

import importlib
import importlib.metadata
import itertools
import textwrap

import pytest

from mlbuild.core.fingerprint import (
    canonical_json,
    code_digest,
    diff_inputs,
    digest_of,
    package_version,
)
from mlbuild.errors import BuildError, ConfigError

_names = itertools.count()

BASE = '''
"""Module docstring."""

import math

RATE = 0.1


class Model:
    """Class docstring."""

    def predict(self, x, scale=2):
        """Method docstring."""
        return math.floor(x * scale + RATE)


def train(rows):
    total = 0
    for row in rows:
        total += row
    return total
'''


@pytest.fixture
def module_of(tmp_path, monkeypatch):
    """Write ``source`` as a new module on sys.path and return its (never reused) name.

    ``code_digest`` is cached per module name for the whole process, so each call uses a
    new name.
    """
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(source: str) -> str:
        name = f"mlbuild_fp_probe_{next(_names)}_{tmp_path.name.replace('-', '_')}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        return name

    return write


# -------------------------------------------------------------------- code_digest


def test_code_digest_is_a_sha256(module_of):
    digest = code_digest(module_of(BASE))
    assert len(digest) == 64 and int(digest, 16) >= 0


def test_code_digest_of_the_same_code_is_the_same(module_of):
    assert code_digest(module_of(BASE)) == code_digest(module_of(BASE))


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(BASE.replace("import math\n", "import math  # for floor\n# a comment\n"),
                     id="comments"),
        pytest.param(BASE.replace("\n\n", "\n\n\n\n").replace("    total = 0\n",
                                                                "\n    total = 0\n\n"),
                     id="blank-lines"),
        pytest.param(BASE.replace("return math.floor(x * scale + RATE)",
                                  "return math.floor(\n            x*scale  +  (RATE),\n        )")
                     .replace("RATE = 0.1", "RATE = (0.1)")
                     .replace('"""Method docstring."""', "'''Method docstring.'''"),
                     id="formatting"),
        pytest.param(BASE.replace('"""Module docstring."""', '"""Another module docstring."""')
                     .replace('"""Class docstring."""', "")
                     .replace('"""Method docstring."""', '"""Changed.\n\n        Much longer.\n'
                                                         '        """'),
                     id="docstrings"),
        pytest.param(BASE.replace("def train(rows):\n", 'def train(rows):\n    "Added."\n'),
                     id="docstring-added"),
    ],
)
def test_code_digest_ignores_what_does_not_change_the_code(module_of, variant):
    assert variant != BASE
    assert code_digest(module_of(variant)) == code_digest(module_of(BASE))


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(BASE.replace("RATE = 0.1", "RATE = 0.2"), id="constant"),
        pytest.param(BASE.replace("x * scale", "x / scale"), id="operator"),
        pytest.param(BASE.replace("scale=2", "scale=3"), id="default"),
        pytest.param(BASE.replace("total += row", "total += row * row"), id="statement"),
        pytest.param(BASE.replace("import math", "import math\nimport os"), id="import"),
        pytest.param(BASE.replace("def train(rows):\n    total = 0",
                                  'def train(rows):\n    "not a docstring" if rows else 0\n'
                                  "    total = 0"), id="expression-not-a-docstring"),
    ],
)
def test_code_digest_changes_with_the_code(module_of, variant):
    assert code_digest(module_of(variant)) != code_digest(module_of(BASE))


def test_a_docstring_only_function_is_not_the_same_as_a_different_body(module_of):
    only_doc = code_digest(module_of('def f():\n    """Doc."""\n'))
    returns = code_digest(module_of('def f():\n    """Doc."""\n    return 1\n'))
    assert only_doc == code_digest(module_of("def f():\n    pass\n"))
    assert only_doc != returns


def test_code_digest_is_computed_once_per_module_and_process(module_of, tmp_path):
    name = module_of(BASE)
    first = code_digest(name)
    (tmp_path / f"{name}.py").write_text(BASE.replace("RATE = 0.1", "RATE = 0.5"))
    assert code_digest(name) == first


@pytest.mark.parametrize(
    "module",
    ["sys", "mlbuild_no_such_module_xyz", "mlbuild_no_such_package_xyz.training"],
)
def test_code_digest_of_a_module_without_python_source_is_a_build_error(module):
    with pytest.raises(BuildError, match=module.replace(".", r"\.")):
        code_digest(module)


# -------------------------------------------------------------------- digest_of


INPUTS = {
    "family": "TrainModel",
    "params": {"seed": "1", "train.num_leaves": 31, "train.rate": 0.05},
    "code": {"tasks.train": "ab" * 32},
    "packages": {"lightgbm": "4.3.0"},
    "data": {},
    "upstream": {"split": "cd" * 16},
}


def test_digest_of_is_stable_across_processes_and_versions():
    # A change here invalidates every stored result: bump fingerprint.SCHEMA on purpose.
    assert digest_of(INPUTS) == "cb00c2d50ff38de95136a58dd5d34ad0"


def test_digest_of_does_not_depend_on_key_order():
    reordered = {k: INPUTS[k] for k in reversed(list(INPUTS))}
    reordered["params"] = dict(reversed(list(INPUTS["params"].items())))
    assert list(reordered) != list(INPUTS)
    assert digest_of(reordered) == digest_of(INPUTS)


@pytest.mark.parametrize(
    "part, value",
    [
        ("family", "TrainModel2"),
        ("params", {**INPUTS["params"], "seed": "2"}),
        ("params", {**INPUTS["params"], "extra": "x"}),
        ("code", {"tasks.train": "ac" * 32}),
        ("packages", {"lightgbm": "4.3.1"}),
        ("data", {"raw": "00"}),
        ("upstream", {"split": "ce" * 16}),
    ],
)
def test_digest_of_changes_with_any_part(part, value):
    assert digest_of({**INPUTS, part: value}) != digest_of(INPUTS)


def test_digest_of_tells_types_apart():
    assert digest_of({"params": {"n": 1}}) != digest_of({"params": {"n": "1"}})


def test_canonical_json_has_sorted_keys_and_no_spaces():
    text = canonical_json({"b": 1, "a": {"d": [1, 2], "c": "é"}})
    assert text == '{"a":{"c":"é","d":[1,2]},"b":1}'


# -------------------------------------------------------------------- diff_inputs


def test_diff_inputs_names_each_change():
    old = {
        "params": {"n": "1", "lr": "0.1", "same": "x"},
        "code": {"tasks.train": "a" * 64, "tasks.util": "c" * 64},
        "packages": {"lightgbm": "4.3.0"},
        "data": {"raw": "d1"},
        "upstream": {"split": "f1", "other": "o1"},
    }
    new = {
        "params": {"n": "2", "seed": "42", "same": "x"},
        "code": {"tasks.train": "b" * 64, "tasks.util": "c" * 64},
        "packages": {"lightgbm": "4.5.0"},
        "data": {"raw": "d2"},
        "upstream": {"split": "f2", "other": "o2"},
    }
    lines = diff_inputs(old, new, families={"split": "SplitData"})
    assert "parameter n: 1 -> 2" in lines
    assert "parameter lr: removed (was 0.1)" in lines
    assert "parameter seed: new (42)" in lines
    assert "code module tasks.train changed" in lines
    assert "package lightgbm: 4.3.0 -> 4.5.0" in lines
    assert "data raw: d1 -> d2" in lines
    assert "upstream task split (SplitData) changed" in lines
    assert "upstream task other changed" in lines
    assert len(lines) == 8  # nothing about what did not change
    assert not any("same" in line or "tasks.util" in line for line in lines)


def test_diff_inputs_of_equal_inputs_is_empty():
    assert diff_inputs(INPUTS, dict(INPUTS)) == []


def test_diff_inputs_shortens_long_values():
    (line,) = diff_inputs({"params": {"p": "x" * 200}}, {"params": {"p": "y" * 200}})
    assert line.startswith("parameter p: xxx") and "-> yyy" in line
    assert len(line) < 160


# -------------------------------------------------------------------- package_version


def test_package_version_of_an_installed_package():
    assert package_version("luigi") == importlib.metadata.version("luigi")


def test_package_version_of_a_missing_package_is_a_config_error():
    with pytest.raises(ConfigError, match="mlbuild-no-such-package-xyz.*not installed"):
        package_version("mlbuild-no-such-package-xyz")


def test_a_packages_digest_covers_every_module_in_it(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    package = tmp_path / f"mlbuild_fp_package_{tmp_path.name.replace('-', '_')}"
    package.mkdir()
    (package / "__init__.py").write_text('"""A package."""\n')
    (package / "inner.py").write_text("VALUE = 1\n")
    importlib.invalidate_caches()
    before = code_digest(package.name)
    (package / "inner.py").write_text("VALUE = 2\n")
    code_digest.cache_clear()
    assert code_digest(package.name) != before


def test_a_library_task_fingerprints_the_library_code_it_runs_and_a_project_task_does_not():
    from tasks import EvaluateAccuracy, TrainModel

    evaluate = EvaluateAccuracy().fingerprint_inputs()
    assert {"tasks.release", "mlbuild.tasks.evaluate", "mlbuild.tasks.release",
            "mlbuild.accuracy", "tasks.inference"} <= set(evaluate["code"])
    assert "mlbuild" in evaluate["packages"]
    trained = TrainModel().fingerprint_inputs()
    assert not [m for m in trained["code"] if m.startswith("mlbuild")]
