"""Evaluation: the fast tier's sample, chunked parallel prediction, running every gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlbuild.accuracy import power
from mlbuild.accuracy.evaluation import (
    Evaluation,
    TiersConfig,
    evaluate,
    plan_sample,
    predict_in_chunks,
    stratified_sample,
)
from mlbuild.accuracy.gates import GateResult, GatesConfig
from mlbuild.accuracy.metrics import Predictions

# ----------------------------------------------------------------- sample plan


SHIPPED_GATES = {"threshold": [{"metric": "accuracy", "min": 0.90}],
                 "change": {"metric": "accuracy", "margin": 0.02},
                 "slices": [{"by": "class", "min": 0.75, "min_rows": 20}]}


def test_the_plan_sizes_the_gate_that_runs_not_a_textbook_test():
    # Defect 1: 150 rows (the old plan) pass a model at 0.95 only 2 times in 3.
    gates = GatesConfig.model_validate({"threshold": [{"metric": "accuracy", "min": 0.90}]})
    plan = plan_sample(TiersConfig(expected=0.95, power=0.8), gates, 10_000)
    (accuracy,) = plan.requirements
    assert plan.rows_needed == accuracy.rows == power.threshold_rows(
        0.95, 0.90, 0.95, "wilson", "confident", 0.8)
    assert 160 <= plan.rows <= 190
    assert accuracy.passes_good >= 0.8 and accuracy.passes_bad <= 0.06
    assert power.threshold_pass_probability(150, 0.95, 0.90, 0.95, "wilson",
                                            "confident") == pytest.approx(0.664, abs=0.001)
    text = "\n".join(plan.lines())
    assert f"{plan.rows} rows, so that each gate below passes a model at the expected " in text
    assert "false alarm" in text and "miss" in text and "available" not in text


def test_without_an_accuracy_gate_the_plan_falls_back_to_expected_minus_drop():
    plan = plan_sample(TiersConfig(expected=0.95, drop=0.02), GatesConfig(), 10_000)
    assert plan.rows_needed == power.threshold_rows(0.95, 0.93, 0.95, "wilson", "confident", 0.8)
    assert "expected - drop = 0.93" in plan.warnings[0]


def test_the_plan_uses_every_row_when_there_are_fewer_and_warns_of_the_power_lost():
    gates = GatesConfig.model_validate(SHIPPED_GATES)
    plan = plan_sample(TiersConfig(expected=0.95, discordance=0.1), gates, 500)
    assert plan.rows == 500 < plan.rows_needed
    assert "only 500 are available, so all are used" in plan.describe()
    change = next(r for r in plan.requirements if "released" in r.gate)
    assert change.rows == plan.rows_needed and change.passes_good < 0.8
    assert any("probability only" in w for w in plan.warnings)


def test_the_change_gate_is_planned_at_the_configured_discordance():
    gates = GatesConfig.model_validate(SHIPPED_GATES)
    low = plan_sample(TiersConfig(discordance=0.02), gates)
    high = plan_sample(TiersConfig(discordance=0.08), gates)
    rows = [next(r for r in p.requirements if "released" in r.gate).rows for p in (low, high)]
    assert rows == [power.paired_rows(0.02, 0.02, 0.05, 0.8), power.paired_rows(0.08, 0.02,
                                                                                0.05, 0.8)]
    assert rows[0] < rows[1]


def test_the_plan_says_what_each_slice_needs_and_warns_of_small_slices():
    gates = GatesConfig.model_validate(SHIPPED_GATES)
    plan = plan_sample(TiersConfig(discordance=0.02), gates, 10_000,
                       {"class": {"a": 0.97, "b": 0.03}})
    (slice_rows,) = [r for r in plan.requirements if r.gate.startswith("each slice")]
    assert slice_rows.rows == power.threshold_rows(0.95, 0.75, 0.95, "wilson", "confident", 0.8)
    assert any("slice class=b" in w and "min_rows = 20" in w for w in plan.warnings)


def test_the_plan_follows_power():
    gates = GatesConfig.model_validate({"threshold": [{"metric": "accuracy", "min": 0.90}]})
    loose = plan_sample(TiersConfig(power=0.8), gates, 100_000)
    strict = plan_sample(TiersConfig(power=0.95), gates, 100_000)
    assert strict.rows > loose.rows
    assert strict.requirements[0].passes_good >= 0.95


# ----------------------------------------------------------------- stratified sample


@pytest.fixture(scope="module")
def labels():
    rng = np.random.default_rng(0)
    return rng.choice(np.array(["a", "b", "c", "d"]), size=3001, p=[0.6, 0.25, 0.1, 0.05])


@pytest.mark.parametrize("rows", [1, 2, 10, 822, 1500, 3000])
def test_the_sample_keeps_each_class_share_within_one_row(labels, rows):
    sample = stratified_sample(labels, rows, seed=1)
    assert len(sample) == rows
    assert len(np.unique(sample)) == rows
    assert np.all(np.diff(sample) > 0), "sorted"
    values, counts = np.unique(labels, return_counts=True)
    for value, count in zip(values, counts, strict=True):
        share = rows * count / len(labels)
        assert abs(np.sum(labels[sample] == value) - share) < 1, (value, share)


def test_the_sample_is_seeded(labels):
    first = stratified_sample(labels, 822, seed=5)
    assert np.array_equal(stratified_sample(labels, 822, seed=5), first)
    assert not np.array_equal(stratified_sample(labels, 822, seed=6), first)


@pytest.mark.parametrize("rows", [3001, 5000])
def test_asking_for_every_row_returns_every_row(labels, rows):
    assert np.array_equal(stratified_sample(labels, rows, seed=0), np.arange(len(labels)))


# ----------------------------------------------------------------- chunked prediction


@pytest.fixture(scope="module")
def model_and_data():
    import lightgbm
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=700, n_features=8, n_informative=5, n_classes=3,
                               random_state=0)
    columns = [f"f{i}" for i in range(8)]
    train = pd.DataFrame(x[:400], columns=columns)
    test = pd.DataFrame(x[400:], columns=columns)
    model = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=7, n_jobs=1, verbose=-1,
                                    random_state=0)
    model.fit(train, y[:400])

    def predict(frame):
        proba = model.predict_proba(frame)
        return proba.argmax(axis=1), proba

    return predict, test, y[400:]


def test_chunks_and_workers_do_not_change_the_predictions_or_the_decisions(model_and_data):
    predict, test, y = model_and_data
    config = GatesConfig.model_validate({
        "bootstrap_resamples": 200,
        "threshold": [{"metric": "accuracy", "min": 0.7},
                      {"metric": "log_loss", "max": 0.6},
                      {"metric": "macro_f1", "min": 0.7}],
        "slices": [{"by": "class", "min": 0.7, "min_rows": 20}],
    })
    reference = None
    for chunk_rows in (1, 7, 1000):
        for workers in (1, 3):
            pred, proba = predict_in_chunks(predict, test, chunk_rows, workers)
            assert pred.shape == (300,) and proba.shape == (300, 3)
            ev = evaluate(Predictions(y, pred, proba), config, kind="classification",
                          tier="full")
            outcome = (pred, proba, ev.metrics, ev.results)
            if reference is None:
                reference = outcome
                assert np.array_equal(pred, predict(test)[0])
                continue
            assert np.array_equal(pred, reference[0]), (chunk_rows, workers)
            assert np.array_equal(proba, reference[1]), (chunk_rows, workers)
            assert ev.metrics == reference[2], (chunk_rows, workers)
            assert ev.results == reference[3], (chunk_rows, workers)


@pytest.mark.parametrize("chunk_rows, workers", [(1, 1), (3, 4), (10, 2), (64, 3)])
def test_chunks_are_joined_in_row_order(chunk_rows, workers):
    frame = pd.DataFrame({"x": np.arange(50) * 3})

    def predict(part):
        return part["x"].to_numpy() // 3, None

    pred, proba = predict_in_chunks(predict, frame, chunk_rows, workers)
    assert proba is None
    assert np.array_equal(pred, np.arange(50))


# ----------------------------------------------------------------- evaluate


def _binary(rows: int = 400, seed: int = 0, skill: float = 2.0) -> Predictions:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    logits = rng.normal(0.0, 1.0, (rows, 2))
    logits[np.arange(rows), y] += skill
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return Predictions(y, proba.argmax(axis=1), proba)


def test_a_missing_slice_column_fails_and_is_named():
    config = GatesConfig.model_validate({"slices": [{"by": "region", "min": 0.5}]})
    ev = evaluate(_binary(), config, kind="classification", tier="fast",
                  columns={"age": np.zeros(400)})
    (result,) = ev.results
    assert result.passed is False
    assert "'region'" in result.reason and "age, class" in result.reason
    assert ev.passed is False
    assert ev.failures == [result]


def test_evaluate_runs_every_configured_gate():
    candidate = _binary(seed=1)
    baseline = Predictions(candidate.y_true, candidate.y_pred.copy(), candidate.proba.copy())
    region = np.where(np.arange(400) % 2 == 0, "north", "south")
    config = GatesConfig.model_validate({
        "threshold": [{"metric": "accuracy", "min": 0.6}],
        "change": {"metric": "accuracy", "margin": 0.05},
        "slices": [{"by": "region", "min": 0.6}, {"by": "class", "min": 0.6}],
    })
    ev = evaluate(candidate, config, kind="classification", tier="full", baseline=baseline,
                  columns={"region": region})
    assert [r.kind for r in ev.results] == ["threshold", "change", "slice", "slice", "slice",
                                            "slice"]
    assert ev.passed is True and ev.failures == []
    assert ev.n == 400 and ev.tier == "full" and ev.model_kind == "classification"
    assert ev.candidate is candidate and ev.baseline is baseline
    assert ev.baseline_metrics == ev.metrics
    assert set(ev.metrics) == {"accuracy", "balanced_accuracy", "macro_f1", "log_loss"}
    assert ev.summary() == ("accuracy gates passed (full tier, 400 rows): 6 passed, 0 failed "
                            "of 6 gated; 0 not gated")
    change = ev.results[1]
    assert change.details["operating_characteristic"]["at_margin"] <= 0.06
    assert "exact sums" in change.reason


def test_auc_is_computed_only_when_a_gate_uses_it():
    config = GatesConfig.model_validate({"bootstrap_resamples": 100, "threshold": [
        {"metric": "auc", "min": 0.5, "mode": "point"}]})
    p = _binary(rows=120, seed=2)
    assert "auc" not in evaluate(p, GatesConfig(), kind="classification", tier="full").metrics
    assert "auc" in evaluate(p, config, kind="classification", tier="full").metrics


def test_a_regression_evaluation_reports_regression_metrics():
    rng = np.random.default_rng(3)
    y = rng.normal(0.0, 1.0, 200)
    config = GatesConfig.model_validate({"bootstrap_resamples": 100,
                                         "threshold": [{"metric": "mae", "max": 1.0}]})
    ev = evaluate(Predictions(y, y + rng.normal(0.0, 0.3, 200)), config, kind="regression",
                  tier="full")
    assert set(ev.metrics) == {"rmse", "mae"}
    assert ev.passed is True


def _result(passed, name="g"):
    return GateResult(name, "threshold", "accuracy", passed, f"{name} reason")


def test_evaluation_passed_failures_and_summary():
    ev = Evaluation("fast", "classification", 822, {"accuracy": 0.9},
                    [_result(True, "a"), _result(None, "b"), _result(False, "c"),
                     _result(True, "d")])
    assert ev.passed is False
    assert [r.name for r in ev.failures] == ["c"]
    assert ev.summary() == ("accuracy gates FAILED (fast tier, 822 rows): 2 passed, 1 failed "
                            "of 3 gated; 1 not gated")
    assert ev.counts() == {"gated": 3, "passed": 2, "failed": 1, "not_gated": 1}

    skipped_only = Evaluation("full", "classification", 10, {}, [_result(None), _result(True)])
    assert skipped_only.passed is True and skipped_only.failures == []
    assert skipped_only.summary() == (
        "accuracy gates passed (full tier, 10 rows): 1 passed, 0 failed of 1 gated; 1 not gated")
