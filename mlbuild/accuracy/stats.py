"""The statistics behind the accuracy gates (see ../shared/ACCURACY.md).

Pure functions of counts and per-row arrays; scipy does the distributions. Heavy
imports happen inside the functions, so importing this module costs nothing. The
paired tests accept numpy arrays of counts, so that :mod:`mlbuild.accuracy.power` can evaluate a
gate's decision on every possible outcome at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Literal

IntervalMethod = Literal["wilson", "clopper-pearson"]
Side = Literal["lower", "upper", "two-sided"]
#: what a change gate must show: ``non-inferiority`` (the candidate proves it is not worse
#: than the released model by more than the margin) or ``regression`` (the data prove it is)
ChangeMode = Literal["non-inferiority", "regression"]


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


def proportion_p(successes: int, n: int, limit: float, method: IntervalMethod = "wilson") -> float:
    """One-sided p-value of H0 "proportion <= limit": small when the sample proves the limit.

    It is the test the interval inverts: the score test for Wilson, the exact binomial test
    for Clopper–Pearson. So ``p <= 1 - c`` exactly when the lower bound at ``c`` meets the
    limit (up to floating point at the boundary).
    """
    from scipy.stats import binomtest, norm

    _check_counts(successes, n)
    if method == "clopper-pearson":
        return float(binomtest(successes, n, limit, alternative="greater").pvalue)
    if limit <= 0.0 or limit >= 1.0:
        return 0.0 if successes / n > limit else 1.0
    z = (successes - n * limit) / math.sqrt(n * limit * (1 - limit))
    return float(norm.sf(z))


def paired_score_z(baseline_only, candidate_only, n, margin: float):
    """Tango's (1998) score statistic for the paired difference of two accuracies.

    Rows are paired: ``candidate_only`` (c) rows only the candidate gets right,
    ``baseline_only`` (b) rows only the released model gets right, of ``n``. The difference
    is d = (c - b) / n; the statistic tests H0: d = -margin with the variance under H0
    (the restricted maximum-likelihood estimate of the discordant probability), so its
    level holds at the margin, unlike a binomial test on b with the observed discordance
    plugged in. Large values favour the candidate. Works elementwise on numpy arrays.
    With no discordant rows and no margin there is no evidence either way: 0.
    """
    import numpy as np

    b = np.asarray(baseline_only, float)
    c = np.asarray(candidate_only, float)
    n = np.asarray(n, float)
    delta0 = -margin
    # Tango's table: first model = candidate, so n12 = c and n21 = b.
    a2 = 2 * n
    b2 = -c - b + (2 * n - c + b) * delta0
    c2 = -b * delta0 * (1 - delta0)
    p21 = (np.sqrt(np.maximum(b2 * b2 - 4 * a2 * c2, 0.0)) - b2) / (2 * a2)
    variance = n * (2 * p21 + delta0 * (1 - delta0))
    top = c - b - n * delta0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(variance > 0, top / np.sqrt(np.where(variance > 0, variance, 1.0)),
                     np.sign(top) * np.inf)
    z = np.where(top == 0, 0.0, z)
    return float(z) if z.ndim == 0 else z


def paired_change_p(baseline_only, candidate_only, n, margin: float,
                    mode: ChangeMode = "non-inferiority"):
    """One-sided p-value of the paired accuracy change, by Tango's score test.

    ``non-inferiority``: H0 "the candidate is worse by the margin or more"; a small p
    proves it is not, and the candidate passes. ``regression``: H0 "it is worse by less
    than the margin"; a small p proves a regression beyond the margin, and it fails.
    """
    from scipy.stats import norm

    z = paired_score_z(baseline_only, candidate_only, n, margin)
    p = norm.sf(z) if mode == "non-inferiority" else norm.cdf(z)
    return float(p) if getattr(p, "ndim", 0) == 0 else p


def paired_mean_change_p(candidate_loss, baseline_loss, margin: float,
                         mode: ChangeMode = "non-inferiority") -> float:
    """One-sided paired t-test on the mean per-row loss difference (candidate - released).

    It tests the mean, which is what log-loss and MAE are (a signed-rank test would test
    the pseudo-median). ``non-inferiority``: H0 "mean difference >= margin", a small p
    passes; ``regression``: H0 "mean difference <= margin", a small p fails. Identical
    losses carry no evidence: p = 1.
    """
    import numpy as np
    from scipy.stats import ttest_1samp

    diff = np.asarray(candidate_loss, float) - np.asarray(baseline_loss, float)
    if len(diff) < 2 or not np.any(diff != diff[0]):
        mean = float(diff.mean()) if len(diff) else 0.0
        if mode == "non-inferiority":
            return 0.0 if mean < margin and len(diff) >= 2 else 1.0
        return 0.0 if mean > margin and len(diff) >= 2 else 1.0
    alternative = "less" if mode == "non-inferiority" else "greater"
    return float(ttest_1samp(diff, margin, alternative=alternative).pvalue)


def normal_rows(p: float, limit: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """The normal approximation of the rows a one-sample test of H0 "proportion <= limit"
    needs to pass a true proportion ``p`` with ``power`` (a starting point for the exact
    search in :mod:`mlbuild.accuracy.power`):

    n = [z(1-α)·sqrt(L(1-L)) + z(power)·sqrt(p(1-p))]² / (p - L)²
    """
    if not 0 < limit < p < 1:
        raise ValueError(f"Need 0 < limit < expected < 1; got limit={limit}, expected={p}.")
    z = NormalDist().inv_cdf
    top = z(1 - alpha) * math.sqrt(limit * (1 - limit)) + z(power) * math.sqrt(p * (1 - p))
    return math.ceil(top * top / (p - limit) ** 2)


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
    from scipy.stats import false_discovery_control

    if not len(pvalues):
        return []
    return [float(p) for p in false_discovery_control(list(pvalues), method="bh")]
