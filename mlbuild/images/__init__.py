"""Images: the one boundary to the Docker engine and image registries."""

from __future__ import annotations

from mlbuild.images.docker import ContainerResult

__all__ = [
    "ContainerResult",
]
