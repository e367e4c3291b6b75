"""EvaluateAccuracy: the accuracy gates, on the test split, through the served code.

Two tiers: ``fast`` (every build) evaluates the smallest stratified sample that detects
the configured drop with the configured power; ``full`` (scheduled runs) the whole test
split. The released model in models.lock is scored on the same rows for the change gate.
Reports go to the store and to ``reports/accuracy/<tier>/`` — also when a gate fails.
"""

from __future__ import annotations

from pathlib import Path

import luigi

from mlbuild import BuildTask, GateFailed, MissingError
from mlbuild.release.lockfile import LockFile
from mlbuild.release.registry import released_model
from mlbuild.settings import cache_dir, reports_dir
from mlbuild.store import LocalCache, locate, open_store
from tasks.config import load
from tasks.split import SplitData
from tasks.train import TrainModel


def score(model, test, label, config):
    """The evaluation inputs for one loaded model: its predictions on ``test``."""
    from mlbuild.accuracy.evaluation import predict_in_chunks
    from mlbuild.accuracy.metrics import Predictions
    from tasks.inference import predictor

    features = test.drop(columns=[label])
    predicted, proba = predict_in_chunks(predictor(model), features,
                                         config.accuracy.chunk_rows, config.accuracy.workers)
    return Predictions(test[label].to_numpy(), predicted, proba)


def tier_rows(test, config, tier):
    """The rows a tier evaluates, and the fast tier's sample plan (None for full)."""
    from mlbuild.accuracy.evaluation import plan_sample, stratified_sample

    if tier == "full":
        return test, None
    labels = test[config.schema_.label]
    shares = {"class": {str(k): v for k, v in labels.value_counts(normalize=True).items()}}
    plan = plan_sample(config.accuracy, config.gates, len(test), shares)
    rows = stratified_sample(labels.to_numpy(), plan.rows, config.accuracy.seed)
    return test.iloc[rows].reset_index(drop=True), plan


def missing_features(model, test) -> tuple[str, ...]:
    """The features a model needs that ``test`` lacks (a schema change since it was made)."""
    return tuple(f for f in model.feature_name() if f not in test.columns)


def gate(candidate, test, config, tier, plan, report_folder, title, baseline=None, extra=None,
         **why_no_baseline):
    """Run the configured gates on predictions and write the reports."""
    from mlbuild.accuracy.evaluation import evaluate
    from mlbuild.accuracy.report import write_reports

    label = config.schema_.label
    columns = {c: test[c].to_numpy() for c in test.columns if c != label}
    evaluation = evaluate(candidate, config.gates, kind="classification", tier=tier,
                          baseline=baseline, columns=columns, plan=plan, tiers=config.accuracy,
                          **why_no_baseline)
    return evaluation, write_reports(evaluation, report_folder, title, extra)


def evaluate_model(model_path, test, config, tier, baseline_path=None, report_folder=None,
                   extra=None, absent=None):
    """Score, gate and report; the same steps for the pipeline and tests/accuracy.

    ``absent`` says why there is no released model to compare with, when there is none.
    """
    from tasks.inference import load_model

    test, plan = tier_rows(test, config, tier)
    label = config.schema_.label
    candidate = score(load_model(model_path), test, label, config)
    why = {"absent": absent} if absent else {}
    baseline = None
    if baseline_path:
        released = load_model(baseline_path)
        why["missing_features"] = missing_features(released, test)
        if not why["missing_features"]:
            baseline = score(released, test, label, config)
    return gate(candidate, test, config, tier, plan, report_folder, f"Accuracy ({tier} tier)",
                baseline, extra, **why)


class GatedTask(BuildTask):
    """What the tasks that gate accuracy share: their reports as outputs, the gates'
    settings, and the reports kept for CI in ``report_folder()`` — also when a gate fails."""

    outputs = {"metrics": "metrics.json", "junit": "junit.xml", "markdown": "report.md",
               "html": "report.html"}

    def settings(self):
        config = load()
        return {"gates": config.gates.model_dump(), "accuracy": config.accuracy.model_dump()}

    def keep_reports(self, evaluation, folder: Path, what: str) -> None:
        """Copy the reports to ``report_folder()``; raise GateFailed when a gate failed."""
        import shutil

        archive = self.report_folder()
        shutil.copytree(folder, archive, dirs_exist_ok=True)
        if not evaluation.passed:
            failed = "\n".join(f"  - {r.name}: {r.reason}" for r in evaluation.failures)
            raise GateFailed(f"{what}{evaluation.summary()}:\n{failed}\n"
                             f"Reports: {archive}/report.md")


class EvaluateAccuracy(GatedTask):
    tier = luigi.ChoiceParameter(choices=["fast", "full"], default="fast")
    code_modules = ("tasks.inference", "mlbuild.accuracy.evaluation", "mlbuild.accuracy.gates", "mlbuild.accuracy.metrics",
                    "mlbuild.accuracy.stats", "mlbuild.accuracy.power", "mlbuild.accuracy.resample")
    packages = ("lightgbm", "pandas", "scipy")

    def requires(self):
        return {"model": TrainModel(), "split": SplitData()}

    def report_folder(self) -> Path:
        return Path(reports_dir(), "accuracy", self.tier)

    def baseline(self) -> dict[str, str] | None:
        publish = load().publish
        lock = LockFile.read(publish.lockfile)
        return released_model(lock, publish.model_name, self.upstream()["model"].fingerprint)

    def why_no_baseline(self) -> str | None:
        """What is true when there is no model to compare with: no release yet, or the lock
        releases this very model, which replaced none."""
        publish = load().publish
        entry = LockFile.read(publish.lockfile).models.get(publish.model_name)
        if entry is not None and entry.fingerprint == self.upstream()["model"].fingerprint:
            return (f"{publish.lockfile} releases this candidate itself (published by an earlier "
                    "run), and it replaced no earlier model, so there is none to compare with")
        return None

    def data_digests(self):
        baseline = self.baseline()
        return {"released model": baseline["sha256"] if baseline else "none"}

    def build(self, inputs, outputs):
        import pandas as pd

        config = load()
        baseline = self.baseline()
        baseline_path = None
        if baseline:
            store, key = locate(baseline["uri"], open_store(self.store.uri))
            try:
                baseline_path = LocalCache(cache_dir()).fetch(store, key, baseline["sha256"])
            except MissingError as exc:
                lockfile = config.publish.lockfile
                raise MissingError(
                    f"{lockfile} releases {baseline['uri']}, the model this one must be compared "
                    f"with, but it is not in the store. Hint: use the store the lock was written "
                    f"for (MLBUILD_STORE), or remove the model from {lockfile} to start over "
                    "without a released model."
                ) from exc
        test = pd.read_csv(inputs["split"]["test"])
        folder = outputs["metrics"].parent
        evaluation, _ = evaluate_model(inputs["model"]["model"], test, config, self.tier,
                                       baseline_path, folder, {"baseline": baseline},
                                       None if baseline else self.why_no_baseline())
        self.keep_reports(evaluation, folder, "")
        change = next((r for r in evaluation.results if r.kind == "change"), None)
        incomparable = (change.details if change and change.details.get("incomparable")
                        else None)
        return {"metrics": evaluation.metrics, "baseline": baseline, "n": evaluation.n,
                "incomparable": incomparable and {
                    "missing_features": incomparable["missing_features"],
                    "accepted_by": "[gates.change] accept_incomparable"}}
