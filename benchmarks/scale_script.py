"""The one-file script that benchmarks/scale_pipeline.py measures the pipeline against.

    python benchmarks/scale_script.py DATA.csv

What a person would write without mlbuild: read the CSV with pandas, split it 75/25
stratified and seeded, train LightGBM with the pipeline's parameters (PARAMS) and
score every test row. Prints the accuracy as JSON. It must not import mlbuild.
"""

from __future__ import annotations

import json
import sys

#: the parameters of the pipeline's config in scale_pipeline.py, with the pipeline's
#: determinism settings, so both train the same model
PARAMS = {"objective": "binary", "learning_rate": 0.1, "num_leaves": 31, "seed": 42,
          "deterministic": True, "force_row_wise": True, "verbose": -1, "num_threads": 2}
ROUNDS = 100


def main(path: str) -> None:
    import lightgbm as lgb
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import train_test_split

    frame = pd.read_csv(path)
    y = frame.pop("label")
    x_train, x_test, y_train, y_test = train_test_split(
        frame, y, test_size=0.25, random_state=42, stratify=y)
    booster = lgb.train(PARAMS, lgb.Dataset(x_train, label=y_train), num_boost_round=ROUNDS)
    accuracy = float(np.mean((booster.predict(x_test) > 0.5) == y_test.to_numpy()))
    print(json.dumps({"accuracy": accuracy, "test_rows": len(y_test)}))


if __name__ == "__main__":
    main(sys.argv[1])
