"""The release sections of a project's configuration: gates, tiers, publishing, images.

A project's own config model extends :class:`ReleaseConfig` with its own sections (data,
split, training), so that one file configures the whole pipeline and every key is
validated on load.
"""

from __future__ import annotations

import os

from pydantic import Field

from mlbuild.accuracy import GatesConfig, TiersConfig
from mlbuild.config import Section


class PublishConfig(Section):
    model_name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    lockfile: str = "models.lock"


class ImageConfig(Section):
    #: the serving image's repository name; its tag is the fingerprint
    repository: str = Field(default="mlbuild/model", pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$")
    #: the service image's repository (BuildServiceImage: every model models.lock releases)
    service_repository: str = Field(default="mlbuild/service",
                                    pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$")
    #: MLBUILD_IMAGE_BASE overrides (CI builds a local Debian base)
    base: str = "python:3.11-slim"
    #: the test image's base, when its tests need system packages the training image does
    #: without (git, a browser); empty: ``base``. MLBUILD_TEST_IMAGE_BASE overrides.
    test_base: str = ""
    #: registry v2 host[:port] to push to (ECR or any); empty: the pipeline ends at
    #: AcceptanceTest. MLBUILD_IMAGE_REGISTRY overrides.
    registry: str = ""
    #: where the code lives, for the org.opencontainers.image.source label
    source: str = ""

    def resolved(self) -> ImageConfig:
        """With the environment's overrides applied."""
        base = os.environ.get("MLBUILD_IMAGE_BASE") or self.base
        return self.model_copy(update={
            "base": base,
            "test_base": os.environ.get("MLBUILD_TEST_IMAGE_BASE") or self.test_base or base,
            "registry": os.environ.get("MLBUILD_IMAGE_REGISTRY", self.registry),
        })


class ReleaseConfig(Section):
    """``[gates]``, ``[accuracy]``, ``[publish]`` and ``[image]``: what the release tasks read."""

    gates: GatesConfig
    accuracy: TiersConfig = TiersConfig()
    publish: PublishConfig
    image: ImageConfig = ImageConfig()
