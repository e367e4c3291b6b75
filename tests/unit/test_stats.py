"""The statistics behind the accuracy gates, against known values and scipy."""

from __future__ import annotations

import math
from fractions import Fraction
from statistics import NormalDist

import numpy as np
import pytest
from scipy.stats import binomtest

from mlbuild import stats

# ----------------------------------------------------------------- proportion intervals


def test_wilson_95_of_940_in_1000():
    low, high = stats.proportion_interval(940, 1000, 0.95, "wilson")
    assert (round(low, 4), round(high, 4)) == (0.9235, 0.9531)


def test_wilson_is_the_default_interval():
    assert stats.proportion_interval(940, 1000) == stats.proportion_interval(
        940, 1000, 0.95, "wilson")


def test_clopper_pearson_95_of_940_in_1000():
    low, high = stats.proportion_interval(940, 1000, 0.95, "clopper-pearson")
    assert (round(low, 4), round(high, 4)) == (0.9234, 0.9539)


CASES = [(940, 1000, 0.95), (0, 20, 0.95), (20, 20, 0.95), (0, 1, 0.9), (1, 1, 0.99),
         (1, 3, 0.9), (297, 300, 0.99), (5000, 9000, 0.8), (12, 40, 0.5)]


@pytest.mark.parametrize("k, n, confidence", CASES)
@pytest.mark.parametrize("method, scipy_method", [("wilson", "wilson"),
                                                  ("clopper-pearson", "exact")])
def test_intervals_match_scipy(k, n, confidence, method, scipy_method):
    ci = binomtest(k, n).proportion_ci(confidence, method=scipy_method)
    low, high = stats.proportion_interval(k, n, confidence, method)
    assert (low, high) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert 0.0 <= low <= k / n <= high <= 1.0
    assert isinstance(low, float) and isinstance(high, float)


def test_the_interval_reaches_the_edge_at_k_0_and_k_n():
    for method in ("wilson", "clopper-pearson"):
        assert stats.proportion_interval(0, 50, 0.95, method)[0] == pytest.approx(0.0, abs=1e-12)
        assert stats.proportion_interval(50, 50, 0.95, method)[1] == pytest.approx(1.0, abs=1e-12)
        assert stats.proportion_interval(0, 50, 0.95, method)[1] > 0.0
        assert stats.proportion_interval(50, 50, 0.95, method)[0] < 1.0


def test_clopper_pearson_is_wider_than_wilson_here():
    wilson = stats.proportion_interval(940, 1000, 0.95, "wilson")
    exact = stats.proportion_interval(940, 1000, 0.95, "clopper-pearson")
    assert exact[0] < wilson[0] and exact[1] > wilson[1]


@pytest.mark.parametrize("k, n, confidence", CASES[:8])
@pytest.mark.parametrize("method", ["wilson", "clopper-pearson"])
def test_the_one_sided_bound_is_the_two_sided_interval_at_2c_minus_1(k, n, confidence, method):
    low, high = stats.proportion_interval(k, n, 2 * confidence - 1, method)
    assert stats.proportion_bound(k, n, confidence, method) == low
    assert stats.proportion_bound(k, n, confidence, method, side="lower") == low
    assert stats.proportion_bound(k, n, confidence, method, side="upper") == high


def test_the_one_sided_bound_is_tighter_than_the_two_sided_one():
    two_sided = stats.proportion_interval(940, 1000, 0.95)
    assert two_sided[0] < stats.proportion_bound(940, 1000, 0.95) < 0.94
    assert 0.94 < stats.proportion_bound(940, 1000, 0.95, side="upper") < two_sided[1]


@pytest.mark.parametrize("k, n", [(1, 0), (0, 0), (-1, 10), (11, 10)])
def test_impossible_counts_are_rejected(k, n):
    with pytest.raises(ValueError):
        stats.proportion_interval(k, n)
    with pytest.raises(ValueError):
        stats.proportion_bound(k, n, 0.95)


# ----------------------------------------------------------------- sample size


def _formula_n(p0, p1, alpha, power):
    """ACCURACY.md, computed independently of mlbuild."""
    z = NormalDist()
    top = (z.inv_cdf(1 - alpha) * math.sqrt(p0 * (1 - p0))
           + z.inv_cdf(power) * math.sqrt(p1 * (1 - p1)))
    return math.ceil(top ** 2 / (p0 - p1) ** 2)


def test_sample_size_of_the_documented_example():
    assert stats.sample_size(0.95, 0.93, 0.05, 0.8) == 822


@pytest.mark.parametrize("p0, p1, alpha, power, textbook", [
    # (1.6449·0.5 + 0.8416·0.4899)² / 0.1² = 152.5
    (0.5, 0.4, 0.05, 0.8, 153),
    # (1.9600·0.3 + 1.2816·0.3571)² / 0.05² = 437.3
    (0.9, 0.85, 0.025, 0.9, 438),
    # (2.3263·0.2179 + 0.8416·0.2713)² / 0.03² = 600.8
    (0.95, 0.92, 0.01, 0.8, 601),
])
def test_sample_size_matches_the_formula(p0, p1, alpha, power, textbook):
    assert stats.sample_size(p0, p1, alpha, power) == _formula_n(p0, p1, alpha, power)
    assert stats.sample_size(p0, p1, alpha, power) == textbook


def test_sample_size_grows_with_power_and_shrinks_with_the_drop():
    assert stats.sample_size(0.95, 0.93, 0.05, 0.9) > stats.sample_size(0.95, 0.93, 0.05, 0.8)
    assert stats.sample_size(0.95, 0.93, 0.01, 0.8) > stats.sample_size(0.95, 0.93, 0.05, 0.8)
    assert stats.sample_size(0.95, 0.90, 0.05, 0.8) < stats.sample_size(0.95, 0.93, 0.05, 0.8)


@pytest.mark.parametrize("p0, p1", [(0.9, 0.9), (0.9, 0.95), (1.0, 0.9), (0.5, 0.0)])
def test_sample_size_needs_a_drop_inside_0_1(p0, p1):
    with pytest.raises(ValueError, match="p1"):
        stats.sample_size(p0, p1)


@pytest.mark.parametrize("psi, delta, alpha, power", [
    (0.1, 0.03, 0.05, 0.8), (0.05, 0.02, 0.05, 0.9), (0.3, 0.05, 0.025, 0.8),
])
def test_paired_sample_size_matches_the_formula(psi, delta, alpha, power):
    z = NormalDist()
    top = (z.inv_cdf(1 - alpha) * math.sqrt(psi)
           + z.inv_cdf(power) * math.sqrt(psi - delta ** 2))
    assert stats.paired_sample_size(psi, delta, alpha, power) == math.ceil(top ** 2 / delta ** 2)


def test_paired_sample_size_known_value():
    # (1.6449·sqrt(0.1) + 0.8416·sqrt(0.0991))² / 0.03² = 684.9
    assert stats.paired_sample_size(0.1, 0.03) == 685


def test_more_disagreement_needs_more_rows():
    assert stats.paired_sample_size(0.2, 0.03) > stats.paired_sample_size(0.1, 0.03)


@pytest.mark.parametrize("psi, delta", [(0.01, 0.1), (0.1, 0.0), (1.5, 0.1)])
def test_paired_sample_size_rejects_impossible_inputs(psi, delta):
    with pytest.raises(ValueError):
        stats.paired_sample_size(psi, delta)


# ----------------------------------------------------------------- McNemar, non-inferiority


def test_exact_mcnemar_known_value():
    p = stats.mcnemar_worse_p(25, 10)
    assert p == pytest.approx(0.0083, abs=5e-5)
    assert p == pytest.approx(binomtest(25, 35, 0.5, alternative="greater").pvalue, abs=1e-15)


@pytest.mark.parametrize("b, c", [(25, 10), (10, 25), (3, 0), (0, 3), (7, 7), (120, 80)])
def test_exact_mcnemar_matches_the_one_sided_binomial_test(b, c):
    expected = sum(math.comb(b + c, x) for x in range(b, b + c + 1)) / 2 ** (b + c)
    assert stats.mcnemar_worse_p(b, c) == pytest.approx(expected, rel=1e-9)


def test_mcnemar_without_discordant_rows_shows_nothing():
    assert stats.mcnemar_worse_p(0, 0) == 1.0


def test_mcnemar_is_one_sided():
    # The candidate right where the baseline is wrong is no evidence that it is worse.
    assert stats.mcnemar_worse_p(10, 25) > 0.99


def _shifted_mcnemar(b, c, n, margin):
    """P(X >= b), X ~ Binomial(b + c, (psi + margin) / (2 psi)), exactly."""
    d = b + c
    p = min(Fraction(1), (Fraction(d, n) + Fraction(margin)) / (2 * Fraction(d, n)))
    return float(sum(math.comb(d, x) * p ** x * (1 - p) ** (d - x) for x in range(b, d + 1)))


def test_non_inferiority_with_no_margin_is_mcnemar():
    for b, c in [(25, 10), (10, 25), (0, 0), (40, 38)]:
        assert stats.non_inferiority_p(b, c, 1000, 0.0) == stats.mcnemar_worse_p(b, c)


@pytest.mark.parametrize("margin", [0.005, 0.01, 0.02])
def test_non_inferiority_matches_the_shifted_binomial(margin):
    assert stats.non_inferiority_p(25, 10, 1000, margin) == pytest.approx(
        _shifted_mcnemar(25, 10, 1000, Fraction(str(margin))), rel=1e-9)


def test_a_larger_margin_gives_less_evidence_of_inferiority():
    margins = [0.0, 0.002, 0.005, 0.01, 0.015, 0.02, 0.05]
    p = [stats.non_inferiority_p(25, 10, 1000, m) for m in margins]
    assert p == sorted(p)
    assert p[0] < 0.05 < p[-1]
    assert len(set(p)) >= 5


def test_non_inferiority_without_discordant_rows_shows_nothing():
    assert stats.non_inferiority_p(0, 0, 1000, 0.01) == 1.0


# ----------------------------------------------------------------- Wilcoxon


def test_wilcoxon_is_small_when_the_candidate_loses_clearly_more():
    rng = np.random.default_rng(0)
    baseline = rng.exponential(1.0, 300)
    candidate = baseline + rng.normal(0.3, 0.2, 300)
    assert stats.one_sided_wilcoxon_p(candidate, baseline) < 1e-6


def test_wilcoxon_is_one_when_the_losses_are_equal():
    loss = np.random.default_rng(1).exponential(1.0, 200)
    assert stats.one_sided_wilcoxon_p(loss, loss.copy()) == 1.0


def test_wilcoxon_is_large_when_the_candidate_is_better_or_as_good():
    rng = np.random.default_rng(2)
    baseline = rng.exponential(1.0, 300)
    assert stats.one_sided_wilcoxon_p(baseline - 0.3, baseline) > 0.99
    noise = baseline + rng.normal(0.0, 0.1, 300) * rng.choice([-1, 1], 300)
    assert stats.one_sided_wilcoxon_p(noise, baseline) > 0.05


def test_wilcoxon_margin_allows_a_small_increase():
    rng = np.random.default_rng(3)
    baseline = rng.exponential(1.0, 300)
    candidate = baseline + rng.normal(0.1, 0.05, 300)
    assert stats.one_sided_wilcoxon_p(candidate, baseline, margin=0.0) < 1e-6
    assert stats.one_sided_wilcoxon_p(candidate, baseline, margin=0.2) > 0.99


# ----------------------------------------------------------------- multiple testing


def test_holm_hand_computed():
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, max(0.06, 0.04·1) = 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_benjamini_hochberg_hand_computed():
    # ranks 1..4: 0.005·4/1 = 0.02, 0.01·4/2 = 0.02, 0.03·4/3 = 0.04, 0.04·4/4 = 0.04
    assert stats.benjamini_hochberg([0.01, 0.04, 0.03, 0.005]) == pytest.approx(
        [0.02, 0.04, 0.04, 0.02])


def test_benjamini_hochberg_keeps_the_adjusted_values_monotone():
    # raw p·m/rank: 0.01·3/1 = 0.03, 0.04·3/2 = 0.06, 0.045·3/3 = 0.045 -> min from the top
    assert stats.benjamini_hochberg([0.045, 0.01, 0.04]) == pytest.approx([0.045, 0.03, 0.045])


def test_corrections_cap_at_one():
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert stats.benjamini_hochberg([0.5, 0.9]) == pytest.approx([0.9, 0.9])
    assert stats.benjamini_hochberg([0.9, 0.95, 0.99]) == pytest.approx([0.99, 0.99, 0.99])


def test_corrections_of_ties_one_value_and_none():
    assert stats.holm([0.02, 0.02, 0.02]) == pytest.approx([0.06, 0.06, 0.06])
    assert stats.benjamini_hochberg([0.02, 0.02, 0.02]) == pytest.approx([0.02, 0.02, 0.02])
    assert stats.holm([0.03]) == [0.03] and stats.benjamini_hochberg([0.03]) == [0.03]
    assert stats.holm([]) == [] and stats.benjamini_hochberg([]) == []


def test_benjamini_hochberg_is_never_stricter_than_holm():
    rng = np.random.default_rng(4)
    p = list(rng.uniform(0, 0.2, 12))
    for bh, holm, raw in zip(stats.benjamini_hochberg(p), stats.holm(p), p, strict=True):
        assert raw <= bh + 1e-12 and bh <= holm + 1e-12


# ----------------------------------------------------------------- bootstrap


def _mean(x):
    return float(np.mean(x))


def test_bootstrap_is_seeded():
    data = [np.random.default_rng(5).normal(10.0, 2.0, 200)]
    first = stats.bootstrap_interval(_mean, data, 0.95, resamples=300, seed=7)
    assert stats.bootstrap_interval(_mean, data, 0.95, resamples=300, seed=7) == first
    others = {stats.bootstrap_interval(_mean, data, 0.95, resamples=300, seed=s)
              for s in range(5)}
    assert len(others) > 1, "the seed is not used"


def test_bootstrap_interval_contains_the_estimate_and_is_about_right():
    x = np.random.default_rng(6).normal(10.0, 2.0, 400)
    low, high = stats.bootstrap_interval(_mean, [x], 0.95, resamples=500, seed=0)
    assert low < x.mean() < high
    # the textbook interval is mean ± 1.96·s/sqrt(n) ≈ ± 0.196
    half = 1.96 * x.std(ddof=1) / math.sqrt(len(x))
    assert high - low == pytest.approx(2 * half, rel=0.25)


def test_bootstrap_is_paired_over_rows():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 300)
    pred = np.where(rng.random(300) < 0.9, y, 1 - y)
    low, high = stats.bootstrap_interval(lambda a, b: float(np.mean(a == b)), [y, pred], 0.9,
                                         resamples=300, seed=0)
    assert low < np.mean(y == pred) < high
    assert high - low < 0.1  # unpaired resampling would give about 0.5 ± 0.05


def test_a_wider_confidence_gives_a_wider_bootstrap_interval():
    x = [np.random.default_rng(9).exponential(1.0, 300)]
    narrow = stats.bootstrap_interval(_mean, x, 0.8, resamples=400, seed=0)
    wide = stats.bootstrap_interval(_mean, x, 0.99, resamples=400, seed=0)
    assert wide[0] < narrow[0] and narrow[1] < wide[1]


@pytest.mark.parametrize("method", ["BCa", "percentile"])
def test_a_degenerate_sample_gives_the_estimate_twice(method):
    data = [np.full(50, 0.7)]
    with np.errstate(all="ignore"):
        assert stats.bootstrap_interval(_mean, data, 0.95, resamples=200,
                                        method=method) == pytest.approx((0.7, 0.7))


def test_a_single_row_is_a_degenerate_sample_too():
    # Every resample of one row is that row: the docstring's "degenerate sample".
    assert stats.bootstrap_interval(_mean, [np.array([0.7])], 0.95,
                                    resamples=200) == pytest.approx((0.7, 0.7))


def test_bootstrap_method_depends_on_the_rows():
    assert stats.bootstrap_method(100) == "BCa"
    assert stats.bootstrap_method(stats.BCA_MAX_ROWS) == "BCa"
    assert stats.bootstrap_method(stats.BCA_MAX_ROWS + 1) == "percentile"


def test_intervals_at_several_levels_from_one_set_of_resamples_equal_separate_ones():
    import numpy as np

    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 300)
    yp = np.where(rng.random(300) < 0.8, y, rng.integers(0, 3, 300))

    def accuracy(a, b):
        return float((a == b).mean())

    for method in ("BCa", "percentile"):
        together = stats.bootstrap_intervals(accuracy, (y, yp), (0.95, 0.9), 500, 7, method)
        apart = [stats.bootstrap_interval(accuracy, (y, yp), c, 500, 7, method)
                 for c in (0.95, 0.9)]
        assert together == pytest.approx(apart, rel=1e-12)
        assert together[1][0] > together[0][0] and together[1][1] < together[0][1]
