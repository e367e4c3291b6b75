"""SplitData: a stratified, seeded train/test split of the validated data.

The parts are row views of FetchData's table: row numbers, not copies of the rows.
"""

from __future__ import annotations

import numpy as np

from mlbuild import BuildTask, DataError, open_table, write_rows
from tasks.config import load
from tasks.fetch import FetchData
from tasks.validate import ValidateData


class SplitData(BuildTask):
    outputs = {"train": "train.rows.arrow", "test": "test.rows.arrow"}
    packages = ("scikit-learn", "pyarrow")

    def requires(self):
        # ValidateData gates the split: its result must exist before the data is used.
        return {"raw": FetchData(), "validation": ValidateData()}

    def settings(self):
        config = load()
        return {"split": config.split.model_dump(), "label": config.schema_.label}

    def build(self, inputs, outputs):
        from sklearn.model_selection import train_test_split

        config = load()
        raw = inputs["raw"]["raw"]
        labels = open_table(raw).column(config.schema_.label)
        label, fraction = config.schema_.label, config.split.test_fraction
        try:
            train, test = train_test_split(np.arange(len(labels)), test_size=fraction,
                                           random_state=config.split.seed, stratify=labels)
        except ValueError as exc:
            raise DataError(
                f"Cannot split the data {fraction:.0%} test, stratified by {label!r}: {exc}.",
                hint="every class needs at least 2 rows, and the test part at least one row "
                     "per class; change split.test_fraction or add data.") from exc
        write_rows(outputs["train"], np.sort(train), self.origin(raw), len(labels))
        write_rows(outputs["test"], np.sort(test), self.origin(raw), len(labels))
        return {"train_rows": len(train), "test_rows": len(test)}
