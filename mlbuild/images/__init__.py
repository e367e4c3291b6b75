"""Images: the one boundary to the Docker engine and image registries."""


from mlbuild.images.docker import ContainerResult

__all__ = [
    "ContainerResult",
]
