"""The public API, pinned for the package and each subpackage; the exception tree's codes."""

from __future__ import annotations

import ast
import builtins
import importlib
import subprocess
import sys
import types
import warnings
from pathlib import Path

import pytest

import mlbuild
from mlbuild import errors
from mlbuild.errors import ERROR_KINDS, EXIT_OK, EXIT_USAGE, REFINED_ERRORS, MlbuildError

#: the pinned public API of the package and of each subpackage
PUBLIC = {
    "mlbuild": {
        "AcceptanceTest", "BatchError", "BuildError", "BuildImage", "BuildServiceImage", "BuildTask",
        "BuildTestImage", "BuildTrainingImage", "CheckDrift", "ConfigError", "DataError", "EvaluateAccuracy", "FullPipeline",
        "GateFailedError", "GatesConfig", "ImageConfig", "ImageError", "IntegrityError", "LightGBMParams", "LocalCache",
        "MissingError", "MlbuildError", "ObjectInfo", "ObjectMissingError", "PublishConfig", "PublishModel",
        "PushImage", "ReleaseConfig", "ReleaseTask", "SchemaConfig", "Section", "ServiceAcceptanceTest", "Store",
        "StoreError", "StoreIntegrityError", "TestsFailedError", "TiersConfig", "evaluate_released", "load_config",
        "open_store", "read_csv", "sources", "validate_schema", "StoredObject", "TableView",
        "open_table", "read_frame", "read_table", "write_rows", "write_table",
    },
    "mlbuild.core": {"BuildTask", "Executor", "Manifest", "OutputRecord"},
    "mlbuild.store": {"LocalCache", "LocalStore", "ObjectInfo", "StaleWrite", "Store",
                      "StoreTarget", "StoredObject", "check_digest", "copy_hashing", "file_digest", "locate",
                      "open_store"},
    "mlbuild.accuracy": {"METRICS", "Drift", "DriftConfig", "Evaluation", "GateResult", "GatesConfig", "Predictions",
                         "SamplePlan", "TiersConfig", "evaluate", "plan_sample",
                         "predict_in_chunks", "stratified_sample", "write_reports", "check_drift"},
    "mlbuild.data": {"ColumnKind", "SchemaConfig", "TableView", "check_schema", "open_table",
                     "read_csv", "read_frame", "read_table", "snapshots", "sources", "validate",
                     "write_rows", "write_table"},
    "mlbuild.release": {"LockFile", "ModelEntry", "ModelVersion", "metrics_diff", "model_history",
                        "publish_model", "pull_models", "released_model", "rollback_model",
                        "verify_lock"},
    "mlbuild.ci": {"RunOutcome", "StageResult", "pipeline_state", "run_stage", "run_task"},
    "mlbuild.images": {"ContainerResult"},
    "mlbuild.batch": {"EXPECT_ENV", "JOB_ID_ENV", "BatchExecutor", "BatchSettings", "batch",
                      "check_expected", "runs_on_batch"},
    "mlbuild.aws": {"AwsCall", "classify", "client", "client_config", "endpoint_name", "transfer_config",
                    "translate", "translated"},
    "mlbuild.tasks": {"AcceptanceTest", "BuildImage", "BuildServiceImage", "BuildTestImage", "BuildTrainingImage", "CheckDrift", "EvaluateAccuracy",
                      "FullPipeline", "GatedTask", "ImageConfig", "ImageTask", "Inference",
                      "PublishConfig", "PublishModel", "PushImage", "ReleaseConfig",
                      "ReleaseTask", "ServiceAcceptanceTest", "evaluate_model", "evaluate_released"},
}
PACKAGES = sorted(PUBLIC)
REPO = Path(__file__).resolve().parents[2]


def test_every_subpackage_pins_its_api():
    held = {f"mlbuild.{p.parent.name}" for p in (REPO / "mlbuild").glob("*/__init__.py")}
    assert held | {"mlbuild"} == set(PUBLIC)


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_exactly_the_public_api(package):
    module = importlib.import_module(package)
    assert set(module.__all__) == PUBLIC[package]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_is_importable(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None
        # what `from <package> import <name>` does
        imported = __import__(package, fromlist=[name])
        assert getattr(imported, name) is getattr(module, name)


@pytest.mark.parametrize("package", PACKAGES)
def test_the_package_exports_every_public_name_it_holds(package):
    # httpx's test_exported_members: nothing public hides outside __all__ (submodules aside).
    module = importlib.import_module(package)
    for name in module.__all__:
        getattr(module, name)  # loads the lazily imported names
    held = {
        name for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert held == {n for n in module.__all__ if not isinstance(getattr(module, n),
                                                                  types.ModuleType)}


def test_the_top_level_loads_the_release_tasks_only_on_first_use():
    code = ("import sys, mlbuild; print(sorted(m for m in ('mlbuild.tasks', 'pydantic', "
            "'mlbuild.accuracy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("project", ["tasks", "examples"])
def test_the_projects_import_only_the_public_api(project):
    """A project written against mlbuild imports ``mlbuild`` and its top-level names only."""
    offending = []
    for path in sorted((REPO / project).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offending += [f"{path.relative_to(REPO)}: {n}" for n in names
                          if n.startswith("mlbuild.")]
    assert offending == []


def test_every_error_kind_is_exported():
    every = ERROR_KINDS + REFINED_ERRORS
    assert {cls.__name__ for cls in every} <= set(mlbuild.__all__)
    assert {
        name for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, MlbuildError)
    } == {cls.__name__ for cls in every}


@pytest.mark.parametrize("cls, kind", [(errors.ObjectMissingError, errors.MissingError),
                                       (errors.StoreIntegrityError, errors.IntegrityError)],
                         ids=lambda c: c.__name__)
def test_a_store_error_is_also_the_kind_a_caller_catches_and_exits_with_its_code(cls, kind):
    assert cls in REFINED_ERRORS
    assert issubclass(cls, errors.StoreError) and issubclass(cls, kind)
    assert (cls.exit_code, cls.kind) == (kind.exit_code, kind.kind)
    assert f"{cls.__name__} " in errors.__doc__ and f"({cls.exit_code})" in errors.__doc__
    assert f"also a{'n' if kind.__name__[0] in 'AEIOU' else ''} {kind.__name__}" in errors.__doc__
    with pytest.raises(kind):
        raise cls("x")
    with pytest.raises(errors.StoreError):
        raise cls("x")


@pytest.mark.parametrize("module", [mlbuild, errors], ids=lambda m: m.__name__)
@pytest.mark.parametrize("old, new", [("GateFailed", "GateFailedError"),
                                      ("TestsFailed", "TestsFailedError")])
def test_the_old_error_names_still_import_with_a_deprecation_warning(module, old, new):
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated; use .*{new}"):
        assert getattr(module, old) is getattr(errors, new)
    with pytest.warns(DeprecationWarning):
        exec(f"from {module.__name__} import {old}", {})  # noqa: S102 - the import statement
    assert old not in mlbuild.__all__ and old not in vars(module)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AttributeError):
            module.NoSuchName  # noqa: B018


def test_a_hint_is_structured_and_str_keeps_the_message_hint_form():
    error = errors.StoreError("The store is gone.", hint="bring it back.")
    assert (error.message, error.hint) == ("The store is gone.", "bring it back.")
    assert str(error) == "The store is gone. Hint: bring it back."
    assert error.args == ("The store is gone.",)
    plain = errors.ConfigError("Bad key.")
    assert plain.hint is None and str(plain) == "Bad key."
    import pickle

    again = pickle.loads(pickle.dumps(error))
    assert (type(again), again.message, again.hint) == (errors.StoreError, error.message,
                                                        error.hint)



def test_error_kinds_have_distinct_documented_exit_codes():
    codes = [cls.exit_code for cls in ERROR_KINDS]
    assert len(set(codes)) == len(codes)
    assert EXIT_OK not in codes and EXIT_USAGE not in codes
    assert all(isinstance(c, int) and 0 < c < 126 for c in codes)
    for cls in ERROR_KINDS:
        assert f"({cls.exit_code})" in errors.__doc__
        assert cls.__name__ in errors.__doc__
        assert cls.kind and cls.kind != "error" or cls is MlbuildError


@pytest.mark.parametrize("cls", ERROR_KINDS[1:], ids=lambda c: c.__name__)
def test_each_error_kind_also_inherits_a_builtin_a_caller_would_catch(cls):
    assert issubclass(cls, MlbuildError)
    generic = (BaseException, Exception, object)
    specific = [
        base for base in cls.__mro__
        if base not in generic and getattr(builtins, base.__name__, None) is base
    ]
    assert specific, f"{cls.__name__} inherits no specific builtin exception"
    assert f"{cls.__name__}({specific[0].__name__})" in errors.__doc__


def test_the_root_is_a_plain_exception():
    assert MlbuildError.__bases__ == (Exception,)
    assert MlbuildError.exit_code == 1
