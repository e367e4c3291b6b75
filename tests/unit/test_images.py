"""mlbuild.images.docker's error boundary: every Docker SDK and connection error it can meet
becomes an ImageError with a hint (tests/integration/test_image.py uses a real engine)."""

from __future__ import annotations

import docker
import pytest
import requests

from mlbuild.errors import ImageError
from mlbuild.images import docker as image


class Response:
    def __init__(self, status: int):
        self.status_code = status
        self.reason = "reason"


@pytest.mark.parametrize("exc, words, hint", [
    (docker.errors.ImageNotFound("No such image: app:1", response=Response(404),
                                 explanation="No such image: app:1"),
     ["Cannot describe app:1: the image app:1 is not in the Docker engine"], "build it first"),
    (docker.errors.BuildError("COPY failed", [{"stream": "Step 1/2 : FROM base"},
                                              {"stream": "Step 2/2 : COPY x /x"},
                                              {"error": "COPY failed"}]),
     ["The image build failed", "COPY failed", "Step 2/2 : COPY x /x"], "fix the step"),
    (docker.errors.APIError("denied", response=Response(401), explanation="unauthorized"),
     ["access denied (401)"], "log in"),
    (docker.errors.APIError("boom", response=Response(500), explanation="disk I/O error"),
     ["refused to describe app:1: disk I/O error"], "docker info"),
    (requests.exceptions.ConnectionError("Connection refused"),
     ["Cannot reach the Docker engine", "Connection refused"], "DOCKER_HOST"),
    (requests.exceptions.ReadTimeout("read timed out"),
     ["did not answer in time to describe app:1"], "overloaded"),
    (docker.errors.DockerException("something else"), ["Cannot describe app:1: something else"],
     None),
])
def test_every_docker_error_becomes_an_image_error(exc, words, hint):
    with pytest.raises(ImageError) as raised, image._engine_errors("describe app:1", "app:1"):
        raise exc
    error = raised.value
    for word in words:
        assert word in error.message, error.message
    if hint:
        assert hint in error.hint
    assert error.__cause__ is exc


def test_other_errors_and_image_errors_pass_unchanged():
    with pytest.raises(KeyError), image._engine_errors("describe app:1"):
        raise KeyError("x")
    mine = ImageError("mine", hint="h")
    with pytest.raises(ImageError) as raised, image._engine_errors("describe app:1"):
        raise mine
    assert raised.value is mine


@pytest.mark.parametrize("detail, hint", [
    ("unauthorized: authentication required", "log in"),
    ("dial tcp 10.0.0.1:443: connection refused", "reachable"),
    ("blob upload unknown", "reachable"),
])
def test_a_refused_push_says_why_and_what_to_do(detail, hint):
    error = image._push_refused("registry:5000", "registry:5000/app:1", detail)
    assert "registry:5000/app:1" in error.message and detail in error.message
    assert hint in error.hint


def test_a_failed_build_quotes_its_last_log_lines():
    error = image._build_error("The command returned a non-zero code: 1", "",
                               ["Step 3/5 : RUN pip install --no-index -r r.txt",
                                "ERROR: No matching distribution found for lightgbm"])
    assert "No matching distribution found for lightgbm" in error.message
    assert "Its last 2 log line(s)" in error.message and error.hint
