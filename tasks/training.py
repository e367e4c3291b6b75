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
