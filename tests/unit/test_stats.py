"""The statistics behind the accuracy gates, against known values and scipy."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from scipy.stats import binomtest

from mlbuild.accuracy import stats

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


# ----------------------------------------------------------------- proportion tests


@pytest.mark.parametrize("method", ["wilson", "clopper-pearson"])
def test_the_proportion_p_value_inverts_the_interval(method):
    # p <= 1 - c exactly when the one-sided lower bound at c meets the limit.
    for n in (20, 150, 822):
        for k in range(int(0.7 * n), n + 1, max(1, n // 60)):
            for limit in (0.75, 0.9):
                p = stats.proportion_p(k, n, limit, method)
                proved = stats.proportion_bound(k, n, 0.95, method) >= limit
                assert (p <= 0.05) is proved, (method, k, n, limit, p)


def test_the_exact_proportion_p_value_is_the_binomial_test():
    assert stats.proportion_p(95, 100, 0.9, "clopper-pearson") == pytest.approx(
        binomtest(95, 100, 0.9, alternative="greater").pvalue)


def test_the_score_p_value_matches_statsmodels():
    from statsmodels.stats.proportion import proportions_ztest

    for k, n, limit in ((140, 150, 0.9), (790, 822, 0.93), (4800, 5000, 0.95)):
        _, expected = proportions_ztest(k, n, limit, alternative="larger", prop_var=limit)
        assert stats.proportion_p(k, n, limit) == pytest.approx(expected, rel=1e-9)


def test_normal_rows_is_the_textbook_formula():
    z = NormalDist().inv_cdf
    top = z(0.95) * math.sqrt(0.9 * 0.1) + z(0.8) * math.sqrt(0.95 * 0.05)
    assert stats.normal_rows(0.95, 0.90) == math.ceil(top ** 2 / 0.05 ** 2)
    with pytest.raises(ValueError, match="limit < expected"):
        stats.normal_rows(0.9, 0.95)


# ----------------------------------------------------------------- paired change


def test_tango_statistic_against_a_hand_computation():
    # Tango (1998) for b = 10 (released only right), c = 4, n = 200, margin 0.02:
    # delta0 = -0.02; A = 400, B = -14 + (400 - 4 + 10)(-0.02) = -22.12, C = -10(-0.02)(1.02)
    a, b_, c_ = 400.0, -14 + 406 * -0.02, -10 * -0.02 * 1.02
    p21 = (math.sqrt(b_ * b_ - 4 * a * c_) - b_) / (2 * a)
    z = (4 - 10 + 200 * 0.02) / math.sqrt(200 * (2 * p21 + -0.02 * 1.02))
    assert stats.paired_score_z(10, 4, 200, 0.02) == pytest.approx(z, rel=1e-12)


def test_tango_without_a_margin_is_the_asymptotic_mcnemar_test():
    from statsmodels.stats.contingency_tables import mcnemar

    for b, c in ((30, 12), (5, 9), (100, 70)):
        chi2 = mcnemar([[0, c], [b, 0]], exact=False, correction=False).statistic
        assert stats.paired_score_z(b, c, 500, 0.0) == pytest.approx(
            math.copysign(math.sqrt(chi2), c - b), rel=1e-9)


def test_the_two_modes_are_the_two_tails_of_one_statistic():
    for b, c in ((12, 3), (3, 3), (2, 9)):
        ni = stats.paired_change_p(b, c, 300, 0.02, "non-inferiority")
        reg = stats.paired_change_p(b, c, 300, 0.02, "regression")
        assert ni + reg == pytest.approx(1.0)


def test_more_rows_only_the_released_model_gets_right_is_less_evidence_for_the_candidate():
    p = stats.paired_change_p(np.arange(0, 30), 10, 1000, 0.02)
    assert np.all(np.diff(p) > 0)


def test_no_discordance_and_no_margin_is_no_evidence():
    assert stats.paired_score_z(0, 0, 100, 0.0) == 0.0
    assert stats.paired_change_p(0, 0, 100, 0.0, "regression") == pytest.approx(0.5)


def test_the_paired_t_test_is_scipys_on_the_differences():
    from scipy.stats import ttest_1samp

    rng = np.random.default_rng(3)
    baseline = rng.exponential(1.0, 300)
    candidate = baseline + rng.normal(0.01, 0.05, 300)
    diff = candidate - baseline
    assert stats.paired_mean_change_p(candidate, baseline, 0.02) == pytest.approx(
        ttest_1samp(diff, 0.02, alternative="less").pvalue)
    assert stats.paired_mean_change_p(candidate, baseline, 0.0, "regression") == pytest.approx(
        ttest_1samp(diff, 0.0, alternative="greater").pvalue)
    assert stats.paired_mean_change_p(baseline, baseline, 0.02) == 0.0   # equal: within margin
    assert stats.paired_mean_change_p(baseline, baseline, 0.0, "regression") == 1.0


# ----------------------------------------------------------------- multiple testing


def test_holm_hand_computed():
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, max(0.06, 0.04·1) = 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_corrections_match_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = list(np.random.default_rng(6).uniform(0, 0.3, 9))
    assert stats.holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]))
    assert stats.benjamini_hochberg(p) == pytest.approx(list(multipletests(p, method="fdr_bh")[1]))


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


@pytest.mark.parametrize("method, statsmodels_method", [("wilson", "wilson"),
                                                        ("clopper-pearson", "beta")])
def test_intervals_match_statsmodels(method, statsmodels_method):
    from statsmodels.stats.proportion import proportion_confint

    for k, n in ((140, 150), (790, 822), (4800, 5000), (3, 20), (20, 20)):
        for confidence in (0.9, 0.95):
            low, high = proportion_confint(k, n, 1 - confidence, method=statsmodels_method)
            assert stats.proportion_interval(k, n, confidence, method) == pytest.approx(
                (low, high), abs=1e-9)
