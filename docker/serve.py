"""The serving image's entry point: batch predictions and a health check.

    serve.py predict INPUT OUTPUT    CSV (or Parquet, when pyarrow is installed) in;
                                     CSV out: `prediction` and `proba_<class>` per row
    serve.py health                  the model file matches its sha256 and answers

It runs the project's own inference module (copied beside it), so what the accuracy
gate measured is what the image computes.
"""

from __future__ import annotations

import hashlib
import os
import sys

from inference import load_model, predict_proba

MODEL = os.environ.get("MLBUILD_MODEL", "/model/model.txt")


def _read(path: str):
    import pandas as pd

    return pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)


def predict(source: str, dest: str) -> int:
    import pandas as pd

    booster = load_model(MODEL)
    frame = _read(source)
    missing = sorted(set(booster.feature_name()) - set(frame.columns))
    if missing:
        print(f"error: {source} lacks the model's feature columns {missing[:10]}", file=sys.stderr)
        return 2
    proba = predict_proba(booster, frame)
    out = pd.DataFrame(proba, columns=[f"proba_{k}" for k in range(proba.shape[1])])
    out.insert(0, "prediction", proba.argmax(axis=1))
    out.to_csv(dest, index=False)
    print(f"predicted {len(out)} rows into {dest}")
    return 0


def health() -> int:
    import pandas as pd

    expected = os.environ.get("MLBUILD_MODEL_SHA256", "")
    with open(MODEL, "rb") as f:
        actual = hashlib.sha256(f.read()).hexdigest()
    if expected and actual != expected:
        print(f"unhealthy: {MODEL} has sha256 {actual}, expected {expected}", file=sys.stderr)
        return 1
    booster = load_model(MODEL)
    row = pd.DataFrame([[0.0] * booster.num_feature()], columns=booster.feature_name())
    predict_proba(booster, row)
    print(f"ok: model sha256 {actual}, {booster.num_feature()} features")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["predict"] and len(argv) == 3:
        return predict(argv[1], argv[2])
    if argv[:1] == ["health"]:
        return health()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
