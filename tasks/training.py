"""Training code: a deterministic LightGBM model from a training CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Fixed so that the same inputs give a byte-identical model (DESIGN.md invariant 5).
DETERMINISM = {"deterministic": True, "force_row_wise": True, "verbose": -1}


def train(train_csv: Path, model_path: Path, label: str, params: dict[str, Any],
          num_threads: int) -> None:
    import lightgbm as lgb
    import pandas as pd

    frame = pd.read_csv(train_csv)
    y = frame.pop(label)
    params = {"seed": 0, **params, **DETERMINISM, "num_threads": num_threads}
    if params.get("objective") in ("multiclass", "multiclassova") and "num_class" not in params:
        params["num_class"] = int(y.max()) + 1
    rounds = int(params.pop("num_iterations", 100))
    booster = lgb.train(params, lgb.Dataset(frame, label=y), num_boost_round=rounds)
    booster.save_model(str(model_path))


def train_variant(train_csv: Path, model_path: Path, label: str, params: dict[str, Any],
                  num_threads: int, validation_fraction: float, seed: int) -> float:
    """Train on the training rows less a seeded, stratified validation share; return the
    validation accuracy, by which a sweep compares its variants."""
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import train_test_split

    frame = pd.read_csv(train_csv)
    fit, valid = train_test_split(frame, test_size=validation_fraction, random_state=seed,
                                  stratify=frame[label])
    fit_path = model_path.with_suffix(".fit.csv")
    fit.sort_index().to_csv(fit_path, index=False)
    train(fit_path, model_path, label, params, num_threads)
    fit_path.unlink()

    from tasks.inference import load_model, predict

    y = valid.pop(label).to_numpy()
    return float(np.mean(predict(load_model(model_path), valid) == y))
