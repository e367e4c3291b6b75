"""The seeded, vectorised bootstrap: against scipy, the per-row metrics and simulation."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from mlbuild.accuracy import resample
from mlbuild.accuracy.metrics import (
    COUNT_STATISTICS,
    METRICS,
    confusion_matrix,
    from_counts,
    macro_f1_from_counts,
)
from mlbuild.accuracy.resample import (
    BCA_MAX_ROWS,
    ROW_STATISTICS,
    BootstrapResult,
    confusion_bootstrap,
    mean_loss,
    row_bootstrap,
    zero_error_rows,
)


def labels(seed: int, rows: int, classes: int, accuracy: float):
    """Seeded truth and predictions, right with probability ``accuracy``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, rows)
    wrong = (y + rng.integers(1, classes, rows)) % classes
    return y, np.where(rng.random(rows) < accuracy, y, wrong)


def classifier_losses(seed: int, rows: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    proba1 = np.clip(0.5 + (y - 0.5) * rng.uniform(0.0, 0.9, rows), 0.01, 0.99)
    proba = np.column_stack([1 - proba1, proba1])
    return y, (proba1 > 0.5).astype(int), proba


# --- the count statistics --------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(COUNT_STATISTICS))
@pytest.mark.parametrize(("seed", "classes", "accuracy"), [(0, 2, 0.8), (1, 3, 0.6), (2, 7, 0.9),
                                                          (3, 10, 0.3)])
def test_count_statistics_equal_the_per_row_metrics(name, seed, classes, accuracy):
    y, pred = labels(seed, 400, classes, accuracy)
    counts = confusion_matrix(y, pred, classes)
    assert from_counts(name) is COUNT_STATISTICS[name]
    assert float(from_counts(name)(counts)) == pytest.approx(
        METRICS[name].compute(y, pred), abs=1e-12)


@pytest.mark.parametrize("name", sorted(COUNT_STATISTICS))
def test_count_statistics_follow_the_classes_the_rows_have(name):
    """K = 6 columns, class 5 never seen, class 4 only predicted; explicit resamples that
    drop a class as truth, as prediction, or all but one class: the batch of matrices
    scores each as the per-row metric scores those rows."""
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 0, 1, 2])
    pred = np.array([0, 0, 1, 1, 1, 2, 2, 4, 3, 0, 3, 4, 1, 2])
    resamples = [
        np.arange(len(y)),                         # the sample itself
        np.flatnonzero(y != 2),                    # class 2 gone as truth, still predicted
        np.flatnonzero(pred != 4),                 # the predicted-only class gone
        np.flatnonzero(y == 3),                    # one class as truth
        np.array([3, 3, 4, 4, 5, 5, 5, 12]),       # class 1 only, with repeats
        np.array([7, 7, 7]),                       # one row, wrong, thrice
    ]
    batch = np.stack([confusion_matrix(y[i], pred[i], 6) for i in resamples])
    scores = from_counts(name)(batch)
    assert scores.shape == (len(resamples),)
    expected = [METRICS[name].compute(y[i], pred[i]) for i in resamples]
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-12)
    assert len(set(np.round(expected, 9))) >= 4  # the resamples do score differently


def test_from_counts_is_none_for_per_row_metrics():
    assert from_counts("log_loss") is None and from_counts("rmse") is None


@pytest.mark.parametrize("name", sorted(ROW_STATISTICS))
def test_row_statistics_equal_the_metrics(name):
    metric = METRICS[name]
    if metric.model == "classification":
        y, pred, proba = classifier_losses(4, 300)
    else:
        rng = np.random.default_rng(4)
        y = rng.normal(10.0, 2.0, 300)
        pred, proba = y + rng.normal(0.0, 1.5, 300), None
    losses = metric.row_loss(y, pred, proba)
    stacked = np.stack([losses, losses[::-1], losses[:150].repeat(2)])
    np.testing.assert_allclose(ROW_STATISTICS[name](stacked)[0], metric.compute(y, pred, proba),
                               rtol=1e-12)
    assert ROW_STATISTICS[name](stacked).shape == (3,)


# --- scipy's conventions ---------------------------------------------------------------

def per_row(metric):
    """The per-row metric for scipy, vectorised: rows along ``axis``, any leading shape."""
    def statistic(y, pred, axis=-1):
        y, pred = np.moveaxis(y, axis, -1), np.moveaxis(pred, axis, -1)
        flat_y, flat_pred = y.reshape(-1, y.shape[-1]), pred.reshape(-1, pred.shape[-1])
        scores = [metric(a, b) for a, b in zip(flat_y, flat_pred, strict=True)]
        return np.asarray(scores).reshape(y.shape[:-1])
    return statistic


@pytest.mark.parametrize("method", ["BCa", "percentile"])
@pytest.mark.parametrize("name", ["macro_f1", "accuracy"])
def test_confusion_bootstrap_intervals_equal_scipys_on_the_same_resamples(method, name):
    y, pred = labels(5, 200, 3, 0.75)
    ours = confusion_bootstrap(confusion_matrix(y, pred, 3), from_counts(name), 999, seed=3,
                               method=method)
    assert ours.method == method and not ours.degenerate
    assert ours.estimate == pytest.approx(METRICS[name].compute(y, pred), abs=1e-12)
    if name == "accuracy":  # resamples tie with the estimate: z0 counts them half
        assert np.count_nonzero(ours.distribution == ours.estimate) > 10
    same = SimpleNamespace(bootstrap_distribution=ours.distribution)
    for confidence, alternative in [(0.9, "two-sided"), (0.95, "two-sided"), (0.95, "greater"),
                                    (0.99, "less")]:
        theirs = stats.bootstrap((y, pred), per_row(METRICS[name].compute), paired=True, vectorized=True,
                                 n_resamples=0, bootstrap_result=same, method=method,
                                 confidence_level=confidence, alternative=alternative)
        ci = theirs.confidence_interval
        if alternative == "two-sided":
            np.testing.assert_allclose(ours.interval(confidence), (ci.low, ci.high),
                                       rtol=0, atol=1e-9)
        elif alternative == "greater":
            assert ours.bound(confidence, "lower") == pytest.approx(ci.low, abs=1e-9)
        else:
            assert ours.bound(confidence, "upper") == pytest.approx(ci.high, abs=1e-9)
    if method == "BCa":  # the correction does something here, or the test proves little
        assert ours.interval(0.9) != BootstrapResult(
            ours.estimate, ours.distribution, "percentile", False).interval(0.9)


@pytest.mark.parametrize("method", ["BCa", "percentile"])
def test_row_bootstrap_equals_scipy_with_the_same_seed(method):
    y, pred, proba = classifier_losses(6, 300)
    losses = METRICS["log_loss"].row_loss(y, pred, proba)
    ours = row_bootstrap(mean_loss, (losses,), 1000, seed=11, method=method)
    theirs = stats.bootstrap((losses,), np.mean, n_resamples=1000, method=method,
                             confidence_level=0.9, rng=np.random.default_rng(11))
    np.testing.assert_allclose(ours.distribution, theirs.bootstrap_distribution, rtol=1e-12)
    np.testing.assert_allclose(ours.interval(0.9), theirs.confidence_interval, rtol=1e-9)
    assert ours.estimate == pytest.approx(METRICS["log_loss"].compute(y, pred, proba))


def test_row_bootstrap_resamples_arrays_in_pairs():
    rng = np.random.default_rng(8)
    a = rng.normal(size=500)
    result = row_bootstrap(lambda x, y: np.mean(x - y, axis=-1), (a, a.copy()), 200)
    assert result.degenerate and result.interval(0.95) == (0.0, 0.0)
    unpaired = row_bootstrap(lambda x: np.mean(x, axis=-1), (a,), 200)
    assert not unpaired.degenerate


def test_multinomial_resampling_has_the_row_bootstraps_distribution():
    y, pred = labels(9, 2000, 4, 0.85)

    def rows_macro_f1(ys, ps):
        index = (ys * 4 + ps) + 16 * np.arange(len(ys))[:, None]
        counts = np.bincount(index.ravel(), minlength=16 * len(ys)).reshape(-1, 4, 4)
        return macro_f1_from_counts(counts)

    cells = confusion_bootstrap(confusion_matrix(y, pred, 4), macro_f1_from_counts, 4000,
                                method="percentile")
    rows = row_bootstrap(rows_macro_f1, (y, pred), 4000, method="percentile")
    assert cells.estimate == rows.estimate
    assert np.mean(cells.distribution) == pytest.approx(np.mean(rows.distribution), abs=5e-4)
    assert np.std(cells.distribution) == pytest.approx(np.std(rows.distribution), rel=0.06)
    np.testing.assert_allclose(cells.interval(0.9), rows.interval(0.9), atol=2e-3)


# --- seeds, batches, methods -----------------------------------------------------------

def test_same_seed_same_figures_and_other_seeds_differ():
    y, pred = labels(10, 500, 5, 0.8)
    counts = confusion_matrix(y, pred, 5)
    first = confusion_bootstrap(counts, macro_f1_from_counts, 500, seed=4)
    again = confusion_bootstrap(counts, macro_f1_from_counts, 500, seed=4)
    other = confusion_bootstrap(counts, macro_f1_from_counts, 500, seed=5)
    np.testing.assert_array_equal(first.distribution, again.distribution)
    assert first.interval(0.95) == again.interval(0.95)
    assert not np.array_equal(first.distribution, other.distribution)
    assert first.interval(0.95) != other.interval(0.95)

    losses = (y != pred).astype(float)
    rows = [row_bootstrap(mean_loss, (losses,), 300, seed=s).distribution for s in (4, 4, 5)]
    np.testing.assert_array_equal(rows[0], rows[1])
    assert not np.array_equal(rows[0], rows[2])


def test_batching_does_not_change_the_figures(monkeypatch):
    y, pred = labels(12, 300, 4, 0.8)
    counts, losses = confusion_matrix(y, pred, 4), (y != pred).astype(float)
    whole = [confusion_bootstrap(counts, macro_f1_from_counts, 301, seed=2),
             row_bootstrap(mean_loss, (losses,), 301, seed=2)]
    monkeypatch.setattr(resample, "_BATCH_BYTES", 1000)  # a few resamples per batch
    batched = [confusion_bootstrap(counts, macro_f1_from_counts, 301, seed=2),
               row_bootstrap(mean_loss, (losses,), 301, seed=2)]
    for a, b in zip(whole, batched, strict=True):
        np.testing.assert_array_equal(a.distribution, b.distribution)
        assert (a.z0, a.acceleration) == pytest.approx((b.z0, b.acceleration), abs=1e-12)
        assert a.acceleration != 0


def test_default_methods(monkeypatch):
    assert BCA_MAX_ROWS == 20_000
    monkeypatch.setattr(resample, "BCA_MAX_ROWS", 500)  # the jackknife of 20,000 rows takes s
    losses = np.random.default_rng(13).exponential(size=501)
    assert row_bootstrap(mean_loss, (losses[:500],), 20).method == "BCa"
    assert row_bootstrap(mean_loss, (losses,), 20).method == "percentile"
    big = np.array([[600_000, 50_000], [40_000, 310_000]])
    assert confusion_bootstrap(big, macro_f1_from_counts, 200).method == "BCa"
    with pytest.raises(ValueError, match="method"):
        confusion_bootstrap(big, macro_f1_from_counts, 200, method="basic")


def test_a_million_rows_cost_what_a_thousand_do():
    y, pred = labels(14, 1000, 10, 0.9)
    small = confusion_matrix(y, pred, 10)
    start = time.perf_counter()
    result = confusion_bootstrap(small * 1000, macro_f1_from_counts, 1000)
    assert time.perf_counter() - start < 2.0  # target 0.5 s; row resampling takes minutes
    assert result.distribution.shape == (1000,) and not result.degenerate


# --- degenerate samples ----------------------------------------------------------------

@pytest.mark.parametrize("counts", [np.diag([3, 0, 0]), np.diag([40, 30, 30]), np.diag([1, 0]),
                                    np.array([[2, 1], [0, 1]])])
def test_samples_that_cannot_show_error_are_degenerate(counts):
    result = confusion_bootstrap(counts, macro_f1_from_counts, 1000)
    assert result.degenerate
    estimate = float(macro_f1_from_counts(counts))
    assert result.interval(0.95) == (estimate, estimate)
    assert result.bound(0.95, "lower") == estimate == result.bound(0.95, "upper")


def test_row_bootstraps_of_one_row_or_no_loss_are_degenerate():
    assert row_bootstrap(mean_loss, (np.array([0.3]),), 100).degenerate
    flat = row_bootstrap(mean_loss, (np.zeros(500),), 100)
    assert flat.degenerate and flat.bound(0.95, "upper") == 0.0


def test_fifty_rows_at_97_percent_cannot_prove_099():
    y, pred = labels(15, 50, 10, 0.97)
    assert 0 < np.sum(y != pred) < 5
    counts = confusion_matrix(y, pred, 10)
    result = confusion_bootstrap(counts, macro_f1_from_counts, 2000)
    assert not result.degenerate and result.method == "BCa"
    lower = result.bound(0.95, "lower")
    assert np.isfinite(lower) and lower < 0.99 and lower < result.estimate
    assert result.bound(0.95, "upper") >= lower
    everything_right = confusion_bootstrap(np.diag(np.bincount(y, minlength=10)),
                                           macro_f1_from_counts, 2000)
    assert everything_right.degenerate and everything_right.bound(0.95, "lower") == 1.0
    assert zero_error_rows(0.99, 0.95) > 50


def test_bca_falls_back_to_percentile_when_the_estimate_is_beyond_every_resample():
    def distinct(rows):  # every resample repeats rows, so has fewer distinct ones
        ordered = np.sort(rows, axis=-1)
        return 1.0 + np.count_nonzero(np.diff(ordered, axis=-1), axis=-1)

    result = row_bootstrap(distinct, (np.arange(100),), 500, method="BCa")
    assert result.estimate == 100 and result.distribution.max() < 100
    assert result.method == "percentile" and not result.degenerate
    assert np.all(np.isfinite(result.interval(0.9)))


def test_a_resample_without_a_value_makes_the_result_degenerate():
    def nan_when_small(rows):
        means = rows.mean(axis=-1)
        return np.where(means < np.quantile(means, 0.01), np.nan, means)

    losses = np.random.default_rng(17).exponential(size=200)
    result = row_bootstrap(nan_when_small, (losses,), 500)
    assert result.degenerate and result.interval(0.9) == (result.estimate, result.estimate)


@pytest.mark.parametrize(("limit", "confidence", "rows"),
                         [(0.99, 0.95, 299), (0.9, 0.95, 29), (0.95, 0.99, 90), (0.5, 0.8, 3),
                          (0.01, 0.95, 1), (0.999, 0.95, 2995)])
def test_zero_error_rows_is_the_exact_clopper_pearson_size(limit, confidence, rows):
    assert zero_error_rows(limit, confidence) == rows

    def proves(n):
        return stats.binomtest(n, n).proportion_ci(2 * confidence - 1, "exact").low >= limit

    assert proves(rows) and (rows == 1 or not proves(rows - 1))


def test_zero_error_rows_refuses_a_limit_of_one():
    with pytest.raises(ValueError):
        zero_error_rows(1.0, 0.95)


def test_bounds_are_ends_of_the_two_sided_interval():
    y, pred = labels(16, 300, 3, 0.8)
    result = confusion_bootstrap(confusion_matrix(y, pred, 3), macro_f1_from_counts, 1000)
    low, high = result.interval(0.9)
    assert result.bound(0.95, "lower") == low and result.bound(0.95, "upper") == high
    assert low < result.estimate < high
    with pytest.raises(ValueError):
        result.bound(0.4, "lower")
    with pytest.raises(ValueError):
        result.bound(0.95, "both")


# --- coverage --------------------------------------------------------------------------

def population(classes: int = 10):
    """Cell probabilities of a 10-class model with per-row accuracy about 0.91, unequal
    class sizes and recalls, errors spread evenly over the other classes."""
    prior = np.linspace(1, 3, classes)
    prior /= prior.sum()
    recall = np.linspace(0.82, 0.97, classes)
    off = (1 - recall) / (classes - 1)
    return np.where(np.eye(classes, dtype=bool), recall[:, None], off[:, None]) * prior[:, None]


@pytest.mark.parametrize("method", ["BCa", "percentile"])
def test_the_lower_bound_of_macro_f1_covers_the_truth(method):
    cells = population()
    truth = float(macro_f1_from_counts(cells))  # macro-F1 of the population's proportions
    assert 0.85 < truth < 0.95 and 0.88 < np.trace(cells) < 0.93
    samples = np.random.default_rng(0).multinomial(300, cells.ravel(), 400).reshape(-1, 10, 10)
    bounds = np.array([
        confusion_bootstrap(s, macro_f1_from_counts, 1000, seed=i, method=method)
        .bound(0.95, "lower") for i, s in enumerate(samples)])
    coverage = np.mean(bounds <= truth)
    assert 0.93 <= coverage < 0.99  # measured: 0.955 for both methods


def test_a_statistic_of_means_gets_the_same_bca_from_its_closed_form_jackknife():
    from mlbuild.accuracy.resample import OfMeans

    rng = np.random.default_rng(12)
    a, b = rng.exponential(1.0, 400), rng.exponential(1.2, 400)
    of_means = OfMeans(lambda x, y: np.sqrt(x) - np.sqrt(y))

    def plain(x, y):   # the same statistic, with no closed form known to the bootstrap
        return np.sqrt(x.mean(axis=-1)) - np.sqrt(y.mean(axis=-1))

    fast = row_bootstrap(of_means, (a, b), 500, seed=3, method="BCa")
    slow = row_bootstrap(plain, (a, b), 500, seed=3, method="BCa")
    np.testing.assert_allclose(fast.distribution, slow.distribution, rtol=1e-12)
    assert fast.acceleration == pytest.approx(slow.acceleration, rel=1e-9)
    np.testing.assert_allclose(fast.interval(0.9), slow.interval(0.9), rtol=1e-9)
