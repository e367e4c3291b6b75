"""EvaluateAccuracy: the accuracy gates on the test data, through the project's inference.

Two tiers: ``fast`` (every build) evaluates the smallest stratified sample on which each
gate passes a model at ``[accuracy] expected`` with the configured power; ``full``
(scheduled runs) the whole test data. The released model in models.lock is scored on the
same rows for the change gate. Reports go to the store and to ``reports/accuracy/<tier>/``,
also when a gate fails. With ``[gates.drift]`` and a data task, the data drift gate
(CheckDrift) runs first and its results join these reports.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import luigi

from mlbuild.accuracy import (
    Evaluation,
    Predictions,
    evaluate,
    plan_sample,
    predict_in_chunks,
    stratified_sample,
    write_reports,
)
from mlbuild.accuracy.report import FILES as REPORT_FILES
from mlbuild.data import read_frame
from mlbuild.errors import GateFailedError, MissingError
from mlbuild.release import LockFile, released_model
from mlbuild.settings import cache_dir, reports_dir
from mlbuild.store import LocalCache, locate, open_store
from mlbuild.tasks.config import ReleaseConfig
from mlbuild.tasks.drift import CheckDrift, read_drift
from mlbuild.tasks.inference import Inference
from mlbuild.tasks.release import ReleaseTask

ACCURACY = ("mlbuild.accuracy",)
ACCURACY_PACKAGES = ("numpy", "pandas", "pyarrow", "scipy")


def tier_rows(test, label: str, config: ReleaseConfig, tier: str, kind: str):
    """The rows a tier evaluates, and the fast tier's sample plan (None: every row).

    The plan sizes a sample for accuracy gates; a regressor's tiers both take every row.
    """
    if tier == "full" or kind != "classification":
        return test, None
    labels = test[label]
    shares = {"class": {str(k): v for k, v in labels.value_counts(normalize=True).items()}}
    plan = plan_sample(config.accuracy, config.gates, len(test), shares)
    rows = stratified_sample(labels.to_numpy(), plan.rows, config.accuracy.seed)
    return test.iloc[rows].reset_index(drop=True), plan


def score(api: Inference, model, test, label: str, config: ReleaseConfig) -> Predictions:
    """A loaded model's predictions on ``test``."""
    predicted, proba = predict_in_chunks(api.predictor(model), test.drop(columns=[label]),
                                         config.accuracy.chunk_rows, config.accuracy.workers)
    return Predictions(test[label].to_numpy(), predicted, proba)


def gate(candidate: Predictions, test, label: str, config: ReleaseConfig, kind: str, tier: str,
         plan, folder: Path, title: str, baseline=None, extra=None, drift=None,
         **why_no_baseline) -> Evaluation:
    """Run the configured gates on predictions and write the reports into ``folder``
    (``drift``: the drift gate's results, for their section of the reports)."""
    columns = {c: test[c].to_numpy() for c in test.columns if c != label}
    evaluation = evaluate(candidate, config.gates, kind=kind, tier=tier, baseline=baseline,
                          columns=columns, plan=plan, tiers=config.accuracy, **why_no_baseline)
    write_reports(evaluation, folder, title, extra, drift)
    return evaluation


def evaluate_model(api: Inference, model_path, test, label: str, config: ReleaseConfig,
                   kind: str, tier: str, baseline_path=None, folder: Path | None = None,
                   extra=None, absent: str | None = None, drift=None) -> Evaluation:
    """Score, gate and report a model file: the same steps for EvaluateAccuracy and a
    project's accuracy tests. ``absent`` says why there is no released model, if none."""
    test, plan = tier_rows(test, label, config, tier, kind)
    candidate = score(api, api.load(model_path), test, label, config)
    why = {"absent": absent} if absent else {}
    baseline = None
    if baseline_path:
        released = api.load(baseline_path)
        why["missing_features"] = api.missing_features(released, test.columns)
        if not why["missing_features"]:
            baseline = score(api, released, test, label, config)
    return gate(candidate, test, label, config, kind, tier, plan, folder,
                f"Accuracy ({tier} tier)", baseline, extra, drift, **why)


class GatedTask(ReleaseTask):
    """What the tasks that gate accuracy share: their reports as outputs, the gates'
    settings, and the reports kept for CI in ``report_folder()``, also when a gate fails."""

    outputs = dict(REPORT_FILES)
    library_modules = ACCURACY
    library_packages = ACCURACY_PACKAGES

    def settings(self):
        config = self.release_config()
        # [gates.drift] reaches EvaluateAccuracy through CheckDrift, and AcceptanceTest not at all
        return {"gates": config.gates.model_dump(exclude={"drift"}),
                "accuracy": config.accuracy.model_dump(),
                "label": self.label(), "kind": self.kind}

    def keep_reports(self, evaluation: Evaluation, folder: Path, what: str) -> None:
        """Copy the reports to ``report_folder()``; raise GateFailedError when a gate failed."""
        archive = self.report_folder()
        shutil.copytree(folder, archive, dirs_exist_ok=True)
        if not evaluation.passed:
            failed = "\n".join(f"  - {r.name}: {r.reason}" for r in evaluation.failures)
            raise GateFailedError(f"{what}{evaluation.summary()}:\n{failed}\n"
                             f"Reports: {archive}/report.md")


class EvaluateAccuracy(GatedTask):
    """The candidate model on the test data, gated, and compared with the released one."""

    tier = luigi.ChoiceParameter(
        choices=["fast", "full"], default="fast",
        description="rows to evaluate: fast, the sample [accuracy] plans (every build); "
                    "full, the whole test split (scheduled runs)")

    @property
    def code_modules(self) -> tuple[str, ...]:
        return (self.inference, *self.library_modules)

    @property
    def packages(self) -> tuple[str, ...]:
        return (*super().packages, *self.inference_packages)

    def requires(self):
        required = {"model": self.model_task(), "split": self.test_task()}
        if self.release_config().gates.drift is not None and self.data_task() is not None:
            required["drift"] = self.project_task(CheckDrift)
        return required

    def report_folder(self) -> Path:
        return Path(reports_dir(), "accuracy", self.tier)

    def baseline(self) -> dict[str, str] | None:
        publish = self.release_config().publish
        lock = LockFile.read(publish.lockfile)
        return released_model(lock, publish.model_name, self.upstream()["model"].fingerprint)

    def why_no_baseline(self) -> str | None:
        """What is true when there is no model to compare with: no release yet, or the lock
        releases this very model, which replaced none."""
        publish = self.release_config().publish
        entry = LockFile.read(publish.lockfile).models.get(publish.model_name)
        if entry is not None and entry.fingerprint == self.upstream()["model"].fingerprint:
            return (f"{publish.lockfile} releases this candidate itself (published by an earlier "
                    "run), and it replaced no earlier model, so there is none to compare with")
        return None

    def data_digests(self):
        baseline = self.baseline()
        return {"released model": baseline["sha256"] if baseline else "none"}

    def fetch_baseline(self, baseline: dict[str, str]) -> Path:
        lockfile = self.release_config().publish.lockfile
        store, key = locate(baseline["uri"], open_store(self.store.uri))
        try:
            return LocalCache(cache_dir()).fetch(store, key, baseline["sha256"])
        except MissingError as exc:
            raise MissingError(
                f"{lockfile} releases {baseline['uri']}, the model this one must be compared "
                "with, but it is not in the store.",
                hint=f"use the store the lock was written for (MLBUILD_STORE), or remove the "
                     f"model from {lockfile} to start over without a released model.") from exc

    def build(self, inputs, outputs):
        baseline = self.baseline()
        folder = outputs["metrics"].parent
        drift, reference = (read_drift(inputs["drift"]["drift"]) if "drift" in inputs
                            else (None, None))
        evaluation = evaluate_model(
            self.model_api(), inputs["model"]["model"], read_frame(inputs["split"]["test"]),
            self.label(), self.release_config(), self.kind, self.tier,
            self.fetch_baseline(baseline) if baseline else None, folder,
            {"baseline": baseline}, None if baseline else self.why_no_baseline(), drift)
        self.keep_reports(evaluation, folder, "")
        change = next((r for r in evaluation.results if r.kind == "change"), None)
        incomparable = (change.details if change and change.details.get("incomparable")
                        else None)
        return {"metrics": evaluation.metrics, "baseline": baseline, "n": evaluation.n,
                "incomparable": incomparable and {
                    "missing_features": incomparable["missing_features"],
                    "accepted_by": "[gates.change] accept_incomparable"},
                **({"drift": {"reference": reference, "summary": drift.summary()}}
                   if drift is not None else {})}


def evaluate_released(task: EvaluateAccuracy, tier: str, folder: Path) -> Evaluation:
    """The model models.lock releases, judged as EvaluateAccuracy judged it, on the test data
    in the store: what a project's accuracy tests run (``make accuracy``)."""
    from mlbuild.settings import store_uri

    config = task.release_config()
    publish = config.publish
    lock = LockFile.read(publish.lockfile)
    entry = lock.entry(publish.model_name, publish.lockfile)
    store, cache = open_store(store_uri()), LocalCache(cache_dir())
    model = cache.fetch(*locate(entry.uri, store), entry.sha256)
    baseline = released_model(lock, publish.model_name, entry.fingerprint)
    split = task.test_task()
    if not split.complete():
        raise MissingError(f"The test data for this configuration ({split}) is not in the "
                           f"store {store.uri}.", hint="run the pipeline first (make pipeline).")
    test = read_frame(split.fetch_outputs(cache)["test"])
    return evaluate_model(task.model_api(), model, test, task.label(), config, task.kind, tier,
                          task.fetch_baseline(baseline) if baseline else None, folder,
                          {"model": entry.uri, "baseline": baseline})
