"""AcceptanceTest: the serving image's own predictions, through the same gates.

The image runs with no network on the fast tier's sample of the test data; its health
check must answer, and its predictions must pass the gates the model passed.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from mlbuild.accuracy import Predictions
from mlbuild.data import read_frame
from mlbuild.errors import ImageError
from mlbuild.images import docker
from mlbuild.settings import reports_dir
from mlbuild.tasks.evaluate import GatedTask, gate, tier_rows
from mlbuild.tasks.image import BuildImage, stale_image

NOT_COMPARED = ("the acceptance test judges the image alone; EvaluateAccuracy compared its "
                "model with the released one")


def run_checked(image: str, tag: str, command: list[str], volumes: dict, what: str) -> str:
    """Run ``command`` in the image of ID ``image`` (built as ``tag``); its output."""
    result = docker.run(image, command, volumes)
    if result.exit_code != 0:
        raise ImageError(f"The image {tag} failed to {what} (exit {result.exit_code}): "
                         f"{result.logs.strip()[-1000:]}")
    return result.logs.strip()


class AcceptanceTest(GatedTask):
    """The image's own predictions, on the fast tier's sample, through the same gates."""

    library_modules = ("mlbuild.accuracy", "mlbuild.images")

    def requires(self):
        return {"image": self.project_task(BuildImage), "split": self.test_task()}

    def invalidation_reason(self):
        # The verdict is the image's: a new build of it (the engine lost it) is tested anew.
        return stale_image(self.requires()["image"], self.read_manifest().extra.get("image_id"))

    def report_folder(self) -> Path:
        return Path(reports_dir(), "acceptance")

    def build(self, inputs, outputs):
        import numpy as np
        import pandas as pd

        config, label = self.release_config(), self.label()
        built = json.loads(inputs["image"]["image"].read_text())
        tag, image = built["tag"], built["id"]  # run by ID: what BuildImage built, and is pushed
        test, plan = tier_rows(read_frame(inputs["split"]["test"]), label, config, "fast",
                               self.kind)
        work = outputs["metrics"].parent
        data, out = (work / "data").resolve(), (work / "out").resolve()
        data.mkdir()
        out.mkdir()
        os.chmod(out, 0o777)  # the image runs as an unprivileged user
        test.drop(columns=[label]).to_csv(data / "test.csv", index=False)
        health = run_checked(image, tag, ["health"], {}, "answer its health check")
        if not health.startswith("ok"):
            raise ImageError(f"The health check of {tag} failed: {health[-1000:]}")
        run_checked(image, tag, ["predict", "/data/test.csv", "/out/predictions.csv"],
                    {str(data): {"bind": "/data", "mode": "ro"},
                     str(out): {"bind": "/out", "mode": "rw"}}, "predict")
        predicted = pd.read_csv(out / "predictions.csv")
        shutil.rmtree(data)
        shutil.rmtree(out)
        proba = predicted.filter(like="proba_").to_numpy() if self.kind == "classification" else None
        candidate = Predictions(test[label].to_numpy(), predicted["prediction"].to_numpy(),
                                proba if proba is not None and proba.size else None)
        evaluation = gate(candidate, test, label, config, self.kind, "fast", plan, work,
                          f"Acceptance test of {tag}", extra={"image": tag, "health": health},
                          absent=NOT_COMPARED)
        self.keep_reports(evaluation, work, f"The image {tag} fails the accuracy gates: ")
        summary = {"image": tag, "image_id": image, "rows": len(test)}
        if self.kind == "classification":
            summary["accuracy"] = float(np.mean(candidate.y_pred == candidate.y_true))
        return summary
