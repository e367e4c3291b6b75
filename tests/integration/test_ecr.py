"""Promotion in ECR (the registry the Jenkinsfile names), against moto's ECR API over real
HTTP: the deploy's tag copy is ECR's PutImage of the manifest BatchGetImage returns."""

from __future__ import annotations

import json
import uuid

import pytest

from mlbuild.errors import ImageError
from mlbuild.images.docker import registry_digest, registry_image_id, tag_digest
from tests.services import aws_client

pytestmark = pytest.mark.integration

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
MISSING = "sha256:" + "f" * 64


def _manifest(config: str, layer: str) -> str:
    blob = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    return json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7,
                   "digest": config},
        "layers": [{"mediaType": blob, "size": 11, "digest": layer}]})


@pytest.fixture
def pushed(s3_env):
    """A repository in ECR with two images pushed under their build tags."""
    ecr = aws_client("ecr", s3_env["AWS_ENDPOINT_URL"])
    repository = f"test/ecr-{uuid.uuid4().hex[:12]}"
    ecr.create_repository(repositoryName=repository)
    images = {}
    for n, tag in enumerate(("build-1", "build-2")):
        config = "sha256:" + f"{n + 1}" * 64
        put = ecr.put_image(repositoryName=repository, imageTag=tag,
                            imageManifest=_manifest(config, "sha256:" + f"{n + 5}" * 64))
        images[tag] = (put["image"]["imageId"]["imageDigest"], config)
    return repository, images


def test_promotion_points_the_environment_tag_at_the_digest_and_rolls_back(pushed):
    repository, images = pushed
    (first, first_id), (second, _) = images["build-1"], images["build-2"]
    assert first != second
    assert registry_digest(REGISTRY, repository, "build-1") == first
    assert registry_digest(REGISTRY, repository, first) == first  # by digest too
    assert registry_image_id(REGISTRY, repository, first) == first_id

    tag_digest(REGISTRY, repository, first, "staging")
    assert registry_digest(REGISTRY, repository, "staging") == first
    tag_digest(REGISTRY, repository, first, "staging")  # again: ECR's "already exists" is a no-op
    assert registry_digest(REGISTRY, repository, "staging") == first
    tag_digest(REGISTRY, repository, second, "staging")
    assert registry_digest(REGISTRY, repository, "staging") == second
    tag_digest(REGISTRY, repository, first, "staging")  # a rollback
    assert registry_digest(REGISTRY, repository, "staging") == first
    assert registry_digest(REGISTRY, repository, "build-2") == second  # untouched


def test_a_digest_ecr_does_not_hold_is_refused_and_tags_nothing(pushed):
    repository, _ = pushed
    assert registry_digest(REGISTRY, repository, MISSING) is None
    assert registry_image_id(REGISTRY, repository, MISSING) is None
    with pytest.raises(ImageError, match="does not hold") as refused:
        tag_digest(REGISTRY, repository, MISSING, "production")
    assert "mlbuild stage push" in refused.value.hint
    assert registry_digest(REGISTRY, repository, "production") is None


def test_a_repository_ecr_does_not_have_is_an_image_error_with_a_hint(s3_env):
    with pytest.raises(ImageError) as missing:
        registry_digest(REGISTRY, f"test/absent-{uuid.uuid4().hex[:8]}", "staging")
    assert "ECR" in str(missing.value) and missing.value.hint
