"""Operating characteristics of the gates: exact sums, checked against independent
computations (every outcome through the gate's own bound) and seeded simulations of the
gates themselves. Level: a gate passes a model at its limit (or worse by the margin) with
probability at most alpha + 0.01; power: at the planned n it passes a good model with
probability at least power - 0.01."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
from scipy.special import gammaln
from scipy.stats import binom

from mlbuild.accuracy import power, stats
from mlbuild.accuracy.evaluation import TiersConfig, plan_sample
from mlbuild.accuracy.gates import ChangeGate, GatesConfig, SliceGate, ThresholdGate
from mlbuild.accuracy.metrics import Predictions
from tests.conftest import REPO

ALPHA, POWER = 0.05, 0.8
INTERVALS = ["wilson", "clopper-pearson"]


def passes_by_every_outcome(n: int, p: float, limit: float, interval: str) -> float:
    """The pass probability summed over every count, each judged by the gate's bound."""
    k = np.arange(n + 1)
    k = k[binom.pmf(k, n, p) > 1e-16]  # the rest adds nothing a float can hold
    passed = np.array([stats.proportion_bound(int(i), n, 0.95, interval) >= limit for i in k])
    return float(binom.pmf(k, n, p)[passed].sum())


# ----------------------------------------------------------------- threshold gates


@pytest.mark.parametrize("interval", INTERVALS)
def test_the_gate_passes_exactly_from_min_successes_on(interval):
    for limit in (0.5, 0.9, 0.99):
        for n in [*range(1, 120), 150, 822]:
            k = int(power.min_successes(n, limit, 0.95, interval, "confident"))
            for count in range(max(0, k - 3), min(n, k + 3) + 1):
                proved = stats.proportion_bound(count, n, 0.95, interval) >= limit
                assert proved is (count >= k), (interval, limit, n, count, k)


@pytest.mark.parametrize("interval", INTERVALS)
@pytest.mark.parametrize("n", [150, 822])
@pytest.mark.parametrize("limit", [0.75, 0.90, 0.93])
def test_the_exact_sum_is_the_sum_over_every_outcome(interval, n, limit):
    for p in (limit, 0.95):
        assert power.threshold_pass_probability(n, p, limit, 0.95, interval, "confident") == (
            pytest.approx(passes_by_every_outcome(n, p, limit, interval), abs=1e-12))


@pytest.mark.parametrize("interval", INTERVALS)
@pytest.mark.parametrize("n", [150, 822, 5000])
@pytest.mark.parametrize("limit", [0.75, 0.90, 0.93])
def test_a_threshold_gate_passes_a_model_at_its_limit_with_at_most_alpha(interval, n, limit):
    at_limit = power.threshold_pass_probability(n, limit, limit, 0.95, interval, "confident")
    assert at_limit <= ALPHA + 0.01
    if interval == "clopper-pearson":
        assert at_limit <= ALPHA  # exact by construction


@pytest.mark.parametrize("interval", INTERVALS)
@pytest.mark.parametrize("expected, limit", [(0.95, 0.90), (0.95, 0.93), (0.85, 0.75),
                                             (0.99, 0.97)])
def test_from_the_planned_n_on_a_good_model_passes_with_the_power(interval, expected, limit):
    n = power.threshold_rows(expected, limit, 0.95, interval, "confident", POWER)
    ns = np.arange(n, 3 * n)
    chance = power.threshold_pass_probability(ns, expected, limit, 0.95, interval, "confident")
    assert chance.min() >= POWER
    assert power.threshold_pass_probability(n - 1, expected, limit, 0.95, interval,
                                            "confident") < POWER


def test_the_issues_figures():
    # The old plan's 150 rows for 0.95 against 0.90: a good model passes 2 times in 3.
    assert power.threshold_pass_probability(150, 0.95, 0.90, 0.95, "wilson",
                                            "confident") == pytest.approx(0.664, abs=5e-4)
    assert 165 <= power.threshold_rows(0.95, 0.90, 0.95, "wilson", "confident", POWER) <= 190
    assert 855 <= power.threshold_rows(0.95, 0.93, 0.95, "wilson", "confident", POWER) <= 950


def test_a_simulation_of_the_gate_agrees_with_the_exact_sum():
    rng = np.random.default_rng(11)
    gate = ThresholdGate("accuracy", 0.90)
    reps, n = 2000, 188
    right = rng.binomial(n, 0.95, reps)
    passes = np.mean([gate.check(Predictions(np.ones(n, int),
                                             (np.arange(n) < k).astype(int))).passed
                      for k in right])
    exact = power.threshold_pass_probability(n, 0.95, 0.90, 0.95, "wilson", "confident")
    assert abs(passes - exact) < 3 * np.sqrt(exact * (1 - exact) / reps)


def test_point_mode_passes_a_model_at_the_limit_about_half_the_time():
    at_limit = power.threshold_pass_probability(822, 0.93, 0.93, 0.95, "wilson", "point")
    assert 0.45 < at_limit < 0.6


# ----------------------------------------------------------------- change gate


def paired_by_every_outcome(n, psi, delta, margin, mode):
    """The change gate's pass probability summed over every (b, c) with b + c <= n."""
    total = 0.0
    for b in range(n + 1):
        c = np.arange(n - b + 1)
        p = stats.paired_change_p(b, c, n, margin, mode)
        ok = (p <= ALPHA) if mode == "non-inferiority" else (p > ALPHA)
        pmf = np.exp(gammaln(n + 1) - gammaln(b + 1) - gammaln(c + 1) - gammaln(n - b - c + 1)
                     + b * np.log((psi - delta) / 2) + c * np.log((psi + delta) / 2)
                     + (n - b - c) * np.log1p(-psi))
        total += pmf[ok].sum()
    return total


@pytest.mark.parametrize("mode", ["non-inferiority", "regression"])
@pytest.mark.parametrize("n, psi, delta", [(60, 0.1, -0.02), (150, 0.05, 0.0),
                                           (200, 0.08, -0.05)])
def test_the_paired_sum_is_the_sum_over_every_outcome(mode, n, psi, delta):
    assert power.paired_pass_probability(n, psi, delta, 0.02, ALPHA, mode) == pytest.approx(
        paired_by_every_outcome(n, psi, delta, 0.02, mode), abs=1e-10)


@pytest.mark.parametrize("n", [150, 822, 5000])
@pytest.mark.parametrize("margin", [0.01, 0.02, 0.05])
def test_non_inferiority_passes_a_candidate_worse_by_the_margin_with_at_most_alpha(n, margin):
    for psi in (margin, margin + 0.01, 0.05, 0.1, 0.2):
        if psi < margin:
            continue
        at_margin = power.paired_pass_probability(n, psi, -margin, margin, ALPHA,
                                                  "non-inferiority")
        assert at_margin <= ALPHA + 0.01, (psi, at_margin)


@pytest.mark.parametrize("psi, margin", [(0.02, 0.02), (0.05, 0.02), (0.1, 0.05),
                                         (0.05, 0.01)])
def test_at_the_planned_n_an_equal_candidate_passes_with_the_power(psi, margin):
    n = power.paired_rows(psi, margin, ALPHA, POWER)
    assert power.paired_pass_probability(n, psi, 0.0, margin, ALPHA,
                                         "non-inferiority") >= POWER - 0.01
    assert power.paired_pass_probability(n - max(1, n // 10), psi, 0.0, margin, ALPHA,
                                         "non-inferiority") < POWER


def test_the_old_defects_of_the_change_gate_are_gone():
    # At 150 rows a candidate 4 points worse passed 83% of the time; 3 points worse at 822
    # rows 70%. Now they pass at most alpha.
    assert power.paired_pass_probability(150, 0.06, -0.04, 0.02, ALPHA,
                                         "non-inferiority") <= ALPHA
    assert power.paired_pass_probability(822, 0.06, -0.03, 0.02, ALPHA,
                                         "non-inferiority") <= ALPHA
    # Exactly at the margin each mode errs with at most alpha: regression mode failed such
    # a candidate 15% (n = 2,000) to 20% (n = 5,000) of the time.
    for n in (2000, 5000):
        for psi in (0.03, 0.05, 0.1):
            at_margin = power.paired_pass_probability(n, psi, -0.02, 0.02, ALPHA, "regression")
            assert 1 - at_margin <= ALPHA + 0.01
            assert power.paired_pass_probability(n, psi, -0.02, 0.02, ALPHA,
                                                 "non-inferiority") <= ALPHA + 0.01


def test_a_simulation_of_the_change_gate_agrees_with_the_exact_sum():
    rng = np.random.default_rng(12)
    gate = ChangeGate(margin=0.02)
    n, psi, delta, reps = 400, 0.06, -0.01, 2000
    counts = rng.multinomial(n, [(psi - delta) / 2, (psi + delta) / 2, 1 - psi], reps)
    y = np.zeros(n, int)
    passes = 0
    for b, c, _ in counts:
        base = np.ones(n, int)
        cand = np.ones(n, int)
        base[:b] = 0            # released model only right on the first b rows
        cand[b:b + c] = 0       # candidate only right on the next c
        right = np.arange(n) >= b + c
        base[right] = cand[right] = 0
        passes += gate.check(Predictions(y, cand), Predictions(y, base)).passed
    exact = power.paired_pass_probability(n, psi, delta, 0.02, ALPHA, "non-inferiority")
    assert abs(passes / reps - exact) < 3 * np.sqrt(exact * (1 - exact) / reps)


# ----------------------------------------------------------------- slices


def test_every_slice_at_alpha_keeps_the_power_the_correction_lost():
    # 10 slices of 180 rows at 0.85 against 0.75: all pass with probability 0.648 (Holm
    # made it 0.571). The slices are independent samples: the product of their chances.
    one = power.threshold_pass_probability(180, 0.85, 0.75, 0.95, "wilson", "confident")
    assert one ** 10 == pytest.approx(0.648, abs=0.005)
    gate = SliceGate("class", 0.75, min_rows=10)
    assert gate.operating_characteristic(180, 0.85)["at_expected"] == pytest.approx(one)


@pytest.mark.parametrize("n", [150, 822, 5000])
def test_the_slices_pass_with_a_slice_at_the_limit_with_at_most_alpha(n):
    # Intersection–union: the all-pass probability is at most that of the slice at the
    # limit, whatever the others do.
    for limit in (0.75, 0.9, 0.93):
        assert power.threshold_pass_probability(n, limit, limit, 0.95, "wilson",
                                                "confident") <= ALPHA + 0.01


# ----------------------------------------------------------------- the shipped config


def test_the_shipped_fast_tier_passes_a_good_model_with_the_configured_power():
    raw = tomllib.loads((REPO / "configs" / "pipeline.toml").read_text())
    tiers = TiersConfig.model_validate(raw["accuracy"])
    gates = GatesConfig.model_validate(raw["gates"])
    plan = plan_sample(tiers, gates, None)
    sized = [r for r in plan.requirements if r.passes_good is not None]
    assert sized, "the shipped config sizes no gate"
    for requirement in sized:
        assert requirement.passes_good >= tiers.power, requirement
        assert requirement.passes_bad <= 1 - gates.confidence + 0.01, requirement


# ----------------------------------------------------------------- bootstrap gates, simulated


def test_the_simulation_machinery_agrees_with_an_exact_sum():
    # An accuracy decision made from simulated confusion matrices against the exact sum.
    cells = np.array([[45.0, 5.0], [3.0, 47.0]])   # accuracy 0.92
    n, limit = 300, 0.9
    simulated = power.simulated_pass_probability(lambda c: np.trace(c) / n >= limit, cells, n,
                                                 4000, seed=3)
    exact = power.threshold_pass_probability(n, 0.92, limit, 0.95, "wilson", "point")
    assert abs(simulated - exact) < 3 * np.sqrt(exact * (1 - exact) / 4000)


def test_the_model_at_the_limit_has_the_limit_and_the_same_kinds_of_error():
    from mlbuild.accuracy.metrics import COUNT_STATISTICS

    f1 = COUNT_STATISTICS["macro_f1"]
    cells = np.array([[40.0, 2, 0], [1, 50, 4], [0, 3, 30]])
    at = power.model_at(f1, cells, 0.8)
    assert float(f1(at)) == pytest.approx(0.8, abs=1e-9)
    assert at.sum() == pytest.approx(cells.sum())
    assert power.model_at(f1, cells, 0.99) is None   # the model does not exceed it


def test_a_confident_macro_f1_gate_states_a_simulated_characteristic():
    from mlbuild.accuracy.metrics import Predictions

    rng = np.random.default_rng(8)
    y = rng.integers(0, 4, 400)
    pred = np.where(rng.random(400) < 0.93, y, (y + 1) % 4)
    gate = ThresholdGate("macro_f1", 0.85, resamples=300)
    oc = gate.operating_characteristic(400, 0.95, Predictions(y, pred))
    assert oc["exact"] is False and oc["simulations"] == 100
    assert oc["at_limit"] <= 0.12 and oc["at_observed"] >= 0.9
    assert "seeded simulation" in oc["sentence"]
