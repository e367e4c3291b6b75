"""Several models in one service: the reference project's two models (digits, synthetic),
each published by its own config into one models.lock, served by one image with a layer per
model, and gated inside it. A real Docker engine; no mocks."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from mlbuild.errors import ImageError
from mlbuild.tasks.service import _judge
from tests.conftest import REPO, docker_client, ok

pytestmark = pytest.mark.integration

SYNTHETIC = ("--pipeline-config", "configs/synthetic.toml")
SERVE = REPO / "mlbuild" / "tasks" / "files" / "serve.py"


@pytest.fixture
def service(built, docker_env):
    """The built digits project; its service image goes to a repository of its own."""
    repository = f"test/service-{uuid.uuid4().hex[:8]}"
    for config, name in (("configs/pipeline.toml", "digits"), ("configs/synthetic.toml",
                                                                 "synthetic")):
        built.edit(config, f'repository = "test/{name}"',
                   f'repository = "test/{name}"\nservice_repository = "{repository}"')
    built.extra_env.update({**docker_env, "MLBUILD_IMAGE_REGISTRY": ""})
    return built


def images(project) -> list[dict]:
    return [json.loads(p.read_text()) for p in project.store.glob("BuildServiceImage/*/image.json")]


def layers(docker_env, tag: str) -> list[str]:
    return docker_client(docker_env).images.get(tag).attrs["RootFS"]["Layers"]


def lock_entries(project) -> dict[str, str]:
    """Each model's entry as the lock writes it (sorted keys), to compare byte for byte."""
    models = json.loads(project.lock.read_text())["models"]
    return {n: json.dumps(e, sort_keys=True, indent=2) for n, e in models.items()}


def test_one_image_serves_every_model_and_a_new_model_changes_only_its_tasks_and_layer(
        service, docker_env):
    project = service
    ok(project.luigi("PublishModel", *SYNTHETIC))
    ok(project.luigi("ServiceAcceptanceTest"))
    first = images(project)[0]
    lock = json.loads(project.lock.read_text())["models"]
    assert first["labels"]["io.mlbuild.models"] == "digits,synthetic"
    for name in ("digits", "synthetic"):
        assert first["labels"][f"io.mlbuild.model.{name}.sha256"] == lock[name]["sha256"]
    junit = (project.root / "reports/acceptance/service/junit.xml").read_text()
    assert junit.count("<testcase ") == 2 and "<failure" not in junit
    assert 'name="digits"' in junit and 'name="synthetic"' in junit
    old_layers = layers(docker_env, first["tag"])

    # A new synthetic model: only synthetic's tasks run; the digits entry stays as it was.
    project.edit("configs/synthetic.toml", "num_leaves = 15", "num_leaves = 7")
    entries, before = lock_entries(project), project.manifests()
    ok(project.luigi("PublishModel", *SYNTHETIC))
    after = project.manifests()
    assert {k: after[k] for k in before} == before  # nothing re-ran, digits' tasks included
    assert project.ran_since(before) == {"TrainModel", "EvaluateAccuracy", "PublishModel"}
    assert lock_entries(project)["digits"] == entries["digits"]
    assert lock_entries(project)["synthetic"] != entries["synthetic"]

    before = project.manifests()
    ok(project.luigi("ServiceAcceptanceTest"))
    assert project.ran_since(before) == {"BuildServiceImage", "ServiceAcceptanceTest"}
    second = next(i for i in images(project) if i["id"] != first["id"])
    new_layers = layers(docker_env, second["tag"])
    assert len(new_layers) == len(old_layers)
    # The models' layers are the last two, sorted by name: only synthetic's differs.
    assert new_layers[:-1] == old_layers[:-1] and new_layers[-1] != old_layers[-1]

    # A new digits model, whose layer comes first: synthetic's layer after it is rebuilt by
    # Docker, and comes out the same.
    project.edit("configs/pipeline.toml", "num_iterations = 100", "num_iterations = 90")
    entries = lock_entries(project)
    ok(project.luigi("PublishModel"))
    assert lock_entries(project)["synthetic"] == entries["synthetic"]
    ok(project.luigi("ServiceAcceptanceTest"))
    third = next(i for i in images(project) if i["id"] not in (first["id"], second["id"]))
    newest = layers(docker_env, third["tag"])
    assert newest[:-2] == new_layers[:-2] and newest[-1] == new_layers[-1]
    assert newest[-2] != new_layers[-2]

    assert "Did not run any tasks" in ok(project.luigi("ServiceAcceptanceTest")).stderr


def test_two_pipelines_at_once_leave_both_models_in_the_lock(service):
    project = service
    for config in ("configs/pipeline.toml", "configs/synthetic.toml"):
        project.one_training_thread(config)  # both re-train, at the same time
    runs = [subprocess.Popen([sys.executable, "-m", "luigi", "--module", "tasks",
                              "PublishModel", "--pipeline-config", config],
                             cwd=project.root, env=project.env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
            for config in ("configs/pipeline.toml", "configs/synthetic.toml")]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    models = json.loads(project.lock.read_text())["models"]
    published = [json.loads(p.read_text()) for p in project.store.glob(
        "PublishModel/*/published.json")]
    assert set(models) == {"digits", "synthetic"}
    for name in models:  # each entry is the one its own pipeline published last
        assert models[name]["fingerprint"] in {p["fingerprint"] for p in published}


def test_a_service_image_whose_container_does_not_start_fails_naming_each_model(service):
    project = service
    ok(project.luigi("PublishModel", *SYNTHETIC))
    broken = project.root / "Dockerfile.broken"
    broken.write_text((REPO / "mlbuild/tasks/files/Dockerfile.service").read_text().replace(
        'ENTRYPOINT ["python", "/app/serve.py"]',
        'ENTRYPOINT ["python", "-c", "raise SystemExit(\'no service today\')"]'))
    project.edit("tasks/release.py", "class BuildServiceImage(Release, mlbuild.BuildServiceImage):",
                 "class BuildServiceImage(Release, mlbuild.BuildServiceImage):\n"
                 f"    dockerfile = __import__('pathlib').Path({str(broken)!r})")
    result = project.mlbuild("run", "ServiceAcceptanceTest")
    assert result.returncode == ImageError.exit_code, result.stderr
    assert "fails its acceptance test for 2 of 2 model(s)" in result.stderr
    for name in ("digits", "synthetic"):
        assert f"- {name}: the container did not start (exit 1): no service today" in result.stderr
    junit = (project.root / "reports/acceptance/service/junit.xml").read_text()
    assert junit.count("<failure ") == 2


# ---------------------------------------------------------------- serve.py, on the host


@pytest.fixture
def models_folder(built, tmp_path) -> Path:
    """The digits model laid out as the service image holds it."""
    entry = json.loads(built.lock.read_text())["models"]["digits"]
    folder = tmp_path / "models" / "digits"
    folder.mkdir(parents=True)
    (folder / "model.txt").write_bytes((built.root / entry["uri"]).read_bytes())
    (folder / "inference.py").write_text((REPO / "tasks/inference.py").read_text())
    (folder / "model.json").write_text(json.dumps(
        {"name": "digits", "sha256": entry["sha256"], "file": "model.txt",
         "inference": "inference.py"}))
    return folder.parent


def test_serve_answers_each_model_by_name_and_names_a_model_it_does_not_serve(models_folder,
                                                                             tmp_path):
    requests, answers = tmp_path / "requests", tmp_path / "answers"
    requests.mkdir()
    answers.mkdir()
    pixels = [f"pixel_{i}_{j}" for i in range(8) for j in range(8)]
    body = json.dumps({"columns": pixels, "rows": [[0] * 64, [8] * 64]})
    (requests / "digits.json").write_text(body)
    (requests / "faces.json").write_text(body)
    env = {"MLBUILD_MODELS": str(models_folder), "PATH": str(Path(sys.executable).parent)}
    done = subprocess.run([sys.executable, str(SERVE), "probe", str(requests), str(answers)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "ok: model digits sha256" in done.stdout
    served = json.loads((answers / "digits.json").read_text())
    assert served["status"] == 200 and len(served["body"]["predictions"]) == 2
    assert len(served["body"]["probabilities"][0]) == 10
    missing = json.loads((answers / "faces.json").read_text())
    assert missing["status"] == 404 and missing["body"]["models"] == ["digits"]
    verdict = _judge("faces", missing, [0, 0], None)
    assert not verdict["passed"] and verdict["kind"] == "image"
    assert verdict["reason"] == "the image does not serve model 'faces' (it serves: digits)"
    wrong = _judge("digits", served, [9, 9], None)
    assert wrong["kind"] == "mismatch" and "2 of 2 predictions differ" in wrong["reason"]


def test_serve_keeps_the_single_model_endpoint(models_folder, tmp_path):
    import socket
    import time
    import urllib.request

    folder = models_folder / "digits"
    app = tmp_path / "app"
    app.mkdir()
    (app / "inference.py").write_text((folder / "inference.py").read_text())
    (app / "serve.py").write_text(SERVE.read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"MLBUILD_MODEL": str(folder / "model.txt"), "PATH": str(Path(sys.executable).parent)}
    server = subprocess.Popen([sys.executable, str(app / "serve.py"), "serve", "--host",
                               "127.0.0.1", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    threading.Thread(target=server.stdout.read, daemon=True).start()
    try:
        body = json.dumps({"rows": [{f"pixel_{i}_{j}": 0 for i in range(8) for j in range(8)}]})
        for _ in range(100):
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/predict",
                                                 data=body.encode(), method="POST")
                with urllib.request.urlopen(request, timeout=30) as response:
                    answer = json.loads(response.read())
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("serve.py did not answer")
        assert answer["model"] == "model" and len(answer["predictions"]) == 1
    finally:
        server.terminate()
        server.wait(timeout=30)
