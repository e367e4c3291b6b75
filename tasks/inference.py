"""Inference: the code the served model runs, and the accuracy gates with it, so what
they measured is what the service computes. The image holds this module alone."""

from __future__ import annotations

from pathlib import Path


def load_model(path: str | Path):
    import lightgbm as lgb

    return lgb.Booster(model_file=str(path))


def features(booster) -> list[str]:
    """The columns the model reads."""
    return booster.feature_name()


def predict_proba(booster, frame):
    """Class probabilities, shape (rows, classes); a binary model gets two columns."""
    import numpy as np

    raw = booster.predict(frame[booster.feature_name()], num_threads=1)
    if raw.ndim == 1:
        raw = np.column_stack([1 - raw, raw])
    return raw


def predict(booster, frame):
    """The predicted class of each row."""
    return predict_proba(booster, frame).argmax(axis=1)
