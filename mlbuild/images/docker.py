"""Docker images through the Docker SDK: hermetic builds, containers, registry pushes.

* Builds are hermetic: the wheels an image needs are downloaded on the host (and cached
  by requirement set) into the build context; the build runs with no network.
* No credential reaches an image: builds get no credentials in build arguments, labels or
  files; registry logins go to the push call only.
* Engine, build, container and registry failures become :class:`~mlbuild.errors.ImageError`
  with what failed and what to do.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mlbuild.errors import ImageError

log = logging.getLogger("mlbuild")
TIMEOUT = 900
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.index.v1+json"
)


def engine():
    """A client of the Docker engine at DOCKER_HOST (or the default socket), checked alive."""
    import docker

    where = os.environ.get("DOCKER_HOST") or "the default socket"
    try:
        client = docker.from_env(timeout=TIMEOUT)
        client.ping()
        return client
    except docker.errors.DockerException as exc:
        raise ImageError(
            f"Cannot reach the Docker engine at {where}: {exc}. Hint: start it (`make services` "
            "starts one here) or point DOCKER_HOST at a running engine."
        ) from exc


def wheel_platform() -> str:
    machine = platform.machine()
    return {"x86_64": "x86_64", "AMD64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(
        machine, machine)


def download_wheels(requirements: list[str], dest: Path, cache: Path,
                    python_version: str = "3.11") -> None:
    """Put the wheels for ``requirements`` (and their dependencies) into ``dest``.

    Downloaded once per requirement set into ``cache``; the image then installs them with
    ``--no-index``. Only binary wheels for CPython ``python_version`` on manylinux.
    """
    key = hashlib.sha256("\n".join(sorted(requirements) + [python_version, wheel_platform()])
                         .encode()).hexdigest()[:16]
    folder = cache / f"wheels-{key}"
    if not (folder / ".complete").exists():
        folder.mkdir(parents=True, exist_ok=True)
        arch = wheel_platform()
        platforms = [f"manylinux_2_{v}_{arch}" for v in (28, 27, 26, 24, 17)] + [
            f"manylinux2014_{arch}"]
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                   "--implementation", "cp", "--python-version", python_version,
                   "--dest", str(folder), *[a for p in platforms for a in ("--platform", p)],
                   *requirements]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ImageError(
                f"Cannot download the wheels the image needs ({', '.join(requirements)}): "
                f"{result.stderr.strip()[-800:]}. Hint: the host needs to reach the package "
                "index once; later builds use the cache in " + str(cache) + "."
            )
        (folder / ".complete").write_text("\n".join(requirements) + "\n")
    dest.mkdir(parents=True, exist_ok=True)
    for wheel in sorted(folder.glob("*.whl")):
        shutil.copy2(wheel, dest / wheel.name)
    (dest / "requirements.txt").write_text("\n".join(requirements) + "\n")


def _missing_base(base: str, detail: str) -> ImageError:
    return ImageError(
        f"The base image {base!r} is not in the engine and cannot be pulled: {detail}. Hint: "
        "pull or build it first (`make services` builds the local base), or set another "
        "base (MLBUILD_IMAGE_BASE or [image] base)."
    )


def _build_error(line: str, base: str) -> ImageError:
    lowered = line.lower()
    if "no space left" in lowered:
        return ImageError(f"The image build ran out of disk: {line}. Hint: free space in the "
                          "engine's data root (`docker system prune`), then run again.")
    if base and ("pull access denied" in lowered or "manifest unknown" in lowered
                 or "no such image" in lowered):
        return _missing_base(base, line)
    return ImageError(f"The image build failed: {line}")


def build(context: Path, tag: str, *, buildargs: dict[str, str], labels: dict[str, str],
          base: str = "", no_cache: bool = False) -> str:
    """Build ``context`` (its Dockerfile) with no network; return the image ID.

    ``no_cache`` rebuilds every layer (a cold build), as ``docker build --no-cache``.
    """
    import docker

    client = engine()
    if base:
        try:
            client.images.get(base)
        except docker.errors.ImageNotFound:
            try:
                client.images.pull(base)
            except docker.errors.DockerException as exc:
                raise _missing_base(base, str(exc)) from exc
    try:
        stream = client.api.build(path=str(context), tag=tag, buildargs=buildargs, labels=labels,
                                  rm=True, forcerm=True, network_mode="none", pull=False,
                                  nocache=no_cache, decode=True)
        for chunk in stream:
            if "error" in chunk:
                raise _build_error(chunk["error"].strip(), base)
            text = chunk.get("stream", "").strip()
            if text.startswith("Step "):
                log.info("image %s: %s", tag, text)
        return client.images.get(tag).id
    except docker.errors.DockerException as exc:
        raise _build_error(str(exc), base) from exc
    finally:
        client.close()


def image_id(tag: str) -> str | None:
    """The ID of the image the engine holds under ``tag``, or None."""
    import docker

    client = engine()
    try:
        return client.images.get(tag).id
    except docker.errors.ImageNotFound:
        return None
    finally:
        client.close()


@dataclass(frozen=True)
class ContainerResult:
    exit_code: int
    logs: str


def run(image: str, command: list[str], volumes: dict[str, dict[str, str]],
        timeout: float = 600) -> ContainerResult:
    """Run ``command`` in a container of ``image`` with no network; wait; remove it."""
    import docker

    client = engine()
    container = None
    try:
        container = client.containers.run(image, command, volumes=volumes, network_mode="none",
                                          detach=True)
        status = container.wait(timeout=timeout)
        logs = container.logs(stdout=True, stderr=True).decode(errors="replace")
        return ContainerResult(int(status.get("StatusCode", 1)), logs)
    except docker.errors.DockerException as exc:
        raise ImageError(f"Cannot run {' '.join(command)} in {image}: {exc}.") from exc
    finally:
        if container is not None:
            container.remove(force=True)
        client.close()


def is_ecr(registry: str) -> bool:
    return ".dkr.ecr." in registry and registry.endswith(".amazonaws.com")


def _ecr_auth(registry: str) -> dict[str, str]:
    """A registry login from the AWS credential chain, for this push only."""
    import base64

    import boto3

    region = registry.split(".dkr.ecr.")[1].split(".")[0]
    token = boto3.client("ecr", region_name=region).get_authorization_token()
    user, password = base64.b64decode(
        token["authorizationData"][0]["authorizationToken"]).decode().split(":", 1)
    return {"username": user, "password": password}


def push(local_tag: str, registry: str, repository: str, tag: str) -> str:
    """Push ``local_tag`` as ``registry/repository:tag``; return the manifest digest."""
    import docker

    client = engine()
    remote = f"{registry}/{repository}"
    try:
        client.images.get(local_tag).tag(remote, tag)
        auth = _ecr_auth(registry) if is_ecr(registry) else None
        digest = None
        for chunk in client.images.push(remote, tag, stream=True, decode=True, auth_config=auth):
            if "error" in chunk:
                raise ImageError(
                    f"The registry {registry} refused the push of {remote}:{tag}: "
                    f"{chunk['error'].strip()}. Hint: check that it is reachable and that "
                    "the credentials may push there."
                )
            digest = chunk.get("aux", {}).get("Digest", digest)
        if digest is None:
            raise ImageError(f"The push of {remote}:{tag} to {registry} reported no digest.")
        return digest
    except docker.errors.DockerException as exc:
        raise ImageError(f"Cannot push {remote}:{tag} to {registry}: {exc}. Hint: check that "
                         "the registry is up and reachable from the engine.") from exc
    finally:
        client.close()


def registry_digest(registry: str, repository: str, tag: str) -> str | None:
    """The digest the registry holds under ``repository:tag`` (registry API v2), or None."""
    if is_ecr(registry):
        import boto3

        region = registry.split(".dkr.ecr.")[1].split(".")[0]
        ecr = boto3.client("ecr", region_name=region)
        try:
            images = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
        except ecr.exceptions.ImageNotFoundException:
            return None
        return images["imageDetails"][0]["imageDigest"]
    scheme = "http" if registry.startswith(("127.", "localhost")) else "https"
    request = urllib.request.Request(f"{scheme}://{registry}/v2/{repository}/manifests/{tag}",
                                     method="HEAD", headers={"Accept": MANIFEST_TYPES})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.headers.get("Docker-Content-Digest")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise ImageError(f"The registry {registry} answered {exc.code} for {repository}:{tag}.") \
            from exc
    except OSError as exc:
        raise ImageError(f"Cannot reach the registry {registry}: {exc}. Hint: check that it is "
                         "up, or unset the registry to end the pipeline at AcceptanceTest.") \
            from exc


def labels_of(tag: str) -> dict[str, str]:
    client = engine()
    try:
        return dict(client.images.get(tag).labels or {})
    finally:
        client.close()


def describe(tag: str) -> str:
    client = engine()
    try:
        return json.dumps(client.images.get(tag).attrs, sort_keys=True)
    finally:
        client.close()
