"""The build machinery: fingerprinted tasks, their manifests, and where they run."""


from mlbuild.core.execution import Executor
from mlbuild.core.manifest import Manifest, OutputRecord
from mlbuild.core.task import BuildTask

__all__ = [
    "BuildTask",
    "Executor",
    "Manifest",
    "OutputRecord",
]
