"""SplitData: a stratified, seeded train/test split of the validated data."""

from __future__ import annotations

from mlbuild import BuildTask, DataError, read_csv
from tasks.config import load
from tasks.fetch import FetchData
from tasks.validate import ValidateData


class SplitData(BuildTask):
    outputs = {"train": "train.csv", "test": "test.csv"}
    packages = ("pandas", "scikit-learn")

    def requires(self):
        # ValidateData gates the split: its result must exist before the data is used.
        return {"raw": FetchData(), "validation": ValidateData()}

    def settings(self):
        config = load()
        return {"split": config.split.model_dump(), "label": config.schema_.label}

    def build(self, inputs, outputs):
        from sklearn.model_selection import train_test_split

        config = load()
        frame = read_csv(inputs["raw"]["raw"], f"the data from {config.data.source}")
        label, fraction = config.schema_.label, config.split.test_fraction
        try:
            train, test = train_test_split(frame, test_size=fraction,
                                           random_state=config.split.seed, stratify=frame[label])
        except ValueError as exc:
            raise DataError(
                f"Cannot split the data {fraction:.0%} test, stratified by {label!r}: {exc}.",
                hint="every class needs at least 2 rows, and the test part at least one row "
                     "per class; change split.test_fraction or add data.") from exc
        train.sort_index().to_csv(outputs["train"], index=False)
        test.sort_index().to_csv(outputs["test"], index=False)
        return {"train_rows": len(train), "test_rows": len(test)}
