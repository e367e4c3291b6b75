"""The report's figure: one PNG, 800 px wide, beside report.html.

For a classifier: the confusion matrix of the candidate (and of the released model) with
scikit-learn's ``ConfusionMatrixDisplay`` (every class on both axes, counts in a colour
that reads on their cell), then the ROC curve (two classes) or a calibration curve of the
top-class confidence over bins of equal row counts, each point labelled with its rows.
For a regressor: predicted against true values, and the residuals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlbuild.accuracy.evaluation import Evaluation
from mlbuild.accuracy.metrics import Predictions, confusion_matrix

WIDTH_PX = 800
DPI = 100
#: at least this many rows per calibration bin, and at most this many bins
BIN_ROWS, MAX_BINS = 25, 10


def write_plots(ev: Evaluation, path: str | Path) -> tuple[int, int]:
    """Draw the evaluation's figure into ``path`` (PNG); return its width and height in px."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [("candidate", ev.candidate)] if ev.candidate is not None else []
    if ev.baseline is not None:
        models.append(("released model", ev.baseline))
    if not models:
        fig = _message(plt, "No predictions were kept for this evaluation.")
    elif ev.model_kind == "classification":
        fig = _classifier(plt, models)
    else:
        fig = _regressor(plt, models)
    width, height = (round(v * DPI) for v in fig.get_size_inches())
    fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return width, height


def _message(plt, text: str):
    fig = plt.figure(figsize=(WIDTH_PX / DPI, 1))
    fig.text(0.5, 0.5, text, ha="center", va="center")
    return fig


def _classifier(plt, models: list[tuple[str, Predictions]]):
    from sklearn.metrics import ConfusionMatrixDisplay

    first = models[0][1]
    with_curve = first.proba is not None
    classes = first.proba.shape[1] if with_curve else 1 + max(
        int(max(p.y_true.max(), p.y_pred.max())) for _, p in models)
    fig = plt.figure(figsize=(WIDTH_PX / DPI, 7.4 if with_curve else 4.0),
                     layout="constrained")
    grid = fig.add_gridspec(2 if with_curve else 1, len(models))
    for column, (name, p) in enumerate(models):
        ax = fig.add_subplot(grid[0, column])
        matrix = confusion_matrix(p.y_true, p.y_pred, classes)
        ConfusionMatrixDisplay(matrix, display_labels=list(range(classes))).plot(
            ax=ax, cmap="Blues", colorbar=False, values_format="d",
            include_values=classes <= 15, text_kw={"fontsize": 9 if classes <= 10 else 7})
        ax.set_title(f"{name}: confusion matrix")
    if with_curve:
        curve = fig.add_subplot(grid[1, :])
        for name, p in models:
            if p.proba is not None:
                (_roc if p.proba.shape[1] == 2 else _calibration)(curve, name, p)
        curve.plot([0, 1], [0, 1], ":", color="grey", label="ideal" if classes > 2 else None)
        curve.legend(loc="lower right")
        curve.grid(alpha=0.3)
    return fig


def _roc(ax, name: str, p: Predictions) -> None:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(p.y_true, p.proba[:, 1])
    ax.plot(fpr, tpr, label=name)
    ax.set(title="ROC curve", xlabel="false positive rate", ylabel="true positive rate")


def calibration_bins(p: Predictions) -> list[tuple[float, float, int]]:
    """(mean confidence, observed accuracy, rows) per bin of equal row counts, so that each
    point stands on at least BIN_ROWS rows instead of zigzagging over a handful."""
    confidence = p.proba.max(axis=1)
    correct = (p.y_pred == p.y_true).astype(float)
    bins = int(np.clip(len(confidence) // BIN_ROWS, 1, MAX_BINS))
    parts = np.array_split(np.argsort(confidence, kind="stable"), bins)
    return [(float(confidence[b].mean()), float(correct[b].mean()), len(b)) for b in parts]


def _calibration(ax, name: str, p: Predictions) -> None:
    points = calibration_bins(p)
    x, y, n = zip(*points, strict=True)
    (line,) = ax.plot(x, y, "o-", label=name)
    for xi, yi, ni in points:
        ax.annotate(str(ni), (xi, yi), textcoords="offset points", xytext=(0, 6), ha="center",
                    fontsize=7, color=line.get_color())
    ax.set(title=f"calibration: top-class confidence, bins of about {n[0]} rows (labelled)",
           xlabel="mean predicted confidence", ylabel="observed accuracy",
           xlim=(min(x) - 0.05, 1.02), ylim=(min(min(y), min(x)) - 0.05, 1.05))


def _regressor(plt, models: list[tuple[str, Predictions]]):
    fig, (scatter, residuals) = plt.subplots(1, 2, figsize=(WIDTH_PX / DPI, 4),
                                             layout="constrained")
    for name, p in models:
        scatter.scatter(p.y_true, p.y_pred, s=8, alpha=0.6, label=name)
        residuals.hist(p.y_pred - p.y_true, bins=30, alpha=0.6, label=name)
    low = min(min(p.y_true.min(), p.y_pred.min()) for _, p in models)
    high = max(max(p.y_true.max(), p.y_pred.max()) for _, p in models)
    scatter.plot([low, high], [low, high], ":", color="grey")
    scatter.set(title="predicted against true", xlabel="true", ylabel="predicted")
    residuals.set(title="residuals (predicted - true)", xlabel="residual", ylabel="rows")
    scatter.legend()
    return fig
