"""Operating characteristics: how often a gate passes, as a function of the truth.

A gate decides from a finite sample, so it errs both ways: it may fail a good model (a
flaky build) or pass one that is not good enough. For the proportion gates both error
probabilities are computed exactly, as sums of binomial probabilities over the outcomes
the gate passes (../shared/ACCURACY.md). The same sums size the fast tier: the smallest
sample from which on the gate that runs passes a model at ``expected`` with ``power``.

Everything here is vectorised over the possible outcomes, so planning takes milliseconds.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from scipy.stats import binom, norm

from mlbuild.accuracy import stats

Mode = Literal["point", "confident"]


# ----------------------------------------------------------------- one proportion


def min_successes(n, limit: float, confidence: float, interval: stats.IntervalMethod,
                  mode: Mode) -> np.ndarray:
    """The fewest right rows out of ``n`` with which a threshold gate ``accuracy >= limit``
    passes (elementwise over an array of n; n + 1 where no outcome passes).

    The bound is monotone in the count, so the gate passes exactly from this count on.
    ``point``: k / n >= limit. ``confident``: the one-sided bound at ``confidence`` meets the
    limit, which is the test the interval inverts rejecting "accuracy <= limit": the score
    test for Wilson, the exact binomial test for Clopper–Pearson.
    """
    n = np.asarray(n, dtype=np.int64)
    if mode == "point":
        k = np.ceil(n * limit - 1e-9).astype(np.int64)
        k += (k / np.maximum(n, 1) < limit)  # float rounding at the boundary
    elif interval == "clopper-pearson":
        k = binom.ppf(confidence, n, limit).astype(np.int64) + 1
    else:
        z = norm.ppf(confidence)
        k = np.ceil(n * limit + z * np.sqrt(n * limit * (1 - limit)) - 1e-9).astype(np.int64)
    return np.clip(k, 0, n + 1)


def threshold_pass_probability(n, p: float, limit: float, confidence: float,
                               interval: stats.IntervalMethod, mode: Mode):
    """Exact probability that the gate passes a model whose true accuracy is ``p``."""
    k = min_successes(n, limit, confidence, interval, mode)
    result = binom.sf(k - 1, n, p)
    return float(result) if np.ndim(result) == 0 else result


def threshold_rows(expected: float, limit: float, confidence: float,
                   interval: stats.IntervalMethod, mode: Mode, power: float) -> int:
    """The smallest n from which on the gate passes a model at ``expected`` with probability
    at least ``power``.

    Exact binomial power saw-tooths in n, so the answer is one past the last n below
    ``power`` on a horizon at least twice as long as the answer.
    """
    if not 0 < limit < expected < 1:
        raise ValueError(f"The expected accuracy {expected} must lie above the limit {limit} "
                         "(both inside 0..1): a model at the limit cannot be shown to meet it.")
    horizon = 2 * stats.normal_rows(expected, limit, 1 - confidence, power) + 50
    while True:
        n = np.arange(1, horizon + 1)
        below = np.flatnonzero(threshold_pass_probability(n, expected, limit, confidence,
                                                          interval, mode) < power)
        answer = 1 if below.size == 0 else int(n[below[-1]]) + 1
        if 2 * answer <= horizon:
            return answer
        horizon *= 2


# ----------------------------------------------------------------- paired proportions


def paired_pass_probability(n: int, discordance: float, difference: float, margin: float,
                            alpha: float, mode: stats.ChangeMode) -> float:
    """Exact probability that the paired change gate passes, on ``n`` rows, when the two
    models disagree on a share ``discordance`` of rows and the candidate's true accuracy
    minus the released model's is ``difference``.

    The discordant count D is Binomial(n, ψ), and given D the rows only the released model
    gets right are Binomial(D, (ψ - difference) / 2ψ); the sum runs over every D a float
    can tell from 0, and over b by the binomial CDF up to the last b that passes.
    """
    psi = discordance
    if not 0 < psi <= 1 or abs(difference) > psi:
        raise ValueError(f"Need 0 < discordance <= 1 and |difference| <= discordance; got "
                         f"discordance {psi}, difference {difference}.")
    q = (psi - difference) / (2 * psi)
    d_low, d_high = (int(x) for x in binom.interval(1 - 1e-15, n, psi))
    d = np.arange(max(d_low - 1, 0), d_high + 1)

    def passes(b):
        p = stats.paired_change_p(b, d - b, n, margin, mode)
        return (p <= alpha) if mode == "non-inferiority" else (p > alpha)

    # The statistic falls as b grows (more rows only the released model gets right), so for
    # each d the gate passes exactly for b up to some b*(d): find it by bisection.
    low, high = np.full(d.shape, -1), d + 1     # passes at low (or none), fails at high
    while np.any(high - low > 1):
        middle = (low + high) // 2
        ok = passes(np.clip(middle, 0, d))
        low, high = np.where(ok, middle, low), np.where(ok, high, middle)
    return float(np.sum(binom.pmf(d, n, psi) * binom.cdf(low, d, q)))


def paired_rows(discordance: float, margin: float, alpha: float, power: float,
                mode: stats.ChangeMode = "non-inferiority", difference: float = 0.0) -> int:
    """The smallest n at which a candidate ``difference`` away from the released model
    (default: as good) passes the non-inferiority gate with probability ``power``.

    Starts from the normal approximation n ≈ (z(1-α) + z(power))² ψ / (margin + δ)², then
    searches the exact probability (the discordant count smooths the saw-tooth).
    """
    if mode != "non-inferiority":
        raise ValueError("Only a non-inferiority gate has rows to plan: a regression gate "
                         "passes an equal model at any n.")
    if margin + difference <= 0:
        raise ValueError(f"A candidate {difference:+} from the released model cannot prove "
                         f"it is within the margin {margin}.")
    z = norm.ppf(1 - alpha) + norm.ppf(power)
    guess = max(2, math.ceil(z * z * discordance / (margin + difference) ** 2))

    def ok(n: int) -> bool:
        return paired_pass_probability(n, discordance, difference, margin, alpha,
                                       mode) >= power

    low, high = max(1, guess // 2), guess
    while not ok(high):
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if ok(middle) else (middle, high)
    return high


# ----------------------------------------------------------------- by simulation


def simulated_pass_probability(passes, cells: np.ndarray, n: int, simulations: int,
                               seed: int) -> float:
    """The share of ``simulations`` seeded samples of ``n`` rows, drawn from a confusion
    matrix's cell probabilities ``cells``, on which ``passes(counts)`` is true. For gates
    with no exact form (bootstrap bounds of confusion-matrix metrics)."""
    k = cells.shape[0]
    draws = np.random.default_rng(seed).multinomial(n, cells.ravel() / cells.sum(),
                                                    size=simulations)
    return float(np.mean([passes(d.reshape(k, k)) for d in draws]))


def model_at(statistic, cells: np.ndarray, limit: float) -> np.ndarray | None:
    """A model with the same kinds of error as ``cells`` but just enough more of them for
    ``statistic`` to equal ``limit``: each class keeps a share 1 - t of its right rows and
    spreads the rest evenly over the other classes (t by bisection). None when the model
    does not exceed the limit or no t reaches it."""
    k = cells.shape[0]
    diagonal = np.diag(np.diag(cells))

    def worse(t: float) -> np.ndarray:
        moved = diagonal.sum(axis=1, keepdims=True) * t / (k - 1)
        return cells - t * diagonal + moved * (1 - np.eye(k))

    if k < 2 or not float(statistic(cells)) > limit or float(statistic(worse(1.0))) > limit:
        return None
    low, high = 0.0, 1.0
    for _ in range(50):
        middle = (low + high) / 2
        low, high = (middle, high) if float(statistic(worse(middle))) > limit else (low, middle)
    return worse(high)
