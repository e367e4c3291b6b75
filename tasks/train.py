"""TrainModel: LightGBM with the parameters of the pipeline config."""

from __future__ import annotations

from mlbuild import BuildTask
from tasks.config import load
from tasks.split import SplitData


class TrainModel(BuildTask):
    outputs = {"model": "model.txt"}  # LightGBM's text format: nothing is unpickled
    code_modules = ("tasks.training",)
    packages = ("lightgbm", "pandas")

    def requires(self):
        return {"split": SplitData()}

    def settings(self):
        config = load()
        return {"train": config.train.model_dump(), "label": config.schema_.label}

    def build(self, inputs, outputs):
        from tasks.training import train

        config = load()
        train(inputs["split"]["train"], outputs["model"], config.schema_.label,
              dict(config.train.params), config.train.num_threads)
