"""Accuracy gates: decide from a finite test sample whether a model may ship.

A point estimate compared with a threshold ignores sampling error (see
../shared/ACCURACY.md). Three kinds of gate, configured in a project's TOML under
``[gates]`` (:class:`GatesConfig`):

* **threshold** — a metric against an absolute limit. ``confident`` mode (the default)
  passes only when the one-sided confidence bound meets the limit: the sample *proves*
  it. ``point`` mode compares the estimate.
* **change** — non-inferiority against the released model on the same rows: exact
  McNemar on the discordant rows for accuracy, a one-sided Wilcoxon signed-rank test on
  per-row losses otherwise. Fails when the candidate is significantly worse by more than
  the margin. Skipped, and reported so, when there is no released model yet.
* **slices** — a threshold on each value of a column (or on each class), for slices with
  at least ``min_rows`` rows; smaller ones are reported, not gated; a required value with
  no rows fails. The slices' p-values get a Holm or Benjamini–Hochberg correction.

Every result carries the numbers and a sentence saying what was proved. This module is
the one place gate logic lives: the host's evaluation and the serving image's acceptance
test decide the same way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mlbuild import stats
from mlbuild.config import Section
from mlbuild.errors import ConfigError, DataError
from mlbuild.metrics import METRICS, Metric, Predictions

Mode = Literal["point", "confident"]


# ----------------------------------------------------------------------------- config


def _known_metric(name: str) -> str:
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    return name


class ThresholdSpec(Section):
    metric: str
    min: float | None = None   # for metrics where higher is better
    max: float | None = None   # for metrics where lower is better (log_loss, rmse, mae)
    mode: Mode | None = None   # default: [gates] mode

    _metric = field_validator("metric")(_known_metric)

    @model_validator(mode="after")
    def _one_limit(self):
        metric = METRICS[self.metric]
        wanted = "min" if metric.higher_is_better else "max"
        other = "max" if wanted == "min" else "min"
        better = "higher" if metric.higher_is_better else "lower"
        if getattr(self, other) is not None:
            raise ValueError(f"a {self.metric} threshold takes `{wanted}`, not `{other}` "
                             f"({better} is better)")
        if getattr(self, wanted) is None:
            raise ValueError(f"a {self.metric} threshold needs `{wanted}` ({better} is better)")
        return self


class ChangeSpec(Section):
    metric: str = "accuracy"
    margin: float = Field(default=0.0, ge=0.0)
    alpha: float = Field(default=0.05, gt=0.0, lt=0.5)

    @field_validator("metric")
    @classmethod
    def _paired(cls, name: str) -> str:
        _known_metric(name)
        if METRICS[name].row_loss is None:
            raise ValueError(f"{name} has no per-row loss to compare; use one of "
                             f"{', '.join(m for m, v in METRICS.items() if v.row_loss)}")
        return name


class SliceSpec(Section):
    by: str                    # "class", or a column of the test data
    metric: Literal["accuracy"] = "accuracy"
    min: float = Field(ge=0.0, le=1.0)
    min_rows: int = Field(default=30, ge=1)
    required: list[str] = []   # values that must be present (as text)


class GatesConfig(Section):
    mode: Mode = "confident"
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    interval: Literal["wilson", "clopper-pearson"] = "wilson"
    correction: Literal["holm", "bh"] = "holm"
    bootstrap_resamples: int = Field(default=2000, ge=100)
    seed: int = 0
    threshold: list[ThresholdSpec] = []
    change: ChangeSpec | None = None
    slices: list[SliceSpec] = []


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class GateResult:
    name: str
    kind: Literal["threshold", "change", "slice"]
    metric: str
    passed: bool | None          # None: not gated (skipped or reported only)
    reason: str
    n: int = 0
    estimate: float | None = None
    interval: tuple[float, float] | None = None
    limit: float | None = None
    bound: float | None = None   # what was compared with the limit
    p_value: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


# ----------------------------------------------------------------------------- gates


@dataclass(frozen=True)
class ThresholdGate:
    """``metric >= min`` (or ``<= max``), by the estimate or by a one-sided bound."""

    metric: str
    limit: float
    mode: Mode = "confident"
    confidence: float = 0.95
    interval: str = "wilson"
    resamples: int = 2000
    seed: int = 0

    def __post_init__(self):
        if self.mode not in ("point", "confident"):
            raise ConfigError(f"Gate mode must be 'point' or 'confident'; got {self.mode!r}.")
        if not 0.5 <= self.confidence < 1:
            raise ConfigError(
                f"Gate confidence must be in [0.5, 1), e.g. 0.95; got {self.confidence}. Below "
                "0.5 the one-sided bound lies on the wrong side of the estimate."
            )

    @property
    def spec(self) -> Metric:
        return METRICS[self.metric]

    @property
    def name(self) -> str:
        op = ">=" if self.spec.higher_is_better else "<="
        return f"{self.metric} {op} {self.limit} ({self.mode})"

    def interval_and_bound(self, p: Predictions) -> tuple[tuple[float, float], float | None]:
        """The two-sided interval at ``confidence`` and, in confident mode, the one-sided
        bound at that level on the side that must meet the limit (one set of resamples)."""
        side = "lower" if self.spec.higher_is_better else "upper"
        if self.spec.uncertainty == "proportion":
            correct = int((p.y_true == p.y_pred).sum())
            return (stats.proportion_interval(correct, len(p), self.confidence, self.interval),
                    stats.proportion_bound(correct, len(p), self.confidence, self.interval, side))
        compute = self.spec.compute
        if p.proba is None:
            data, fn = (p.y_true, p.y_pred), (lambda y, yp: compute(y, yp))
        else:
            import numpy as np

            rows = np.arange(len(p))
            data = (p.y_true, p.y_pred, rows)
            fn = (lambda y, yp, r: compute(y, yp, p.proba[r]))
        # A one-sided bound at c is an end of the two-sided interval at 2c - 1.
        levels = (self.confidence,) + ((2 * self.confidence - 1,) if self.mode != "point" else ())
        interval, *one_sided = stats.bootstrap_intervals(fn, data, levels, self.resamples,
                                                         self.seed)
        if not one_sided:
            return interval, None
        low, high = one_sided[0]
        return interval, low if side == "lower" else high

    def check(self, p: Predictions) -> GateResult:
        if len(p) == 0:
            raise DataError(f"The gate {self.name} has no rows to judge. Hint: check that the "
                            "test data is not empty.")
        if self.spec.needs_proba and p.proba is None:
            raise ConfigError(f"The gate {self.name} needs class probabilities, but the model "
                              "gave none. Hint: gate a metric of its predictions instead.")
        if self.metric == "auc" and p.proba.shape[1] != 2:
            raise ConfigError(f"The gate {self.name} needs a binary classifier; this one has "
                              f"{p.proba.shape[1]} classes. Hint: gate macro_f1 or "
                              "balanced_accuracy instead.")
        estimate = self.spec.compute(p.y_true, p.y_pred, p.proba)
        interval, bound = self.interval_and_bound(p)
        if self.mode == "point":
            bound, what = estimate, "the estimate"
        else:
            side = "lower" if self.spec.higher_is_better else "upper"
            what = f"the one-sided {self.confidence:.0%} {side} bound"
        better = self.spec.higher_is_better
        passed = bool(bound >= self.limit if better else bound <= self.limit)
        verdict = "meets" if passed else "misses"
        method = (self.interval if self.spec.uncertainty == "proportion"
                  else f"{stats.bootstrap_method(len(p))} bootstrap")
        reason = (f"{self.metric} = {_fmt(estimate)} on {len(p)} rows ({self.confidence:.0%} "
                  f"{method} interval [{_fmt(interval[0])}, {_fmt(interval[1])}]); {what} "
                  f"{_fmt(bound)} {verdict} the limit {self.limit}.")
        estimate_ok = estimate >= self.limit if better else estimate <= self.limit
        if not passed and self.mode == "confident" and estimate_ok:
            reason += " The estimate meets it, but this sample is too small to prove it."
        return GateResult(self.name, "threshold", self.metric, passed, reason, len(p), estimate,
                          interval, self.limit, bound)


@dataclass(frozen=True)
class ChangeGate:
    """Non-inferiority of the candidate against the released model, on the same rows."""

    metric: str = "accuracy"
    margin: float = 0.0
    alpha: float = 0.05

    @property
    def name(self) -> str:
        return f"{self.metric} not worse than the released model by more than {self.margin}"

    def check(self, candidate: Predictions, baseline: Predictions | None) -> GateResult:
        if baseline is None:
            return GateResult(self.name, "change", self.metric, None,
                              "Skipped: there is no released model in models.lock to compare "
                              "with yet (this is the first model).")
        if len(baseline) != len(candidate):
            raise DataError("The candidate and the released model were scored on different "
                            f"rows ({len(candidate)} and {len(baseline)}).")
        spec = METRICS[self.metric]
        cand = spec.compute(candidate.y_true, candidate.y_pred, candidate.proba)
        base = spec.compute(baseline.y_true, baseline.y_pred, baseline.proba)
        n = len(candidate)
        if self.metric == "accuracy":
            c_right = candidate.y_pred == candidate.y_true
            b_right = baseline.y_pred == baseline.y_true
            b_only, c_only = int((b_right & ~c_right).sum()), int((c_right & ~b_right).sum())
            p = stats.non_inferiority_p(b_only, c_only, n, self.margin)
            test = (f"exact McNemar on {b_only + c_only} discordant rows (baseline only right: "
                    f"{b_only}, candidate only right: {c_only})")
            details = {"baseline_only": b_only, "candidate_only": c_only}
        else:
            cand_loss = spec.row_loss(candidate.y_true, candidate.y_pred, candidate.proba)
            base_loss = spec.row_loss(baseline.y_true, baseline.y_pred, baseline.proba)
            p = stats.one_sided_wilcoxon_p(cand_loss, base_loss, self.margin)
            test = "one-sided Wilcoxon signed-rank test on the per-row losses"
            details = {}
        passed = bool(p >= self.alpha)
        verdict = ("no evidence that it is worse by more than the margin" if passed else
                   "significantly worse by more than the margin")
        reason = (f"{self.metric}: candidate {_fmt(cand)}, released model {_fmt(base)} on the "
                  f"same {n} rows; {test}: p = {p:.4g} (alpha {self.alpha}): {verdict}.")
        return GateResult(self.name, "change", self.metric, passed, reason, n, cand, None,
                          self.margin, None, p, {**details, "baseline": base})


@dataclass(frozen=True)
class SliceGate:
    """Accuracy on each slice of the rows, with a multiple-testing correction."""

    by: str
    limit: float
    min_rows: int = 30
    required: tuple[str, ...] = ()
    mode: Mode = "confident"
    confidence: float = 0.95
    interval: str = "wilson"
    correction: str = "holm"

    def _p_value(self, correct: int, n: int) -> float:
        """One-sided p of H0 "accuracy <= limit": small when the slice proves the limit."""
        if self.interval == "clopper-pearson":
            from scipy.stats import binomtest

            return float(binomtest(correct, n, self.limit, alternative="greater").pvalue)
        if self.limit in (0.0, 1.0):
            return 0.0 if correct / n > self.limit else 1.0
        z = (correct / n - self.limit) / math.sqrt(self.limit * (1 - self.limit) / n)
        return 1 - NormalDist().cdf(z)  # the score test that the Wilson interval inverts

    def check(self, p: Predictions, values) -> list[GateResult]:
        import numpy as np

        values = np.asarray(values).astype(str)
        present = sorted(set(values.tolist()))
        results, gated = [], []
        for value in present:
            rows = values == value
            n, correct = int(rows.sum()), int((p.y_pred[rows] == p.y_true[rows]).sum())
            name = f"slice {self.by}={value}: accuracy >= {self.limit} ({self.mode})"
            interval = stats.proportion_interval(correct, n, self.confidence, self.interval)
            estimate = correct / n
            if n < self.min_rows:
                results.append(GateResult(
                    name, "slice", "accuracy", None,
                    f"Reported, not gated: {n} rows, fewer than min_rows = {self.min_rows} "
                    f"(accuracy {_fmt(estimate)}).", n, estimate, interval, self.limit))
                continue
            gated.append((len(results), correct, n))
            results.append(GateResult(name, "slice", "accuracy", None, "", n, estimate, interval,
                                      self.limit))
        pvalues = [self._p_value(c, n) for _, c, n in gated]
        adjust = stats.holm if self.correction == "holm" else stats.benjamini_hochberg
        adjusted = adjust(pvalues) if pvalues else []
        alpha = 1 - self.confidence
        for (index, correct, n), raw, adj in zip(gated, pvalues, adjusted, strict=True):
            r = results[index]
            if self.mode == "point":
                passed = r.estimate >= self.limit
                how = f"the estimate {_fmt(r.estimate)}"
            else:
                passed = adj <= alpha
                how = (f"the test that it exceeds the limit gives p = {raw:.3g}, "
                       f"{self.correction}-adjusted over {len(gated)} slices {adj:.3g} "
                       f"(alpha {alpha:.3g})")
            verdict = "meets" if passed else "does not prove" if self.mode == "confident" else "misses"
            reason = (f"accuracy {_fmt(r.estimate)} ({correct}/{n}, interval "
                      f"[{_fmt(r.interval[0])}, {_fmt(r.interval[1])}]); {how}: {verdict} "
                      f"the limit {self.limit}.")
            results[index] = GateResult(r.name, "slice", "accuracy", bool(passed), reason, n,
                                        r.estimate, r.interval, self.limit,
                                        r.estimate if self.mode == "point" else None, adj,
                                        {"p_raw": raw})
        for value in self.required:
            if value not in present:
                results.append(GateResult(
                    f"slice {self.by}={value}: present", "slice", "accuracy", False,
                    f"The configured slice {self.by}={value} has no rows in the test data.", 0))
        return results


def build_gates(config: GatesConfig):
    """The gate objects a configuration describes."""
    thresholds = [
        ThresholdGate(t.metric, t.min if t.min is not None else t.max, t.mode or config.mode,
                      config.confidence, config.interval, config.bootstrap_resamples,
                      config.seed)
        for t in config.threshold
    ]
    change = (ChangeGate(config.change.metric, config.change.margin, config.change.alpha)
              if config.change else None)
    slices = [SliceGate(s.by, s.min, s.min_rows, tuple(s.required), config.mode,
                        config.confidence, config.interval, config.correction)
              for s in config.slices]
    return thresholds, change, slices
