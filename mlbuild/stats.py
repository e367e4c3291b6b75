"""The statistics behind the accuracy gates (see ../shared/ACCURACY.md).

Pure functions of counts and per-row arrays; scipy does the distributions. Heavy
imports happen inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from statistics import NormalDist
from typing import Literal

IntervalMethod = Literal["wilson", "clopper-pearson"]
Side = Literal["lower", "upper", "two-sided"]


def _check_counts(successes: int, n: int) -> None:
    if n <= 0:
        raise ValueError("A proportion needs at least one observation.")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n]; got {successes} of {n}.")


def proportion_interval(successes: int, n: int, confidence: float = 0.95,
                        method: IntervalMethod = "wilson") -> tuple[float, float]:
    """Two-sided confidence interval of a proportion: Wilson (1927) or Clopper–Pearson (1934)."""
    from scipy.stats import binomtest

    _check_counts(successes, n)
    scipy_method = {"wilson": "wilson", "clopper-pearson": "exact"}[method]
    ci = binomtest(successes, n).proportion_ci(confidence, method=scipy_method)
    return float(ci.low), float(ci.high)


def proportion_bound(successes: int, n: int, confidence: float, method: IntervalMethod = "wilson",
                     side: Side = "lower") -> float:
    """One-sided bound at ``confidence``: one end of the two-sided interval at 2c - 1."""
    low, high = proportion_interval(successes, n, 2 * confidence - 1, method)
    return low if side == "lower" else high


#: BCa needs a jackknife (one statistic per row left out); above this many rows the
#: percentile method is used instead, whose cost does not grow with the jackknife.
BCA_MAX_ROWS = 20_000


def bootstrap_method(rows: int) -> str:
    return "BCa" if rows <= BCA_MAX_ROWS else "percentile"


def bootstrap_interval(statistic: Callable, data: Sequence, confidence: float = 0.95,
                       resamples: int = 2000, seed: int = 0, method: str | None = None
                       ) -> tuple[float, float]:
    """Seeded, paired bootstrap interval of ``statistic(*data)`` over rows (two-sided).

    ``data`` is a sequence of equally long per-row arrays (labels, predictions, …), resampled
    together. ``method`` defaults to BCa, or percentile for more than ``BCA_MAX_ROWS`` rows.
    A degenerate sample (every resample equal) gives the point estimate twice.
    """
    return bootstrap_intervals(statistic, data, (confidence,), resamples, seed, method)[0]


def bootstrap_intervals(statistic: Callable, data: Sequence, confidences: Sequence[float],
                        resamples: int = 2000, seed: int = 0, method: str | None = None
                        ) -> list[tuple[float, float]]:
    """:func:`bootstrap_interval` at several confidence levels, from one set of resamples
    (a gate needs its two-sided interval and its one-sided bound; resampling is the cost)."""
    import numpy as np
    from scipy.stats import bootstrap

    arrays = tuple(np.asarray(a) for a in data)
    method = method or bootstrap_method(len(arrays[0]))
    estimate = float(statistic(*arrays))
    if len(arrays[0]) < 2:
        return [(estimate, estimate)] * len(confidences)  # one row: every resample is that row
    intervals, first = [], None
    for confidence in confidences:
        result = bootstrap(arrays, statistic, paired=True, vectorized=False,
                           n_resamples=0 if first else resamples, bootstrap_result=first,
                           confidence_level=confidence, method=method,
                           rng=np.random.default_rng(seed))
        first = first or result
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        intervals.append((estimate, estimate) if math.isnan(low) or math.isnan(high)
                         else (low, high))
    return intervals


def mcnemar_worse_p(baseline_only: int, candidate_only: int) -> float:
    """Exact one-sided McNemar p-value that the candidate is worse than the baseline.

    ``baseline_only`` (b): rows only the baseline gets right; ``candidate_only`` (c): rows
    only the candidate gets right. Under equal accuracy each discordant row is a fair coin,
    so p = P(X >= b) for X ~ Binomial(b + c, 1/2) (McNemar, 1947).
    """
    from scipy.stats import binomtest

    discordant = baseline_only + candidate_only
    if discordant == 0:
        return 1.0
    return float(binomtest(baseline_only, discordant, 0.5, alternative="greater").pvalue)


def non_inferiority_p(baseline_only: int, candidate_only: int, n: int, margin: float) -> float:
    """One-sided p-value that the candidate's accuracy is lower than the baseline's by more
    than ``margin``, from the paired discordant counts (a shifted exact McNemar).

    Under H0 (difference = -margin) a discordant row favours the baseline with probability
    (psi + margin) / (2 psi), psi being the discordant share. With margin 0 this is
    :func:`mcnemar_worse_p`.
    """
    from scipy.stats import binom

    discordant = baseline_only + candidate_only
    if discordant == 0:
        return 1.0
    psi = discordant / n
    if margin <= 0:
        return mcnemar_worse_p(baseline_only, candidate_only)
    p_baseline = min(1.0, (psi + margin) / (2 * psi))
    # Evidence of inferiority beyond the margin: many baseline-only rows.
    return float(binom.sf(baseline_only - 1, discordant, p_baseline))


def one_sided_wilcoxon_p(candidate_loss, baseline_loss, margin: float = 0.0) -> float:
    """One-sided Wilcoxon signed-rank p-value that the candidate's per-row loss exceeds the
    baseline's by more than ``margin``."""
    import numpy as np
    from scipy.stats import wilcoxon

    diff = np.asarray(candidate_loss, float) - np.asarray(baseline_loss, float) - margin
    if not np.any(diff):
        return 1.0
    return float(wilcoxon(diff, alternative="greater", zero_method="zsplit").pvalue)


def sample_size(p0: float, p1: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Rows needed to detect a drop of a proportion from p0 to p1 (one-sided, level alpha).

    n = [z(1-α)·sqrt(p0·q0) + z(1-β)·sqrt(p1·q1)]² / (p0 - p1)²
    """
    if not 0 < p1 < p0 < 1:
        raise ValueError(f"Need 0 < p1 < p0 < 1; got p0={p0}, p1={p1}.")
    z = NormalDist().inv_cdf
    top = z(1 - alpha) * math.sqrt(p0 * (1 - p0)) + z(power) * math.sqrt(p1 * (1 - p1))
    return math.ceil(top * top / (p0 - p1) ** 2)


def paired_sample_size(psi: float, delta: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Rows needed for a paired comparison with discordant share ψ to detect a difference δ.

    n = [z(1-α)·sqrt(ψ) + z(1-β)·sqrt(ψ - δ²)]² / δ²
    """
    if not 0 < delta * delta < psi <= 1:
        raise ValueError(f"Need 0 < δ² < ψ <= 1; got ψ={psi}, δ={delta}.")
    z = NormalDist().inv_cdf
    top = z(1 - alpha) * math.sqrt(psi) + z(power) * math.sqrt(psi - delta * delta)
    return math.ceil(top * top / (delta * delta))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (family-wise error), in the input order."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted = [0.0] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (false discovery rate), in the input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i], reverse=True)
    adjusted = [0.0] * m
    running = 1.0
    for position, i in enumerate(order):
        rank = m - position
        running = min(running, pvalues[i] * m / rank)
        adjusted[i] = running
    return adjusted
