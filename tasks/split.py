"""SplitData: a stratified, seeded train/test split of the validated data."""

from __future__ import annotations

from mlbuild import BuildTask, DataError
from tasks.config import load
from tasks.fetch import FetchData
from tasks.validate import ValidateData, read_csv


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
        try:
            train, test = train_test_split(
                frame,
                test_size=config.split.test_fraction,
                random_state=config.split.seed,
                stratify=frame[config.schema_.label],
            )
        except ValueError as exc:
            raise DataError(
                f"Cannot split the data {config.split.test_fraction:.0%} test, stratified by "
                f"{config.schema_.label!r}: {exc}. Hint: every class needs at least 2 rows, and "
                "the test part at least one row per class; change split.test_fraction or add data."
            ) from exc
        train.sort_index().to_csv(outputs["train"], index=False)
        test.sort_index().to_csv(outputs["test"], index=False)
        return {"train_rows": len(train), "test_rows": len(test)}
