"""Configuration: a TOML file validated once, with messages that say what to fix."""

from __future__ import annotations

import os
import re

import pytest

from mlbuild.config import Section, load_config
from mlbuild.errors import ConfigError


class Model(Section):
    learning_rate: float = 0.1
    num_leaves: int = 31


class Data(Section):
    url: str
    rows: int = 1000


class Pipeline(Section):
    name: str
    seed: int = 0
    data: Data
    model: Model = Model()


GOOD = """
name = "digits"
seed = 7

[data]
url = "https://example.com/digits.csv"

[model]
learning_rate = 0.05
"""


def write(tmp_path, text: str):
    path = tmp_path / "pipeline.toml"
    path.write_text(text)
    return path


def test_a_valid_file_loads(tmp_path):
    config = load_config(write(tmp_path, GOOD), Pipeline)
    assert config.name == "digits" and config.seed == 7
    assert config.data.url.endswith("digits.csv") and config.data.rows == 1000
    assert config.model == Model(learning_rate=0.05)


def test_an_unknown_key_is_named_with_a_suggestion(tmp_path):
    path = write(tmp_path, GOOD.replace("learning_rate", "lerning_rate"))
    with pytest.raises(ConfigError) as caught:
        load_config(path, Pipeline)
    message = str(caught.value)
    assert str(path) in message
    assert "model.lerning_rate: unknown key" in message
    assert "Did you mean 'learning_rate'?" in message
    assert "num_leaves" in message  # the keys known there


def test_an_unknown_top_level_key_is_named_with_a_suggestion(tmp_path):
    path = write(tmp_path, "sede = 3\n" + GOOD)
    with pytest.raises(ConfigError, match=r"sede: unknown key\. Did you mean 'seed'\?"):
        load_config(path, Pipeline)


def test_an_unknown_key_with_no_close_match_lists_the_known_keys(tmp_path):
    path = write(tmp_path, GOOD.replace('[data]\n', '[data]\nzzzzzz = 1\n'))
    with pytest.raises(ConfigError) as caught:
        load_config(path, Pipeline)
    message = str(caught.value)
    assert "data.zzzzzz: unknown key." in message
    assert "Did you mean" not in message
    assert "Known keys here: url, rows." in message


def test_a_wrong_type_names_the_key_the_expectation_and_the_value(tmp_path):
    path = write(tmp_path, GOOD.replace("seed = 7", 'seed = "seven"'))
    with pytest.raises(ConfigError) as caught:
        load_config(path, Pipeline)
    message = str(caught.value)
    assert str(path) in message
    assert re.search(r"seed: .*integer.*\(got 'seven'\)", message), message


def test_types_are_not_coerced(tmp_path):
    path = write(tmp_path, GOOD.replace("learning_rate = 0.05", 'learning_rate = "0.05"'))
    with pytest.raises(ConfigError, match=r"model\.learning_rate: .*number.*\(got '0\.05'\)"):
        load_config(path, Pipeline)


def test_every_problem_is_reported_at_once(tmp_path):
    text = GOOD.replace("seed = 7", 'seed = "x"\nnmae = "y"').replace("url = ", "ur = ")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, Pipeline)
    message = str(caught.value)
    assert "has 4 problem(s)" in message
    for part in ("seed:", "nmae: unknown key", "data.ur: unknown key",
                 "data.url: required, but not set."):
        assert part in message, message


def test_a_missing_file_is_named(tmp_path):
    path = tmp_path / "nowhere" / "pipeline.toml"
    with pytest.raises(ConfigError, match=re.escape(str(path)) + ".*does not exist"):
        load_config(path, Pipeline)


def test_invalid_toml_is_named(tmp_path):
    path = write(tmp_path, GOOD + "\n[model\n")
    with pytest.raises(ConfigError, match=re.escape(str(path)) + " is not valid TOML"):
        load_config(path, Pipeline)


def test_an_edited_file_is_read_again(tmp_path):
    path = write(tmp_path, GOOD)
    os.utime(path, ns=(1_600_000_000_000_000_000,) * 2)
    assert load_config(path, Pipeline).seed == 7
    path.write_text(GOOD.replace("seed = 7", "seed = 8"))
    os.utime(path, ns=(1_700_000_000_000_000_000,) * 2)
    assert load_config(path, Pipeline).seed == 8


def test_sections_are_frozen(tmp_path):
    config = load_config(write(tmp_path, GOOD), Pipeline)
    with pytest.raises(ValueError):
        config.seed = 1
