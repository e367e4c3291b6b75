"""Schema checks on typed tables: infinities, fractions, labels, in plain numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlbuild.data import SchemaConfig, check_schema

SCHEMA = {"label": "label", "columns": {"x*": "number", "n": "integer", "label": "integer"}}


def schema(**extra) -> SchemaConfig:
    return SchemaConfig.model_validate({**SCHEMA, **extra})


def frame(**columns) -> pd.DataFrame:
    base = {"x1": [0.5, 1.5, 2.5], "n": [1, 2, 3], "label": [0, 1, 0]}
    return pd.DataFrame({**base, **columns})


def test_a_conforming_frame_has_no_problems():
    assert check_schema(frame(), schema()) == []


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_numbers_are_refused_with_their_first_row(value):
    (problem,) = check_schema(frame(x1=[0.5, value, value]), schema())
    assert problem == (f"column 'x1': 2 infinite value(s), first {value!r} in data row 2; set "
                       "schema.allow_infinite = true if they are meant.")


def test_a_schema_may_allow_infinities():
    assert check_schema(frame(x1=[0.5, np.inf, 1.0]), schema(allow_infinite=True)) == []


def test_messages_show_plain_numbers_not_numpy_reprs():
    problems = check_schema(frame(n=[1.0, 2.5, 3.0], label=[0, 12, 0]),
                            schema(allowed_labels=[0, 1]))
    text = "\n".join(problems)
    assert "first 2.5 in data row 2" in text
    assert "label(s) [12] are not in schema.allowed_labels [0, 1]" in text
    assert "np." not in text
