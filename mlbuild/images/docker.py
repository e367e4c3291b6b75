"""Docker images through the Docker SDK: hermetic builds, containers, registry pushes.

* Builds are hermetic: the wheels an image needs are downloaded on the host (and cached
  by requirement set) into the build context; the build runs with no network.
* No credential reaches an image: builds get no credentials in build arguments, labels or
  files; registry logins go to the push call only.
* This is the one module of mlbuild that imports the ``docker`` package (an import-linter
  contract keeps it so). Every Docker SDK error (``docker.errors``), every connection error
  of its HTTP client (``requests``) and every AWS error of an ECR login (through
  :mod:`mlbuild.aws`) becomes an :class:`~mlbuild.errors.ImageError` with what failed and
  a hint: :func:`_engine_errors` is the one place that maps them.
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
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlbuild import aws
from mlbuild.errors import ImageError

log = logging.getLogger("mlbuild")
TIMEOUT = 900
BUILD_LOG_TAIL = 20  # log lines a build failure quotes
ENGINE_HINT = ("start it (`make services` starts one here) or point DOCKER_HOST at a running "
               "engine.")
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.index.v1+json"
)


def _where() -> str:
    return os.environ.get("DOCKER_HOST") or "the default socket"


def _tail(lines) -> str:
    lines = [line for line in lines if line]
    return "".join(f"\n  {line}" for line in lines)


def _docker_error(exc: Exception, action: str, image: str | None,
                  hint: str | None) -> ImageError | None:
    """The ImageError for an error of the Docker SDK or its HTTP client, else None."""
    import docker
    import requests

    if isinstance(exc, docker.errors.ImageNotFound):
        what = f"the image {image}" if image else "the image"
        return ImageError(f"Cannot {action}: {what} is not in the Docker engine at {_where()} "
                          f"({exc.explanation or exc}).",
                          hint=hint or "build it first (`mlbuild run BuildImage`), or check "
                                       "the tag.")
    if isinstance(exc, docker.errors.BuildError):
        log_lines = [str(c.get("stream") or c.get("error") or "").rstrip()
                     for c in exc.build_log or () if isinstance(c, dict)]
        return ImageError(f"The image build failed to {action}: {exc.msg}."
                          + (f" Its last log lines:{_tail(log_lines[-BUILD_LOG_TAIL:])}"
                             if log_lines else ""),
                          hint=hint or "fix the step named above, then run again.")
    if isinstance(exc, docker.errors.APIError):
        status = exc.status_code
        detail = exc.explanation or str(exc)
        if status in (401, 403) or "unauthorized" in str(detail).lower():
            return ImageError(f"Cannot {action}: access denied ({status}): {detail}.",
                              hint=hint or "log in to the registry with credentials that may "
                                           "push there (for ECR, AWS credentials that may call "
                                           "ecr:GetAuthorizationToken).")
        if status == 404:
            return ImageError(f"Cannot {action}: not found: {detail}.",
                              hint=hint or "check the image, tag or container name.")
        return ImageError(f"The Docker engine at {_where()} refused to {action}: {detail}.",
                          hint=hint or "see the engine's message above; `docker info` shows "
                                       "its state (disk, daemon errors).")
    if isinstance(exc, requests.exceptions.Timeout):
        return ImageError(f"The Docker engine at {_where()} did not answer in time to {action}: "
                          f"{exc}.", hint=hint or "check that the engine is not overloaded or "
                                              "hung (`docker info`), then run again.")
    if isinstance(exc, requests.exceptions.RequestException):
        return ImageError(f"Cannot reach the Docker engine at {_where()} to {action}: {exc}.",
                          hint=ENGINE_HINT)
    if isinstance(exc, docker.errors.DockerException):
        return ImageError(f"Cannot {action}: {exc}.", hint=hint)
    return None


@contextmanager
def _engine_errors(action: str, image: str | None = None,
                   hint: str | None = None) -> Iterator[None]:
    """Raise any Docker SDK or connection error in the block as an ImageError that says it
    could not ``action`` (``hint`` replaces the usual remedy, where one applies)."""
    try:
        yield
    except ImageError:
        raise
    except Exception as exc:
        mapped = _docker_error(exc, action, image, hint)
        if mapped is None:
            raise
        raise mapped from exc


def engine():
    """A client of the Docker engine at DOCKER_HOST (or the default socket), checked alive."""
    import docker
    import requests

    try:
        client = docker.from_env(timeout=TIMEOUT)
        client.ping()
        return client
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise ImageError(f"Cannot reach the Docker engine at {_where()}: {exc}.",
                         hint=ENGINE_HINT) from exc


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
                f"{result.stderr.strip()[-800:]}.",
                hint=f"the host needs to reach the package index once; later builds use the "
                     f"cache in {cache}.",
            )
        (folder / ".complete").write_text("\n".join(requirements) + "\n")
    dest.mkdir(parents=True, exist_ok=True)
    for wheel in sorted(folder.glob("*.whl")):
        shutil.copy2(wheel, dest / wheel.name)
    (dest / "requirements.txt").write_text("\n".join(requirements) + "\n")


def _missing_base(base: str, detail: str) -> ImageError:
    return ImageError(
        f"The base image {base!r} is not in the engine and cannot be pulled: {detail}.",
        hint="pull or build it first (`make services` builds the local bases), or set another "
             "base (MLBUILD_IMAGE_BASE or [image] base; for the test image, "
             "MLBUILD_TEST_IMAGE_BASE or [image] test_base).",
    )


def _build_error(line: str, base: str, tail=()) -> ImageError:
    lowered = line.lower()
    if "no space left" in lowered:
        return ImageError(f"The image build ran out of disk: {line}.",
                          hint="free space in the engine's data root (`docker system prune`), "
                               "then run again.")
    if base and ("pull access denied" in lowered or "manifest unknown" in lowered
                 or "no such image" in lowered):
        return _missing_base(base, line)
    lines = list(tail)
    return ImageError(f"The image build failed: {line}"
                      + (f"\nIts last {len(lines)} log line(s):{_tail(lines)}" if lines else ""),
                      hint="fix the step the log names (the Dockerfile, or a wheel missing "
                           "from the hermetic context), then run again.")


def build(context: Path, tag: str, *, buildargs: dict[str, str], labels: dict[str, str],
          base: str = "", no_cache: bool = False) -> str:
    """Build ``context`` (its Dockerfile) with no network; return the image ID.

    ``no_cache`` rebuilds every layer (a cold build), as ``docker build --no-cache``. A
    failed build is an ImageError that quotes the build's last log lines.
    """
    import docker
    import requests

    client = engine()
    tail: deque[str] = deque(maxlen=BUILD_LOG_TAIL)
    try:
        with _engine_errors(f"build {tag}", tag):
            if base:
                try:
                    client.images.get(base)
                except docker.errors.ImageNotFound:
                    try:
                        client.images.pull(base)
                    except docker.errors.DockerException as exc:
                        raise _missing_base(base, str(exc)) from exc
            stream = client.api.build(path=str(context), tag=tag, buildargs=buildargs,
                                      labels=labels, rm=True, forcerm=True, network_mode="none",
                                      pull=False, nocache=no_cache, decode=True)
            try:
                for chunk in stream:
                    if "error" in chunk:
                        raise _build_error(chunk["error"].strip(), base, tail)
                    text = chunk.get("stream", "").strip()
                    tail.extend(line for line in text.splitlines() if line.strip())
                    if text.startswith("Step "):
                        log.info("image %s: %s", tag, text)
            except (docker.errors.APIError, docker.errors.BuildError) as exc:
                raise _build_error(str(exc), base, tail) from exc
            except requests.exceptions.RequestException as exc:
                raise ImageError(
                    f"The Docker engine at {_where()} stopped answering while building {tag}: "
                    f"{exc}." + (f"\nThe build's last log lines:{_tail(tail)}" if tail else ""),
                    hint=f"check that the engine is running (`docker info`); a build takes at "
                         f"most {TIMEOUT} s per answer. Then run again.") from exc
            return client.images.get(tag).id
    finally:
        client.close()


def image_id(tag: str) -> str | None:
    """The ID of the image the engine holds under ``tag``, or None."""
    import docker

    client = engine()
    try:
        with _engine_errors(f"look up the image {tag}", tag):
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
        timeout: float = 600, **options) -> ContainerResult:
    """Run ``command`` in a container of ``image`` (with no network unless ``options`` say
    otherwise: docker-py's ``user``, ``environment``, ``working_dir``, ``entrypoint``,
    ``network_mode``); wait; remove it."""
    import requests

    client = engine()
    container = None
    action = f"run {' '.join(command)} in {image}"
    try:
        with _engine_errors(action, image):
            container = client.containers.run(image, command, volumes=volumes, detach=True,
                                              **{"network_mode": "none", **options})
            try:
                status = container.wait(timeout=timeout)
            except requests.exceptions.ReadTimeout as exc:
                raise ImageError(f"{action} did not end within {timeout:g} s.",
                                 hint="look for a hang in its log, or give it longer.") from exc
            logs = container.logs(stdout=True, stderr=True).decode(errors="replace")
            return ContainerResult(int(status.get("StatusCode", 1)), logs)
    finally:
        if container is not None:
            _remove(container)
        client.close()


def _remove(container) -> None:
    """Remove a finished container; a failure is logged, never hides the run's own result."""
    try:
        container.remove(force=True)
    except Exception as exc:  # noqa: BLE001 - the container is garbage; the result matters
        log.warning("could not remove container %s: %s", container.id, exc)


def is_ecr(registry: str) -> bool:
    return ".dkr.ecr." in registry and registry.endswith(".amazonaws.com")


def _ecr(registry: str):
    """An ECR client of the registry's region (credentials from the AWS chain)."""
    region = registry.split(".dkr.ecr.")[1].split(".")[0]
    return aws.client("ecr", region=region, error=ImageError, label="ECR")


def _ecr_call(registry: str, action: str, resource: str) -> aws.AwsCall:
    return aws.AwsCall("ECR", action, resource, endpoint=registry)


ECR_HINTS = {
    "denied": "use AWS credentials that may call ecr:GetAuthorizationToken and push to the "
              "repository (ecr:BatchCheckLayerAvailability, ecr:PutImage, ecr:UploadLayerPart…).",
    "not_found": "create the repository in ECR ([image] repository names it), or fix the name.",
}


def _ecr_auth(registry: str) -> dict[str, str]:
    """A registry login from the AWS credential chain, for this push only."""
    import base64

    with aws.translated(_ecr_call(registry, "get a login token for", registry),
                        error=ImageError, hints=ECR_HINTS):
        token = _ecr(registry).get_authorization_token()
    user, password = base64.b64decode(
        token["authorizationData"][0]["authorizationToken"]).decode().split(":", 1)
    return {"username": user, "password": password}


def push(local_tag: str, registry: str, repository: str, tag: str) -> str:
    """Push ``local_tag`` as ``registry/repository:tag``; return the manifest digest."""
    client = engine()
    remote = f"{registry}/{repository}"
    reach = ("check that the registry is up and reachable from the engine, and that the "
             "credentials may push there.")
    try:
        with _engine_errors(f"tag {local_tag} as {remote}:{tag}", local_tag):
            client.images.get(local_tag).tag(remote, tag)
        auth = _ecr_auth(registry) if is_ecr(registry) else None
        digest = None
        with _engine_errors(f"push {remote}:{tag} to {registry}", hint=reach):
            for chunk in client.images.push(remote, tag, stream=True, decode=True,
                                            auth_config=auth):
                if "error" in chunk:
                    raise _push_refused(registry, f"{remote}:{tag}", chunk["error"].strip())
                digest = chunk.get("aux", {}).get("Digest", digest)
        if digest is None:
            raise ImageError(f"The push of {remote}:{tag} to {registry} reported no digest.",
                             hint="the registry may not speak the registry API v2; check it.")
        return digest
    finally:
        client.close()


def _push_refused(registry: str, image: str, detail: str) -> ImageError:
    lowered = detail.lower()
    if any(w in lowered for w in ("unauthorized", "denied", "authentication required",
                                  "no basic auth credentials")):
        hint = ("log in with credentials that may push there (for ECR, AWS credentials that "
                "may push to the repository).")
    elif any(w in lowered for w in ("connection refused", "no such host", "timeout",
                                    "dial tcp", "server gave http response to https client")):
        hint = ("check that the registry is up and reachable from the engine (a plain-HTTP "
                "registry must be listed in the engine's insecure-registries).")
    else:
        hint = "check that the registry is reachable and that the credentials may push there."
    return ImageError(f"The registry {registry} refused the push of {image}: {detail}.",
                      hint=hint)


def _reference(reference: str) -> dict[str, str]:
    """ECR's image id of a tag or a digest."""
    return {"imageDigest" if reference.startswith("sha256:") else "imageTag": reference}


def _ecr_request(registry: str, repository: str, reference: str, call, action: str = "read",
                absent: tuple[str, ...] = ("ImageNotFoundException",)):
    """``call(ecr, image_ids)``, or None when ECR answers with one of the ``absent`` codes."""
    try:
        return call(_ecr(registry), [_reference(reference)])
    except Exception as exc:
        found = aws.classify(exc)
        if found is not None and found[1] in absent:
            return None
        mapped = aws.translate(exc, _ecr_call(registry, action, f"{repository}:{reference}"),
                               error=ImageError, hints=ECR_HINTS)
        if mapped is exc:
            raise
        raise mapped from exc


def _ecr_manifest(registry: str, repository: str, reference: str) -> dict | None:
    """ECR's image (``imageManifest``, ``imageManifestMediaType``) of a tag or digest."""
    found = _ecr_request(registry, repository, reference,
                        lambda ecr, ids: ecr.batch_get_image(
                            repositoryName=repository, imageIds=ids,
                            acceptedMediaTypes=MANIFEST_TYPES.split(", ")))
    images = found.get("images") if found else None  # a missing image is a "failure" here
    return images[0] if images else None


def _registry_get(registry: str, repository: str, reference: str,
                  method: str) -> tuple[bytes, dict] | None:
    """The registry's answer (body, headers by lower-case name) for a manifest, or None
    when it has none."""
    request = urllib.request.Request(_registry_url(registry, repository, reference),
                                     method=method, headers={"Accept": MANIFEST_TYPES})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read(), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        hint = ("log in with credentials that may read the repository." if exc.code in (401, 403)
                else "check the registry's state; it may be starting or overloaded.")
        raise ImageError(f"The registry {registry} answered {exc.code} for "
                         f"{repository}:{reference}.", hint=hint) from exc
    except OSError as exc:
        raise ImageError(f"Cannot reach the registry {registry}: {exc}.",
                         hint="check that it is up, or unset the registry to end the pipeline "
                              "at AcceptanceTest.") from exc


def registry_digest(registry: str, repository: str, reference: str) -> str | None:
    """The digest of the manifest the registry holds under ``repository:reference`` (a tag,
    or a digest: then it says whether the registry still holds it), or None."""
    if is_ecr(registry):
        found = _ecr_request(registry, repository, reference,
                            lambda ecr, ids: ecr.describe_images(repositoryName=repository,
                                                                 imageIds=ids))
        return found["imageDetails"][0]["imageDigest"] if found else None
    answer = _registry_get(registry, repository, reference, "HEAD")
    return answer[1].get("docker-content-digest") if answer else None


def registry_image_id(registry: str, repository: str, reference: str) -> str | None:
    """The image ID (the digest of its config) of ``repository:reference`` in the registry:
    the engine's ID of the image that was pushed there. None when the registry has no such
    manifest, or it is a multi-platform index (which no single engine ID names)."""
    if is_ecr(registry):
        image = _ecr_manifest(registry, repository, reference)
        body = image["imageManifest"] if image else None
    else:
        answer = _registry_get(registry, repository, reference, "GET")
        body = answer[0] if answer else None
    if body is None:
        return None
    return json.loads(body).get("config", {}).get("digest")


def _registry_url(registry: str, repository: str, reference: str) -> str:
    scheme = "http" if registry.startswith(("127.", "localhost")) else "https"
    return f"{scheme}://{registry}/v2/{repository}/manifests/{reference}"


def tag_digest(registry: str, repository: str, digest: str, tag: str) -> None:
    """Point ``repository:tag`` at the manifest ``digest`` by copying the manifest (registry
    API v2, or ECR's PutImage), as ``crane tag`` does: nothing is pulled, rebuilt or pushed
    again."""
    where = f"{registry}/{repository}@{digest}"
    missing = ImageError(f"The registry {registry} does not hold {where}, which "
                         f"{repository}:{tag} was to point at.",
                         hint="push the image first (`mlbuild stage push`).")
    if is_ecr(registry):
        image = _ecr_manifest(registry, repository, digest)
        if image is None:
            raise missing
        # ECR refuses to tag an image with the tag it already has: then there is nothing to do.
        media = {"imageManifestMediaType": image["imageManifestMediaType"]} if image.get(
            "imageManifestMediaType") else {}
        _ecr_request(registry, repository, tag, lambda ecr, ids: ecr.put_image(
            repositoryName=repository, imageManifest=image["imageManifest"], imageTag=tag,
            **media), action="tag", absent=("ImageAlreadyExistsException",))
    else:
        _copy_manifest(registry, repository, digest, tag, missing)
    held = registry_digest(registry, repository, tag)
    if held != digest:
        raise ImageError(f"The registry {registry} holds {held} under {repository}:{tag} after "
                         f"it was pointed at {digest}.", hint="check the registry's state.")


def _copy_manifest(registry: str, repository: str, digest: str, tag: str,
                   missing: ImageError) -> None:
    """PUT the manifest ``digest`` as ``tag`` (registry HTTP API v2)."""
    where = f"{registry}/{repository}@{digest}"
    answer = _registry_get(registry, repository, digest, "GET")
    if answer is None:
        raise missing
    manifest, headers = answer
    media_type = headers["content-type"]
    try:
        put = urllib.request.Request(_registry_url(registry, repository, tag), data=manifest,
                                     method="PUT", headers={"Content-Type": media_type})
        with urllib.request.urlopen(put, timeout=60):
            pass
    except urllib.error.HTTPError as exc:
        raise ImageError(f"The registry {registry} answered {exc.code} when {repository}:{tag} "
                         f"was to point at {where}.",
                         hint="check that the credentials may push to the repository.") from exc
    except OSError as exc:
        raise ImageError(f"Cannot reach the registry {registry}: {exc}.",
                         hint="check that it is up and reachable.") from exc


def labels_of(tag: str) -> dict[str, str]:
    client = engine()
    try:
        with _engine_errors(f"read the labels of {tag}", tag):
            return dict(client.images.get(tag).labels or {})
    finally:
        client.close()


def describe(tag: str) -> str:
    client = engine()
    try:
        with _engine_errors(f"describe {tag}", tag):
            return json.dumps(client.images.get(tag).attrs, sort_keys=True)
    finally:
        client.close()
