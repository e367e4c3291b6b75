"""Accuracy gates: thresholds, the change against the released model, slices, configuration."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from mlbuild.accuracy import stats
from mlbuild.accuracy.gates import (
    ChangeGate,
    ChangeSpec,
    GatesConfig,
    SliceGate,
    ThresholdGate,
    ThresholdSpec,
    build_gates,
)
from mlbuild.accuracy.metrics import METRICS, Predictions
from mlbuild.errors import ConfigError, DataError, MlbuildError

RESAMPLES = 300


def correct_of(right: int, rows: int, classes: int = 2, seed: int = 0) -> Predictions:
    """``rows`` rows of which exactly ``right`` are predicted right (the wrong ones shuffled)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, rows)
    wrong = rng.permutation(rows)[: rows - right]
    pred = y.copy()
    pred[wrong] = (y[wrong] + 1) % classes
    return Predictions(y, pred)


def with_proba(y, skill: float, seed: int, classes: int = 2) -> Predictions:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, (len(y), classes))
    logits[np.arange(len(y)), y] += skill
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return Predictions(y, proba.argmax(axis=1), proba)


# ============================================================================ threshold


def test_confident_mode_fails_a_perfect_estimate_on_a_tiny_sample():
    result = ThresholdGate("accuracy", 0.9, mode="confident").check(correct_of(10, 10))
    assert result.estimate == 1.0
    assert result.passed is False
    assert result.bound == pytest.approx(stats.proportion_bound(10, 10, 0.95))
    assert result.bound < 0.9
    assert "too small to prove it" in result.reason
    assert (result.kind, result.metric, result.n, result.limit) == ("threshold", "accuracy",
                                                                   10, 0.9)


def test_point_mode_passes_the_same_sample():
    result = ThresholdGate("accuracy", 0.9, mode="point").check(correct_of(10, 10))
    assert result.passed is True
    assert result.bound == result.estimate == 1.0
    assert "too small" not in result.reason


def test_confident_mode_passes_when_the_sample_proves_it():
    result = ThresholdGate("accuracy", 0.9).check(correct_of(940, 1000))
    assert result.passed is True
    assert result.estimate == pytest.approx(0.94)
    assert result.bound == pytest.approx(stats.proportion_bound(940, 1000, 0.95))
    assert result.interval == pytest.approx(stats.proportion_interval(940, 1000, 0.95))
    assert result.interval == pytest.approx((0.9235, 0.9531), abs=5e-5)


def test_clopper_pearson_gates_use_the_exact_bound():
    gate = ThresholdGate("accuracy", 0.9, interval="clopper-pearson")
    result = gate.check(correct_of(940, 1000))
    assert result.bound == pytest.approx(
        stats.proportion_bound(940, 1000, 0.95, "clopper-pearson"))
    assert result.interval == pytest.approx((0.9234, 0.9539), abs=5e-5)
    assert "clopper-pearson" in result.reason


def test_a_bad_estimate_fails_in_both_modes():
    for mode in ("point", "confident"):
        result = ThresholdGate("accuracy", 0.95, mode=mode).check(correct_of(900, 1000))
        assert result.passed is False
        assert "too small" not in result.reason


def test_the_reason_gives_the_numbers():
    result = ThresholdGate("accuracy", 0.95).check(correct_of(940, 1000))
    for text in ("accuracy", "0.9400", "1000 rows", "95%", "wilson", "[0.9235, 0.9531]",
                 f"{result.bound:.4f}", "0.95", "misses"):
        assert text in result.reason, f"{text!r} not in {result.reason!r}"
    assert result.to_dict()["reason"] == result.reason
    assert result.to_dict()["passed"] is False


@pytest.mark.parametrize("confidence", [0.5, 0.6, 0.8, 0.9, 0.95, 0.99])
def test_confident_mode_is_never_more_lenient_than_point_mode(confidence):
    p = correct_of(89, 100)
    point = ThresholdGate("accuracy", 0.9, mode="point", confidence=confidence).check(p)
    confident = ThresholdGate("accuracy", 0.9, confidence=confidence).check(p)
    assert point.passed is False
    assert confident.bound <= confident.estimate, confident.reason
    assert confident.passed is False, confident.reason


def test_a_higher_confidence_needs_more_evidence():
    p = correct_of(93, 100)
    bounds = [ThresholdGate("accuracy", 0.9, confidence=c).check(p).bound
              for c in (0.6, 0.8, 0.9, 0.95, 0.99)]
    assert bounds == sorted(bounds, reverse=True)
    assert ThresholdGate("accuracy", 0.85, confidence=0.8).check(p).passed is True
    assert ThresholdGate("accuracy", 0.85, confidence=0.99).check(p).passed is False


@pytest.fixture(scope="module")
def probabilistic():
    y = np.random.default_rng(11).integers(0, 3, 400)
    return with_proba(y, skill=2.0, seed=12, classes=3)


def test_log_loss_gates_compare_the_upper_bound_with_max(probabilistic):
    estimate = METRICS["log_loss"].compute(probabilistic.y_true, None, probabilistic.proba)
    lenient = ThresholdGate("log_loss", estimate + 1.0, resamples=RESAMPLES)
    result = lenient.check(probabilistic)
    assert result.estimate == pytest.approx(estimate)
    assert result.bound > result.estimate, "lower is better: the upper bound is compared"
    assert result.interval[0] < result.estimate < result.interval[1]
    assert result.bound < result.interval[1], "the one-sided bound is inside the two-sided one"
    assert result.passed is True
    assert "upper bound" in result.reason and "<=" in result.name

    tight = ThresholdGate("log_loss", (estimate + result.bound) / 2, resamples=RESAMPLES)
    failed = tight.check(probabilistic)
    assert failed.passed is False
    assert "too small to prove it" in failed.reason
    point = ThresholdGate("log_loss", (estimate + result.bound) / 2, mode="point",
                          resamples=RESAMPLES).check(probabilistic)
    assert point.passed is True
    assert ThresholdGate("log_loss", estimate * 0.9, mode="point").check(
        probabilistic).passed is False


def test_rmse_gates_compare_the_upper_bound_with_max():
    rng = np.random.default_rng(13)
    y = rng.normal(20.0, 5.0, 300)
    p = Predictions(y, y + rng.normal(0.0, 2.0, 300))
    estimate = METRICS["rmse"].compute(p.y_true, p.y_pred)
    result = ThresholdGate("rmse", 2.5, resamples=RESAMPLES).check(p)
    assert result.estimate == pytest.approx(estimate)
    assert estimate < result.bound < result.interval[1]
    assert result.passed is (result.bound <= 2.5)
    assert result.passed is True
    assert ThresholdGate("rmse", (estimate + result.bound) / 2,
                         resamples=RESAMPLES).check(p).passed is False
    assert ThresholdGate("rmse", estimate - 0.01, mode="point").check(p).passed is False


def test_bootstrap_metrics_give_an_interval_containing_the_estimate(probabilistic):
    result = ThresholdGate("macro_f1", 0.5, resamples=RESAMPLES).check(probabilistic)
    low, high = result.interval
    assert low < result.estimate < high
    assert low < result.bound < result.estimate
    assert result.passed is True
    assert "BCa bootstrap" in result.reason


def test_bootstrap_gates_are_seeded(probabilistic):
    first = ThresholdGate("macro_f1", 0.5, resamples=RESAMPLES, seed=3).check(probabilistic)
    again = ThresholdGate("macro_f1", 0.5, resamples=RESAMPLES, seed=3).check(probabilistic)
    assert first == again


def test_auc_gate_on_a_binary_classifier():
    y = np.random.default_rng(14).integers(0, 2, 150)
    p = with_proba(y, skill=1.5, seed=15)
    result = ThresholdGate("auc", 0.6, resamples=200).check(p)
    assert result.interval[0] < result.estimate < result.interval[1]
    assert result.passed is True


def test_a_probability_metric_without_probabilities_is_a_clear_error():
    # A regression model (or a classifier without predict_proba) gated on auc or log_loss.
    p = correct_of(90, 100)
    for metric in ("auc", "log_loss"):
        with pytest.raises(MlbuildError, match=metric):
            ThresholdGate(metric, 0.5 if metric == "auc" else 1.0,
                          resamples=RESAMPLES).check(p)


def test_an_auc_gate_on_a_multiclass_model_is_a_clear_error(probabilistic):
    # ACCURACY.md: AUC is for binary classifiers; a 3-class model must not crash in sklearn.
    with pytest.raises(MlbuildError, match="auc"):
        ThresholdGate("auc", 0.5, resamples=RESAMPLES).check(probabilistic)


@pytest.mark.parametrize("mode", ["strict", "Point", ""])
def test_an_unknown_mode_is_a_config_error(mode):
    with pytest.raises(ConfigError, match="mode"):
        ThresholdGate("accuracy", 0.9, mode=mode)


@pytest.mark.parametrize("confidence", [0, 0.3, 0.49, 1, 1.5, -0.1, 95])
def test_a_confidence_outside_half_to_one_is_a_config_error(confidence):
    with pytest.raises(ConfigError, match="confidence"):
        ThresholdGate("accuracy", 0.9, confidence=confidence)


def test_empty_predictions_are_a_data_error():
    empty = Predictions(np.array([], int), np.array([], int))
    for metric in ("accuracy", "macro_f1"):
        with pytest.raises(DataError, match="no rows"):
            ThresholdGate(metric, 0.9).check(empty)


# ============================================================================ change


def test_an_identical_candidate_passes_the_change_gate():
    baseline = correct_of(900, 1000)
    result = ChangeGate().check(baseline, Predictions(baseline.y_true, baseline.y_pred.copy()))
    assert result.passed is True
    assert result.p_value < 1e-5  # 1,000 identical rows prove "not 2 points worse"
    assert result.details["baseline_only"] == result.details["candidate_only"] == 0
    assert result.details["baseline"] == pytest.approx(0.9)
    assert result.estimate == pytest.approx(0.9)


def test_an_identical_candidate_on_too_few_rows_does_not_prove_non_inferiority():
    # 60 identical rows cannot rule out a 2-point drop: the burden is on the candidate.
    baseline = correct_of(54, 60)
    result = ChangeGate(margin=0.02).check(baseline, baseline)
    assert result.passed is False
    assert "not shown to be within the margin" in result.reason


@pytest.fixture(scope="module")
def planted():
    """Baseline right on 95% of 2,000 rows; the candidate also wrong on another 10%."""
    rng = np.random.default_rng(21)
    y = rng.integers(0, 5, 2000)
    base_pred = y.copy()
    base_wrong = rng.permutation(2000)[:100]
    base_pred[base_wrong] = (y[base_wrong] + 1) % 5
    right = np.flatnonzero(base_pred == y)
    extra = rng.permutation(right)[:200]
    cand_pred = base_pred.copy()
    cand_pred[extra] = (y[extra] + 2) % 5
    return Predictions(y, cand_pred), Predictions(y, base_pred)


@pytest.mark.parametrize("mode", ["non-inferiority", "regression"])
def test_a_planted_regression_fails_the_change_gate_in_both_modes(planted, mode):
    candidate, baseline = planted
    result = ChangeGate(margin=0.02, alpha=0.05, mode=mode).check(candidate, baseline)
    assert result.passed is False
    assert result.p_value == pytest.approx(stats.paired_change_p(200, 0, 2000, 0.02, mode))
    assert (result.details["baseline_only"], result.details["candidate_only"]) == (200, 0)
    assert result.estimate == pytest.approx(0.85) and result.details["baseline"] == 0.95
    for text in ("released model only right: 200", "candidate only right: 0",
                 f"p = {result.p_value:.4g}", "0.8500", "0.9500", "2000 rows", "Tango",
                 mode):
        assert text in result.reason, f"{text!r} not in {result.reason!r}"
    assert mode in result.name


def test_the_planted_regression_still_meets_a_lenient_threshold(planted):
    # The gate that catches it is the change gate: 85% still meets an 80% threshold.
    candidate, _ = planted
    assert ThresholdGate("accuracy", 0.8).check(candidate).passed is True


def _worse_by(drop: int, rows: int = 2000, seed: int = 22):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    cand_pred = y.copy()
    changed = rng.permutation(rows)[:drop]
    cand_pred[changed] = 1 - y[changed]
    return Predictions(y, cand_pred), Predictions(y, y.copy())


def test_the_margin_allows_a_small_drop():
    candidate, baseline = _worse_by(40)  # 2 points worse
    strict = ChangeGate(margin=0.01).check(candidate, baseline)
    assert strict.passed is False
    lenient = ChangeGate(margin=0.05).check(candidate, baseline)
    assert lenient.passed is True
    assert lenient.p_value < strict.p_value
    assert lenient.limit == 0.05


def test_regression_mode_passes_what_non_inferiority_cannot_show():
    # 3 points worse on 150 rows with margin 0.02: the data prove no regression beyond the
    # margin (regression mode passes), nor do they rule one out (non-inferiority fails).
    candidate, baseline = _worse_by(5, rows=150)
    assert ChangeGate(margin=0.02, mode="regression").check(candidate, baseline).passed is True
    assert ChangeGate(margin=0.02).check(candidate, baseline).passed is False


def test_a_better_candidate_passes():
    candidate, baseline = correct_of(950, 1000, seed=3), correct_of(900, 1000, seed=3)
    assert ChangeGate().check(candidate, baseline).passed is True


def test_without_a_baseline_the_change_gate_is_not_gated_and_says_why():
    result = ChangeGate().check(correct_of(90, 100), None)
    assert result.passed is None
    assert result.reason.startswith("Not gated")
    assert "no released model" in result.reason
    other = ChangeGate().check(correct_of(90, 100), None, absent="the lock releases it itself")
    assert other.reason == "Not gated: the lock releases it itself."


def test_a_released_model_missing_features_fails_the_change_gate_and_names_them():
    result = ChangeGate().check(correct_of(90, 100), None, missing_features=("mean_area", "x"))
    assert result.passed is False
    assert "mean_area, x" in result.reason and "accept_incomparable" in result.reason
    assert result.details == {"incomparable": True, "missing_features": ["mean_area", "x"]}
    accepted = ChangeGate(accept_incomparable=True).check(correct_of(90, 100), None,
                                                          missing_features=("mean_area",))
    assert accepted.passed is None and "models.lock records it" in accepted.reason


def test_a_baseline_scored_on_other_rows_is_a_data_error():
    with pytest.raises(DataError, match="different rows"):
        ChangeGate().check(correct_of(90, 100), correct_of(90, 101))


def test_a_log_loss_change_gate_tests_the_mean_with_a_paired_t_test():
    from scipy.stats import ttest_1samp

    y = np.random.default_rng(23).integers(0, 3, 600)
    baseline = with_proba(y, skill=2.5, seed=24, classes=3)
    same = ChangeGate("log_loss").check(
        Predictions(y, baseline.y_pred, baseline.proba.copy()), baseline)
    assert same.passed is True

    # The candidate is the baseline with its probabilities pulled toward uniform.
    worse_proba = 0.5 * baseline.proba + 0.5 / 3
    candidate = Predictions(y, worse_proba.argmax(axis=1), worse_proba)
    result = ChangeGate("log_loss", margin=0.02, alpha=0.05).check(candidate, baseline)
    loss = METRICS["log_loss"].row_loss
    diff = loss(y, None, worse_proba) - loss(y, None, baseline.proba)
    assert result.p_value == pytest.approx(ttest_1samp(diff, 0.02, alternative="less").pvalue)
    assert result.passed is False
    assert "paired t-test" in result.reason and f"p = {result.p_value:.4g}" in result.reason
    assert result.estimate > result.details["baseline"]
    assert ChangeGate("log_loss", margin=0.02).check(baseline, candidate).passed is True


def test_a_mean_loss_gate_fails_a_worse_mean_that_a_signed_rank_test_would_pass():
    # Defect 4: most rows a little better, a few much worse; the mean (the metric) is
    # worse. A signed-rank test measures the pseudo-median and sees an improvement.
    from scipy.stats import wilcoxon

    rng = np.random.default_rng(5)
    y = np.zeros(1000)
    base = Predictions(y, np.full(1000, 1.0))
    errors = np.where(rng.random(1000) < 0.9, 0.9, 2.5)
    cand = Predictions(y, errors)
    diff = METRICS["mae"].row_loss(y, errors, None) - METRICS["mae"].row_loss(y, base.y_pred, None)
    assert diff.mean() > 0.05 and wilcoxon(diff, alternative="greater").pvalue > 0.99
    assert ChangeGate("mae", margin=0.02).check(cand, base).passed is False
    assert ChangeGate("mae", margin=0.02, mode="regression").check(cand, base).passed is False


def test_an_rmse_change_gate_bootstraps_the_rmse_difference_in_rmse_units():
    rng = np.random.default_rng(25)
    y = rng.normal(0.0, 10.0, 400)
    baseline = Predictions(y, y + rng.normal(0.0, 1.0, 400))
    noisier = Predictions(y, y + rng.normal(0.0, 1.16, 400))  # RMSE about 16% worse
    result = ChangeGate("rmse", margin=0.05, resamples=500).check(noisier, baseline)
    difference = (METRICS["rmse"].compute(y, noisier.y_pred)
                  - METRICS["rmse"].compute(y, baseline.y_pred))
    assert result.details["difference"] == pytest.approx(difference)
    assert result.passed is False and "RMSE units" in result.reason
    assert ChangeGate("rmse", margin=0.05, resamples=500).check(baseline, noisier).passed
    # a margin as wide as the difference, in RMSE units, lets it through
    assert ChangeGate("rmse", margin=0.5, resamples=500).check(noisier, baseline).passed
    assert result.estimate == pytest.approx(METRICS["rmse"].compute(y, noisier.y_pred))


# ============================================================================ slices


def sliced(accuracies: list[float], rows: int, seed: int = 0):
    """Predictions and a slice column: slice ``s{i}`` has accuracy ``accuracies[i]``."""
    rng = np.random.default_rng(seed)
    ys, preds, values = [], [], []
    for i, acc in enumerate(accuracies):
        y = rng.integers(0, 3, rows)
        pred = y.copy()
        wrong = rng.permutation(rows)[: round(rows * (1 - acc))]
        pred[wrong] = (y[wrong] + 1) % 3
        ys.append(y)
        preds.append(pred)
        values += [f"s{i}"] * rows
    order = rng.permutation(len(values))
    p = Predictions(np.concatenate(ys)[order], np.concatenate(preds)[order])
    return p, np.array(values)[order]


def test_a_collapsed_slice_is_caught_while_the_global_accuracy_holds():
    p, region = sliced([0.97] * 9 + [0.4], rows=200)
    overall = ThresholdGate("accuracy", 0.9).check(p)
    assert overall.passed is True, overall.reason
    results = SliceGate("region", 0.9).check(p, region)
    assert len(results) == 10
    failed = [r for r in results if r.passed is False]
    assert [r.name for r in failed] == ["slice region=s9: accuracy >= 0.9 (confident)"]
    assert failed[0].estimate == pytest.approx(0.4)
    assert "80/200" in failed[0].reason and "does not prove" in failed[0].reason
    assert all(r.passed is True for r in results if r is not failed[0])
    assert all(r.kind == "slice" and r.n == 200 for r in results)


def test_small_slices_are_reported_not_gated():
    p, region = sliced([0.95, 0.95, 0.5], rows=20)
    p2, region2 = sliced([0.95], rows=100, seed=1)
    p = Predictions(np.concatenate([p.y_true, p2.y_true]), np.concatenate([p.y_pred, p2.y_pred]))
    region = np.concatenate([region, np.char.add(region2, "big")])
    results = {r.name.split(":")[0]: r for r in SliceGate("region", 0.9, min_rows=30).check(
        p, region)}
    for name in ("slice region=s0", "slice region=s1", "slice region=s2"):
        assert results[name].passed is None
        assert results[name].n == 20
        assert "Reported, not gated" in results[name].reason
        assert "min_rows = 30" in results[name].reason
        assert results[name].interval is not None
    assert results["slice region=s2"].estimate == pytest.approx(0.5)
    assert results["slice region=s0big"].passed is True


def test_a_required_slice_without_rows_fails():
    p, region = sliced([0.95, 0.95], rows=100)
    results = SliceGate("region", 0.8, required=("s0", "s7")).check(p, region)
    missing = [r for r in results if r.passed is False]
    assert len(missing) == 1
    assert missing[0].n == 0
    assert "region=s7" in missing[0].name and "no rows" in missing[0].reason
    assert all(r.passed is True for r in results if r is not missing[0])


def test_slices_by_class_use_the_labels_as_text():
    p = correct_of(190, 200, classes=3)
    results = SliceGate("class", 0.5, required=("0", "1", "2")).check(p, p.y_true)
    assert sorted(r.name.split(":")[0] for r in results) == [
        "slice class=0", "slice class=1", "slice class=2"]
    assert all(r.passed for r in results)
    assert sum(r.n for r in results) == 200


def test_every_slice_is_tested_at_alpha_without_a_correction():
    # Defect 5: "every slice meets the limit" is an intersection–union test. Five slices
    # that each just prove the limit all pass; a Holm correction would have failed them.
    p, region = sliced([0.935] * 5, rows=200)
    results = SliceGate("region", 0.9).check(p, region)
    raw = [r.p_value for r in results]
    assert all(0.01 < q < 0.05 for q in raw)
    assert all(r.passed is True for r in results)
    assert all(q > 0.05 for q in stats.holm(raw))  # what the old correction did
    assert "intersection–union" in results[0].reason and "no correction" in results[0].reason


def test_a_class_with_every_row_right_passes_its_slice():
    # Defect 5 as users met it: 15 of 15 right failed "does not prove 0.75" after Holm.
    p = correct_of(150, 150, classes=10, seed=2)
    results = SliceGate("class", 0.75, min_rows=10).check(p, p.y_true)
    assert [r.passed for r in results] == [True] * 10, [r.reason for r in results]


def _slices_with_baseline(drops: list[int], rows: int = 200):
    p, region = sliced([0.95] * len(drops), rows=rows, seed=4)
    cand = p.y_pred.copy()
    for i, drop in enumerate(drops):
        right = np.flatnonzero((region == f"s{i}") & (cand == p.y_true))[:drop]
        cand[right] = (p.y_true[right] + 1) % 3
    return Predictions(p.y_true, cand), p, region


@pytest.mark.parametrize("correction", ["holm", "bh"])
def test_not_worse_slices_are_corrected_over_the_slices(correction):
    candidate, baseline, region = _slices_with_baseline([0, 0, 30, 0])
    results = SliceGate("region", 0.5, not_worse=True, correction=correction).check(
        candidate, region, baseline)
    compared = [r for r in results if "not worse" in r.name]
    assert len(compared) == 4
    raw = [r.details["p_raw"] for r in compared]
    adjust = stats.holm if correction == "holm" else stats.benjamini_hochberg
    assert [r.p_value for r in compared] == pytest.approx(adjust(raw))
    assert [r.passed for r in compared] == [True, True, False, True]
    assert f"{correction}-adjusted over 4 slices" in compared[2].reason
    assert "released only right: 30" in compared[2].reason


def test_not_worse_slices_need_a_baseline():
    candidate, _, region = _slices_with_baseline([0, 30])
    results = SliceGate("region", 0.5, not_worse=True).check(candidate, region, None)
    assert not any("not worse" in r.name for r in results)


def test_a_single_slice_proves_its_limit_exactly_when_the_bound_does():
    # The slice p-value inverts the same interval the threshold gate uses.
    for method in ("wilson", "clopper-pearson"):
        for right in range(80, 101, 2):
            p = correct_of(right, 100)
            (result,) = SliceGate("all", 0.85, min_rows=1, interval=method).check(
                p, np.zeros(100))
            bound = stats.proportion_bound(right, 100, 0.95, method)
            assert result.passed is (bound >= 0.85), (method, right, result.reason)


def test_point_and_confident_slices():
    p, region = sliced([29 / 30, 0.8], rows=30)
    point = {r.name.split(":")[0]: r for r in SliceGate("region", 0.9, mode="point").check(
        p, region)}
    confident = {r.name.split(":")[0]: r for r in SliceGate("region", 0.9).check(p, region)}
    assert point["slice region=s0"].passed is True
    assert point["slice region=s0"].bound == point["slice region=s0"].estimate
    assert confident["slice region=s0"].passed is False
    assert "does not prove" in confident["slice region=s0"].reason
    assert point["slice region=s1"].passed is False
    assert "misses" in point["slice region=s1"].reason
    assert confident["slice region=s1"].passed is False


# ============================================================================ config


def gates_config(**gates) -> GatesConfig:
    return GatesConfig.model_validate(gates)


def test_a_valid_configuration_builds_its_gates():
    config = gates_config(
        mode="point", confidence=0.9, interval="clopper-pearson", correction="bh",
        bootstrap_resamples=500, seed=4,
        threshold=[{"metric": "accuracy", "min": 0.9},
                   {"metric": "log_loss", "max": 0.5, "mode": "confident"}],
        change={"metric": "log_loss", "margin": 0.01},
        slices=[{"by": "region", "min": 0.8, "min_rows": 50, "required": ["north"]}])
    thresholds, change, slices = build_gates(config)
    assert thresholds == [
        ThresholdGate("accuracy", 0.9, "point", 0.9, "clopper-pearson", 500, 4),
        ThresholdGate("log_loss", 0.5, "confident", 0.9, "clopper-pearson", 500, 4),
    ]
    assert change == ChangeGate("log_loss", 0.01, 0.05, "non-inferiority", False, 500, 4)
    assert slices == [SliceGate("region", 0.8, 50, ("north",), "point", 0.9,
                                "clopper-pearson", "bh")]


def test_a_non_inferiority_gate_without_a_margin_is_named():
    with pytest.raises(ValidationError, match="needs a margin above 0"):
        ChangeSpec(metric="accuracy", margin=0.0)
    assert ChangeSpec(margin=0.0, mode="regression").margin == 0.0


def test_the_default_configuration_is_confident_and_has_no_gates():
    thresholds, change, slices = build_gates(GatesConfig())
    assert (thresholds, change, slices) == ([], None, [])
    assert GatesConfig().mode == "confident" and GatesConfig().confidence == 0.95


def _message(excinfo) -> str:
    return str(excinfo.value)


def test_an_unknown_metric_is_named():
    with pytest.raises(ValidationError) as excinfo:
        gates_config(threshold=[{"metric": "acuracy", "min": 0.9}])
    assert "unknown metric 'acuracy'" in _message(excinfo)
    assert "accuracy" in _message(excinfo).split("known:")[1]


def test_min_on_a_lower_is_better_metric_is_named():
    with pytest.raises(ValidationError) as excinfo:
        ThresholdSpec(metric="log_loss", min=0.3)
    assert "log_loss" in _message(excinfo) and "`max`" in _message(excinfo)
    assert "lower is better" in _message(excinfo)


def test_max_on_a_higher_is_better_metric_is_named():
    with pytest.raises(ValidationError) as excinfo:
        ThresholdSpec(metric="accuracy", max=0.3)
    assert "accuracy" in _message(excinfo) and "`min`" in _message(excinfo)


def test_a_threshold_without_a_limit_is_named():
    with pytest.raises(ValidationError, match="needs `min`"):
        ThresholdSpec(metric="macro_f1")


def test_both_min_and_max_is_named():
    # The message must say what is wrong: `max` is set where only `min` belongs.
    with pytest.raises(ValidationError) as excinfo:
        ThresholdSpec(metric="accuracy", min=0.9, max=1.0)
    message = _message(excinfo)
    assert "`max`" in message or "both" in message, message


def test_a_change_metric_without_a_per_row_loss_is_named():
    with pytest.raises(ValidationError) as excinfo:
        gates_config(change={"metric": "macro_f1", "margin": 0.01})
    assert "macro_f1 has no per-row loss" in _message(excinfo)
    for usable in ("accuracy", "log_loss", "rmse", "mae"):
        assert usable in _message(excinfo)


def test_a_change_gate_with_an_unknown_metric_is_named():
    with pytest.raises(ValidationError, match="unknown metric 'nope'"):
        ChangeSpec(metric="nope", margin=0.01)


@pytest.mark.parametrize("gates, key", [
    ({"mode": "strict"}, "mode"),
    ({"confidence": 0.4}, "confidence"),
    ({"confidence": 1.0}, "confidence"),
    ({"correction": "bonferroni"}, "correction"),
    ({"interval": "wald"}, "interval"),
    ({"bootstrap_resamples": 10}, "bootstrap_resamples"),
    ({"change": {"margin": -0.1}}, "margin"),
    ({"change": {"alpha": 0.5, "margin": 0.01}}, "alpha"),
    ({"change": {"margin": 0.01, "mode": "superiority"}}, "mode"),
    ({"change": {}}, "margin"),
    ({"slices": [{"by": "region", "min": 1.5}]}, "min"),
    ({"slices": [{"by": "region", "min": 0.9, "metric": "log_loss"}]}, "metric"),
    ({"threshold": [{"metric": "accuracy", "min": 0.9, "mnode": "point"}]}, "mnode"),
])
def test_bad_values_are_validation_errors_naming_the_key(gates, key):
    with pytest.raises(ValidationError, match=key):
        gates_config(**gates)


# ============================================================================ bootstrap


@pytest.mark.parametrize("rows", [3, 20, 50])
def test_a_confident_bootstrap_gate_proves_nothing_from_a_perfect_small_sample(rows):
    # Defect 3: every row right gave a zero-width interval, and macro_f1 >= 0.99 "passed".
    p = correct_of(rows, rows, classes=3, seed=rows)
    result = ThresholdGate("macro_f1", 0.99, resamples=RESAMPLES).check(p)
    assert result.estimate == 1.0
    assert result.passed is False
    assert "degenerate" in result.reason and "at least 299 rows" in result.reason
    assert result.details["bootstrap"]["degenerate"] is True
    # point mode still compares the estimate: it never claimed to prove anything
    assert ThresholdGate("macro_f1", 0.99, mode="point", resamples=RESAMPLES).check(p).passed


def test_a_bootstrap_gate_needs_rows_of_every_class():
    p = correct_of(95, 100, classes=2, seed=1)
    y = p.y_true.copy()
    y[:4] = 2                       # a third class with 4 rows
    result = ThresholdGate("macro_f1", 0.5, resamples=RESAMPLES, min_class_rows=10).check(
        Predictions(y, p.y_pred))
    assert result.passed is False
    assert "at least 10 rows of each class" in result.reason and "2 (4)" in result.reason


def test_a_97_percent_model_rarely_proves_macro_f1_of_99_on_50_rows():
    # It passed at least 22% of the time (0.97 ** 50: every row right). Seeded simulation.
    rng = np.random.default_rng(31)
    gate = ThresholdGate("macro_f1", 0.99, resamples=RESAMPLES, min_class_rows=1)
    passes = 0
    for _ in range(200):
        y = rng.integers(0, 10, 50)
        pred = np.where(rng.random(50) < 0.97, y, (y + rng.integers(1, 10, 50)) % 10)
        passes += gate.check(Predictions(y, pred)).passed
    assert passes / 200 <= 0.05


def test_macro_f1_bootstrap_bounds_come_from_the_confusion_matrix():
    from mlbuild.accuracy import resample
    from mlbuild.accuracy.metrics import COUNT_STATISTICS, confusion_matrix

    p = correct_of(270, 300, classes=3, seed=5)
    result = ThresholdGate("macro_f1", 0.8, resamples=RESAMPLES, seed=3).check(p)
    direct = resample.confusion_bootstrap(confusion_matrix(p.y_true, p.y_pred, 3),
                                          COUNT_STATISTICS["macro_f1"], RESAMPLES, 3)
    assert result.bound == pytest.approx(direct.bound(0.95, "lower"))
    assert result.interval == pytest.approx(direct.interval(0.95))
    assert "BCa bootstrap" in result.reason


def test_loss_gates_state_an_approximate_operating_characteristic():
    y = np.random.default_rng(23).integers(0, 3, 600)
    baseline = with_proba(y, skill=2.5, seed=24, classes=3)
    candidate = with_proba(y, skill=2.5, seed=25, classes=3)
    gate = ChangeGate("log_loss", margin=0.05)
    result = gate.check(candidate, baseline)
    oc = gate.operating_characteristic(600, 0.0, result.details)
    assert oc["exact"] is False and oc["at_margin"] == pytest.approx(0.05)
    assert oc["at_equal"] > oc["at_margin"]
    threshold = ThresholdGate("log_loss", 1.0, resamples=RESAMPLES).check(candidate)
    stated = threshold.details["operating_characteristic"]
    assert stated["at_limit"] == pytest.approx(0.05) and "normal approximation" in threshold.reason
