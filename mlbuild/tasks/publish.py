"""PublishModel: copy the gated model into the store's registry and update models.lock.

With a data task (``ReleaseTask.data_task()``), the lock entry also names the model's
training data (``data``: the task, its fingerprint, the output's file and sha256, the
snapshot it came from) and, when the drift gate ran, the released data that gate compared
it with (``data.baseline``): the drift gate's reference, as ``baseline`` is the change
gate's.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from mlbuild.release import LockFile, publish_model
from mlbuild.tasks.drift import data_record
from mlbuild.tasks.evaluate import EvaluateAccuracy
from mlbuild.tasks.release import ReleaseTask


class PublishModel(ReleaseTask):
    outputs = {"entry": "published.json"}
    library_modules = ("mlbuild.release",)

    def requires(self):
        required = {"model": self.model_task(), "metrics": self.project_task(EvaluateAccuracy)}
        data = self.data_task()
        if data is not None:
            required["data"] = data
        return required

    def settings(self):
        return {"publish": self.release_config().publish.model_dump()}

    def invalidation_reason(self):
        # The lock is in git, not in the store: a published result counts only while
        # the lock still names it (after a checkout or a hand edit it may not).
        publish = self.release_config().publish
        recorded = self.read_manifest().extra.get("entry")
        current = LockFile.read(publish.lockfile).models.get(publish.model_name)
        if current is None:
            return f"{publish.lockfile} has no entry for model {publish.model_name!r}"
        if asdict(current) != recorded:
            return f"{publish.lockfile} names another version of model {publish.model_name!r}"
        return None

    def build(self, inputs, outputs):
        publish = self.release_config().publish
        trained = self.upstream()["model"].read_manifest()
        evaluated = self.upstream()["metrics"].read_manifest().extra
        entry = publish_model(
            self.store,
            publish.lockfile,
            publish.model_name,
            inputs["model"]["model"],
            sha256=trained.outputs["model"].sha256,
            filename=trained.outputs["model"].file,
            fingerprint=trained.fingerprint,
            created=trained.finished,
            metrics={**evaluated["metrics"], "n": evaluated["n"]},
            baseline=evaluated["baseline"],
            incomparable=evaluated.get("incomparable"),
            data=self.training_data(evaluated),
        )
        outputs["entry"].write_text(json.dumps(asdict(entry), indent=2, sort_keys=True) + "\n")
        return {"entry": asdict(entry)}

    def training_data(self, evaluated: dict) -> dict | None:
        """The lock's ``data`` field: what the data task made, by its manifest (None without
        a data task)."""
        data = self.upstream().get("data")
        if data is None:
            return None
        recorded = data_record(data, self.data_output)
        if "drift" in evaluated:  # the drift gate ran: the data it compared this with
            recorded["baseline"] = evaluated["drift"]["reference"]
        return recorded

