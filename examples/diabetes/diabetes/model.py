"""Training and inference: a ridge regression, kept as JSON (no pickle), served as is.

The serving image holds this module alone: inference needs only numpy and pandas.
"""

from __future__ import annotations

import json
from pathlib import Path


def train(train_csv: Path, model_path: Path, label: str, alpha: float) -> None:
    import pandas as pd
    from sklearn.linear_model import Ridge

    frame = pd.read_csv(train_csv)
    y = frame.pop(label)
    ridge = Ridge(alpha=alpha, solver="cholesky").fit(frame, y)
    model = {"features": list(frame.columns), "coef": ridge.coef_.tolist(),
             "intercept": float(ridge.intercept_)}
    Path(model_path).write_text(json.dumps(model, indent=2) + "\n")


def load_model(path):
    return json.loads(Path(path).read_text())


def features(model) -> list[str]:
    return model["features"]


def predict(model, frame):
    import numpy as np

    return frame[model["features"]].to_numpy() @ np.asarray(model["coef"]) + model["intercept"]
