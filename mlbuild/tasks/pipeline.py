"""FullPipeline: every release task of a project, from raw data to the pushed image."""

from __future__ import annotations

import functools
import logging
from typing import ClassVar

import luigi

from mlbuild.tasks.acceptance import AcceptanceTest
from mlbuild.tasks.image import PushImage
from mlbuild.tasks.publish import PublishModel
from mlbuild.tasks.release import ReleaseTask


@functools.cache
def _warn_once(message: str) -> None:
    """Luigi asks a task for its requirements more than once per run: say it once."""
    logging.getLogger("mlbuild").warning(message)


class FullPipeline(luigi.WrapperTask):
    """The published model and the pushed image; without a registry ([image] registry,
    MLBUILD_IMAGE_REGISTRY) the pipeline ends at AcceptanceTest. ``release`` names the
    project's ReleaseTask subclass (its hooks)."""

    release: ClassVar[type[ReleaseTask]]

    def requires(self):
        # PublishModel directly too: the image depends on the model only, so a change to
        # the gates alone re-runs the host's evaluation through this edge.
        publish = self.release.project_class(PublishModel)()
        if publish.release_config().image.resolved().registry:
            return [publish, self.release.project_class(PushImage)()]
        _warn_once("No image registry is configured: FullPipeline ends at AcceptanceTest.")
        return [publish, self.release.project_class(AcceptanceTest)()]
