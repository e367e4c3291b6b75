"""The serving image for real: built by a real Docker engine, tested inside, pushed to a
real registry, pulled back and run; layer reuse, exact completeness, and failures."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import uuid

import pytest

from mlbuild import open_table
from mlbuild.errors import ImageError
from tests.conftest import REPO, docker_client, ok, s3_client
from tests.services import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def imaged(built, docker_env, tmp_path):
    """A built project whose images go to a repository of its own in the test registry."""
    repository = f"test/digits-{uuid.uuid4().hex[:8]}"
    built.edit("configs/pipeline.toml", 'repository = "test/digits"',
               f'repository = "{repository}"')
    built.extra_env.update(docker_env)
    return built, repository


def _another_image(client, docker_env, tag: str):
    """A new image (the base and a label) under ``tag``: another build taking the tag."""
    dockerfile = f"FROM {docker_env['MLBUILD_IMAGE_BASE']}\nLABEL another={uuid.uuid4().hex}\n"
    return client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag,
                               network_mode="none", rm=True)[0]


def _record(project, family: str, name: str) -> dict:
    return json.loads(next(project.store.glob(f"{family}/*/{name}")).read_text())


def test_the_pipeline_builds_tests_and_pushes_an_image_that_serves(imaged, docker_env, tmp_path):
    project, repository = imaged
    before = project.manifests()
    ok(project.luigi("FullPipeline"))
    assert project.ran_since(before) == {"BuildImage", "AcceptanceTest", "PushImage"}
    pushed = _record(project, "PushImage", "push.json")
    assert pushed["digest"].startswith("sha256:")

    client = docker_client(docker_env)
    image = client.images.get(pushed["image"].split("@")[0].split("/", 1)[1])
    lock = json.loads(project.lock.read_text())["models"]["digits"]
    labels = image.labels
    assert labels["io.mlbuild.model.sha256"] == lock["sha256"]
    assert labels["io.mlbuild.model.name"] == "digits"
    assert labels["org.opencontainers.image.revision"]
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert labels["org.opencontainers.image.created"]
    assert image.attrs["Config"]["User"] == "10001:10001"

    # Pull it back from the registry, as a deployment would, and predict with it.
    remote = f"{docker_env['MLBUILD_IMAGE_REGISTRY']}/{repository}"
    for tag in [t for t in image.tags]:
        client.images.remove(tag, force=True)
    pulled = client.images.pull(remote, tag=pushed["tag"])
    assert pulled.attrs["RepoDigests"] == [f"{remote}@{pushed['digest']}"]
    data = tmp_path / "data"
    data.mkdir()
    view = next(project.store.glob("SplitData/*/test.rows.arrow"))
    test_csv = open_table(view, lambda stored: project.store / stored.key).to_pandas().to_csv(
        index=False)
    header, *rows = test_csv.splitlines()
    label = header.split(",").index("label")
    features = [",".join(v for i, v in enumerate(line.split(",")) if i != label)
                for line in [header, *rows[:25]]]
    (data / "rows.csv").write_text("\n".join(features) + "\n")
    data.chmod(0o777)
    logs = client.containers.run(f"{remote}:{pushed['tag']}",
                                 ["predict", "/data/rows.csv", "/data/out.csv"],
                                 volumes={str(data): {"bind": "/data", "mode": "rw"}},
                                 network_mode="none", remove=True).decode()
    assert "predicted 25 rows" in logs
    out = (data / "out.csv").read_text().splitlines()
    assert out[0].startswith("prediction,proba_0") and len(out) == 26


def test_nothing_is_rebuilt_when_nothing_changed_and_a_gate_change_rebuilds_nothing(imaged,
                                                                                    docker_env):
    project, _ = imaged
    ok(project.luigi("FullPipeline"))
    image_id = _record(project, "BuildImage", "image.json")["id"]
    before = project.manifests()
    ok(project.luigi("FullPipeline"))
    assert project.ran_since(before) == set()

    project.edit("configs/pipeline.toml", "min = 0.90", "min = 0.89")
    ok(project.luigi("FullPipeline"))
    assert project.ran_since(before) == {"EvaluateAccuracy", "PublishModel", "AcceptanceTest",
                                         "PushImage"}
    assert {r["id"] for r in [_record(project, "BuildImage", "image.json")]} == {image_id}


def test_an_image_deleted_from_the_engine_and_the_registry_is_built_tested_and_pushed_again(
        imaged, docker_env):
    import urllib.request

    project, repository = imaged
    ok(project.luigi("FullPipeline"))
    built, pushed = _record(project, "BuildImage", "image.json"), _record(project, "PushImage",
                                                                          "push.json")
    client = docker_client(docker_env)
    for tag in client.images.get(built["tag"]).tags:
        client.images.remove(tag, force=True)
    registry = docker_env["MLBUILD_IMAGE_REGISTRY"]
    urllib.request.urlopen(urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{pushed['digest']}", method="DELETE"))

    status = ok(project.mlbuild("status", "FullPipeline")).stdout
    assert f"the Docker engine no longer holds {built['tag']}" in status
    assert f"the registry holds nothing under {repository}@{pushed['digest']}" in status
    assert "its result exists, but BuildImage is to build its image again" in status
    before = project.manifests()
    ok(project.luigi("FullPipeline"))
    # A build is not reproducible to the byte (its creation time is a label): the new image
    # is acceptance-tested before it is pushed.
    assert project.ran_since(before) == {"BuildImage", "AcceptanceTest", "PushImage"}
    rebuilt = _record(project, "BuildImage", "image.json")["id"]
    assert client.images.get(built["tag"]).id == rebuilt != built["id"]
    assert _record(project, "PushImage", "push.json")["image_id"] == rebuilt


def test_another_build_taking_the_tag_changes_neither_what_is_tested_nor_what_is_pushed(
        imaged, docker_env):
    """Two jobs of one commit on one engine build the same fingerprint, so the same tag:
    the image BuildImage built (and AcceptanceTest ran) stays its output, by ID."""
    import urllib.request

    project, repository = imaged
    ok(project.luigi("FullPipeline"))
    built, pushed = _record(project, "BuildImage", "image.json"), _record(project, "PushImage",
                                                                          "push.json")
    assert pushed["image_id"] == built["id"]
    client = docker_client(docker_env)
    registry = docker_env["MLBUILD_IMAGE_REGISTRY"]
    remote = f"{registry}/{repository}"
    # Another image takes the tag, in the engine and in the registry.
    other = _another_image(client, docker_env, built["tag"])
    other.tag(remote, pushed["tag"])
    client.images.push(remote, pushed["tag"])
    assert client.images.get(built["tag"]).id != built["id"]

    before = project.manifests()
    ok(project.luigi("FullPipeline"))
    assert project.ran_since(before) == set()

    # Its push gone from the registry, PushImage pushes the image built, not the tag's.
    urllib.request.urlopen(urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{pushed['digest']}", method="DELETE"))
    ok(project.luigi("FullPipeline"))
    assert project.ran_since(before) == {"PushImage"}
    again = _record(project, "PushImage", "push.json")
    assert again["image_id"] == built["id"]
    manifest = urllib.request.urlopen(urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{again['digest']}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"}))
    assert json.loads(manifest.read())["config"]["digest"] == built["id"]


def test_a_base_image_rebuilt_under_its_name_is_built_on_tested_and_pushed(imaged, docker_env):
    project, _ = imaged
    client = docker_client(docker_env)
    base = f"test/base-{uuid.uuid4().hex[:8]}:bookworm"
    client.images.get(docker_env["MLBUILD_IMAGE_BASE"]).tag(base)
    project.extra_env["MLBUILD_IMAGE_BASE"] = base
    ok(project.luigi("FullPipeline"))
    first = _record(project, "BuildImage", "image.json")
    assert first["base_id"] == client.images.get(base).id

    # The same name, another image (as after `make services` rebuilt it, or a new pull).
    rebuilt = _another_image(client, docker_env, base)
    status = ok(project.mlbuild("status", "FullPipeline")).stdout
    assert f"the base image {base} is another image now ({rebuilt.id[:19]}" in status
    before = project.manifests()
    ok(project.luigi("FullPipeline"))
    assert project.ran_since(before) == {"BuildImage", "AcceptanceTest", "PushImage"}
    second = _record(project, "BuildImage", "image.json")
    assert second["base_id"] == rebuilt.id and second["id"] != first["id"]
    assert _record(project, "PushImage", "push.json")["image_id"] == second["id"]
    client.images.remove(base, force=True)


def test_a_new_model_rebuilds_only_the_last_layers(imaged, docker_env):
    project, _ = imaged
    ok(project.luigi("FullPipeline"))
    first = _record(project, "BuildImage", "image.json")
    project.edit("configs/pipeline.toml", "num_iterations = 100", "num_iterations = 90")
    before = project.manifests()
    ok(project.luigi("FullPipeline"))
    assert {"TrainModel", "BuildImage", "AcceptanceTest", "PushImage"} <= project.ran_since(before)
    images = [json.loads(p.read_text()) for p in project.store.glob("BuildImage/*/image.json")]
    second = next(i for i in images if i["id"] != first["id"])
    client = docker_client(docker_env)
    old = client.images.get(first["tag"]).attrs["RootFS"]["Layers"]
    new = client.images.get(second["tag"]).attrs["RootFS"]["Layers"]
    assert len(old) == len(new)
    assert old[:-1] == new[:-1] and old[-1] != new[-1]  # only the model layer differs


def test_no_credential_reaches_the_image(imaged, docker_env, tmp_path):
    project, _ = imaged
    secret, key_id = f"secret-{uuid.uuid4().hex}", f"AKIA{uuid.uuid4().hex[:16].upper()}"
    project.extra_env.update(AWS_SECRET_ACCESS_KEY=secret, AWS_ACCESS_KEY_ID=key_id)
    ok(project.run("python", "-m", "luigi", "--module", "tasks", "BuildImage"))
    tag = _record(project, "BuildImage", "image.json")["tag"]
    client = docker_client(docker_env)
    image = client.images.get(tag)
    described = json.dumps(image.attrs) + json.dumps(image.history())
    archive = tmp_path / "image.tar"
    with open(archive, "wb") as out:
        out.writelines(image.save())
    contents = [described]
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.isfile():
                data = tar.extractfile(member).read()
                if member.name.endswith(".tar"):
                    with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                        for inner in layer.getmembers():
                            if inner.isfile():
                                contents.append(layer.extractfile(inner).read().decode(
                                    "latin-1"))
                else:
                    contents.append(data.decode("latin-1"))
    for credential in (secret, key_id):
        assert not any(credential in text for text in contents), credential


def test_an_unreachable_engine_is_an_image_error(imaged):
    project, _ = imaged
    project.extra_env["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
    result = project.mlbuild("run", "FullPipeline")
    assert result.returncode == ImageError.exit_code, result.stderr
    assert "Cannot reach the Docker engine at unix:///nonexistent/docker.sock" in result.stderr


def test_a_missing_base_image_is_named_and_leaves_no_result(imaged):
    project, _ = imaged
    project.extra_env["MLBUILD_IMAGE_BASE"] = "mlbuild/no-such-base:1"
    before = project.files()
    result = project.mlbuild("run", "FullPipeline")
    assert result.returncode == ImageError.exit_code, result.stderr
    assert "The base image 'mlbuild/no-such-base:1' is not in the engine" in result.stderr
    after = project.files()
    assert {k: after[k] for k in before} == before
    assert not any(k.startswith("BuildImage/") for k in after)


def test_a_registry_that_refuses_is_an_image_error(imaged):
    project, _ = imaged
    project.extra_env["MLBUILD_IMAGE_REGISTRY"] = f"127.0.0.1:{free_port()}"
    result = project.mlbuild("run", "FullPipeline")
    assert result.returncode == ImageError.exit_code, result.stderr
    assert "127.0.0.1:" in result.stderr and "PushImage" in result.stderr
    assert not any(k.startswith("PushImage/") for k in project.files())


def test_without_a_registry_the_pipeline_ends_at_the_acceptance_test(imaged):
    project, _ = imaged
    project.extra_env["MLBUILD_IMAGE_REGISTRY"] = ""
    result = ok(project.luigi("FullPipeline"))
    assert "FullPipeline ends at AcceptanceTest" in result.stderr
    assert not any(k.startswith("PushImage/") for k in project.files())
    report = project.root / "reports" / "acceptance" / "report.md"
    assert "Acceptance test of" in report.read_text()




def test_the_training_image_runs_a_task_against_the_s3_store(imaged, docker_env, s3_env, bucket):
    project, _ = imaged
    shutil.copytree(REPO / "mlbuild", project.root / "mlbuild",
                    ignore=shutil.ignore_patterns("__pycache__"))
    ok(project.luigi("BuildTrainingImage"))
    tag = _record(project, "BuildTrainingImage", "image.json")["tag"]
    client = docker_client(docker_env)
    assert client.images.get(tag).attrs["Config"]["User"] == "10001:10001"
    environment = {**s3_env, "MLBUILD_STORE": f"s3://{bucket}/team"}
    logs = client.containers.run(tag, ["FetchData"], environment=environment,
                                 network_mode="host", remove=True, stderr=True).decode()
    assert "FetchData" in logs
    listed = s3_client(s3_env["AWS_ENDPOINT_URL"]).list_objects_v2(Bucket=bucket, Prefix="team/")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert any(k.startswith("team/FetchData/") and k.endswith("/manifest.json") for k in keys)
    # Credentials were given to the container at run time, never built into the image.
    assert s3_env["AWS_SECRET_ACCESS_KEY"] not in json.dumps(client.images.get(tag).attrs)


def test_containers_the_pipeline_runs_have_no_network(docker_env, s3_endpoint, monkeypatch):
    from mlbuild.images import docker as image
    from tests.services import BASE_IMAGE

    monkeypatch.setenv("DOCKER_HOST", docker_env["DOCKER_HOST"])
    port = int(s3_endpoint.rsplit(":", 1)[1])  # moto answers there on the host's loopback
    probe = ("import socket\ntry:\n    socket.create_connection(('127.0.0.1', %d), 3)\n"
             "    print('connected')\nexcept OSError as exc:\n    print('no network:', exc)\n")
    result = image.run(BASE_IMAGE, ["python3", "-c", probe % port], {})
    assert result.exit_code == 0 and result.logs.startswith("no network:"), result.logs
