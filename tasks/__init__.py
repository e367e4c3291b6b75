"""The reference ML project built with mlbuild: handwritten digits with LightGBM.

    luigi --module tasks FullPipeline

Copy this package to start a project of your own: one module per task, the settings in
configs/pipeline.toml, and the training and inference code in modules of their own so
that a change to them re-runs exactly the tasks that use them.
"""

import luigi

from tasks.evaluate import EvaluateAccuracy
from tasks.fetch import FetchData
from tasks.publish import PublishModel
from tasks.split import SplitData
from tasks.train import TrainModel
from tasks.validate import ValidateData


class FullPipeline(luigi.WrapperTask):
    """Everything, from raw data to the published model."""

    def requires(self):
        return PublishModel()


__all__ = [
    "EvaluateAccuracy",
    "FetchData",
    "FullPipeline",
    "PublishModel",
    "SplitData",
    "TrainModel",
    "ValidateData",
]
