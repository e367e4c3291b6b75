"""Accuracy gates: decide from a finite test sample whether a model may ship.

A point estimate compared with a threshold ignores sampling error (see
../shared/ACCURACY.md). Three kinds of gate, configured in a project's TOML under
``[gates]`` (:class:`GatesConfig`):

* **threshold** — a metric against an absolute limit. ``confident`` mode (the default)
  passes only when the one-sided confidence bound meets the limit: the sample *proves*
  it. Proportions get Wilson or Clopper–Pearson bounds; other metrics a seeded BCa
  bootstrap (:mod:`mlbuild.accuracy.resample`), which proves nothing when its resamples are
  degenerate or a class has too few rows. ``point`` mode compares the estimate.
* **change** — against the released model, on the same rows. By default
  ``non-inferiority``: the candidate passes only when the data reject "worse by the
  margin or more" (Tango's score test for accuracy, a paired t-test of the mean loss for
  log-loss and MAE, a paired bootstrap of the RMSE difference). ``mode = "regression"``
  fails only when the data prove a regression beyond the margin. Not gated, and reported
  so, when there is no released model to compare with.
* **slices** — each value of a column (or each class) with at least ``min_rows`` rows
  must meet the limit: an intersection–union test, each slice at level alpha and no
  multiplicity correction (Berger 1982). With ``not_worse``, each slice is also tested
  for a regression against the released model; that is a union of tests, so its p-values
  get Holm's or Benjamini–Hochberg's correction.
* **drift** — the new data against the released model's training data, per column
  (``[gates.drift]``, :mod:`mlbuild.accuracy.drift`); its results are GateResults too.

Every result carries the numbers and a sentence saying what was shown. This module is
the one place gate logic lives: the host's evaluation and the serving image's acceptance
test decide the same way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mlbuild.accuracy import stats
from mlbuild.accuracy.drift import DriftConfig
from mlbuild.accuracy.metrics import COUNT_STATISTICS, METRICS, Metric, Predictions
from mlbuild.config import Section
from mlbuild.errors import ConfigError, DataError

Mode = Literal["point", "confident"]
#: samples drawn to simulate a bootstrap gate's operating characteristic
SIMULATIONS = 100


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
    #: how much worse than the released model the candidate may be, in the metric's units
    margin: float = Field(ge=0.0)
    alpha: float = Field(default=0.05, gt=0.0, lt=0.5)
    mode: stats.ChangeMode = "non-inferiority"
    #: pass a candidate whose released model cannot read the new data (recorded in the lock)
    accept_incomparable: bool = False

    @field_validator("metric")
    @classmethod
    def _paired(cls, name: str) -> str:
        _known_metric(name)
        if METRICS[name].row_loss is None:
            raise ValueError(f"{name} has no per-row loss to compare; use one of "
                             f"{', '.join(m for m, v in METRICS.items() if v.row_loss)}")
        return name

    @model_validator(mode="after")
    def _margin_for_non_inferiority(self):
        if self.mode == "non-inferiority" and self.margin == 0:
            raise ValueError("a non-inferiority change gate needs a margin above 0: with 0 the "
                             "candidate would have to prove it is better than the released "
                             "model (use e.g. margin = 0.02, or mode = \"regression\")")
        return self


class SliceSpec(Section):
    by: str                    # "class", or a column of the test data
    metric: Literal["accuracy"] = "accuracy"
    min: float = Field(ge=0.0, le=1.0)
    min_rows: int = Field(default=30, ge=1)
    required: list[str] = []   # values that must be present (as text)
    #: also fail a slice whose accuracy the data prove lower than the released model's by
    #: more than ``margin`` (Holm or BH over the slices, by [gates] correction)
    not_worse: bool = False
    margin: float = Field(default=0.0, ge=0.0, le=1.0)


class GatesConfig(Section):
    mode: Mode = "confident"
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    interval: Literal["wilson", "clopper-pearson"] = "wilson"
    #: for the slices' "not worse than the released model" tests (a union of tests)
    correction: Literal["holm", "bh"] = "holm"
    bootstrap_resamples: int = Field(default=2000, ge=100)
    #: a confident bootstrap gate of a classifier proves nothing with fewer rows of a class
    bootstrap_min_class_rows: int = Field(default=10, ge=1)
    seed: int = 0
    threshold: list[ThresholdSpec] = []
    change: ChangeSpec | None = None
    slices: list[SliceSpec] = []
    #: the data drift gate (CheckDrift); absent: no drift gate
    drift: DriftConfig | None = None


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class GateResult:
    name: str
    kind: Literal["threshold", "change", "slice", "drift"]
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

    def with_operating_characteristic(self, oc: dict[str, Any] | None) -> GateResult:
        """This result with its operating characteristic stated in details and reason."""
        if not oc:
            return self
        return replace(self, reason=f"{self.reason} {oc['sentence']}",
                       details={**self.details, "operating_characteristic": oc})


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def _chance(p: float) -> str:
    return f"{p:.3f}" if 0.001 <= p <= 0.999 else f"{p:.2g}"


# ----------------------------------------------------------------------------- threshold


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
    min_class_rows: int = 10

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

    @property
    def side(self) -> Literal["lower", "upper"]:
        return "lower" if self.spec.higher_is_better else "upper"

    def _meets(self, value: float) -> bool:
        return bool(value >= self.limit if self.spec.higher_is_better else value <= self.limit)

    def check(self, p: Predictions) -> GateResult:
        if len(p) == 0:
            raise DataError(f"The gate {self.name} has no rows to judge.",
                            hint="check that the test data is not empty.")
        if self.spec.needs_proba and p.proba is None:
            raise ConfigError(f"The gate {self.name} needs class probabilities, but the model "
                              "gave none.", hint="gate a metric of its predictions instead.")
        if self.metric == "auc" and p.proba.shape[1] != 2:
            raise ConfigError(f"The gate {self.name} needs a binary classifier; this one has "
                              f"{p.proba.shape[1]} classes.",
                              hint="gate macro_f1 or balanced_accuracy instead.")
        estimate = self.spec.compute(p.y_true, p.y_pred, p.proba)
        if self.spec.uncertainty == "proportion":
            return self._proportion(p, estimate)
        return self._bootstrap(p, estimate)

    def _result(self, p: Predictions, estimate: float, interval, bound, method: str,
                refusal: str | None = None, details: dict | None = None) -> GateResult:
        if self.mode == "point":
            bound, what = estimate, "the estimate"
        else:
            what = f"the one-sided {self.confidence:.0%} {self.side} bound"
        passed = refusal is None and self._meets(bound)
        reason = (f"{self.metric} = {_fmt(estimate)} on {len(p)} rows ({self.confidence:.0%} "
                  f"{method} interval [{_fmt(interval[0])}, {_fmt(interval[1])}]); ")
        if refusal:
            reason += refusal
        else:
            reason += (f"{what} {_fmt(bound)} {'meets' if passed else 'misses'} the limit "
                       f"{self.limit}.")
            if not passed and self.mode == "confident" and self._meets(estimate):
                reason += " The estimate meets it, but this sample is too small to prove it."
        return GateResult(self.name, "threshold", self.metric, passed, reason, len(p), estimate,
                          interval, self.limit, bound, None, details or {})

    def _proportion(self, p: Predictions, estimate: float) -> GateResult:
        correct = int((p.y_true == p.y_pred).sum())
        interval = stats.proportion_interval(correct, len(p), self.confidence, self.interval)
        bound = stats.proportion_bound(correct, len(p), self.confidence, self.interval,
                                       self.side)
        return self._result(p, estimate, interval, bound, self.interval,
                            details={"successes": correct})

    def _bootstrap(self, p: Predictions, estimate: float) -> GateResult:

        result = bootstrap(self.metric, p, self.resamples, self.seed)
        interval = result.interval(self.confidence)
        bound = result.bound(self.confidence, self.side)
        method = f"{result.method} bootstrap"
        details = {"bootstrap": {"method": result.method, "resamples": self.resamples,
                                 "seed": self.seed, "degenerate": result.degenerate}}
        if self.mode == "point":
            gate = self._result(p, estimate, interval, bound, method, details=details)
        else:
            import numpy as np

            labels, counts = np.unique(p.y_true, return_counts=True)
            refusal = self._refusal(result, dict(zip(labels.tolist(), counts.tolist(),
                                                     strict=True)))
            gate = self._result(p, estimate, interval, bound, method, refusal, details)
        if result.degenerate or self.metric in COUNT_STATISTICS:
            return gate  # confusion-matrix metrics are simulated instead (evaluation)
        return gate.with_operating_characteristic(
            self._normal_characteristic(estimate, float(result.distribution.std()), len(p)))

    def _normal_characteristic(self, estimate: float, se: float, n: int) -> dict | None:
        """Pass probabilities if the estimate is normal with the bootstrap's standard error:
        Φ(distance beyond the limit / se - z) at a true value at the limit and at this one."""
        from scipy.stats import norm

        if not se > 0:
            return None
        z = 0.0 if self.mode == "point" else norm.ppf(self.confidence)
        margin = (estimate - self.limit) if self.spec.higher_is_better else (self.limit - estimate)
        at_limit, like = float(norm.cdf(-z)), float(norm.cdf(margin / se - z))
        return {"n": n, "exact": False, "standard_error": se, "at_limit": at_limit,
                "at_observed": like,
                "sentence": f"At {n} rows this gate passes a model at the limit with probability "
                            f"about {_chance(at_limit)} and one like this with probability about "
                            f"{_chance(like)} (normal approximation, bootstrap standard error "
                            f"{se:.3g})."}

    def _refusal(self, result, class_rows: dict) -> str | None:
        """Why a confident bootstrap bound proves nothing here, or None when it may."""
        from mlbuild.accuracy import resample

        if result.degenerate:
            refusal = (f"the bootstrap is degenerate (its resamples hardly vary), so it proves "
                       f"nothing about the limit {self.limit}.")
            if self.spec.higher_is_better and 0 < self.limit < 1:
                rows = resample.zero_error_rows(self.limit, self.confidence)
                refusal += (f" Even without a single error it would need at least {rows} rows "
                            f"to prove it at {self.confidence:.0%}.")
            return refusal
        few = [f"{label} ({count})" for label, count in class_rows.items()
               if 0 < count < self.min_class_rows]
        if self.spec.model == "classification" and few:
            return (f"a bootstrap bound needs at least {self.min_class_rows} rows of each class "
                    f"([gates] bootstrap_min_class_rows), and these classes have fewer: "
                    f"{', '.join(few[:10])}. It proves nothing here.")
        return None

    def passes_counts(self, counts) -> bool:
        """The gate's decision from a confusion matrix (metrics that are functions of it)."""
        from mlbuild.accuracy import resample

        statistic = COUNT_STATISTICS[self.metric]
        if self.mode == "point":
            return self._meets(float(statistic(counts)))
        result = resample.confusion_bootstrap(counts, statistic, self.resamples, self.seed)
        rows = dict(enumerate(counts.sum(axis=1).tolist()))
        return (self._refusal(result, rows) is None
                and self._meets(result.bound(self.confidence, self.side)))

    def operating_characteristic(self, n: int, expected: float | None,
                                 p: Predictions | None = None) -> dict | None:
        """Pass probabilities at the limit and at ``expected``: exact for proportions; for
        confusion-matrix metrics simulated from the observed confusion matrix ``p`` gives."""
        from mlbuild.accuracy import power

        if self.spec.uncertainty != "proportion" and p is not None:
            return self._simulated_characteristic(p)
        if self.spec.uncertainty != "proportion" or n <= 0:
            return None
        at_limit = power.threshold_pass_probability(n, self.limit, self.limit, self.confidence,
                                                    self.interval, self.mode)
        oc = {"n": n, "exact": True, "at_limit": at_limit}
        sentence = (f"At {n} rows this gate passes a model at the limit with probability "
                    f"{_chance(at_limit)}")
        if expected is not None:
            oc["expected"] = expected
            oc["at_expected"] = power.threshold_pass_probability(
                n, expected, self.limit, self.confidence, self.interval, self.mode)
            sentence += (f" and a model at the expected {expected} with probability "
                         f"{_chance(oc['at_expected'])}")
        oc["sentence"] = sentence + " (exact binomial sums)."
        return oc

    def _simulated_characteristic(self, p: Predictions) -> dict | None:
        from mlbuild.accuracy import power
        from mlbuild.accuracy.metrics import counts_of

        counts = counts_of(p) if self.metric in COUNT_STATISTICS else None
        if counts is None:
            return None  # no model of the data to simulate from: nothing is claimed
        observed = counts.astype(float)
        statistic = COUNT_STATISTICS[self.metric]
        runs = SIMULATIONS
        like = power.simulated_pass_probability(self.passes_counts, observed, len(p), runs,
                                                self.seed)
        oc = {"n": len(p), "exact": False, "simulations": runs, "at_observed": like}
        at_limit_model = power.model_at(statistic, observed, self.limit)
        sentence = f"At {len(p)} rows this gate passes a model like this one "
        if at_limit_model is not None:
            oc["at_limit"] = power.simulated_pass_probability(
                self.passes_counts, at_limit_model, len(p), runs, self.seed + 1)
            sentence += (f"with probability {_chance(like)} and one at the limit (the same "
                         f"errors, more of them) with probability {_chance(oc['at_limit'])}")
        else:
            sentence += f"with probability {_chance(like)}"
        oc["sentence"] = (sentence + f" (seeded simulation: {runs} samples from the observed "
                          "confusion matrix).")
        return oc


def bootstrap(metric: str, p: Predictions, resamples: int, seed: int):
    """The seeded bootstrap of a metric: from the confusion matrix's cells when the metric
    is a function of it (cost independent of the rows), else over rows."""
    import numpy as np

    from mlbuild.accuracy import resample
    from mlbuild.accuracy.metrics import counts_of

    spec = METRICS[metric]
    counts = counts_of(p) if metric in COUNT_STATISTICS else None
    if counts is not None:
        return resample.confusion_bootstrap(counts, COUNT_STATISTICS[metric], resamples, seed)
    if metric in resample.ROW_STATISTICS:   # means of a per-row loss (or the root of one)
        loss = spec.row_loss(p.y_true, p.y_pred, p.proba)
        return resample.row_bootstrap(resample.ROW_STATISTICS[metric], (loss,), resamples, seed)
    rows = np.arange(len(p))

    def per_resample(index):  # AUC and other per-row statistics with no vectorised form
        return np.array([spec.compute(p.y_true[i], p.y_pred[i], p.proba[i])
                         for i in np.atleast_2d(index)])

    return resample.row_bootstrap(per_resample, (rows,), resamples, seed)


# ----------------------------------------------------------------------------- change


def discordant(candidate: Predictions, baseline: Predictions) -> tuple[int, int]:
    """Paired rows only the released model gets right, and only the candidate gets right."""
    c_right = candidate.y_pred == candidate.y_true
    b_right = baseline.y_pred == baseline.y_true
    return int((b_right & ~c_right).sum()), int((c_right & ~b_right).sum())


NO_RELEASED_MODEL = ("there is no released model in models.lock to compare with yet (this is "
                     "the first model)")


@dataclass(frozen=True)
class ChangeGate:
    """The candidate against the released model, on the same rows."""

    metric: str = "accuracy"
    margin: float = 0.02
    alpha: float = 0.05
    mode: stats.ChangeMode = "non-inferiority"
    accept_incomparable: bool = False
    resamples: int = 2000
    seed: int = 0

    @property
    def name(self) -> str:
        if self.mode == "regression":
            return (f"{self.metric}: no proven regression beyond {self.margin} against the "
                    "released model (regression mode)")
        return (f"{self.metric} not worse than the released model by {self.margin} or more "
                "(non-inferiority)")

    def check(self, candidate: Predictions, baseline: Predictions | None, *,
              absent: str = NO_RELEASED_MODEL,
              missing_features: tuple[str, ...] = ()) -> GateResult:
        """``absent`` says why there is no baseline; ``missing_features`` are features the
        released model needs that the test data lacks (it could not be scored)."""
        if missing_features:
            return self._incomparable(missing_features)
        if baseline is None:
            return GateResult(self.name, "change", self.metric, None, f"Not gated: {absent}.")
        if len(baseline) != len(candidate):
            raise DataError("The candidate and the released model were scored on different "
                            f"rows ({len(candidate)} and {len(baseline)}).")
        spec = METRICS[self.metric]
        cand = spec.compute(candidate.y_true, candidate.y_pred, candidate.proba)
        base = spec.compute(baseline.y_true, baseline.y_pred, baseline.proba)
        n = len(candidate)
        if self.metric == "accuracy":
            p, test, details = self._accuracy(candidate, baseline)
        elif self.metric == "rmse":
            p, test, details = self._rmse(candidate, baseline)
        else:
            cand_loss = spec.row_loss(candidate.y_true, candidate.y_pred, candidate.proba)
            base_loss = spec.row_loss(baseline.y_true, baseline.y_pred, baseline.proba)
            p = stats.paired_mean_change_p(cand_loss, base_loss, self.margin, self.mode)
            diff = cand_loss - base_loss
            test = (f"one-sided paired t-test of the mean per-row {self.metric} difference "
                    f"(mean {_fmt(float(diff.mean()))})")
            details = {"difference": float(diff.mean()),
                       "standard_error": float(diff.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0}
        significant = p <= self.alpha
        drop = (base - cand) if spec.higher_is_better else (cand - base)  # > 0: worse
        if self.mode == "non-inferiority":
            passed = significant
            verdict = ("shown not worse by the margin or more" if passed else
                       f"the candidate is estimated {drop:.4g} worse, beyond the margin"
                       if drop >= self.margin else
                       "not shown to be within the margin: the sample cannot rule out a drop "
                       "of the margin or more")
        else:
            passed = not significant
            verdict = ("no regression beyond the margin shown" if passed else
                       "shown worse by more than the margin")
        reason = (f"{self.metric}: candidate {_fmt(cand)}, released model {_fmt(base)} on the "
                  f"same {n} rows; {test}: p = {p:.4g} (alpha {self.alpha}, {self.mode}): "
                  f"{verdict}.")
        return GateResult(self.name, "change", self.metric, bool(passed), reason, n, cand, None,
                          self.margin, None, p, {**details, "baseline": base, "mode": self.mode})

    def _accuracy(self, candidate: Predictions, baseline: Predictions):
        b_only, c_only = discordant(candidate, baseline)
        p = stats.paired_change_p(b_only, c_only, len(candidate), self.margin, self.mode)
        test = (f"Tango's score test on {b_only + c_only} discordant rows (released model only "
                f"right: {b_only}, candidate only right: {c_only})")
        return p, test, {"baseline_only": b_only, "candidate_only": c_only,
                         "discordance": (b_only + c_only) / len(candidate)}

    def _rmse(self, candidate: Predictions, baseline: Predictions):
        import numpy as np

        from mlbuild.accuracy import resample

        spec = METRICS["rmse"]
        squares = (spec.row_loss(candidate.y_true, candidate.y_pred, None),
                   spec.row_loss(baseline.y_true, baseline.y_pred, None))
        result = resample.row_bootstrap(resample.OfMeans(lambda a, b: np.sqrt(a) - np.sqrt(b)),
                                        squares, self.resamples, self.seed)
        # The share of resamples on the far side of the margin: a bootstrap p-value.
        if self.mode == "non-inferiority":
            p = float(np.mean(result.distribution >= self.margin))
        else:
            p = float(np.mean(result.distribution <= self.margin))
        low, high = result.interval(1 - 2 * self.alpha)
        test = (f"paired {result.method} bootstrap of RMSE(candidate) - RMSE(released) = "
                f"{_fmt(result.estimate)}, {1 - 2 * self.alpha:.0%} interval [{_fmt(low)}, "
                f"{_fmt(high)}], margin {self.margin} in RMSE units")
        return p, test, {"difference": result.estimate, "difference_interval": [low, high],
                         "standard_error": float(result.distribution.std())}

    def _incomparable(self, missing: tuple[str, ...]) -> GateResult:
        names = ", ".join(missing)
        what = (f"The released model reads {len(missing)} feature(s) the test data no longer "
                f"has ({names}), so it cannot be scored on the same rows")
        details = {"incomparable": True, "missing_features": list(missing)}
        if self.accept_incomparable:
            return GateResult(self.name, "change", self.metric, None,
                              f"Not gated: {what}; [gates.change] accept_incomparable = true "
                              "accepts this incomparable change, and models.lock records it.",
                              details=details)
        return GateResult(self.name, "change", self.metric, False,
                          f"{what}. Hint: restore the features, or, if dropping them is "
                          "intended, set accept_incomparable = true under [gates.change] for "
                          "this change (models.lock records it).", details=details)

    def operating_characteristic(self, n: int, discordance: float,
                                 details: dict | None = None) -> dict | None:
        """Pass probabilities for a candidate worse by the margin and for one as good as the
        released model: exact for accuracy (at ``discordance``); for losses, a normal
        approximation with the standard error the check measured (in ``details``)."""
        from mlbuild.accuracy import power

        if self.metric != "accuracy":
            return self._normal_characteristic(n, (details or {}).get("standard_error"))
        if n <= 0:
            return None
        psi = min(1.0, max(discordance, self.margin))
        at_margin = power.paired_pass_probability(n, psi, -self.margin, self.margin,
                                                  self.alpha, self.mode)
        at_equal = power.paired_pass_probability(n, psi, 0.0, self.margin, self.alpha,
                                                 self.mode)
        sentence = (f"At {n} rows and discordance {psi:.3g} this gate passes a candidate worse "
                    f"by the margin with probability {_chance(at_margin)} and one as good as "
                    f"the released model with probability {_chance(at_equal)} (exact sums).")
        return {"n": n, "exact": True, "discordance": psi, "at_margin": at_margin,
                "at_equal": at_equal, "sentence": sentence}

    def _normal_characteristic(self, n: int, se: float | None) -> dict | None:
        from scipy.stats import norm

        if not se or n < 2:
            return None
        z = norm.ppf(1 - self.alpha)
        # the gate compares the difference (candidate - released) with the margin
        shift = z if self.mode == "regression" else -z
        at_margin = float(norm.cdf(shift))
        at_equal = float(norm.cdf(self.margin / se + shift))
        return {"n": n, "exact": False, "standard_error": se, "at_margin": at_margin,
                "at_equal": at_equal,
                "sentence": f"At {n} rows this gate passes a candidate worse by the margin with "
                            f"probability about {_chance(at_margin)} and one as good as the "
                            f"released model with probability about {_chance(at_equal)} "
                            f"(normal approximation, standard error {se:.3g})."}


# ----------------------------------------------------------------------------- slices


@dataclass(frozen=True)
class SliceGate:
    """Accuracy on each slice of the rows: every gated slice must meet the limit."""

    by: str
    limit: float
    min_rows: int = 30
    required: tuple[str, ...] = ()
    mode: Mode = "confident"
    confidence: float = 0.95
    interval: str = "wilson"
    correction: str = "holm"
    not_worse: bool = False
    margin: float = 0.0

    def check(self, p: Predictions, values, baseline: Predictions | None = None
              ) -> list[GateResult]:
        import numpy as np

        # Group on the raw values (fast), name the groups as text (slices compare as text).
        groups, inverse = np.unique(np.asarray(values), return_inverse=True)
        names = groups.astype(str)
        present = sorted(names.tolist())
        results, compared = [], []
        alpha = 1 - self.confidence
        for index in np.argsort(names, kind="stable"):
            value, rows = str(names[index]), inverse == index
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
            results.append(self._meets_limit(name, correct, n, interval, alpha))
            if self.not_worse and baseline is not None:
                compared.append((value, rows))
        results += self._not_worse(p, baseline, compared, alpha)
        for value in self.required:
            if value not in present:
                results.append(GateResult(
                    f"slice {self.by}={value}: present", "slice", "accuracy", False,
                    f"The configured slice {self.by}={value} has no rows in the test data.", 0))
        return results

    def _meets_limit(self, name: str, correct: int, n: int, interval, alpha: float
                     ) -> GateResult:
        estimate = correct / n
        raw = stats.proportion_p(correct, n, self.limit, self.interval)
        if self.mode == "point":
            passed, how = estimate >= self.limit, f"the estimate {_fmt(estimate)}"
        else:
            bound = stats.proportion_bound(correct, n, self.confidence, self.interval)
            passed = bound >= self.limit
            how = (f"its one-sided {self.confidence:.0%} lower bound {_fmt(bound)} (p = "
                   f"{raw:.3g}; every slice must pass at alpha {alpha:.3g}, an intersection–"
                   "union test, so no correction for the number of slices)")
        verdict = ("meets" if passed else "does not prove" if self.mode == "confident"
                   else "misses")
        reason = (f"accuracy {_fmt(estimate)} ({correct}/{n}, interval [{_fmt(interval[0])}, "
                  f"{_fmt(interval[1])}]); {how}: {verdict} the limit {self.limit}.")
        return GateResult(name, "slice", "accuracy", bool(passed), reason, n, estimate,
                          interval, self.limit, estimate if self.mode == "point" else None, raw,
                          {"successes": correct})

    def _not_worse(self, p: Predictions, baseline: Predictions | None, compared, alpha
                   ) -> list[GateResult]:
        if not compared:
            return []
        tests = []
        for value, rows in compared:
            b_only, c_only = discordant(p.take(rows), baseline.take(rows))
            n = int(rows.sum())
            raw = stats.paired_change_p(b_only, c_only, n, self.margin, "regression")
            tests.append((value, n, b_only, c_only, raw, (c_only - b_only) / n))
        adjust = stats.holm if self.correction == "holm" else stats.benjamini_hochberg
        adjusted = adjust([t[4] for t in tests])
        results = []
        for (value, n, b_only, c_only, raw, diff), adj in zip(tests, adjusted, strict=True):
            passed = adj > alpha
            reason = (f"accuracy change {diff:+.4f} against the released model on {n} rows "
                      f"(released only right: {b_only}, candidate only right: {c_only}); "
                      f"Tango's test of a drop beyond {self.margin}: p = {raw:.3g}, "
                      f"{self.correction}-adjusted over {len(tests)} slices {adj:.3g} (alpha "
                      f"{alpha:.3g}; \"no slice is worse\" fails if any slice does, so the "
                      f"slices' tests are corrected): "
                      f"{'no regression shown' if passed else 'worse than the released model'}.")
            results.append(GateResult(
                f"slice {self.by}={value}: accuracy not worse than the released model",
                "slice", "accuracy", bool(passed), reason, n, diff, None, -self.margin, None,
                adj, {"p_raw": raw, "baseline_only": b_only, "candidate_only": c_only}))
        return results

    def operating_characteristic(self, n: int, expected: float | None) -> dict | None:
        """One slice's exact pass probabilities at the limit and at ``expected``."""
        return ThresholdGate("accuracy", self.limit, self.mode, self.confidence,
                             self.interval).operating_characteristic(n, expected)


def build_gates(config: GatesConfig):
    """The gate objects a configuration describes."""
    thresholds = [
        ThresholdGate(t.metric, t.min if t.min is not None else t.max, t.mode or config.mode,
                      config.confidence, config.interval, config.bootstrap_resamples,
                      config.seed, config.bootstrap_min_class_rows)
        for t in config.threshold
    ]
    spec = config.change
    change = (ChangeGate(spec.metric, spec.margin, spec.alpha, spec.mode, spec.accept_incomparable,
                         config.bootstrap_resamples, config.seed) if spec else None)
    slices = [SliceGate(s.by, s.min, s.min_rows, tuple(s.required), config.mode,
                        config.confidence, config.interval, config.correction, s.not_worse,
                        s.margin)
              for s in config.slices]
    return thresholds, change, slices
