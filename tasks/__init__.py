"""The reference ML project built with mlbuild: handwritten digits with LightGBM.

    luigi --module tasks FullPipeline

A project holds only its own code: where its data comes from (fetch.py), the rules it
must meet (validate.py, with the [schema] of configs/pipeline.toml), how it is split
(split.py), trained (train.py, training.py) and called (inference.py), its configuration
(config.py), and its wiring to mlbuild's release tasks (release.py). The training and
inference code live in modules of their own, so that a change to them re-runs exactly
the tasks that use them.
"""

import logging

import luigi

from tasks.config import load
from tasks.fetch import FetchData
from tasks.release import (
    AcceptanceTest,
    BuildImage,
    BuildTrainingImage,
    EvaluateAccuracy,
    PublishModel,
    PushImage,
)
from tasks.split import SplitData
from tasks.train import TrainModel, TrainVariant
from tasks.validate import ValidateData


class FullPipeline(luigi.WrapperTask):
    """Everything, from raw data to the image in the registry.

    Without a registry ([image] registry, MLBUILD_IMAGE_REGISTRY) it ends at AcceptanceTest.
    """

    def requires(self):
        # PublishModel directly too: the image depends on the model only, so a change to
        # the gates alone re-runs the host's evaluation through this edge.
        if load().image.resolved().registry:
            return [PublishModel(), PushImage()]
        logging.getLogger("mlbuild").warning(
            "No image registry is configured: FullPipeline ends at AcceptanceTest.")
        return [PublishModel(), AcceptanceTest()]


__all__ = [
    "AcceptanceTest",
    "BuildImage",
    "BuildTrainingImage",
    "EvaluateAccuracy",
    "FetchData",
    "FullPipeline",
    "PublishModel",
    "PushImage",
    "SplitData",
    "TrainModel",
    "TrainVariant",
    "ValidateData",
]
