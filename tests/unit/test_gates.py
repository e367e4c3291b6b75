"""Accuracy gates: the Wilson interval and what each mode lets through."""

from __future__ import annotations

import pytest
from scipy.stats import binomtest

from mlbuild.errors import ConfigError
from mlbuild.gates import ProportionGate, lower_bound, wilson_interval


def test_wilson_95_of_940_in_1000():
    low, high = wilson_interval(940, 1000, 0.95)
    assert (round(low, 4), round(high, 4)) == (0.9235, 0.9531)


@pytest.mark.parametrize(
    "k, n, confidence",
    [(940, 1000, 0.95), (0, 20, 0.95), (20, 20, 0.95), (1, 3, 0.9), (297, 300, 0.99),
     (5000, 9000, 0.8)],
)
def test_wilson_matches_scipy(k, n, confidence):
    ci = binomtest(k, n).proportion_ci(confidence, method="wilson")
    assert wilson_interval(k, n, confidence) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_the_one_sided_lower_bound_is_the_two_sided_one_at_2c_minus_1():
    ci = binomtest(940, 1000).proportion_ci(0.90, method="wilson")
    assert lower_bound(940, 1000, 0.95) == pytest.approx(ci.low, abs=1e-12)
    assert lower_bound(940, 1000, 0.95) > wilson_interval(940, 1000, 0.95)[0]


@pytest.mark.parametrize("k, n", [(1, 0), (-1, 10), (11, 10)])
def test_wilson_rejects_impossible_counts(k, n):
    with pytest.raises(ValueError):
        wilson_interval(k, n)


def test_confident_mode_fails_a_good_estimate_on_a_tiny_sample():
    result = ProportionGate("accuracy", 0.9, mode="confident").check(10, 10)
    assert result.estimate == 1.0
    assert not result.passed
    assert result.bound < 0.9
    assert "too small to prove it" in result.reason


def test_point_mode_passes_the_same_sample():
    result = ProportionGate("accuracy", 0.9, mode="point").check(10, 10)
    assert result.passed
    assert result.bound == result.estimate == 1.0


def test_confident_mode_passes_when_the_sample_proves_it():
    result = ProportionGate("accuracy", 0.9).check(940, 1000)
    assert result.passed
    assert result.bound == pytest.approx(lower_bound(940, 1000, 0.95))
    assert result.bound >= 0.9


def test_a_bad_estimate_fails_in_both_modes():
    for mode in ("point", "confident"):
        result = ProportionGate("accuracy", 0.95, mode=mode).check(900, 1000)
        assert not result.passed
        assert "too small" not in result.reason


def test_the_reason_gives_the_numbers():
    result = ProportionGate("accuracy", 0.95).check(940, 1000)
    reason = result.reason
    for text in ("accuracy", "0.9400", "940/1000", "95%", "[0.9235, 0.9531]",
                 f"{result.bound:.4f}", "0.9500", "is below"):
        assert text in reason, f"{text!r} not in {reason!r}"
    assert result.to_dict()["reason"] == reason
    assert result.to_dict()["interval"] == pytest.approx((0.9235, 0.9531), abs=5e-5)


@pytest.mark.parametrize("mode", ["strict", "Point", ""])
def test_an_unknown_mode_is_a_config_error(mode):
    with pytest.raises(ConfigError, match=repr(mode).replace("'", ".")):
        ProportionGate("accuracy", 0.9, mode=mode)


@pytest.mark.parametrize("confidence", [0, 1, 1.5, -0.1, 95])
def test_a_confidence_outside_0_1_is_a_config_error(confidence):
    with pytest.raises(ConfigError, match="confidence"):
        ProportionGate("accuracy", 0.9, confidence=confidence)


@pytest.mark.parametrize("confidence", [0.3, 0.45, 0.5, 0.8, 0.95, 0.99])
def test_confident_mode_is_never_more_lenient_than_point_mode(confidence):
    # A confidence the gate accepts must give a lower bound at most the estimate, else a
    # "confident" gate passes what a point gate fails. (Rejecting it is fine too.)
    try:
        confident = ProportionGate("accuracy", 0.9, confidence=confidence)
    except ConfigError:
        return
    result = confident.check(89, 100)
    point = ProportionGate("accuracy", 0.9, mode="point", confidence=confidence).check(89, 100)
    assert not point.passed
    assert result.bound <= result.estimate, result.reason
    assert not result.passed, result.reason
