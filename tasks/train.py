"""TrainModel: LightGBM with the parameters of the pipeline config.

With [train] sweep, each variant is a TrainVariant task, so parallel workers train
different variants at once and none twice; TrainModel keeps the best one.
"""

from __future__ import annotations

import json
import shutil

import luigi

from mlbuild import BuildTask, ConfigError
from tasks.config import load
from tasks.split import SplitData


class TrainVariant(BuildTask):
    variant = luigi.IntParameter()
    outputs = {"model": "model.txt", "score": "score.json"}
    code_modules = ("tasks.training", "tasks.inference")
    packages = ("lightgbm", "pyarrow", "scikit-learn")

    def requires(self):
        return {"split": SplitData()}

    def params(self) -> dict:
        train = load().train
        if not 0 <= self.variant < len(train.sweep):
            raise ConfigError(f"There is no variant {self.variant} in [train] sweep "
                              f"({len(train.sweep)} configured).")
        return {**train.params, **train.sweep[self.variant]}

    def settings(self):
        config = load()
        return {"params": self.params(), "num_threads": config.train.num_threads,
                "validation_fraction": config.train.validation_fraction,
                "seed": config.split.seed, "label": config.schema_.label}

    def build(self, inputs, outputs):
        from tasks.training import train_variant

        config = load()
        accuracy = train_variant(inputs["split"]["train"], outputs["model"],
                                 config.schema_.label, self.params(), config.train.num_threads,
                                 config.train.validation_fraction, config.split.seed)
        score = {"variant": self.variant, "params": self.params(),
                 "validation_accuracy": accuracy}
        outputs["score"].write_text(json.dumps(score, indent=2, sort_keys=True) + "\n")
        return score


def best_variant(scores: list[dict]) -> dict:
    """The score of the variant with the best validation accuracy; the first on a tie, so
    that the choice does not depend on which worker finished first."""
    return max(scores, key=lambda s: (s["validation_accuracy"], -s["variant"]))


class TrainModel(BuildTask):
    outputs = {"model": "model.txt"}  # LightGBM's text format: nothing is unpickled
    code_modules = ("tasks.training",)
    packages = ("lightgbm", "pyarrow")

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
        from tasks.training import train, training_data

        config = load()
        if config.train.sweep:
            scores = [json.loads(inputs[f"variant{i}"]["score"].read_text())
                      for i in range(len(config.train.sweep))]
            best = best_variant(scores)
            shutil.copyfile(inputs[f"variant{best['variant']}"]["model"], outputs["model"])
            return {"sweep": scores, "chosen": best["variant"]}
        x, y, features = training_data(inputs["split"]["train"], config.schema_.label)
        train(x, y, features, outputs["model"], dict(config.train.params),
              config.train.num_threads, self.progress)
        return None
