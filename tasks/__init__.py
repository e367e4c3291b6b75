"""The reference ML project built with mlbuild: handwritten digits with LightGBM.

    luigi --module tasks FullPipeline

A project holds only its own code: where its data comes from (fetch.py), the rules it
must meet (validate.py, with [schema] in configs/pipeline.toml), how it is split
(split.py), trained (train.py, training.py) and called (inference.py), its configuration
(config.py), and its wiring to mlbuild's release tasks (release.py). Training and
inference code live in modules of their own, so that a change to them re-runs exactly the
tasks that use them.
"""

import mlbuild
from tasks.fetch import FetchData
from tasks.release import (
    AcceptanceTest,
    BuildImage,
    BuildTrainingImage,
    EvaluateAccuracy,
    PublishModel,
    PushImage,
    Release,
)
from tasks.split import SplitData
from tasks.train import TrainModel, TrainVariant
from tasks.validate import ValidateData


class FullPipeline(mlbuild.FullPipeline):
    release = Release


__all__ = ["AcceptanceTest", "BuildImage", "BuildTrainingImage", "EvaluateAccuracy", "FetchData",
           "FullPipeline", "PublishModel", "PushImage", "SplitData", "TrainModel", "TrainVariant",
           "ValidateData"]
