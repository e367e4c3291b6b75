"""The public API: exactly the names meant, all importable; the exception tree's codes."""

from __future__ import annotations

import builtins
import importlib
import types
import warnings

import pytest

import mlbuild
from mlbuild import errors
from mlbuild.errors import ERROR_KINDS, EXIT_OK, EXIT_USAGE, REFINED_ERRORS, MlbuildError

PUBLIC = {
    "BatchError",
    "BuildError",
    "BuildTask",
    "ConfigError",
    "DataError",
    "GateFailedError",
    "ImageError",
    "IntegrityError",
    "LocalCache",
    "MissingError",
    "MlbuildError",
    "ObjectInfo",
    "ObjectMissingError",
    "Store",
    "StoreError",
    "StoreIntegrityError",
    "TestsFailedError",
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
