"""The reference ML project built with mlbuild: handwritten digits with LightGBM.

    luigi --module tasks FullPipeline

Copy this package to start a project of your own: one module per task, the settings in
configs/pipeline.toml, and the training and inference code in modules of their own so
that a change to them re-runs exactly the tasks that use them.
"""

import logging

import luigi

from tasks.config import load
from tasks.evaluate import EvaluateAccuracy
from tasks.fetch import FetchData
from tasks.image import AcceptanceTest, BuildImage, BuildTrainingImage, PushImage
from tasks.publish import PublishModel
from tasks.split import SplitData
from tasks.sweep import TrainVariant
from tasks.train import TrainModel
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
