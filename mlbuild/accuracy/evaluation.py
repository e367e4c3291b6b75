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
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from mlbuild.accuracy.gates import (
    NO_RELEASED_MODEL,
    GateResult,
    GatesConfig,
    ThresholdGate,
    build_gates,
)
from mlbuild.accuracy.metrics import METRICS, Kind, Predictions
from mlbuild.config import Section
from mlbuild.errors import ConfigError
from mlbuild.store.progress import report_progress

if TYPE_CHECKING:
    import numpy as np

Tier = Literal["fast", "full"]
#: predict(frame) -> (predicted values or classes, class probabilities or None)
PredictFn = Callable[[Any], tuple[Any, Any]]


class TiersConfig(Section):
    """``[accuracy]``: how each tier evaluates, and what the fast tier's sample is sized for."""

    #: the accuracy a good model has: the fast tier's sample passes such a model with ``power``
    expected: float = Field(default=0.95, gt=0.0, lt=1.0)
    #: plans a gate at ``expected - drop`` when [gates] has no accuracy threshold
    drop: float = Field(default=0.02, gt=0.0, lt=1.0)
    #: the level of that fallback gate
    alpha: float = Field(default=0.05, gt=0.0, lt=0.5)
    power: float = Field(default=0.8, gt=0.5, lt=1.0)
    #: the share of rows on which candidate and released model disagree, for planning the
    #: change gate (default: 2 (1 - expected), as if their errors never overlapped)
    discordance: float | None = Field(default=None, gt=0.0, le=1.0)
    seed: int = 0
    chunk_rows: int = Field(default=50_000, ge=1)
    workers: int = Field(default=2, ge=1)

    @property
    def assumed_discordance(self) -> float:
        return self.discordance or min(1.0, 2 * (1 - self.expected))


@dataclass(frozen=True)
class Requirement:
    """The rows one gate needs to pass a model at ``expected`` with the configured power."""

    gate: str
    rows: int | None                 # None: not sized (see note)
    note: str
    #: at the rows the tier uses: the probability it passes a model at ``expected`` (or as
    #: good as the released one), and one at the limit (or worse by the margin)
    passes_good: float | None = None
    passes_bad: float | None = None
    bad_model: str = "one at the limit"


@dataclass(frozen=True)
class SamplePlan:
    """The fast tier's sample: the rows the gates that run need, and why."""

    expected: float
    power: float
    rows_needed: int
    rows_available: int | None
    requirements: tuple[Requirement, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        if self.rows_available is None:
            return self.rows_needed
        return min(self.rows_needed, self.rows_available)

    def describe(self) -> str:
        text = (f"{self.rows_needed} rows, so that each gate below passes a model at the "
                f"expected accuracy {self.expected} with probability at least {self.power}")
        if self.rows_available is not None and self.rows_needed > self.rows_available:
            text += f"; only {self.rows_available} are available, so all are used"
        return text + "."

    def lines(self) -> list[str]:
        """The plan, a line per gate and per warning, for the CLI and the reports."""
        out = [self.describe()]
        for r in self.requirements:
            out.append(f"  {r.gate}: {'not sized' if r.rows is None else f'{r.rows} rows'} "
                       f"({r.note})")
            if r.passes_good is not None:
                out.append(f"    at {self.rows} rows: fails a good model with probability "
                           f"{1 - r.passes_good:.3f} (false alarm), passes {r.bad_model} with "
                           f"probability {r.passes_bad:.3f} (miss)")
        out += [f"  warning: {w}" for w in self.warnings]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows": self.rows, "describe": self.describe()}


def plan_sample(tiers: TiersConfig, gates: GatesConfig | None = None,
                rows_available: int | None = None, slice_shares: dict | None = None,
                strict: bool = False) -> SamplePlan:
    """Size the fast tier for the gates that run (mlbuild.accuracy.power), not for a textbook test.

    Each accuracy threshold gate and a non-inferiority change gate on accuracy gets the
    smallest n from which on it passes a model at ``expected`` with ``power`` (exact); the
    tier takes the largest. Slice gates are not sized into the total (a rare class would
    need the whole split); the plan says what each slice needs and warns when a slice
    falls under ``min_rows`` in the sample. ``slice_shares`` maps ``by`` to the shares of
    its values (for ``class``, the label shares of the split). ``strict``: an accuracy
    limit at or above ``expected`` is a ConfigError (a ValueError), not a note (for a plan asked for).
    """
    from mlbuild.accuracy import power

    gates = gates or GatesConfig()
    expected, target = tiers.expected, tiers.power
    sized, unsized, warnings = [], [], []   # sized: (requirement, n -> its characteristic)
    thresholds, change, slices = build_gates(gates)
    accuracy = [g for g in thresholds if g.metric == "accuracy"]
    if not accuracy:
        accuracy = [ThresholdGate("accuracy", round(expected - tiers.drop, 10), "confident",
                                  1 - tiers.alpha, gates.interval)]
        warnings.append(f"[gates] has no accuracy threshold: the sample is sized for one at "
                        f"expected - drop = {accuracy[0].limit:.4g}.")
    for gate in accuracy:
        if expected <= gate.limit and strict:
            raise ConfigError(f"the expected accuracy {expected} does not exceed the limit "
                              f"{gate.limit}: a model at expected would fail that gate at least "
                              "half the time, at any sample size.",
                              hint="lower the limit, or set the expected accuracy the model "
                                   "really has.")
        if expected <= gate.limit:
            unsized.append(Requirement(gate.name, None, f"the expected {expected} does not "
                                       "exceed the limit: a model at expected fails it at least "
                                       "half the time at any n"))
            continue
        rows = power.threshold_rows(expected, gate.limit, gate.confidence, gate.interval,
                                    gate.mode, target)
        note = f"{gate.interval} bound, exact" if gate.mode == "confident" else "estimate, exact"
        sized.append((Requirement(gate.name, rows, note),
                      lambda n, g=gate: g.operating_characteristic(n, expected)))
    if change is not None and change.metric == "accuracy":
        psi = tiers.assumed_discordance
        if change.mode == "regression":
            unsized.append(Requirement(change.name, None, "regression mode passes an equal "
                                       "model at any n; it catches only the drops a sample "
                                       "proves"))
        else:
            source = "[accuracy] discordance" if tiers.discordance else "assumed 2 (1 - expected)"
            rows = power.paired_rows(psi, change.margin, change.alpha, target)
            sized.append((Requirement(change.name, rows, f"a candidate as good as the released "
                                      f"model, discordance {psi:.3g} ({source}), exact",
                                      bad_model="one worse by the margin"),
                          lambda n: change.operating_characteristic(n, psi)))
    needed = max((r.rows for r, _ in sized), default=1)
    actual = needed if rows_available is None else min(needed, rows_available)
    requirements = []
    for requirement, characteristic in sized:
        oc = characteristic(actual)   # a threshold's or the change gate's keys
        good = oc.get("at_expected", oc.get("at_equal"))
        bad = oc.get("at_limit", oc.get("at_margin"))
        requirements.append(replace(requirement, passes_good=good, passes_bad=bad))
        if good < target:
            warnings.append(f"{requirement.gate} passes a good model with probability only "
                            f"{good:.3f} on the {actual} rows available.")
    for gate in slices:
        if expected > gate.limit:
            rows = power.threshold_rows(expected, gate.limit, gate.confidence, gate.interval,
                                        gate.mode, target)
            unsized.append(Requirement(f"each slice {gate.by}: accuracy >= {gate.limit}", rows,
                                       f"rows per slice, not in the total; min_rows "
                                       f"{gate.min_rows}"))
        shares = (slice_shares or {}).get(gate.by)
        if shares:
            value, share = min(shares.items(), key=lambda item: item[1])
            if share * actual < gate.min_rows:
                warnings.append(f"slice {gate.by}={value} gets about {share * actual:.0f} of "
                                f"{actual} rows, under min_rows = {gate.min_rows}: it is "
                                "reported, not gated, in this tier.")
    return SamplePlan(expected, target, needed, rows_available,
                      tuple(requirements + unsized), tuple(warnings))



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
    parts = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for part in pool.map(predict, chunks):
            parts.append(part)
            report_progress(len(parts), len(chunks), "chunks predicted")
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

    def counts(self) -> dict[str, int]:
        """How many gates were gated, passed, failed and not gated."""
        passed = sum(r.passed is True for r in self.results)
        failed = sum(r.passed is False for r in self.results)
        return {"gated": passed + failed, "passed": passed, "failed": failed,
                "not_gated": len(self.results) - passed - failed}

    def summary(self) -> str:
        c = self.counts()
        verdict = "passed" if self.passed else "FAILED"
        return (f"accuracy gates {verdict} ({self.tier} tier, {self.n} rows): {c['passed']} "
                f"passed, {c['failed']} failed of {c['gated']} gated; {c['not_gated']} not gated")


def all_metrics(p: Predictions, kind: Kind, gated: set[str] = frozenset()) -> dict[str, float]:
    """Every metric that applies, for the reports (costly ones only when gated).

    Confusion-matrix metrics of integer labels come from one confusion matrix, not a pass
    over the rows each.
    """
    from mlbuild.accuracy.metrics import COUNT_STATISTICS, counts_of

    counts = counts_of(p) if kind == "classification" else None
    values = {}
    for name, metric in METRICS.items():
        if metric.model != kind or (metric.needs_proba and p.proba is None):
            continue
        if metric.costly and name not in gated:
            continue
        if name == "auc" and (p.proba is None or p.proba.shape[1] != 2):
            continue
        if counts is not None and name in COUNT_STATISTICS:
            values[name] = float(COUNT_STATISTICS[name](counts))
        else:
            values[name] = metric.compute(p.y_true, p.y_pred, p.proba)
    return values


def evaluate(candidate: Predictions, config: GatesConfig, *, kind: Kind, tier: Tier,
             baseline: Predictions | None = None, columns: dict[str, Any] | None = None,
             plan: SamplePlan | None = None, tiers: TiersConfig | None = None,
             absent: str = NO_RELEASED_MODEL, missing_features: tuple[str, ...] = ()
             ) -> Evaluation:
    """Run every configured gate on the candidate's predictions (and the baseline's).

    Each gate's result states its operating characteristic at the rows it judged: with
    ``tiers``, at ``expected`` too. ``absent`` says why there is no baseline;
    ``missing_features`` are the features the released model needs and the data lacks.
    """
    columns = dict(columns or {})
    columns.setdefault("class", candidate.y_true)
    tiers = tiers or TiersConfig()
    thresholds, change, slices = build_gates(config)
    results = [gate.check(candidate).with_operating_characteristic(
        gate.operating_characteristic(len(candidate), tiers.expected, candidate))
        for gate in thresholds]
    if change is not None:
        result = change.check(candidate, baseline, absent=absent,
                              missing_features=missing_features)
        if result.passed is not None:
            psi = result.details.get("discordance") or tiers.assumed_discordance
            result = result.with_operating_characteristic(
                change.operating_characteristic(result.n, psi, result.details))
        results.append(result)
    for gate in slices:
        if gate.by not in columns:
            results.append(GateResult(
                f"slice {gate.by}", "slice", "accuracy", False,
                f"The slice column {gate.by!r} is not in the test data (columns: "
                f"{', '.join(sorted(columns))}). Hint: fix [[gates.slices]] by.", 0))
            continue
        for result in gate.check(candidate, columns[gate.by], baseline):
            if result.passed is not None and "successes" in result.details:
                result = result.with_operating_characteristic(
                    gate.operating_characteristic(result.n, tiers.expected))
            results.append(result)
    gated = {r.metric for r in results}
    metrics = {k: v for k, v in all_metrics(candidate, kind, gated).items() if not math.isnan(v)}
    return Evaluation(tier, kind, len(candidate), metrics, results, plan, candidate, baseline,
                      all_metrics(baseline, kind, gated) if baseline is not None else {})
