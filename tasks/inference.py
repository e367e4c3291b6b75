"""Inference: the code a served model runs, used by the accuracy tests as well.

Keeping one implementation means what the gate measured is what the service computes.
"""

from __future__ import annotations

from pathlib import Path


def load_model(path: str | Path):
    import lightgbm as lgb

    return lgb.Booster(model_file=str(path))


def predict_proba(booster, features):
    """Class probabilities, shape (rows, classes); a binary model gets two columns."""
    import numpy as np

    raw = booster.predict(features[booster.feature_name()], num_threads=1)
    if raw.ndim == 1:
        raw = np.column_stack([1 - raw, raw])
    return raw


def predict(booster, features):
    """The predicted class of each row."""
    return predict_proba(booster, features).argmax(axis=1)


def predictor(booster):
    """``frame -> (classes, probabilities)``, the shape mlbuild's evaluation calls."""

    def predict_frame(frame):
        proba = predict_proba(booster, frame)
        return proba.argmax(axis=1), proba

    return predict_frame
