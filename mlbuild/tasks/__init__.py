"""The library's release tasks: evaluation with gates, publishing, images, acceptance.

A project subclasses :class:`ReleaseTask` once with its hooks, then each task it wants
(see :mod:`mlbuild.tasks.release`).
"""


from mlbuild.tasks.acceptance import AcceptanceTest
from mlbuild.tasks.config import ImageConfig, PublishConfig, ReleaseConfig
from mlbuild.tasks.drift import CheckDrift
from mlbuild.tasks.evaluate import EvaluateAccuracy, GatedTask, evaluate_model, evaluate_released
from mlbuild.tasks.image import (
    BuildImage,
    BuildTestImage,
    BuildTrainingImage,
    ImageTask,
    PushImage,
)
from mlbuild.tasks.inference import Inference
from mlbuild.tasks.pipeline import FullPipeline
from mlbuild.tasks.publish import PublishModel
from mlbuild.tasks.release import ReleaseTask
from mlbuild.tasks.service import BuildServiceImage, ServiceAcceptanceTest

__all__ = [
    "AcceptanceTest",
    "BuildImage",
    "BuildServiceImage",
    "BuildTestImage",
    "BuildTrainingImage",
    "CheckDrift",
    "EvaluateAccuracy",
    "FullPipeline",
    "GatedTask",
    "ImageConfig",
    "ImageTask",
    "Inference",
    "PublishConfig",
    "PublishModel",
    "PushImage",
    "ReleaseConfig",
    "ReleaseTask",
    "ServiceAcceptanceTest",
    "evaluate_model",
    "evaluate_released",
]
