"""TrainModel: LightGBM with the parameters of the pipeline config.

With a sweep configured ([train] sweep), it trains nothing itself: it keeps the variant
(TrainVariant) with the best validation accuracy, the first one on a tie.
"""

from __future__ import annotations

import json
import shutil

from mlbuild import BuildTask
from tasks.config import load
from tasks.split import SplitData
from tasks.sweep import TrainVariant, best_variant


class TrainModel(BuildTask):
    outputs = {"model": "model.txt"}  # LightGBM's text format: nothing is unpickled
    code_modules = ("tasks.training",)
    packages = ("lightgbm", "pandas")

    def requires(self):
        variants = range(len(load().train.sweep))
        return {"split": SplitData(), **{f"variant{i}": TrainVariant(variant=i) for i in variants}}

    def settings(self):
        config = load()
        train = config.train.model_dump()
        if not config.train.sweep:
            del train["validation_fraction"]  # only the sweep holds rows out
        return {"train": train, "label": config.schema_.label}

    def build(self, inputs, outputs):
        from tasks.training import train

        config = load()
        if config.train.sweep:
            scores = [json.loads(inputs[f"variant{i}"]["score"].read_text())
                      for i in range(len(config.train.sweep))]
            best = best_variant(scores)
            shutil.copyfile(inputs[f"variant{best['variant']}"]["model"], outputs["model"])
            return {"sweep": scores, "chosen": best["variant"]}
        train(inputs["split"]["train"], outputs["model"], config.schema_.label,
              dict(config.train.params), config.train.num_threads)
        return None
