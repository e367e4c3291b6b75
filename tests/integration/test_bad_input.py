"""Bad input: each case stops with a clear message and its own exit code, and leaves
what the store already held untouched (no partial result, no manifest, same lock)."""

from __future__ import annotations

import re

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


def duplicate_column(p):
    _use_file(p, _rows(600).replace("pixel_0_1,", "pixel_0_0,", 1))


def infinite_value(p):
    _use_file(p, _rows(600, pixel=lambda i: "inf" if i == 41 else "1"))


def fractional_label(p):
    _use_file(p, _rows(600, label=lambda i: "1.5" if i == 9 else i % 10))


def unknown_label(p):
    _use_file(p, _rows(600, label=lambda i: 12 if i == 30 else i % 10))


def not_text(p):
    (p.root / "data.csv").write_bytes(bytes(range(256)) * 40)
    p.edit("configs/pipeline.toml", 'source = "builtin:digits"', 'source = "file://data.csv"')


def truncated_arrow(p):
    import pyarrow as pa

    from mlbuild import write_table
    from tests.conftest import edited_digits

    write_table(pa.Table.from_pandas(edited_digits(), preserve_index=False), p.root / "d.arrow")
    data = (p.root / "d.arrow").read_bytes()
    (p.root / "d.arrow").write_bytes(data[: len(data) // 2])
    p.edit("configs/pipeline.toml", 'source = "builtin:digits"', 'source = "file://d.arrow"')


def parquet_text_label(p):
    from tests.conftest import edited_digits

    frame = edited_digits()
    frame["label"] = frame["label"].map(lambda v: f"digit {v}")
    frame.to_parquet(p.root / "d.parquet", index=False)
    p.edit("configs/pipeline.toml", 'source = "builtin:digits"', 'source = "file://d.parquet"')


def header_only(p):
    _use_file(p, HEADER + "\n")


def one_row_class(p):
    _use_file(p, _rows(600, label=lambda i: 9 if i == 0 else i % 9))


def many_missing_values(p):
    _use_file(p, _rows(600, pixel=lambda i: "" if i % 3 == 0 else "1"))


def misspelt_lightgbm_parameter(p):
    p.edit("configs/pipeline.toml", "num_leaves = 15", "num_leafs = 15")


def number_as_text(p):
    p.edit("configs/pipeline.toml", "learning_rate = 0.1", 'learning_rate = "0.1"')


def three_config_mistakes(p):
    misspelt_lightgbm_parameter(p)
    number_as_text(p)
    p.edit("configs/pipeline.toml", "test_fraction = 0.25", "test_fractoin = 0.25")


def invalid_toml(p):
    p.edit("configs/pipeline.toml", "[split]", "[split")


def fraction_out_of_range(p):
    p.edit("configs/pipeline.toml", "test_fraction = 0.25", "test_fraction = 1.5")


def unknown_scheme(p):
    p.edit("configs/pipeline.toml", 'source = "builtin:digits"', 'source = "ftp://host/d.csv"')


def malformed_pin(p):
    p.edit("configs/pipeline.toml", "# sha256 = ", 'sha256 = "abc" #')


def missing_pipeline_config(p):
    p.edit("luigi.cfg", "config = configs/pipeline.toml", "config = configs/missing.toml")


def pattern_without_column(p):
    p.edit("configs/pipeline.toml", '"pixel_*" = "number"', '"pixel_*" = "number"\n"px_*" = "number"')


def unknown_metric(p):
    p.edit("configs/pipeline.toml", 'metric = "macro_f1"', 'metric = "f2"')


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
    "duplicate column": (duplicate_column, DataError,
                         ["two columns named 'pixel_0_0' (columns 1 and 2)"], 21),
    "infinite value": (infinite_value, DataError,
                       ["infinite value(s)", "first inf in data row 42", "allow_infinite"], 21),
    "fractional label": (fractional_label, DataError,
                         ["'label' must be integer", "with a fraction", "first 1.5 in data row 10"],
                         21),
    "label not allowed": (unknown_label, DataError,
                          ["label(s) [12] are not in schema.allowed_labels"], 21),
    "not a text file": (not_text, DataError, ["is not a readable CSV file"], 21),
    "truncated Arrow file": (truncated_arrow, DataError, ["is not a readable arrow file"], 21),
    "text labels in Parquet": (parquet_text_label, DataError,
                               ["'label' must be integer", "'digit 0' in data row 1"], 21),
    "header only": (header_only, DataError, ["0 rows, fewer than schema.min_rows = 500"], 21),
    "a class of one row": (one_row_class, DataError,
                           ["Cannot split the data 25% test, stratified by 'label'"], 21),
    "too many missing values": (many_missing_values, DataError,
                                ["missing values, above schema.max_null_fraction = 0.0"], 21),
    "misspelt LightGBM parameter": (misspelt_lightgbm_parameter, ConfigError,
                                    ["train.params.num_leafs: not a LightGBM parameter",
                                     "Did you mean 'num_leaves'?"], 23),
    "number written as text": (number_as_text, ConfigError,
                               ["train.params.learning_rate: '0.1' is text"], 23),
    "three config mistakes": (three_config_mistakes, ConfigError,
                              ["has 3 problem(s)", "test_fractoin", "num_leafs",
                               "learning_rate"], 23),
    "invalid TOML": (invalid_toml, ConfigError, ["is not valid TOML"], 23),
    "test fraction out of range": (fraction_out_of_range, ConfigError,
                                   ["split.test_fraction", "1.5"], 23),
    "unknown source scheme": (unknown_scheme, ConfigError, ["ftp://host/d.csv", "not a known"],
                              23),
    "malformed sha256 pin": (malformed_pin, ConfigError, ["data.sha256", "'abc'"], 23),
    "missing pipeline config": (missing_pipeline_config, ConfigError,
                                ["configs/missing.toml does not exist"], 23),
    "schema pattern without a column": (pattern_without_column, DataError,
                                        ["schema.columns 'px_*': no column matches it"], 21),
    "unknown gate metric": (unknown_metric, ConfigError, ["f2"], 23),
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
    new = {k.split("/")[0] for k in set(built.manifests()) - set(manifests)}
    failed = re.findall(r"✗ (\S+) \(", result.stderr)  # a task, or a config file at fault
    assert failed, result.stderr
    assert failed[0].split("(")[0] not in new, f"the failed task {failed} left a result"
    if "problem(s)" in result.stderr:  # a config file's problems are the file's
        assert failed[0] == "configs/pipeline.toml", failed
    assert new <= {"FetchData", "ValidateData"}, f"unexpected results: {new}"
    assert not any(k.endswith(".tmp") or ".tmp-" in k for k in after)
    assert built.lock.read_bytes() == lock

    # The plain luigi command fails too, with the [retcode] code of luigi.cfg, and says
    # the same in its log, without a traceback.
    plain = built.luigi()
    assert plain.returncode == luigi_code, plain.stderr
    assert words[0] in plain.stderr and "Traceback" not in plain.stderr


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
