"""What a stage run in the test image is given of the host: named settings, and the host
paths they name mounted at the same path; nothing else."""

from __future__ import annotations

import pytest

from mlbuild.ci.stages import _passed_in


@pytest.fixture
def host(tmp_path, monkeypatch):
    for name in ("MLBUILD_STORE", "MLBUILD_CACHE", "MLBUILD_WHEEL_CACHE", "PIP_CERT",
                 "PIP_FIND_LINKS", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "AWS_CA_BUNDLE",
                 "DOCKER_HOST"):
        monkeypatch.delenv(name, raising=False)
    workspace, store, cert, wheels = (tmp_path / n for n in ("ws", "store", "ca.pem", "wheels"))
    workspace.mkdir()
    store.mkdir()
    wheels.mkdir()
    cert.write_text("certificates")
    monkeypatch.setenv("MLBUILD_STORE", str(store))
    monkeypatch.setenv("MLBUILD_CACHE", str(workspace / ".mlbuild" / "cache"))
    monkeypatch.setenv("MLBUILD_WHEEL_CACHE", str(tmp_path / "wheel-cache"))
    monkeypatch.setenv("PIP_CERT", str(cert))
    monkeypatch.setenv("PIP_FIND_LINKS", f"{wheels} https://example.org/wheels")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5055")
    monkeypatch.setenv("GITHUB_TOKEN", "secret")
    monkeypatch.setenv("BRANCH_NAME", "develop")
    return tmp_path, workspace


def test_the_named_settings_pass_in_and_nothing_else(host):
    _, workspace = host
    env = _passed_in({str(workspace): {"bind": str(workspace), "mode": "rw"}})
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5055"
    assert env["BRANCH_NAME"] == "develop"
    assert {"PIP_CERT", "PIP_FIND_LINKS", "MLBUILD_STORE"} <= set(env)
    assert not {"GITHUB_TOKEN", "HOME", "PATH", "USER"} & set(env)


def test_host_paths_are_mounted_at_their_path_writable_only_where_the_stage_writes(host):
    tmp_path, workspace = host
    volumes = {str(workspace): {"bind": str(workspace), "mode": "rw"}}
    env = _passed_in(volumes)
    assert volumes[str(tmp_path / "store")] == {"bind": str(tmp_path / "store"), "mode": "rw"}
    assert volumes[str(tmp_path / "ca.pem")]["mode"] == "ro"
    assert volumes[str(tmp_path / "wheels")]["mode"] == "ro"
    # The wheel cache is always the host's, made when missing, and shared read-write.
    assert env["MLBUILD_WHEEL_CACHE"] == str(tmp_path / "wheel-cache")
    assert volumes[env["MLBUILD_WHEEL_CACHE"]]["mode"] == "rw"
    # A path inside a mounted folder, or one that does not exist, is not mounted again.
    assert not any(path.startswith(f"{workspace}/") for path in volumes)
    assert "https://example.org/wheels" not in volumes
    assert len(volumes) == 5


def test_the_wheel_cache_is_passed_in_even_when_unset(host, monkeypatch):
    monkeypatch.delenv("MLBUILD_WHEEL_CACHE")
    env = _passed_in({})
    assert env["MLBUILD_WHEEL_CACHE"].startswith("/")
