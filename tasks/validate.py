"""ValidateData: check the raw data against the schema in the pipeline config.

Every violation is collected and reported in one error, so a person fixes them all at
once instead of one per run.
"""

from __future__ import annotations

import fnmatch
import json

from mlbuild import BuildTask, DataError
from tasks.config import SchemaConfig, load
from tasks.fetch import FetchData


def read_csv(path, where: str):
    import pandas as pd

    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{where} is empty: it has no header and no rows.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{where} is not a readable CSV file: {exc}.") from exc


def _first_bad(frame, column, bad_mask) -> str:
    row = int(bad_mask.to_numpy().nonzero()[0][0])
    return f"first {frame[column].iloc[row]!r} in data row {row + 1}"


def check_schema(frame, schema: SchemaConfig) -> list[str]:
    """Every way ``frame`` breaks ``schema``, one line each (empty when it conforms)."""
    import pandas as pd

    problems = []
    columns = [str(c) for c in frame.columns]
    kinds: dict[str, str] = {}
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
        problems.append(f"the label column {schema.label!r} is missing (columns: {', '.join(columns[:10])}"
                        f"{', ...' if len(columns) > 10 else ''}).")

    for column, kind in kinds.items():
        values = frame[column]
        nulls = values.isna()
        if column == schema.label and nulls.any():
            problems.append(f"label column {column!r}: {int(nulls.sum())} missing label(s), "
                            f"first in data row {int(nulls.to_numpy().nonzero()[0][0]) + 1}.")
        elif nulls.mean() > schema.max_null_fraction:
            problems.append(f"column {column!r}: {nulls.mean():.1%} missing values, above "
                            f"schema.max_null_fraction = {schema.max_null_fraction}.")
        if kind == "string":
            continue
        numeric = pd.to_numeric(values, errors="coerce")
        not_numeric = numeric.isna() & ~nulls
        if not_numeric.any():
            problems.append(f"column {column!r} must be {kind}: {int(not_numeric.sum())} "
                            f"non-numeric value(s), {_first_bad(frame, column, not_numeric)}.")
        elif kind == "integer":
            fractional = numeric.notna() & (numeric != numeric.round())
            if fractional.any():
                problems.append(f"column {column!r} must be integer: {int(fractional.sum())} "
                                f"value(s) with a fraction, {_first_bad(frame, column, fractional)}.")

    if schema.label in columns:
        labels = pd.to_numeric(frame[schema.label], errors="coerce").dropna()
        if schema.allowed_labels is not None:
            bad = sorted(set(labels.unique()) - set(schema.allowed_labels))
            if bad:
                problems.append(f"label column {schema.label!r}: label(s) {bad[:10]} are not in "
                                f"schema.allowed_labels {schema.allowed_labels}.")
        if labels.nunique() < 2:
            problems.append(f"label column {schema.label!r} has {labels.nunique()} class(es); "
                            "a classifier needs at least 2.")
    if len(frame) < schema.min_rows:
        problems.append(f"{len(frame)} rows, fewer than schema.min_rows = {schema.min_rows}.")
    return problems


class ValidateData(BuildTask):
    outputs = {"report": "validation.json"}
    packages = ("pandas",)

    def requires(self):
        return {"raw": FetchData()}

    def settings(self):
        return {"schema": load().schema_.model_dump()}

    def build(self, inputs, outputs):
        schema = load().schema_
        where = f"the data from {load().data.source}"
        frame = read_csv(inputs["raw"]["raw"], where)
        problems = check_schema(frame, schema)
        if problems:
            listed = "\n".join(f"  - {p}" for p in problems)
            raise DataError(
                f"{where} breaks the schema in configs/pipeline.toml in {len(problems)} way(s):\n"
                f"{listed}\nHint: fix the data, or the [schema] section if the data is right."
            )
        counts = frame[schema.label].value_counts().sort_index()
        report = {
            "rows": len(frame),
            "columns": len(frame.columns),
            "classes": {str(k): int(v) for k, v in counts.items()},
        }
        outputs["report"].write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
