"""The metrics of a model's predictions, against scikit-learn's on seeded random data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as sk

from mlbuild.accuracy.metrics import METRICS, Predictions, confusion_matrix


def classifier_output(seed: int, rows: int = 500, classes: int = 4, skill: float = 0.7):
    """Labels, predicted classes and probabilities of a plausible classifier."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, rows)
    logits = rng.normal(0.0, 1.0, (rows, classes))
    logits[np.arange(rows), y] += skill * 3
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba.argmax(axis=1), proba


def regressor_output(seed: int, rows: int = 500):
    rng = np.random.default_rng(seed)
    y = rng.normal(50.0, 10.0, rows)
    return y, y + rng.normal(0.0, 3.0, rows)


def compute(name, y, pred, proba=None):
    return METRICS[name].compute(y, pred, proba)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("classes", [2, 3, 7])
def test_classification_metrics_match_sklearn(seed, classes):
    y, pred, proba = classifier_output(seed, classes=classes, skill=0.3 + 0.2 * seed)
    assert compute("accuracy", y, pred) == pytest.approx(sk.accuracy_score(y, pred), abs=1e-12)
    assert compute("balanced_accuracy", y, pred) == pytest.approx(
        sk.balanced_accuracy_score(y, pred), abs=1e-12)
    assert compute("macro_f1", y, pred) == pytest.approx(
        sk.f1_score(y, pred, average="macro"), abs=1e-12)
    assert compute("log_loss", y, pred, proba) == pytest.approx(
        sk.log_loss(y, proba, labels=list(range(classes))), rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matches_sklearn(seed):
    y, pred, proba = classifier_output(seed, classes=2, skill=0.2)
    assert compute("auc", y, pred, proba) == pytest.approx(
        sk.roc_auc_score(y, proba[:, 1]), abs=1e-12)
    assert 0.5 < compute("auc", y, pred, proba) < 1.0


def test_auc_of_a_single_class_is_nan():
    y = np.ones(20, int)
    proba = np.tile([0.3, 0.7], (20, 1))
    assert math.isnan(compute("auc", y, y, proba))


def test_metrics_when_a_class_is_predicted_but_never_true():
    # sklearn scores every label of y_true ∪ y_pred for F1, and only true classes for recall.
    y = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 0])
    pred = np.array([0, 3, 1, 3, 1, 2, 2, 0, 2, 0])
    assert compute("macro_f1", y, pred) == pytest.approx(
        sk.f1_score(y, pred, average="macro", zero_division=0), abs=1e-12)
    with pytest.warns(UserWarning):
        expected = sk.balanced_accuracy_score(y, pred)
    assert compute("balanced_accuracy", y, pred) == pytest.approx(expected, abs=1e-12)


def test_a_class_never_predicted_counts_zero_in_macro_f1():
    y = np.array([0, 1, 2, 2, 1, 0])
    pred = np.array([0, 1, 1, 1, 1, 0])
    assert compute("macro_f1", y, pred) == pytest.approx(
        sk.f1_score(y, pred, average="macro", zero_division=0), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regression_metrics_match_sklearn(seed):
    y, pred = regressor_output(seed)
    assert compute("rmse", y, pred) == pytest.approx(
        math.sqrt(sk.mean_squared_error(y, pred)), rel=1e-12)
    assert compute("mae", y, pred) == pytest.approx(sk.mean_absolute_error(y, pred), rel=1e-12)


def test_regression_metrics_accept_integer_truth():
    y = np.array([1, 2, 3, 4])
    pred = np.array([1.5, 2.0, 2.0, 4.0])
    assert compute("rmse", y, pred) == pytest.approx(math.sqrt((0.25 + 0 + 1 + 0) / 4))
    assert compute("mae", y, pred) == pytest.approx(1.5 / 4)


def test_metrics_return_python_floats():
    y, pred, proba = classifier_output(3, classes=2)
    for name in ("accuracy", "balanced_accuracy", "macro_f1", "auc", "log_loss"):
        assert type(compute(name, y, pred, proba)) is float, name


def test_direction_kind_and_uncertainty_of_each_metric():
    assert {n for n, m in METRICS.items() if m.higher_is_better} == {
        "accuracy", "balanced_accuracy", "macro_f1", "auc"}
    assert {n for n, m in METRICS.items() if m.model == "regression"} == {"rmse", "mae"}
    assert {n for n, m in METRICS.items() if m.uncertainty == "proportion"} == {"accuracy"}
    assert {n for n, m in METRICS.items() if m.needs_proba} == {"auc", "log_loss"}
    assert all(m.name == n for n, m in METRICS.items())


def test_row_losses_add_up_to_their_metric():
    y, pred, proba = classifier_output(4, classes=3)
    loss = METRICS["accuracy"].row_loss(y, pred, proba)
    assert loss.shape == y.shape and set(np.unique(loss)) <= {0.0, 1.0}
    assert loss.mean() == pytest.approx(1 - compute("accuracy", y, pred))
    assert METRICS["log_loss"].row_loss(y, pred, proba).mean() == pytest.approx(
        compute("log_loss", y, pred, proba), rel=1e-12)
    yr, pr = regressor_output(5)
    assert math.sqrt(METRICS["rmse"].row_loss(yr, pr, None).mean()) == pytest.approx(
        compute("rmse", yr, pr), rel=1e-12)
    assert METRICS["mae"].row_loss(yr, pr, None).mean() == pytest.approx(
        compute("mae", yr, pr), rel=1e-12)
    assert all(METRICS[n].row_loss is None for n in ("balanced_accuracy", "macro_f1", "auc"))


def test_log_loss_is_finite_for_a_zero_probability():
    y = np.array([0, 1])
    proba = np.array([[1.0, 0.0], [1.0, 0.0]])
    value = compute("log_loss", y, np.array([0, 0]), proba)
    assert math.isfinite(value) and value > 10


# ----------------------------------------------------------------- confusion matrix


def test_confusion_matrix_matches_sklearn_and_sums_up():
    y, pred, _ = classifier_output(6, rows=400, classes=5)
    matrix = confusion_matrix(y, pred, 5)
    assert matrix.shape == (5, 5)
    assert np.array_equal(matrix, sk.confusion_matrix(y, pred, labels=range(5)))
    assert matrix.sum() == len(y)
    assert np.array_equal(matrix.sum(axis=1), np.bincount(y, minlength=5))
    assert np.array_equal(matrix.sum(axis=0), np.bincount(pred, minlength=5))
    assert np.trace(matrix) == np.sum(y == pred)


def test_confusion_matrices_of_chunks_add_up():
    y, pred, _ = classifier_output(7, rows=300, classes=3)
    whole = confusion_matrix(y, pred, 3)
    parts = sum(confusion_matrix(y[i:i + 37], pred[i:i + 37], 3) for i in range(0, 300, 37))
    assert np.array_equal(parts, whole)


def test_confusion_matrix_keeps_absent_classes():
    matrix = confusion_matrix(np.array([0, 0]), np.array([0, 2]), 4)
    assert matrix.shape == (4, 4) and matrix.sum() == 2
    assert matrix[0, 0] == 1 and matrix[0, 2] == 1


# ----------------------------------------------------------------- Predictions


def test_predictions_take_selects_the_same_rows_of_every_array():
    y, pred, proba = classifier_output(8, rows=50, classes=3)
    p = Predictions(y, pred, proba)
    assert len(p) == 50
    rows = np.array([3, 0, 49, 7])
    part = p.take(rows)
    assert len(part) == 4
    assert np.array_equal(part.y_true, y[rows])
    assert np.array_equal(part.y_pred, pred[rows])
    assert np.array_equal(part.proba, proba[rows])
    mask = y == 1
    assert len(p.take(mask)) == mask.sum()
    assert np.all(p.take(mask).y_true == 1)


def test_predictions_take_without_probabilities():
    y, pred = regressor_output(9, rows=20)
    part = Predictions(y, pred).take(np.arange(5))
    assert part.proba is None
    assert np.array_equal(part.y_pred, pred[:5])
