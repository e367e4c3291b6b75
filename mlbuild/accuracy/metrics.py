"""Metrics of a model's predictions, from per-row arrays in row order.

Each metric knows whether higher is better, which kind of model it applies to, and how
its uncertainty is measured: ``proportion`` metrics (accuracy) get exact binomial
intervals from counts; the others a seeded paired bootstrap over rows. Per-row losses
(``row_loss``) feed the paired change tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np

Kind = Literal["classification", "regression"]


@dataclass(frozen=True)
class Predictions:
    """What a model said about each row, with the truth; arrays share their first axis."""

    y_true: np.ndarray
    y_pred: np.ndarray                 # predicted class, or predicted value
    proba: np.ndarray | None = None    # (rows, classes) for classifiers

    def __len__(self) -> int:
        return len(self.y_true)

    def take(self, rows: np.ndarray) -> Predictions:
        return Predictions(self.y_true[rows], self.y_pred[rows],
                           None if self.proba is None else self.proba[rows])


def _proba_of_true(y_true, proba):
    import numpy as np

    clipped = np.clip(proba[np.arange(len(y_true)), y_true.astype(int)], 1e-15, 1.0)
    return clipped


def _log(x):
    import numpy as np

    return np.log(x)


def accuracy(y_true, y_pred, proba=None) -> float:
    import numpy as np

    return float(np.mean(y_true == y_pred))


def balanced_accuracy(y_true, y_pred, proba=None) -> float:
    import numpy as np

    classes = np.unique(y_true)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in classes]))


def macro_f1(y_true, y_pred, proba=None) -> float:
    import numpy as np

    scores = []
    for c in np.union1d(np.unique(y_true), np.unique(y_pred)):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def auc(y_true, y_pred, proba) -> float:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y_true)) < 2:
        return float("nan")
    return float(roc_auc_score(y_true, proba[:, 1]))


def log_loss(y_true, y_pred, proba) -> float:
    import numpy as np

    return float(np.mean(-np.log(_proba_of_true(y_true, proba))))


def rmse(y_true, y_pred, proba=None) -> float:
    import numpy as np

    return float(np.sqrt(np.mean((np.asarray(y_true, float) - y_pred) ** 2)))


def mae(y_true, y_pred, proba=None) -> float:
    import numpy as np

    return float(np.mean(np.abs(np.asarray(y_true, float) - y_pred)))


@dataclass(frozen=True)
class Metric:
    name: str
    compute: Callable[..., float]
    higher_is_better: bool
    model: Kind
    uncertainty: Literal["proportion", "bootstrap"]
    needs_proba: bool = False
    #: costs a sort of every row: computed for reports only when a gate uses it
    costly: bool = False
    #: per-row loss whose mean the metric is (or is monotone in), for paired tests
    row_loss: Callable[..., np.ndarray] | None = None


METRICS = {
    m.name: m
    for m in (
        Metric("accuracy", accuracy, True, "classification", "proportion",
               row_loss=lambda y, p, q: (y != p).astype(float)),
        Metric("balanced_accuracy", balanced_accuracy, True, "classification", "bootstrap"),
        Metric("macro_f1", macro_f1, True, "classification", "bootstrap"),
        Metric("auc", auc, True, "classification", "bootstrap", needs_proba=True, costly=True),
        Metric("log_loss", log_loss, False, "classification", "bootstrap", needs_proba=True,
               row_loss=lambda y, p, q: -_log(_proba_of_true(y, q))),
        Metric("rmse", rmse, False, "regression", "bootstrap",
               row_loss=lambda y, p, q: (y.astype(float) - p) ** 2),
        Metric("mae", mae, False, "regression", "bootstrap",
               row_loss=lambda y, p, q: abs(y.astype(float) - p)),
    )
}


def counts_of(p: Predictions) -> np.ndarray | None:
    """The confusion matrix of a classifier's predictions, or None when its labels are not
    class indices (whole numbers from 0)."""
    import numpy as np

    if not len(p) or not all(np.issubdtype(a.dtype, np.integer) and a.min() >= 0
                             for a in (p.y_true, p.y_pred)):
        return None
    return confusion_matrix(p.y_true, p.y_pred, int(max(p.y_true.max(), p.y_pred.max())) + 1)


def confusion_matrix(y_true, y_pred, classes: int) -> np.ndarray:
    import numpy as np

    """Counts, rows = truth, columns = prediction; adds up across chunks."""
    index = np.asarray(y_true, int) * classes + np.asarray(y_pred, int)
    return np.bincount(index, minlength=classes * classes).reshape(classes, classes)


# Confusion-matrix metrics from cell counts, vectorised over any leading axes: each takes
# (..., K, K) counts (rows = truth, columns = prediction) and returns (...) floats equal to
# the per-row function on the rows those counts describe. Which classes count follows the
# counts given, as recomputing on the rows would: a class no row has (as truth, or as truth
# or prediction for macro-F1) is left out of the average, so a bootstrap resample that lacks
# a class of the original sample is scored as the per-row function would score its rows.

def accuracy_from_counts(counts) -> np.ndarray:
    import numpy as np

    counts = np.asarray(counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diagonal(counts, axis1=-2, axis2=-1).sum(axis=-1) / counts.sum(axis=(-2, -1))


def balanced_accuracy_from_counts(counts) -> np.ndarray:
    """Mean recall over the classes present as truth in ``counts``."""
    import numpy as np

    counts = np.asarray(counts)
    truth = counts.sum(axis=-1)
    present = truth > 0
    correct = np.diagonal(counts, axis1=-2, axis2=-1)
    recall = np.divide(correct, truth, out=np.zeros(truth.shape), where=present)
    with np.errstate(invalid="ignore", divide="ignore"):
        return recall.sum(axis=-1) / present.sum(axis=-1)


def macro_f1_from_counts(counts) -> np.ndarray:
    """Mean F1 over the classes present as truth or prediction; F1 = 0 when tp = 0."""
    import numpy as np

    counts = np.asarray(counts)
    both = counts.sum(axis=-1) + counts.sum(axis=-2)  # 2 tp + fp + fn
    present = both > 0
    tp = np.diagonal(counts, axis1=-2, axis2=-1)
    f1 = np.divide(2 * tp, both, out=np.zeros(both.shape), where=present)
    with np.errstate(invalid="ignore", divide="ignore"):
        return f1.sum(axis=-1) / present.sum(axis=-1)


COUNT_STATISTICS: dict[str, Callable[..., np.ndarray]] = {
    "accuracy": accuracy_from_counts,
    "balanced_accuracy": balanced_accuracy_from_counts,
    "macro_f1": macro_f1_from_counts,
}


def from_counts(name: str) -> Callable[..., np.ndarray] | None:
    """The vectorised count statistic of metric ``name``, or None if it is not a function of
    the confusion matrix."""
    return COUNT_STATISTICS.get(name)
