"""A table's schema, and every way a table breaks it.

Every violation is collected and reported at once, so a person fixes them all in one go
instead of one per run.
"""

from __future__ import annotations

import fnmatch
from typing import Literal

from pydantic import Field

from mlbuild.config import Section
from mlbuild.errors import DataError

ColumnKind = Literal["integer", "number", "string"]


class SchemaConfig(Section):
    label: str = "label"
    #: column name or glob pattern -> kind; every column must match one, every entry a column
    columns: dict[str, ColumnKind]
    #: for a classifier: the labels it may see (None: any)
    allowed_labels: list[int] | None = None
    #: at least this many distinct labels (2 for a classifier; 0 for a regressor)
    min_classes: int = Field(default=2, ge=0)
    min_rows: int = Field(default=1, ge=1)
    max_null_fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    #: whether a number column may hold inf and -inf (pandas reads "inf" in a CSV as one)
    allow_infinite: bool = False


def read_csv(path, where: str):
    """A CSV file as a frame; an empty or unreadable file is a DataError naming ``where``."""
    import pandas as pd

    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{where} is empty: it has no header and no rows.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{where} is not a readable CSV file: {exc}.") from exc


def check_schema(frame, schema: SchemaConfig) -> list[str]:
    """Every way ``frame`` breaks ``schema``, one line each (empty when it conforms)."""
    kinds, problems = _column_kinds([str(c) for c in frame.columns], schema)
    for column, kind in kinds.items():
        problems += _column_problems(frame, column, kind, schema)
    if schema.label in kinds:
        problems += _label_problems(frame[schema.label], schema)
    if len(frame) < schema.min_rows:
        problems.append(f"{len(frame)} rows, fewer than schema.min_rows = {schema.min_rows}.")
    return problems


def _column_kinds(columns: list[str], schema: SchemaConfig) -> tuple[dict[str, str], list[str]]:
    """The kind of each column (its first matching pattern), and the columns' problems."""
    problems, kinds = [], {}
    for pattern, kind in schema.columns.items():
        matched = fnmatch.filter(columns, pattern)
        if not matched:
            problems.append(f"schema.columns {pattern!r}: no column matches it.")
        for column in matched:
            kinds.setdefault(column, kind)
    unexpected = [c for c in columns if c not in kinds]
    if unexpected:
        problems.append(f"unexpected column(s) not in schema.columns: {', '.join(unexpected[:10])}.")
    if schema.label not in columns:
        more = ", ..." if len(columns) > 10 else ""
        problems.append(f"the label column {schema.label!r} is missing (columns: "
                        f"{', '.join(columns[:10])}{more}).")
    return kinds, problems


def plain(value):
    """A numpy scalar as the Python value it holds, so messages say 12, not np.int64(12)."""
    return value.item() if hasattr(value, "item") else value


def _first_bad(values, bad_mask) -> str:
    row = int(bad_mask.to_numpy().nonzero()[0][0])
    return f"first {plain(values.iloc[row])!r} in data row {row + 1}"


def _column_problems(frame, column: str, kind: str, schema: SchemaConfig) -> list[str]:
    import pandas as pd

    problems, values = [], frame[column]
    nulls = values.isna()
    if column == schema.label and nulls.any():
        problems.append(f"label column {column!r}: {int(nulls.sum())} missing label(s), "
                        f"first in data row {int(nulls.to_numpy().nonzero()[0][0]) + 1}.")
    elif nulls.mean() > schema.max_null_fraction:
        problems.append(f"column {column!r}: {nulls.mean():.1%} missing values, above "
                        f"schema.max_null_fraction = {schema.max_null_fraction}.")
    if kind == "string":
        return problems
    numeric = pd.to_numeric(values, errors="coerce")
    not_numeric = numeric.isna() & ~nulls
    fractional = numeric.notna() & ~numeric.isin([float("inf"), float("-inf")]) & (
        numeric != numeric.round())
    infinite = numeric.isin([float("inf"), float("-inf")])
    if not_numeric.any():
        problems.append(f"column {column!r} must be {kind}: {int(not_numeric.sum())} "
                        f"non-numeric value(s), {_first_bad(values, not_numeric)}.")
    elif infinite.any() and not schema.allow_infinite:
        problems.append(f"column {column!r}: {int(infinite.sum())} infinite value(s), "
                        f"{_first_bad(values, infinite)}; set schema.allow_infinite = true "
                        "if they are meant.")
    elif kind == "integer" and fractional.any():
        problems.append(f"column {column!r} must be integer: {int(fractional.sum())} "
                        f"value(s) with a fraction, {_first_bad(values, fractional)}.")
    return problems


def _label_problems(values, schema: SchemaConfig) -> list[str]:
    import pandas as pd

    problems, label = [], schema.label
    labels = pd.to_numeric(values, errors="coerce").dropna()
    if schema.allowed_labels is not None:
        bad = sorted(set(map(plain, labels.unique())) - set(schema.allowed_labels))
        if bad:
            problems.append(f"label column {label!r}: label(s) {bad[:10]} are not in "
                            f"schema.allowed_labels {schema.allowed_labels}.")
    if labels.nunique() < schema.min_classes:
        problems.append(f"label column {label!r} has {labels.nunique()} class(es); "
                        f"schema.min_classes asks for at least {schema.min_classes}.")
    return problems


def validate(frame, schema: SchemaConfig, where: str) -> None:
    """Raise one DataError listing every way ``frame`` (read from ``where``) breaks ``schema``."""
    problems = check_schema(frame, schema)
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise DataError(f"{where} breaks the schema in {len(problems)} way(s):\n{listed}",
                        hint="fix the data, or the [schema] section if the data is right.")
