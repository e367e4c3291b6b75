"""The images: BuildImage (serving), BuildTrainingImage, and PushImage.

BuildImage builds the library's ``Dockerfile.serve`` around the model models.lock releases
(verified), the project's inference module and ``serve.py``. BuildTrainingImage installs
mlbuild as a wheel beside the project's sources, to run any task in (AWS Batch). PushImage
pushes the serving image once AcceptanceTest passed. Each is complete only while what it
made still exists: the image in the engine by ID (or in the registry), the pushed digest in
the registry. What runs and is pushed is the recorded image ID, never whatever a tag names
now: another build of the same fingerprint may have taken the tag.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import ClassVar

from mlbuild.core import fingerprint
from mlbuild.core.manifest import git_commit, now, python_version
from mlbuild.errors import ImageError, IntegrityError
from mlbuild.images import docker
from mlbuild.images.wheel import build_wheel
from mlbuild.release import LockFile
from mlbuild.settings import cache_dir, wheel_cache_dir
from mlbuild.store import LocalCache, file_digest, locate, open_store
from mlbuild.tasks.release import ReleaseTask

FILES = Path(__file__).with_name("files")
#: what the serving image installs besides the inference module's own packages
SERVING_PACKAGES = ("numpy", "pandas")
#: what the training image installs besides mlbuild itself: mlbuild's dependencies
TRAINING_PACKAGES = ("luigi", "boto3", "docker", "pandas", "scikit-learn", "lightgbm", "scipy",
                     "pydantic", "rich", "matplotlib", "pyarrow")


class ImageTask(ReleaseTask):
    """What the image builds share: a tag from the fingerprint, a hermetic build from a
    context of files, OCI labels, and completeness that asks the engine."""

    outputs = {"image": "image.json"}
    suffix: ClassVar[str] = ""  # appended to the repository name
    library_modules = ("mlbuild.images",)

    def image_config(self):
        return self.release_config().image.resolved()

    def image_packages(self) -> tuple[str, ...]:
        return ()

    def base_image(self) -> str:
        return self.image_config().base

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*super().packages, *self.image_packages())))

    @property
    def tag(self) -> str:
        return f"{self.image_config().repository}{self.suffix}:{self.fingerprint[:16]}"

    def recorded(self) -> dict:
        """What the build recorded (``image.json``): the tag, the image ID, the base, labels."""
        return json.loads(self.store.get_bytes(f"{self.prefix}/image.json",
                                               self.read_manifest().outputs["image"].sha256))

    def invalidation_reason(self):
        recorded = self.recorded()
        # By ID, not by tag: another build of the same fingerprint (a second job of the same
        # commit on this engine) may have taken the tag; the image built here is still this
        # task's output, and what its downstream tasks run and push.
        if docker.image_id(recorded["id"]) == recorded["id"]:
            return self._base_changed(recorded)
        registry = self.image_config().registry
        repository, tag = self.tag.split(":")
        if registry and docker.registry_image_id(registry, repository, tag) == recorded["id"]:
            return None
        return f"the Docker engine no longer holds {self.tag} as {recorded['id'][:19]}"

    @staticmethod
    def _base_changed(recorded: dict) -> str | None:
        """The base is named in the fingerprint, not what it is: a base rebuilt or pulled
        anew under the same name (new system packages) is a new image to build on."""
        base, was = recorded["base"], recorded.get("base_id")
        now = docker.image_id(base) if was else None
        if now is not None and now != was:
            return f"the base image {base} is another image now ({now[:19]}, not {was[:19]})"
        return None

    def build_image(self, context: Path, output: Path, buildargs: dict[str, str],
                    labels: dict[str, str]) -> dict:
        """Add the wheels to ``context``, build it, and record the image in ``output``."""
        config = self.image_config()
        requirements = [f"{p}=={fingerprint.package_version(p)}" for p in self.image_packages()]
        docker.download_wheels(requirements, context / "wheels", wheel_cache_dir(),
                               ".".join(python_version().split(".")[:2]))
        labels = {"org.opencontainers.image.revision": git_commit() or "unknown",
                  "org.opencontainers.image.source": config.source,
                  "org.opencontainers.image.created": now(),
                  "org.opencontainers.image.title": config.repository + self.suffix,
                  "io.mlbuild.fingerprint": self.fingerprint, **labels}
        base = self.base_image()
        image_id = docker.build(context, self.tag, buildargs={"BASE": base, **buildargs},
                                labels=labels, base=base)
        shutil.rmtree(context)
        record = {"tag": self.tag, "id": image_id, "base": base, "base_id": docker.image_id(base),
                  "labels": labels}
        output.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        return {"tag": self.tag, "id": image_id}


def stale_image(image: ImageTask, used: str | None) -> str | None:
    """Why a result made from the image of ID ``used`` no longer counts: ``image`` is to be
    built again, or it has built another image since."""
    if not image.complete():
        return f"{image.task_family} is to build its image again"
    built = image.recorded()["id"]
    if used is not None and built != used:
        return f"{image.task_family} has built another image ({built[:19]}) since {used[:19]}"
    return None


class BuildImage(ImageTask):
    """The serving image: the released model, the inference module and ``serve.py``."""

    #: the Dockerfile and entry point; a project may name its own
    dockerfile: ClassVar[Path] = FILES / "Dockerfile.serve"
    entry_point: ClassVar[Path] = FILES / "serve.py"

    @property
    def code_modules(self) -> tuple[str, ...]:
        return (self.inference, *self.library_modules)

    def image_packages(self) -> tuple[str, ...]:
        return (*SERVING_PACKAGES, *self.inference_packages)

    def requires(self):
        return {"model": self.model_task()}

    def after(self):
        # The model must be released (models.lock written) first; but a change that only
        # re-publishes the same model (a gate threshold) must not rebuild the image.
        from mlbuild.tasks.publish import PublishModel

        return {"published": self.project_task(PublishModel)}

    def settings(self):
        image = self.image_config()
        return {"image": {"repository": image.repository, "base": image.base,
                          "source": image.source}, "kind": self.kind}

    def data_digests(self):
        return {path.name: file_digest(path).sha256 for path in (self.dockerfile, self.entry_point)}

    def build(self, inputs, outputs):
        publish = self.release_config().publish
        trained = self.upstream()["model"].read_manifest().outputs["model"]
        entry = LockFile.read(publish.lockfile).entry(publish.model_name, publish.lockfile)
        if entry.sha256 != trained.sha256:
            raise IntegrityError(
                f"{publish.lockfile} releases model sha256 {entry.sha256}, but the pipeline "
                f"trained {trained.sha256}.", hint="run the pipeline again; it rewrites the lock.")
        model = LocalCache(cache_dir()).fetch(*locate(entry.uri, open_store(self.store.uri)),
                                              entry.sha256)
        context = outputs["image"].parent / "context"
        (context / "app").mkdir(parents=True)
        (context / "model").mkdir()
        shutil.copyfile(self.dockerfile, context / "Dockerfile")
        shutil.copyfile(self.model_api().path, context / "app" / "inference.py")
        shutil.copyfile(self.entry_point, context / "app" / "serve.py")
        shutil.copyfile(model, context / "model" / trained.file)
        return self.build_image(context, outputs["image"],
                                {"MODEL_SHA256": entry.sha256, "MODEL_FILE": trained.file},
                                {"io.mlbuild.model.name": publish.model_name,
                                 "io.mlbuild.model.sha256": entry.sha256})


class BuildTrainingImage(ImageTask):
    """The training image: mlbuild installed as a wheel, and the project's sources, to run
    any task in (``docker run <image> TrainModel``, AWS Batch)."""

    suffix = "-train"
    dockerfile: ClassVar[Path] = FILES / "Dockerfile.train"
    #: the files and folders of the project the image holds in /project
    project_sources: ClassVar[tuple[str, ...]] = ()
    #: the module ``luigi --module`` loads in the image
    project_module: ClassVar[str] = "tasks"
    library_modules = ("mlbuild",)  # the wheel holds all of it

    def image_packages(self) -> tuple[str, ...]:
        return TRAINING_PACKAGES

    def settings(self):
        image = self.image_config()
        return {"image": {"repository": image.repository, "base": self.base_image()},
                "sources": list(self.project_sources), "module": self.project_module}

    def data_digests(self):
        # The project's sources: any change to them is a change to the image.
        import hashlib

        digest = hashlib.sha256()
        for path in self._source_files():
            digest.update(f"{path}\0{file_digest(path).sha256}\n".encode())
        return {"project": digest.hexdigest(),
                self.dockerfile.name: file_digest(self.dockerfile).sha256}

    def _source_files(self) -> list[Path]:
        return sorted(p for s in self.project_sources
                      for p in ([Path(s)] if Path(s).is_file() else Path(s).rglob("*"))
                      if p.is_file() and "__pycache__" not in p.parts)

    def build(self, inputs, outputs):
        context = outputs["image"].parent / "context"
        project = context / "project"
        project.mkdir(parents=True)
        shutil.copyfile(self.dockerfile, context / "Dockerfile")
        for path in self._source_files():
            (project / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, project / path)
        wheel = build_wheel(context / "dist")
        return self.build_image(context, outputs["image"], {"PROJECT_MODULE": self.project_module,
                                                            "MLBUILD_WHEEL": wheel.name}, {})


class PushImage(ImageTask):
    """The serving image, in the registry, once its acceptance test passed."""

    outputs = {"push": "push.json"}

    def requires(self):
        from mlbuild.tasks.acceptance import AcceptanceTest

        return {"image": self.project_task(BuildImage),
                "acceptance": self.project_task(AcceptanceTest)}

    def settings(self):
        return {"registry": self.image_config().registry}

    def invalidation_reason(self):
        # By digest: the push is what the deploy promotes; the tag may since name another
        # build of the same fingerprint, which does not unpush this one.
        pushed = self.read_manifest().extra
        if not docker.registry_digest(pushed["registry"], pushed["repository"], pushed["digest"]):
            return (f"the registry holds nothing under {pushed['repository']}@{pushed['digest']} "
                    f"(pushed as {pushed['repository']}:{pushed['tag']})")
        # A new build (the engine lost the image, the base changed) is tested, then pushed.
        return stale_image(self.requires()["image"], pushed.get("image_id"))

    def build(self, inputs, outputs):
        registry = self.image_config().registry
        built = json.loads(inputs["image"]["image"].read_text())
        repository, tag = built["tag"].split(":")
        # The image BuildImage built and AcceptanceTest ran, by its ID, whatever the engine's
        # tag names now; then the registry's copy is checked to be that image.
        digest = docker.push(built["id"], registry, repository, tag)
        held = docker.registry_image_id(registry, repository, digest)
        if held not in (None, built["id"]):
            raise ImageError(
                f"The push of {built['tag']} ({built['id'][:19]}) to {registry} stored another "
                f"image ({held[:19]}, {digest}): something retagged {built['tag']} during the "
                "push.", hint="run again; two builds of one commit should not share an engine "
                              "at the same moment.")
        record = {"registry": registry, "repository": repository, "tag": tag, "digest": digest,
                  "image_id": built["id"], "image": f"{registry}/{repository}:{tag}@{digest}"}
        outputs["push"].write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        return record


class BuildTestImage(BuildTrainingImage):
    """The CI image: the training image plus what the project's tests need. CI runs its
    test stages in a container of it (``mlbuild stage unit --in-image``), with the
    workspace mounted, so they run on the image's Python and packages, not the agent's."""

    suffix = "-test"
    #: what the tests need besides mlbuild's own dependencies; a project adds its own
    test_packages: ClassVar[tuple[str, ...]] = ("pytest", "pytest-timeout")

    def image_packages(self) -> tuple[str, ...]:
        return (*TRAINING_PACKAGES, *self.test_packages)

    def base_image(self) -> str:
        return self.image_config().test_base
