"""The public API: exactly the names meant, all importable; the exception tree's codes."""

from __future__ import annotations

import builtins
import importlib
import types

import pytest

import mlbuild
from mlbuild import errors
from mlbuild.errors import ERROR_KINDS, EXIT_OK, EXIT_USAGE, MlbuildError

PUBLIC = {
    "BatchError",
    "BuildError",
    "BuildTask",
    "ConfigError",
    "DataError",
    "GateFailed",
    "ImageError",
    "IntegrityError",
    "LocalCache",
    "MissingError",
    "MlbuildError",
    "ObjectInfo",
    "Store",
    "StoreError",
    "TestsFailed",
    "open_store",
}


def test_all_is_exactly_the_public_api():
    assert set(mlbuild.__all__) == PUBLIC
    assert len(mlbuild.__all__) == len(set(mlbuild.__all__))
    assert mlbuild.__all__ == sorted(mlbuild.__all__)


def test_every_public_name_is_importable():
    for name in mlbuild.__all__:
        module = importlib.import_module("mlbuild")
        assert getattr(module, name) is not None
        # what `from mlbuild import <name>` does
        imported = __import__("mlbuild", fromlist=[name])
        assert getattr(imported, name) is getattr(mlbuild, name)


def test_the_package_exports_every_public_name_it_holds():
    # httpx's test_exported_members: nothing public hides outside __all__ (submodules aside).
    held = {
        name for name, value in vars(mlbuild).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert held == set(mlbuild.__all__)


def test_every_error_kind_is_exported():
    assert {cls.__name__ for cls in ERROR_KINDS} <= set(mlbuild.__all__)
    assert {
        name for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, MlbuildError)
    } == {cls.__name__ for cls in ERROR_KINDS}


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
