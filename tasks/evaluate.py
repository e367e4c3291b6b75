"""EvaluateAccuracy: the model's accuracy on the test split, with a confidence gate.

The gate logic lives in mlbuild.gates; the predictions come from tasks.inference, the
code the served model runs. Metrics are written to the reports folder even when the gate
fails, so CI can archive them.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlbuild import BuildTask, GateFailed
from mlbuild.gates import ProportionGate
from mlbuild.settings import reports_dir
from tasks.config import load
from tasks.split import SplitData
from tasks.train import TrainModel


class EvaluateAccuracy(BuildTask):
    outputs = {"metrics": "metrics.json"}
    code_modules = ("tasks.inference",)
    packages = ("lightgbm", "pandas")

    def requires(self):
        return {"model": TrainModel(), "split": SplitData()}

    def settings(self):
        return {"gate": load().gate.model_dump()}

    def build(self, inputs, outputs):
        import pandas as pd

        from tasks.inference import load_model, predict

        config = load()
        booster = load_model(inputs["model"]["model"])
        test = pd.read_csv(inputs["split"]["test"])
        labels = test.pop(config.schema_.label).to_numpy()
        correct = int((predict(booster, test) == labels).sum())
        gate = ProportionGate(config.gate.metric, config.gate.threshold, config.gate.mode,
                              config.gate.confidence)
        result = gate.check(correct, len(labels))
        metrics = {"accuracy": result.estimate, "n": result.n, "gates": [result.to_dict()]}
        text = json.dumps(metrics, indent=2, sort_keys=True) + "\n"
        outputs["metrics"].write_text(text)
        report = Path(reports_dir(), "accuracy", "metrics.json")
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(text)
        if not result.passed:
            raise GateFailed(f"The accuracy gate failed: {result.reason} Metrics: {report}.")
        return {"accuracy": result.estimate, "interval": list(result.interval)}
