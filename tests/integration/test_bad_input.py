"""Bad input: each case stops with a clear message and its own exit code, and leaves
what the store already held untouched (no partial result, no manifest, same lock)."""

from __future__ import annotations

import pytest

from mlbuild.errors import ConfigError, DataError, IntegrityError, MissingError, StoreError

pytestmark = pytest.mark.integration

HEADER = ",".join(f"pixel_{i}_{j}" for i in range(8) for j in range(8)) + ",label"


def _rows(n: int, label=lambda i: i % 10, pixel=lambda i: "1") -> str:
    lines = [HEADER] + [",".join([pixel(i)] * 64) + f",{label(i)}" for i in range(n)]
    return "\n".join(lines) + "\n"


def _use_file(project, text: str) -> None:
    (project.root / "data.csv").write_text(text)
    project.edit("configs/pipeline.toml", 'source = "builtin:digits"', 'source = "file://data.csv"')


def missing_label(p):
    _use_file(p, _rows(600).replace(",label\n", ",target\n", 1))


def non_numeric_feature(p):
    _use_file(p, _rows(600, pixel=lambda i: "abc" if i == 17 else "1"))


def nan_labels(p):
    _use_file(p, _rows(600, label=lambda i: "" if i in (3, 5) else i % 10))


def empty_file(p):
    _use_file(p, "")


def single_class(p):
    _use_file(p, _rows(600, label=lambda i: 0))


def too_few_rows(p):
    _use_file(p, _rows(100))


def checksum_mismatch(p):
    p.edit("configs/pipeline.toml", "# sha256 = ", "sha256 = \"" + "0" * 64 + "\" #")


def missing_source(p):
    p.edit("configs/pipeline.toml", 'source = "builtin:digits"', 'source = "file://nowhere.csv"')


def unknown_config_key(p):
    p.edit("configs/pipeline.toml", "num_threads = 2", "num_threads = 2\nnum_thread = 4")


def wrong_config_type(p):
    p.edit("configs/pipeline.toml", "min = 0.90", 'min = "high"')


CASES = {
    # name: (make it bad, error kind, words the message must contain, luigi retcode)
    "missing label column": (missing_label, DataError, ["label column 'label' is missing"], 21),
    "non-numeric feature": (non_numeric_feature, DataError,
                            ["must be number", "non-numeric", "'abc'", "data row 18"], 21),
    "NaN labels": (nan_labels, DataError, ["2 missing label(s)", "data row 4"], 21),
    "empty file": (empty_file, DataError, ["is empty"], 21),
    "single class": (single_class, DataError, ["1 class(es)", "at least 2"], 21),
    "too few rows": (too_few_rows, DataError, ["100 rows", "schema.min_rows = 500"], 21),
    "checksum mismatch": (checksum_mismatch, IntegrityError,
                          ["data.sha256 pins " + "0" * 64, "has sha256"], 21),
    "missing source file": (missing_source, MissingError, ["nowhere.csv does not exist"], 23),
    "unknown config key": (unknown_config_key, ConfigError,
                           ["train.num_thread: unknown key", "Did you mean 'num_threads'?"], 23),
    "wrong config type": (wrong_config_type, ConfigError,
                          ["gates.threshold.0.min", "'high'"], 23),
}


@pytest.mark.parametrize("name", CASES)
def test_bad_input_fails_clearly_and_leaves_the_store_untouched(built, name):
    make_bad, error, words, luigi_code = CASES[name]
    files, manifests, lock = built.files(), built.manifests(), built.lock.read_bytes()
    make_bad(built)

    result = built.mlbuild("run", "PublishModel")
    assert result.returncode == error.exit_code, result.stderr
    for word in words:
        assert word in result.stderr, f"{word!r} not in:\n{result.stderr}"
    assert "Traceback" not in result.stderr

    after = built.files()
    assert {k: after.get(k) for k in files} == files, "a stored file changed"
    new = set(built.manifests()) - set(manifests)
    assert {k.split("/")[0] for k in new} <= {"FetchData"}, f"unexpected results: {new}"
    assert not any(k.endswith(".tmp") or ".tmp-" in k for k in after)
    assert built.lock.read_bytes() == lock

    # The plain luigi command fails too, with the [retcode] code of luigi.cfg.
    assert built.luigi().returncode == luigi_code


def test_an_unusable_store_path_is_a_store_error(project):
    (project.root / "not-a-folder").write_text("a file where the store should be")
    project.edit("luigi.cfg", "store = .mlbuild/store", "store = not-a-folder/store")
    result = project.mlbuild("run", "PublishModel")
    assert result.returncode == StoreError.exit_code, result.stderr
    assert "not-a-folder/store" in result.stderr and "writable folder" in result.stderr
    assert (project.root / "not-a-folder").read_text() == "a file where the store should be"


def test_status_reports_a_config_error_with_its_code(project):
    unknown_config_key(project)
    result = project.mlbuild("status", "PublishModel")
    assert result.returncode == ConfigError.exit_code
    assert "train.num_thread: unknown key" in result.stderr


def test_an_unknown_task_is_a_config_error(project):
    result = project.mlbuild("run", "NoSuchTask")
    assert result.returncode == ConfigError.exit_code
    assert "NoSuchTask" in result.stderr
