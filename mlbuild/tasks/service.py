"""One serving image for every model models.lock releases, and its acceptance test.

BuildServiceImage builds the library's ``Dockerfile.service``: the shared layers (Python,
the wheels, ``serve.py``), then one layer per model, sorted by name, each the ``ADD`` of a
tar this task writes with fixed times, owners and modes: the model's verified bytes, its
inference module and ``model.json``. Docker's builder re-runs every step after a changed
one, and a re-run ``COPY`` stamps its files with the build time (measured: a new layer each
time); a re-run ``ADD`` of the same tar makes the same layer. So a new version of one model
changes that model's layer only, wherever its name sorts (``docker inspect``
RootFS.Layers). Its fingerprint covers each model's sha256 in the lock, the inference
modules, ``serve.py`` and the Dockerfile. It serves the lock as it is: run it after the
pipelines that publish the models.

ServiceAcceptanceTest runs the image with no network and posts a seeded sample of each
model's test rows to its ``/models/<name>/predict`` (from inside the container, on
loopback); every answer must equal what the same inference module computes on the host
from the verified model bytes. A model the image does not serve, or a container that does
not start, is an ImageError; other answers that differ fail the gate (GateFailedError).
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any, ClassVar
from xml.etree import ElementTree as ET

import luigi

from mlbuild.core.manifest import MANIFEST, Manifest
from mlbuild.data import open_table
from mlbuild.errors import GateFailedError, ImageError, IntegrityError, MissingError
from mlbuild.images import docker
from mlbuild.release import LockFile, ModelEntry
from mlbuild.settings import cache_dir, reports_dir
from mlbuild.store import LocalCache, StoredObject, file_digest, locate, open_store
from mlbuild.tasks.image import FILES, SERVING_PACKAGES, ImageTask, stale_image
from mlbuild.tasks.inference import Inference
from mlbuild.tasks.release import ReleaseTask

#: the time, owner and modes of every entry of a model's layer: its bytes depend on its
#: files alone
LAYER_MTIME = 0
#: how far the container's probabilities may be from the host's (the same code and
#: versions give the same floats; JSON carries them exactly)
PROBABILITY_TOLERANCE = 1e-12


def model_layer(tar_path: Path, name: str, files: dict[str, Path]) -> None:
    """A tar of ``models/<name>/`` holding ``files`` (name in the image -> path here)."""
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for folder in ("models", f"models/{name}"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, LAYER_MTIME
            tar.addfile(info)
        for file, path in sorted(files.items()):
            info = tarfile.TarInfo(f"models/{name}/{file}")
            info.size, info.mode, info.mtime = path.stat().st_size, 0o444, LAYER_MTIME
            with open(path, "rb") as data:
                tar.addfile(info, data)


class BuildServiceImage(ImageTask):
    """The service image: every model models.lock releases, a layer each; see the module
    docstring."""

    dockerfile: ClassVar[Path] = FILES / "Dockerfile.service"
    entry_point: ClassVar[Path] = FILES / "serve.py"
    library_modules = ("mlbuild.images", "mlbuild.release")

    def model_inference(self, name: str) -> str:
        """The inference module of model ``name``: the project's, unless it overrides this."""
        return self.inference

    def released(self) -> dict[str, ModelEntry]:
        """The models the lock releases, by name: read once, when the fingerprint is."""
        cached = self.__dict__.get("_released")
        if cached is None:
            lockfile = self.release_config().publish.lockfile
            cached = dict(sorted(LockFile.read(lockfile).models.items()))
            self.__dict__["_released"] = cached
        return cached

    @property
    def code_modules(self) -> tuple[str, ...]:
        return (*dict.fromkeys(self.model_inference(n) for n in self.released()),
                *self.library_modules)

    def image_packages(self) -> tuple[str, ...]:
        return (*SERVING_PACKAGES, *self.inference_packages)

    @property
    def tag(self) -> str:
        return f"{self.image_config().service_repository}:{self.fingerprint[:16]}"

    def settings(self):
        image = self.image_config()
        return {"image": {"repository": image.service_repository, "base": image.base,
                          "source": image.source}}

    def data_digests(self):
        files = {p.name: file_digest(p).sha256 for p in (self.dockerfile, self.entry_point)}
        return {**files, **{f"model {n}": e.sha256 for n, e in self.released().items()}}

    def build(self, inputs, outputs):
        lockfile = self.release_config().publish.lockfile
        models = self.released()
        if not models:
            raise MissingError(f"{lockfile} releases no model, so the service image would serve "
                               "none.", hint="publish the models first: `luigi --module tasks "
                                             "PublishModel --pipeline-config <config>` for each.")
        now = {n: e.sha256 for n, e in sorted(LockFile.read(lockfile).models.items())}
        if now != {n: e.sha256 for n, e in models.items()}:
            raise IntegrityError(
                f"{lockfile} changed while this run was under way (it released {sorted(models)} "
                f"when the image's fingerprint was computed, and now {sorted(now)} with other "
                "digests): the image would not be the one its fingerprint names.",
                hint="run it again once the pipelines that publish have finished.")
        context = outputs["image"].parent / "context"
        (context / "app").mkdir(parents=True)
        (context / "models").mkdir()
        shutil.copyfile(self.entry_point, context / "app" / "serve.py")
        steps = [self.dockerfile.read_text()]
        for name, entry in models.items():
            model = self.fetch_model(name, entry, lockfile)
            file = entry.uri.rsplit("/", 1)[-1]
            meta = context / "models" / f"{name}.json"
            meta.write_text(json.dumps({"name": name, "sha256": entry.sha256, "file": file,
                                        "inference": "inference.py"}, sort_keys=True) + "\n")
            model_layer(context / "models" / f"{name}.tar", name,
                        {file: model, "model.json": meta,
                         "inference.py": Path(Inference(self.model_inference(name)).path)})
            steps.append(f"ADD models/{name}.tar /\n")
        (context / "Dockerfile").write_text("".join(steps))
        labels = {"io.mlbuild.models": ",".join(models),
                  "org.opencontainers.image.title": self.image_config().service_repository,
                  **{f"io.mlbuild.model.{n}.sha256": e.sha256 for n, e in models.items()}}
        built = self.build_image(context, outputs["image"], {}, labels)
        return {**built, "models": {n: {"sha256": e.sha256, "uri": e.uri}
                                    for n, e in models.items()}}

    def fetch_model(self, name: str, entry: ModelEntry, lockfile: str) -> Path:
        """The model's bytes from the store, verified against the lock's sha256."""
        try:
            return LocalCache(cache_dir()).fetch(*locate(entry.uri, open_store(self.store.uri)),
                                                 entry.sha256)
        except MissingError as exc:
            raise MissingError(f"{lockfile} releases model {name!r} at {entry.uri}, which is not "
                               f"in the store: {exc.message}",
                               hint="use the store the lock was written for (MLBUILD_STORE), or "
                                    "run that model's pipeline to publish it again.") from exc


class ServiceAcceptanceTest(ReleaseTask):
    """Each model of the service image, asked over HTTP inside it, must answer as the same
    code answers on the host; see the module docstring."""

    outputs = {"junit": "junit.xml", "results": "results.json"}
    rows = luigi.IntParameter(default=200, description="test rows sampled for each model")
    seed = luigi.IntParameter(default=0, description="seed of the rows' sample")
    library_modules = ("mlbuild.images", "mlbuild.data", "mlbuild.release")
    library_packages = ("numpy", "pandas", "pyarrow")

    def image_task(self) -> BuildServiceImage:
        return self.project_task(BuildServiceImage)

    @property
    def code_modules(self) -> tuple[str, ...]:
        image = self.image_task()
        return (*dict.fromkeys(image.model_inference(n) for n in image.released()),
                *self.library_modules)

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*super().packages, *self.inference_packages)))

    def requires(self):
        return {"image": self.image_task()}

    def invalidation_reason(self):
        # The verdict is the image's: a new build of it (the engine lost it) is tested anew.
        return stale_image(self.image_task(), self.read_manifest().extra.get("image_id"))

    def settings(self):
        # The training result names the test rows, when the lock names none.
        return {"models": {n: e.fingerprint for n, e in self.image_task().released().items()}}

    def report_folder(self) -> Path:
        return Path(reports_dir(), "acceptance", "service")

    def test_rows(self, name: str, entry: ModelEntry) -> tuple[StoredObject, str]:
        """Where the model's test rows are: the lock's ``data`` when it names them, else the
        test output of the test task its training result required."""
        data = getattr(entry, "data", None)
        if data:
            return (StoredObject(f"{data['task']}/{data['fingerprint']}/{data['file']}",
                                 data["sha256"]), f"models.lock data ({data['task']})")
        store = self.store
        trained, test = self.model_task().task_family, self.test_task().task_family
        key = f"{trained}/{entry.fingerprint}/{MANIFEST}"
        upstream = (Manifest.from_json(store.get_bytes(key), store.url(key)).inputs
                    .get("upstream", {}) if store.exists(key) else {})
        for fingerprint in upstream.values():
            key = f"{test}/{fingerprint}/{MANIFEST}"
            if store.exists(key):
                split = Manifest.from_json(store.get_bytes(key), store.url(key))
                if "test" in split.outputs:
                    record = split.outputs["test"]
                    return (StoredObject(f"{test}/{fingerprint}/{record.file}", record.sha256),
                            f"the test data of {trained}/{entry.fingerprint[:12]}")
        raise MissingError(
            f"No test rows of model {name!r} are in the store {store.uri}: models.lock names "
            f"none, and the result that trained it ({trained}/{entry.fingerprint}) leads to no "
            f"{test} result.", hint="run that model's pipeline against this store "
                                    "(`luigi --module tasks PublishModel --pipeline-config "
                                    "<its config>`), then run again.")

    def request(self, name: str, entry: ModelEntry, api: Inference, model, cache: LocalCache):
        """The model's request body (a seeded sample of its test rows) and where they came
        from."""
        import numpy as np

        stored, source = self.test_rows(name, entry)
        table = open_table(cache.fetch(self.store, stored.key, stored.sha256))
        picked = np.sort(np.random.default_rng(self.seed).choice(
            table.num_rows, size=min(self.rows, table.num_rows), replace=False))
        frame = table.take(picked).to_pandas()
        missing = api.missing_features(model, frame.columns)
        if missing:
            raise MissingError(f"The test rows of model {name!r} ({source}) lack its feature "
                               f"columns {list(missing[:10])}.",
                               hint="run that model's pipeline again: its data has changed.")
        if hasattr(api.module, "features"):
            frame = frame[list(api.module.features(model))]
        return {"columns": list(frame.columns), "rows": frame.to_numpy().tolist()}, source

    def build(self, inputs, outputs):
        import pandas as pd

        image = self.image_task()
        built = json.loads(inputs["image"]["image"].read_text())
        tag = built["tag"]
        work = outputs["junit"].parent
        requests, answers = (work / "requests").resolve(), (work / "answers").resolve()
        requests.mkdir()
        answers.mkdir()
        os.chmod(answers, 0o777)  # the image runs as an unprivileged user
        cache, store = LocalCache(cache_dir()), open_store(self.store.uri)
        expected, sources = {}, {}
        for name, entry in image.released().items():
            api = Inference(image.model_inference(name))
            model = api.load(cache.fetch(*locate(entry.uri, store), entry.sha256))
            body, sources[name] = self.request(name, entry, api, model, cache)
            (requests / f"{name}.json").write_text(json.dumps(body))
            # as serve.py reads a request
            predicted, proba = api.predictor(model)(pd.DataFrame(body["rows"],
                                                                 columns=body["columns"]))
            expected[name] = (predicted, proba)
        result = docker.run(built["id"], ["probe", "/requests", "/answers"],
                            {str(requests): {"bind": "/requests", "mode": "ro"},
                             str(answers): {"bind": "/answers", "mode": "rw"}})
        logs = result.logs.strip()[-1500:]
        verdicts = {}
        for name, (predicted, proba) in expected.items():
            answer = answers / f"{name}.json"
            if result.exit_code != 0:
                verdicts[name] = _failed("image", f"the container did not start (exit "
                                                  f"{result.exit_code}): {logs}")
            elif not answer.exists():
                verdicts[name] = _failed("image", f"the container gave no answer: {logs}")
            else:
                verdicts[name] = _judge(name, json.loads(answer.read_text()), predicted, proba)
            verdicts[name].update(rows=len(predicted), data=sources[name])
        shutil.rmtree(requests)
        shutil.rmtree(answers)
        self.report(verdicts, tag, outputs)
        failed = {n: v for n, v in verdicts.items() if not v["passed"]}
        if failed:
            error = (ImageError if any(v["kind"] == "image" for v in failed.values())
                     else GateFailedError)
            lines = "".join(f"\n  - {n}: {v['reason']}" for n, v in failed.items())
            raise error(f"The service image {tag} fails its acceptance test for "
                        f"{len(failed)} of {len(verdicts)} model(s):{lines}\n"
                        f"Report: {self.report_folder() / 'junit.xml'}",
                        hint="rebuild the image (`luigi --module tasks BuildServiceImage`) "
                             "from the lock as it is; a model it lacks, or answers that "
                             "differ, mean the image and the lock disagree.")
        return {"image": tag, "image_id": built["id"], "models": verdicts}

    def report(self, verdicts: dict[str, dict], tag: str, outputs: dict[str, Path]) -> None:
        """JUnit (a test case per model) and results.json, in the store and for CI."""
        passed = sum(v["passed"] for v in verdicts.values())
        suite = ET.Element("testsuite", name="acceptance.service", tests=str(len(verdicts)),
                           failures=str(len(verdicts) - passed))
        properties = ET.SubElement(suite, "properties")
        summary = (f"{passed} of {len(verdicts)} models of {tag} answer as on the host")
        ET.SubElement(properties, "property", name="summary", value=summary)
        for name, verdict in verdicts.items():
            case = ET.SubElement(suite, "testcase", classname="ServiceAcceptanceTest", name=name)
            if verdict["passed"]:
                ET.SubElement(case, "system-out").text = (
                    f"{verdict['rows']} rows from {verdict['data']}: the same predictions")
            else:
                ET.SubElement(case, "failure", message=verdict["reason"][:500],
                              type=verdict["kind"]).text = verdict["reason"]
        ET.indent(suite)
        outputs["junit"].write_text(ET.tostring(suite, encoding="unicode",
                                                xml_declaration=True) + "\n")
        outputs["results"].write_text(json.dumps({"image": tag, "summary": summary,
                                                  "models": verdicts},
                                                 indent=2, sort_keys=True) + "\n")
        folder = self.report_folder()
        folder.mkdir(parents=True, exist_ok=True)
        for path in outputs.values():
            shutil.copyfile(path, folder / path.name)


def _failed(kind: str, reason: str) -> dict[str, Any]:
    return {"passed": False, "kind": kind, "reason": reason}


def _judge(name: str, answer: dict, predicted, proba) -> dict[str, Any]:
    """Whether the container's answer for one model is what the host computed."""
    import numpy as np

    status, body = answer["status"], answer["body"]
    if status == 404:
        return _failed("image", f"the image does not serve model {name!r} "
                                f"(it serves: {', '.join(body.get('models', [])) or 'none'})")
    if status != 200:
        return _failed("image", f"POST /models/{name}/predict answered {status}: "
                                f"{body.get('error', body)}")
    got = np.asarray(body["predictions"])
    if got.shape != np.shape(predicted) or not np.array_equal(got, predicted):
        differ = (np.flatnonzero(got != predicted) if got.shape == np.shape(predicted)
                  else np.arange(len(predicted)))
        return _failed("mismatch", f"{len(differ)} of {len(predicted)} predictions differ from "
                                   f"the host's (first at row {differ[0]})")
    if proba is not None and len(predicted):
        if np.shape(body.get("probabilities")) != np.shape(proba):
            return _failed("mismatch", f"the image answered probabilities of shape "
                                       f"{np.shape(body.get('probabilities'))}, the host "
                                       f"{np.shape(proba)}")
        distance = float(np.max(np.abs(np.asarray(body["probabilities"]) - proba)))
        if not distance <= PROBABILITY_TOLERANCE:
            return _failed("mismatch", f"probabilities differ from the host's by up to "
                                       f"{distance:.3g}")
    return {"passed": True, "kind": "passed", "reason": ""}
