"""Training code: a deterministic LightGBM model from the training rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlbuild import open_table

# Fixed so that the same inputs give a byte-identical model (DESIGN.md invariant 5).
DETERMINISM = {"deterministic": True, "force_row_wise": True, "verbose": -1}


def training_data(rows: Path, label: str):
    """The feature matrix, labels and feature names of a table or row view."""
    table = open_table(rows)
    features = [c for c in table.column_names if c != label]
    return table.matrix(features), table.column(label), features


def train(x, y, features: list[str], model_path: Path, params: dict[str, Any],
          num_threads: int, progress=None) -> None:
    import lightgbm as lgb

    params = {"seed": 0, **params, **DETERMINISM, "num_threads": num_threads}
    if params.get("objective") in ("multiclass", "multiclassova") and "num_class" not in params:
        params["num_class"] = int(y.max()) + 1
    rounds = int(params.pop("num_iterations", 100))
    data = lgb.Dataset(x, label=y, feature_name=features, free_raw_data=False)
    shown = [lambda env: progress(env.iteration + 1, env.end_iteration, "round")] if progress else []
    booster = lgb.train(params, data, num_boost_round=rounds, callbacks=shown)
    booster.save_model(str(model_path))


def train_variant(rows: Path, model_path: Path, label: str, params: dict[str, Any],
                  num_threads: int, validation_fraction: float, seed: int) -> float:
    """Train on the training rows less a seeded, stratified validation share; return the
    validation accuracy, by which a sweep compares its variants."""
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import train_test_split

    x, y, features = training_data(rows, label)
    fit, valid = train_test_split(np.arange(len(y)), test_size=validation_fraction,
                                  random_state=seed, stratify=y)
    fit, valid = np.sort(fit), np.sort(valid)
    train(x[fit], y[fit], features, model_path, params, num_threads)

    from tasks.inference import load_model, predict

    predicted = predict(load_model(model_path), pd.DataFrame(x[valid], columns=features))
    return float(np.mean(predicted == y[valid]))
