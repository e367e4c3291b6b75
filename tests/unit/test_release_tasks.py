"""The release tasks' hooks: how a project's tasks find each other, and the inference contract."""

from __future__ import annotations

import sys
import types

import pytest

import mlbuild
from mlbuild.errors import BuildError, ConfigError
from mlbuild.tasks import Inference


def _project(name: str):
    """A project's hooks class, defined as if in a module of its own (not mlbuild's)."""
    hooks = type(f"{name}Release", (mlbuild.ReleaseTask,), {"__module__": name})
    return hooks


def _declare(hooks, library_class, name=None):
    name = name or library_class.__name__
    return type(name, (hooks, library_class), {"__module__": hooks.__module__})


def test_a_release_task_finds_the_projects_own_subclass_of_another():
    hooks = _project("alpha")
    evaluate = _declare(hooks, mlbuild.EvaluateAccuracy, "AlphaEvaluate")
    publish = _declare(hooks, mlbuild.PublishModel, "AlphaPublish")
    other = _project("beta")
    _declare(other, mlbuild.EvaluateAccuracy, "BetaEvaluate")  # another project's
    assert publish.project_class(mlbuild.EvaluateAccuracy) is evaluate
    assert hooks.hooks() is hooks and publish.hooks() is hooks


def test_a_missing_or_doubled_task_is_named_with_what_to_declare():
    hooks = _project("gamma")
    publish = _declare(hooks, mlbuild.PublishModel, "GammaPublish")
    with pytest.raises(BuildError, match="defines none") as missing:
        publish.project_class(mlbuild.EvaluateAccuracy)
    assert "class EvaluateAccuracy(gammaRelease, mlbuild.EvaluateAccuracy)" in missing.value.hint
    _declare(hooks, mlbuild.EvaluateAccuracy, "GammaEvaluateOne")
    _declare(hooks, mlbuild.EvaluateAccuracy, "GammaEvaluateTwo")
    with pytest.raises(BuildError, match="defines 2"):
        publish.project_class(mlbuild.EvaluateAccuracy)


def test_a_library_task_is_not_a_project():
    with pytest.raises(BuildError, match="library task"):
        mlbuild.PublishModel.hooks()


def _module(monkeypatch, name: str, **functions):
    module = types.ModuleType(name)
    module.__dict__.update(functions)
    monkeypatch.setitem(sys.modules, name, module)
    return name


def test_the_inference_contract_is_checked_and_called(monkeypatch):
    import numpy as np
    import pandas as pd

    name = _module(monkeypatch, "proj_inference", load_model=lambda path: {"w": 2.0},
                   features=lambda model: ["x"],
                   predict_proba=lambda model, frame: np.column_stack(
                       [1 - frame["x"] / model["w"], frame["x"] / model["w"]]))
    api = Inference(name)
    model = api.load("model.json")
    predicted, proba = api.predictor(model)(pd.DataFrame({"x": [0.2, 1.8]}))
    assert predicted.tolist() == [0, 1] and proba.shape == (2, 2)
    assert api.missing_features(model, ["y"]) == ("x",)

    regressor = _module(monkeypatch, "proj_regressor", load_model=lambda path: None,
                        predict=lambda model, frame: frame["x"] * 3)
    predicted, proba = Inference(regressor).predictor(None)(pd.DataFrame({"x": [1, 2]}))
    assert predicted.tolist() == [3, 6] and proba is None
    assert Inference(regressor).missing_features(None, []) == ()


@pytest.mark.parametrize("module, words", [
    ("", "names no inference module"),
    ("no_such_inference_module", "cannot be imported"),
])
def test_a_wrong_inference_module_is_a_config_error(module, words):
    with pytest.raises(ConfigError, match=words):
        Inference(module)


def test_an_inference_module_without_the_contract_is_a_config_error(monkeypatch):
    name = _module(monkeypatch, "proj_half", load_model=lambda path: None)
    with pytest.raises(ConfigError, match="must define load_model"):
        Inference(name)


def test_the_distribution_holds_the_library_and_its_files_only():
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    setuptools = config["tool"]["setuptools"]
    assert setuptools["packages"]["find"]["include"] == ["mlbuild*"]
    assert setuptools["package-data"]["mlbuild.tasks"] == ["files/*"]
