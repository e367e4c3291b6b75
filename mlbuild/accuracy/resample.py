"""The seeded, vectorised bootstrap behind the confident accuracy gates (../shared/ACCURACY.md).

What it guarantees:

* **Seeded.** The same data, statistic, ``resamples`` and ``seed`` give the same figures, bit
  for bit; the batching that bounds memory does not change them.
* **Confusion-matrix metrics cost nothing in n.** Resampling n rows with replacement is a
  multinomial draw of the K x K cell counts, so :func:`confusion_bootstrap` draws
  ``resamples`` matrices and scores them at once: O(resamples * K^2) whatever n is. BCa's
  jackknife needs only the K^2 "one row of this cell left out" values, weighted by the cell
  counts, so BCa is the default there at any n.
* **Per-row metrics** (log-loss, MAE, RMSE, AUC, ...) use :func:`row_bootstrap`: paired row
  resampling, vectorised over batches of resamples (~200 MB at most), BCa up to
  ``BCA_MAX_ROWS`` rows (its jackknife costs n statistics of n - 1 rows), percentile above.
* **scipy's conventions.** Indices, bias correction z0 (ties count half), acceleration and
  quantiles follow ``scipy.stats.bootstrap``: given the same resampled statistics, the
  intervals agree with it.
* **Degenerate results prove nothing.** A result is ``degenerate`` when its resamples cannot
  show sampling error: fewer than ``MIN_DISTINCT`` distinct resampled values (every row
  right, one row, a handful of rows) or a non-finite one. Its interval and bounds are the
  estimate itself (never NaN), and a confident gate must not pass on it;
  :func:`zero_error_rows` says how many rows, all right, would prove a limit.
* BCa falls back to percentile (``method == "percentile"``) when its bias correction or
  acceleration is not finite (estimate outside every resample, no jackknife spread).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import ndtr, ndtri

#: BCa needs a jackknife of n statistics on n - 1 rows; above this many rows,
#: :func:`row_bootstrap` uses the percentile method.
BCA_MAX_ROWS = 20_000
#: Fewer distinct resampled values than this and the result is degenerate.
MIN_DISTINCT = 10
#: Bytes of resampled arrays per batch; the statistic's temporaries get the rest of ~200 MB.
_BATCH_BYTES = 50 * 2**20

Side = Literal["lower", "upper"]


@dataclass(frozen=True)
class BootstrapResult:
    estimate: float                 # the statistic on the sample itself
    distribution: np.ndarray        # the B resampled statistics (float, shape (B,))
    method: str                     # "BCa" or "percentile"
    degenerate: bool                # True when the resamples cannot show sampling error
    z0: float = 0.0                 # BCa bias correction (0 for percentile)
    acceleration: float = 0.0       # BCa acceleration (0 for percentile)

    def interval(self, confidence: float) -> tuple[float, float]:
        """Two-sided interval at ``confidence``; the estimate twice when degenerate."""
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must be in (0, 1); got {confidence}.")
        if self.degenerate:
            return self.estimate, self.estimate
        alpha = (1 - confidence) / 2
        levels = np.array([alpha, 1 - alpha])
        if self.method == "BCa":  # Efron & Tibshirani (1993) 14.3, as scipy computes it
            z = float(ndtri(alpha))
            shifted = self.z0 + np.array([z, -z])
            levels = ndtr(self.z0 + shifted / (1 - self.acceleration * shifted))
        low, high = np.quantile(self.distribution, levels)
        return float(low), float(high)

    def bound(self, confidence: float, side: Side) -> float:
        """One-sided bound at ``confidence``: an end of the two-sided interval at 2c - 1."""
        if not 0.5 < confidence < 1:
            raise ValueError(f"A one-sided confidence must be in (0.5, 1); got {confidence}.")
        if side not in ("lower", "upper"):
            raise ValueError(f"side must be 'lower' or 'upper'; got {side!r}.")
        low, high = self.interval(2 * confidence - 1)
        return low if side == "lower" else high


def confusion_bootstrap(counts: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray],
                        resamples: int = 2000, seed: int = 0, method: str | None = None
                        ) -> BootstrapResult:
    """Bootstrap of a confusion-matrix statistic from the K x K cell ``counts``.

    ``statistic`` maps (..., K, K) counts to (...) values (``mlbuild.accuracy.metrics.from_counts``).
    Each resample is ``rng.multinomial(n, counts / n)``: exactly resampling the n rows.
    ``method`` defaults to BCa, which costs K^2 extra statistics here.
    """
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"counts must be a K x K matrix; got shape {counts.shape}.")
    if np.any(counts < 0) or np.any(counts != np.round(counts)):
        raise ValueError("counts must be non-negative whole numbers.")
    counts = counts.astype(np.int64)
    n, k = int(counts.sum()), counts.shape[0]
    if n == 0:
        raise ValueError("A bootstrap needs at least one row.")
    method = _method(method, "BCa")
    rng = np.random.default_rng(seed)
    p = counts.ravel() / n
    distribution = np.concatenate([
        np.asarray(statistic(rng.multinomial(n, p, size=b).reshape(b, k, k)), float)
        for b in _batches(_check_resamples(resamples), 8 * k * k)])

    def jackknife() -> tuple[np.ndarray, np.ndarray]:
        cells = np.flatnonzero(counts)
        values = []
        for start, b in _spans(len(cells), 8 * k * k):
            left_out = np.repeat(counts.reshape(1, -1), b, axis=0)
            left_out[np.arange(b), cells[start:start + b]] -= 1
            values.append(np.asarray(statistic(left_out.reshape(b, k, k)), float))
        return np.concatenate(values), counts.ravel()[cells].astype(float)

    return _result(float(statistic(counts)), distribution, method, jackknife)


def row_bootstrap(statistic: Callable[..., np.ndarray], data: Sequence[np.ndarray],
                  resamples: int = 2000, seed: int = 0, method: str | None = None
                  ) -> BootstrapResult:
    """Paired bootstrap over rows of ``statistic(*data)``.

    ``data``: arrays sharing their first axis (rows), resampled with the same indices.
    ``statistic`` takes them with a leading resample axis, shape (b, n, ...), and returns
    (b,) values (see ``ROW_STATISTICS``). ``method`` defaults to BCa up to
    ``BCA_MAX_ROWS`` rows, percentile above.
    """
    arrays = [np.asarray(a) for a in data]
    if not arrays:
        raise ValueError("data must hold at least one array.")
    n = len(arrays[0])
    if n == 0 or any(len(a) != n for a in arrays):
        raise ValueError("data must be non-empty arrays of the same length.")
    method = _method(method, "BCa" if n <= BCA_MAX_ROWS else "percentile")
    row_bytes = 8 + sum(a[:1].nbytes for a in arrays)  # an index and a row of each array
    rng = np.random.default_rng(seed)
    distribution = np.concatenate([
        np.asarray(statistic(*_take(arrays, rng.integers(0, n, (b, n)))), float)
        for b in _batches(_check_resamples(resamples), n * row_bytes)])

    def jackknife() -> tuple[np.ndarray, np.ndarray]:
        if isinstance(statistic, OfMeans) and all(a.ndim == 1 for a in arrays):
            return np.asarray(statistic.jackknife(arrays), float), np.ones(n)
        values = []
        for start, b in _spans(n, max(1, n - 1) * row_bytes):
            index = np.arange(n - 1)[None, :]
            index = index + (index >= np.arange(start, start + b)[:, None])
            values.append(np.asarray(statistic(*_take(arrays, index)), float))
        return np.concatenate(values), np.ones(n)

    estimate = float(np.asarray(statistic(*(a[None] for a in arrays)))[0])
    return _result(estimate, distribution, method, jackknife)


def zero_error_rows(limit: float, confidence: float) -> int:
    """Fewest rows, every one right, that prove ``metric >= limit`` for a proportion-like
    metric in [0, 1] at one-sided ``confidence``: the exact (Clopper–Pearson) lower bound
    of n successes in n is (1 - confidence) ** (1 / n), so the smallest n with
    ``limit ** n <= 1 - confidence`` (limit 0.99, confidence 0.95: 299)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}.")
    if limit >= 1:
        raise ValueError(f"No finite sample proves a proportion >= {limit}.")
    alpha = 1 - confidence
    if limit <= alpha:
        return 1
    n = max(1, math.ceil(math.log(alpha) / math.log(limit)))
    while limit ** n > alpha:  # guard the logarithms' rounding either way
        n += 1
    while n > 1 and limit ** (n - 1) <= alpha:
        n -= 1
    return n


@dataclass(frozen=True)
class OfMeans:
    """A statistic of the arrays' means over rows, ``function(mean(a), mean(b), ...)``.

    Its jackknife has a closed form (leaving row i out turns a mean of sum S into
    (S - x_i) / (n - 1)), so :func:`row_bootstrap` gets BCa for it in O(n) instead of n
    statistics of n - 1 rows.
    """

    function: Callable[..., np.ndarray]

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        return self.function(*(np.mean(a, axis=-1) for a in arrays))

    def jackknife(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        n = len(arrays[0])
        return self.function(*((a.sum() - a) / (n - 1) for a in arrays))


#: Mean of per-row losses over the row axis: log-loss, MAE (and error rate).
mean_loss = OfMeans(lambda mean: mean)
#: RMSE from per-row squared errors.
root_mean_loss = OfMeans(np.sqrt)

#: Vectorised statistics of ``(metric.row_loss(y, pred, proba),)`` for ``row_bootstrap``.
ROW_STATISTICS: dict[str, OfMeans] = {
    "log_loss": mean_loss,
    "mae": mean_loss,
    "rmse": root_mean_loss,
}


def _method(method: str | None, default: str) -> str:
    name = (method or default).lower()
    if name not in ("bca", "percentile"):
        raise ValueError(f"method must be 'BCa' or 'percentile'; got {method!r}.")
    return "BCa" if name == "bca" else "percentile"


def _check_resamples(resamples: int) -> int:
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1; got {resamples}.")
    return int(resamples)


def _spans(total: int, item_bytes: int) -> Iterator[tuple[int, int]]:
    """(start, size) of consecutive batches of ``total`` items within the memory budget."""
    size = max(1, _BATCH_BYTES // max(1, item_bytes))
    for start in range(0, total, size):
        yield start, min(size, total - start)


def _batches(total: int, item_bytes: int) -> Iterator[int]:
    return (size for _, size in _spans(total, item_bytes))


def _take(arrays: list[np.ndarray], index: np.ndarray) -> list[np.ndarray]:
    return [a[index] for a in arrays]


def _result(estimate: float, distribution: np.ndarray, method: str,
            jackknife: Callable[[], tuple[np.ndarray, np.ndarray]]) -> BootstrapResult:
    degenerate = bool(not np.isfinite(estimate) or not np.all(np.isfinite(distribution))
                      or np.unique(distribution).size < MIN_DISTINCT)
    if degenerate or method == "percentile":
        return BootstrapResult(estimate, distribution, method, degenerate)
    # z0: the share of resamples below the estimate, ties counting half (as scipy does).
    below = np.count_nonzero(distribution < estimate) + np.count_nonzero(distribution <= estimate)
    z0 = float(ndtri(below / (2 * len(distribution))))
    values, weights = jackknife()  # leave-one-out statistics, and how many rows give each
    rows = weights.sum()
    u = (rows - 1) * (np.sum(weights * values) / rows - values)
    with np.errstate(invalid="ignore", divide="ignore"):  # no jackknife spread: percentile
        acceleration = float(np.sum(weights * u**3) / rows**3
                             / (np.sum(weights * u**2) / rows**2) ** 1.5 / 6)
    if not (math.isfinite(z0) and math.isfinite(acceleration)):
        return BootstrapResult(estimate, distribution, "percentile", False)
    return BootstrapResult(estimate, distribution, "BCa", False, z0, acceleration)
