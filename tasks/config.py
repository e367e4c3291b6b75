"""The reference project's configuration: ``configs/pipeline.toml``, validated on load.

Its path is ``[pipeline] config`` in luigi.cfg (or ``--pipeline-config`` on the command
line). Each task fingerprints only the sections that change its result.
"""

from __future__ import annotations

from typing import Literal

import luigi
from pydantic import Field

from mlbuild.accuracy.evaluation import TiersConfig
from mlbuild.accuracy.gates import GatesConfig
from mlbuild.config import Section, load_config

ColumnKind = Literal["integer", "number", "string"]
Scalar = bool | int | float | str


class SyntheticConfig(Section):
    """``builtin:synthetic``: a seeded classification data set of any size."""

    rows: int = Field(default=10_000, ge=10)
    features: int = Field(default=20, ge=2)
    classes: int = Field(default=2, ge=2)
    seed: int = 0


class DataConfig(Section):
    #: builtin:digits, builtin:synthetic, file://path, https://url, s3://bucket/key
    source: str = "builtin:digits"
    synthetic: SyntheticConfig = SyntheticConfig()
    #: optional pin: the fetched bytes must have this sha256
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class SchemaConfig(Section):
    label: str = "label"
    #: column name or glob pattern -> kind; every column must match one, every entry a column
    columns: dict[str, ColumnKind]
    allowed_labels: list[int] | None = None
    min_rows: int = Field(default=1, ge=1)
    max_null_fraction: float = Field(default=0.0, ge=0.0, le=1.0)


class SplitConfig(Section):
    test_fraction: float = Field(default=0.25, gt=0.0, lt=1.0)
    seed: int = 0


class TrainConfig(Section):
    #: fixed so that training is deterministic (DESIGN.md invariant 5)
    num_threads: int = Field(default=2, ge=1)
    #: LightGBM parameters, passed through
    params: dict[str, Scalar] = {}
    #: a hyper-parameter sweep: each entry overrides `params` for one variant; TrainModel
    #: then keeps the variant with the best validation accuracy (empty: no sweep)
    sweep: list[dict[str, Scalar]] = []
    #: the share of the training rows held out to compare the variants
    validation_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)


class PublishConfig(Section):
    model_name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    lockfile: str = "models.lock"


class ImageConfig(Section):
    #: the serving image's repository name; its tag is the pipeline fingerprint
    repository: str = Field(default="mlbuild/model", pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$")
    #: MLBUILD_IMAGE_BASE overrides (CI builds a local Debian base)
    base: str = "python:3.11-slim"
    #: registry v2 host[:port] to push to (ECR or any); empty: the pipeline ends at
    #: AcceptanceTest. MLBUILD_IMAGE_REGISTRY overrides.
    registry: str = ""
    #: where the code lives, for the org.opencontainers.image.source label
    source: str = ""

    def resolved(self) -> ImageConfig:
        """With the environment's overrides applied."""
        import os

        return self.model_copy(update={
            "base": os.environ.get("MLBUILD_IMAGE_BASE") or self.base,
            "registry": os.environ.get("MLBUILD_IMAGE_REGISTRY", self.registry),
        })


class PipelineConfig(Section):
    data: DataConfig = DataConfig()
    schema_: SchemaConfig = Field(alias="schema")
    split: SplitConfig = SplitConfig()
    train: TrainConfig = TrainConfig()
    gates: GatesConfig
    accuracy: TiersConfig = TiersConfig()
    publish: PublishConfig
    image: ImageConfig = ImageConfig()


class pipeline(luigi.Config):
    config = luigi.Parameter(default="configs/pipeline.toml", description="Path of pipeline.toml")


def load() -> PipelineConfig:
    return load_config(pipeline().config, PipelineConfig)
