"""The wiring to mlbuild's release tasks: ``Release`` holds what only this project knows;
their settings are [gates], [accuracy], [publish] and [image] in configs/pipeline.toml."""

from __future__ import annotations

import mlbuild
from tasks.config import load
from tasks.fetch import FetchData
from tasks.split import SplitData
from tasks.train import TrainModel


class Release(mlbuild.ReleaseTask):
    inference = "tasks.inference"
    # lightgbm's predictions depend on its version; scipy is its dependency, pinned too
    inference_packages = ("lightgbm", "scipy")

    def release_config(self):
        return load()

    def label(self):
        return load().schema_.label

    def model_task(self):
        return TrainModel()

    def test_task(self):
        return SplitData()

    def data_task(self):  # the raw table: the lock records it; [gates.drift] compares with it
        return FetchData()


class EvaluateAccuracy(Release, mlbuild.EvaluateAccuracy):
    pass


class PublishModel(Release, mlbuild.PublishModel):
    pass


class CheckDrift(Release, mlbuild.CheckDrift):
    pass


class BuildImage(Release, mlbuild.BuildImage):
    pass


class AcceptanceTest(Release, mlbuild.AcceptanceTest):
    pass


class PushImage(Release, mlbuild.PushImage):
    pass


class BuildServiceImage(Release, mlbuild.BuildServiceImage):  # every model models.lock releases
    pass


class ServiceAcceptanceTest(Release, mlbuild.ServiceAcceptanceTest):
    pass


class BuildTrainingImage(Release, mlbuild.BuildTrainingImage):
    project_sources = ("tasks", "configs", "luigi.cfg")


class BuildTestImage(Release, mlbuild.BuildTestImage):
    project_sources = BuildTrainingImage.project_sources
    # the dev extra's test packages: the integration tests start moto and drive a browser
    test_packages = ("pytest", "pytest-timeout", "statsmodels", "import-linter", "pyyaml",
                     "moto[server]", "playwright")
