"""The configuration: configs/pipeline.toml (``[pipeline] config`` in luigi.cfg), validated
on load; mlbuild's ReleaseConfig brings [gates], [accuracy], [publish] and [image]."""

from __future__ import annotations

from typing import Literal

import luigi
from pydantic import Field, model_validator

from mlbuild import LightGBMParams, ReleaseConfig, SchemaConfig, Section, load_config, sources


class SyntheticConfig(Section):
    """``builtin:synthetic``: a seeded classification data set of any size."""

    rows: int = Field(default=10_000, ge=10)
    features: int = Field(default=20, ge=2)
    classes: int = Field(default=2, ge=2)
    seed: int = 0


class DataConfig(Section):
    #: builtin:digits, builtin:synthetic, file://path, https://url, s3://bucket/key, or
    #: snapshots: s3://bucket/prefix/*/part-*.csv (file:// too)
    source: str = "builtin:digits"
    synthetic: SyntheticConfig = SyntheticConfig()
    #: optional pin: the fetched bytes must have this sha256
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    #: which snapshot of a snapshot source: the greatest name, or the one written last
    snapshot: Literal["latest", "last_modified"] = "latest"

    @model_validator(mode="after")
    def _no_pin_on_snapshots(self):
        if self.sha256 and sources.is_snapshot(self.source):
            raise ValueError("data.sha256 cannot pin a snapshot source (many files, and a new "
                             "snapshot is meant to be picked up): remove it")
        return self


class SplitConfig(Section):
    test_fraction: float = Field(default=0.25, gt=0.0, lt=1.0)
    seed: int = 0


class TrainConfig(Section):
    #: fixed so that training is deterministic (DESIGN.md invariant 5)
    num_threads: int = Field(default=2, ge=1)
    #: LightGBM parameters, checked against LightGBM's names and aliases
    params: LightGBMParams = {}
    #: a hyper-parameter sweep: each entry overrides `params` for one variant; TrainModel
    #: then keeps the variant with the best validation accuracy (empty: no sweep)
    sweep: list[LightGBMParams] = []
    #: the share of the training rows held out to compare the variants
    validation_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)


class PipelineConfig(ReleaseConfig):
    data: DataConfig = DataConfig()
    schema_: SchemaConfig = Field(alias="schema")
    split: SplitConfig = SplitConfig()
    train: TrainConfig = TrainConfig()


class pipeline(luigi.Config):
    config = luigi.Parameter(default="configs/pipeline.toml", description="Path of pipeline.toml")


def load() -> PipelineConfig:
    return load_config(pipeline().config, PipelineConfig)
