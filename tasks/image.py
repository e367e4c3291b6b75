"""BuildImage → AcceptanceTest → PushImage: the serving image, tested inside, then shipped.

BuildImage builds ``docker/Dockerfile.serve`` around the model models.lock releases
(verified), the project's inference code and ``docker/serve.py``. AcceptanceTest runs
that image with no network on the fast tier's test sample and applies the same gates to
the container's predictions. PushImage pushes it to the configured registry. Each is
complete only while what it made still exists: the image in the engine (or registry),
the pushed digest in the registry.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mlbuild import BuildTask, IntegrityError
from mlbuild.core.manifest import git_commit, now
from mlbuild.release.lockfile import LockFile
from mlbuild.settings import cache_dir, reports_dir, wheel_cache_dir
from mlbuild.store import LocalCache, file_digest, locate, open_store
from tasks.config import load
from tasks.evaluate import GatedTask
from tasks.publish import PublishModel
from tasks.split import SplitData
from tasks.train import TrainModel

DOCKERFILE = Path("docker/Dockerfile.serve")
ENTRY_POINT = Path("docker/serve.py")
INFERENCE = Path(__file__).with_name("inference.py")
#: what the image installs: the inference code's imports, at the host's versions
IMAGE_PACKAGES = ("lightgbm", "numpy", "pandas", "scipy")


def _image_config():
    return load().image.resolved()


class _ImageTask(BuildTask):
    """What both image builds share: a tag from the fingerprint, a hermetic build from a
    context of files, OCI labels, and completeness that asks the engine."""

    outputs = {"image": "image.json"}
    suffix = ""           # appended to the repository name
    packages_in_image: tuple[str, ...] = ()

    @property
    def tag(self) -> str:
        return f"{_image_config().repository}{self.suffix}:{self.fingerprint[:16]}"

    def invalidation_reason(self):
        from mlbuild.images import docker as image

        recorded = json.loads(self.store.get_bytes(f"{self.prefix}/image.json",
                                                   self.read_manifest().outputs["image"].sha256))
        if image.image_id(self.tag) == recorded["id"]:
            return None
        registry = _image_config().registry
        repository, tag = self.tag.split(":")
        if registry and image.registry_digest(registry, repository, tag):
            return None
        return f"the Docker engine no longer holds {self.tag} as {recorded['id'][:19]}"

    def build_image(self, context: Path, output: Path, buildargs: dict[str, str],
                    labels: dict[str, str]) -> dict[str, str]:
        """Add the wheels to ``context``, build it, and record the image in ``output``."""
        from mlbuild.core.fingerprint import package_version
        from mlbuild.core.manifest import python_version
        from mlbuild.images import docker as image

        config = _image_config()
        image.download_wheels([f"{p}=={package_version(p)}" for p in self.packages_in_image],
                              context / "wheels", wheel_cache_dir(),
                              ".".join(python_version().split(".")[:2]))
        labels = {"org.opencontainers.image.revision": git_commit() or "unknown",
                  "org.opencontainers.image.source": config.source,
                  "org.opencontainers.image.created": now(),
                  "org.opencontainers.image.title": config.repository + self.suffix,
                  "io.mlbuild.core.fingerprint": self.fingerprint, **labels}
        image_id = image.build(context, self.tag, buildargs={"BASE": config.base, **buildargs},
                               labels=labels, base=config.base)
        shutil.rmtree(context)
        record = {"tag": self.tag, "id": image_id, "base": config.base, "labels": labels}
        output.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        return {"tag": self.tag, "id": image_id}


class BuildImage(_ImageTask):
    """The serving image: docker/Dockerfile.serve around the released model."""

    code_modules = ("tasks.inference", "mlbuild.images.docker")
    packages = packages_in_image = IMAGE_PACKAGES

    def requires(self):
        return {"model": TrainModel()}

    def after(self):
        # The model must be released (models.lock written) first; but a change that only
        # re-publishes the same model (a gate threshold) must not rebuild the image.
        return {"published": PublishModel()}

    def settings(self):
        image = _image_config()
        return {"image": {"repository": image.repository, "base": image.base,
                          "source": image.source}}

    def data_digests(self):
        return {str(path): file_digest(path).sha256 for path in (DOCKERFILE, ENTRY_POINT)}

    def build(self, inputs, outputs):
        publish = load().publish
        trained = self.upstream()["model"].read_manifest().outputs["model"].sha256
        entry = LockFile.read(publish.lockfile).entry(publish.model_name, publish.lockfile)
        if entry.sha256 != trained:
            raise IntegrityError(
                f"{publish.lockfile} releases model sha256 {entry.sha256}, but the pipeline "
                f"trained {trained}. Hint: run the pipeline again; it rewrites the lock."
            )
        model = LocalCache(cache_dir()).fetch(*locate(entry.uri, open_store(self.store.uri)),
                                              entry.sha256)
        context = outputs["image"].parent / "context"
        (context / "app").mkdir(parents=True)
        (context / "model").mkdir()
        shutil.copyfile(DOCKERFILE, context / "Dockerfile")
        shutil.copyfile(INFERENCE, context / "app" / "inference.py")
        shutil.copyfile(ENTRY_POINT, context / "app" / "serve.py")
        shutil.copyfile(model, context / "model" / "model.txt")
        return self.build_image(context, outputs["image"], {"MODEL_SHA256": entry.sha256},
                                {"io.mlbuild.model.name": publish.model_name,
                                 "io.mlbuild.model.sha256": entry.sha256})


TRAIN_DOCKERFILE = Path("docker/Dockerfile.train")
#: what the training image installs: the project's runtime dependencies
TRAIN_PACKAGES = ("luigi", "boto3", "docker", "pandas", "scikit-learn", "lightgbm", "scipy",
                  "pydantic", "rich", "matplotlib")
#: what the training image's /project holds
TRAIN_SOURCES = ("mlbuild", "tasks", "configs", "luigi.cfg")


class BuildTrainingImage(_ImageTask):
    """The training image (docker/Dockerfile.train): the project, to run any task in."""

    suffix = "-train"
    code_modules = ("mlbuild.images.docker",)
    packages = packages_in_image = TRAIN_PACKAGES

    def settings(self):
        image = _image_config()
        return {"image": {"repository": image.repository, "base": image.base}}

    def data_digests(self):
        # The whole project's source: any change to it is a change to the image.
        import hashlib

        digest = hashlib.sha256()
        for path in sorted(p for s in TRAIN_SOURCES for p in
                           ([Path(s)] if Path(s).is_file() else Path(s).rglob("*"))
                           if p.is_file() and "__pycache__" not in p.parts):
            digest.update(f"{path}\0{file_digest(path).sha256}\n".encode())
        return {"project": digest.hexdigest(),
                str(TRAIN_DOCKERFILE): file_digest(TRAIN_DOCKERFILE).sha256}

    def build(self, inputs, outputs):
        context = outputs["image"].parent / "context"
        project = context / "project"
        project.mkdir(parents=True)
        shutil.copyfile(TRAIN_DOCKERFILE, context / "Dockerfile")
        for source in TRAIN_SOURCES:
            if Path(source).is_dir():
                shutil.copytree(source, project / source,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copyfile(source, project / source)
        return self.build_image(context, outputs["image"], {}, {})


class AcceptanceTest(GatedTask):
    """The image's own predictions, on the fast tier's sample, through the same gates."""

    code_modules = ("tasks.evaluate", "mlbuild.accuracy.evaluation", "mlbuild.accuracy.gates", "mlbuild.accuracy.metrics",
                    "mlbuild.accuracy.stats", "mlbuild.accuracy.power", "mlbuild.accuracy.resample")

    def requires(self):
        return {"image": BuildImage(), "split": SplitData()}

    def report_folder(self) -> Path:
        return Path(reports_dir(), "acceptance")

    def build(self, inputs, outputs):
        import os

        import numpy as np
        import pandas as pd

        from mlbuild import ImageError, image
        from mlbuild.accuracy.metrics import Predictions
        from tasks.evaluate import gate, tier_rows

        config = load()
        tag = json.loads(inputs["image"]["image"].read_text())["tag"]
        test, plan = tier_rows(pd.read_csv(inputs["split"]["test"]), config, "fast")
        work = outputs["metrics"].parent
        data, out = (work / "data").resolve(), (work / "out").resolve()
        data.mkdir()
        out.mkdir()
        os.chmod(out, 0o777)  # the image runs as an unprivileged user
        test.drop(columns=[config.schema_.label]).to_csv(data / "test.csv", index=False)
        volumes = {str(data): {"bind": "/data", "mode": "ro"},
                   str(out): {"bind": "/out", "mode": "rw"}}
        health = image.run(tag, ["health"], {})
        if health.exit_code != 0 or not health.logs.startswith("ok"):
            raise ImageError(f"The health check of {tag} failed (exit {health.exit_code}): "
                             f"{health.logs.strip()[-1000:]}")
        result = image.run(tag, ["predict", "/data/test.csv", "/out/predictions.csv"], volumes)
        if result.exit_code != 0:
            raise ImageError(f"The image {tag} failed to predict (exit {result.exit_code}): "
                             f"{result.logs.strip()[-1000:]}")
        predicted = pd.read_csv(out / "predictions.csv")
        shutil.rmtree(data)
        shutil.rmtree(out)
        proba = predicted.filter(like="proba_").to_numpy()
        candidate = Predictions(test[config.schema_.label].to_numpy(),
                                predicted["prediction"].to_numpy(), proba)
        evaluation, _ = gate(candidate, test, config, "fast", plan, work,
                             f"Acceptance test of {tag}", extra={"image": tag,
                                                                 "health": health.logs.strip()},
                             absent="the acceptance test judges the image alone; EvaluateAccuracy "
                                    "compared its model with the released one")
        self.keep_reports(evaluation, work, f"The image {tag} fails the accuracy gates: ")
        return {"image": tag, "accuracy": float(np.mean(candidate.y_pred == candidate.y_true))}


class PushImage(BuildTask):
    outputs = {"push": "push.json"}

    def requires(self):
        return {"image": BuildImage(), "acceptance": AcceptanceTest()}

    def settings(self):
        return {"registry": _image_config().registry}

    def invalidation_reason(self):
        from mlbuild.images import docker as image

        pushed = self.read_manifest().extra
        held = image.registry_digest(pushed["registry"], pushed["repository"], pushed["tag"])
        if held != pushed["digest"]:
            return (f"the registry holds {held or 'nothing'} under {pushed['repository']}:"
                    f"{pushed['tag']}, not the pushed {pushed['digest']}")
        return None

    def build(self, inputs, outputs):
        from mlbuild.images import docker as image

        registry = _image_config().registry
        built = json.loads(inputs["image"]["image"].read_text())
        repository, tag = built["tag"].split(":")
        digest = image.push(built["tag"], registry, repository, tag)
        record = {"registry": registry, "repository": repository, "tag": tag, "digest": digest,
                  "image": f"{registry}/{repository}:{tag}@{digest}"}
        outputs["push"].write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        return record


