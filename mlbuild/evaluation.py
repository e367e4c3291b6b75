"""Evaluate a model for the accuracy gates: predict in parallel chunks, size the fast
tier's sample, compute the metrics and run every configured gate.

Predictions are made chunk by chunk by a pool of threads (LightGBM and numpy release the
GIL) and joined back in row order, so the result does not depend on the chunk size or
the number of workers. Everything random (the fast tier's sample, the bootstrap) is seeded.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from mlbuild import stats
from mlbuild.config import Section
from mlbuild.gates import GateResult, GatesConfig, build_gates
from mlbuild.metrics import METRICS, Kind, Predictions

if TYPE_CHECKING:
    import numpy as np

Tier = Literal["fast", "full"]
#: predict(frame) -> (predicted values or classes, class probabilities or None)
PredictFn = Callable[[Any], tuple[Any, Any]]


class TiersConfig(Section):
    """``[accuracy]``: how each tier evaluates."""

    #: the fast tier detects a drop of ``drop`` from the ``expected`` accuracy with this power
    expected: float = Field(default=0.95, gt=0.0, lt=1.0)
    drop: float = Field(default=0.02, gt=0.0, lt=1.0)
    alpha: float = Field(default=0.05, gt=0.0, lt=0.5)
    power: float = Field(default=0.8, gt=0.5, lt=1.0)
    seed: int = 0
    chunk_rows: int = Field(default=50_000, ge=1)
    workers: int = Field(default=2, ge=1)


@dataclass(frozen=True)
class SamplePlan:
    """The fast tier's sample: how many rows detect the configured drop, and why."""

    expected: float
    drop: float
    alpha: float
    power: float
    rows_needed: int
    rows_available: int

    @property
    def rows(self) -> int:
        return min(self.rows_needed, self.rows_available)

    def describe(self) -> str:
        text = (f"{self.rows_needed} rows detect a drop of accuracy from {self.expected} to "
                f"{self.expected - self.drop:.4g} (one-sided alpha {self.alpha}, power "
                f"{self.power})")
        if self.rows_needed > self.rows_available:
            text += f"; only {self.rows_available} are available, so all are used"
        return text + "."


def plan_sample(config: TiersConfig, rows_available: int) -> SamplePlan:
    needed = stats.sample_size(config.expected, config.expected - config.drop, config.alpha,
                               config.power)
    return SamplePlan(config.expected, config.drop, config.alpha, config.power, needed,
                      rows_available)


def stratified_sample(labels, rows: int, seed: int) -> np.ndarray:
    """Indices of ``rows`` rows, each label keeping its share (largest remainders), sorted."""
    import numpy as np

    labels = np.asarray(labels)
    if rows >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    values, counts = np.unique(labels, return_counts=True)
    exact = counts * rows / len(labels)
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take), kind="stable")[: rows - take.sum()]:
        take[i] += 1
    chosen = [rng.permutation(np.flatnonzero(labels == v))[:k] for v, k in zip(values, take,
                                                                               strict=True)]
    return np.sort(np.concatenate(chosen))


def predict_in_chunks(predict: PredictFn, frame, chunk_rows: int, workers: int
                      ) -> tuple[np.ndarray, np.ndarray | None]:
    import numpy as np

    chunks = [frame.iloc[start:start + chunk_rows] for start in range(0, len(frame), chunk_rows)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(predict, chunks))
    predicted = np.concatenate([p for p, _ in parts])
    proba = None if parts[0][1] is None else np.concatenate([q for _, q in parts])
    return predicted, proba


@dataclass
class Evaluation:
    tier: Tier
    model_kind: Kind
    n: int
    metrics: dict[str, float]
    results: list[GateResult]
    plan: SamplePlan | None = None
    candidate: Predictions | None = field(default=None, repr=False)
    baseline: Predictions | None = field(default=None, repr=False)
    baseline_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(r.passed is not False for r in self.results)

    @property
    def failures(self) -> list[GateResult]:
        return [r for r in self.results if r.passed is False]

    def summary(self) -> str:
        gated = [r for r in self.results if r.passed is not None]
        verdict = "passed" if self.passed else "FAILED"
        return (f"accuracy gates {verdict} ({self.tier} tier, {self.n} rows): "
                f"{sum(bool(r.passed) for r in gated)} of {len(gated)} gates pass")


def all_metrics(p: Predictions, kind: Kind, gated: set[str] = frozenset()) -> dict[str, float]:
    """Every metric that applies, for the reports (costly ones only when gated)."""
    values = {}
    for name, metric in METRICS.items():
        if metric.model != kind or (metric.needs_proba and p.proba is None):
            continue
        if metric.costly and name not in gated:
            continue
        if name == "auc" and (p.proba is None or p.proba.shape[1] != 2):
            continue
        values[name] = metric.compute(p.y_true, p.y_pred, p.proba)
    return values


def evaluate(candidate: Predictions, config: GatesConfig, *, kind: Kind, tier: Tier,
             baseline: Predictions | None = None, columns: dict[str, Any] | None = None,
             plan: SamplePlan | None = None) -> Evaluation:
    """Run every configured gate on the candidate's predictions (and the baseline's)."""
    columns = dict(columns or {})
    columns.setdefault("class", candidate.y_true)
    thresholds, change, slices = build_gates(config)
    results = [gate.check(candidate) for gate in thresholds]
    if change is not None:
        results.append(change.check(candidate, baseline))
    for gate in slices:
        if gate.by not in columns:
            results.append(GateResult(
                f"slice {gate.by}", "slice", "accuracy", False,
                f"The slice column {gate.by!r} is not in the test data (columns: "
                f"{', '.join(sorted(columns))}). Hint: fix [[gates.slices]] by.", 0))
            continue
        results.extend(gate.check(candidate, columns[gate.by]))
    gated = {r.metric for r in results}
    metrics = {k: v for k, v in all_metrics(candidate, kind, gated).items() if not math.isnan(v)}
    return Evaluation(tier, kind, len(candidate), metrics, results, plan, candidate, baseline,
                      all_metrics(baseline, kind, gated) if baseline is not None else {})
