"""PublishModel: copy the gated model into the store's registry and update models.lock."""

from __future__ import annotations

import json
from dataclasses import asdict

from mlbuild.release import LockFile, publish_model
from mlbuild.tasks.evaluate import EvaluateAccuracy
from mlbuild.tasks.release import ReleaseTask


class PublishModel(ReleaseTask):
    outputs = {"entry": "published.json"}
    library_modules = ("mlbuild.release",)

    def requires(self):
        return {"model": self.model_task(), "metrics": self.project_task(EvaluateAccuracy)}

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
        )
        outputs["entry"].write_text(json.dumps(asdict(entry), indent=2, sort_keys=True) + "\n")
        return {"entry": asdict(entry)}
