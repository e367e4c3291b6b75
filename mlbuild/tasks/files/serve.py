"""The serving image's entry point: batch predictions and a health check.

    serve.py predict INPUT OUTPUT    CSV (or Parquet, when pyarrow is installed) in;
                                     CSV out: `prediction`, and `proba_<class>` per row
                                     for a classifier with probabilities
    serve.py health                  the model file matches its sha256 and answers

It runs the project's own inference module (copied beside it as inference.py), so what
the accuracy gate measured is what the image computes.
"""

from __future__ import annotations

import hashlib
import os
import sys

import inference

MODEL = os.environ.get("MLBUILD_MODEL", "/model/model")


def _read(path: str):
    import pandas as pd

    return pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)


def _features(model) -> list[str] | None:
    return list(inference.features(model)) if hasattr(inference, "features") else None


def predict(source: str, dest: str) -> int:
    import pandas as pd

    model = inference.load_model(MODEL)
    frame = _read(source)
    missing = sorted(set(_features(model) or ()) - set(frame.columns))
    if missing:
        print(f"error: {source} lacks the model's feature columns {missing[:10]}", file=sys.stderr)
        return 2
    if hasattr(inference, "predict_proba"):
        proba = inference.predict_proba(model, frame)
        out = pd.DataFrame(proba, columns=[f"proba_{k}" for k in range(proba.shape[1])])
        out.insert(0, "prediction", proba.argmax(axis=1))
    else:
        out = pd.DataFrame({"prediction": inference.predict(model, frame)})
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
    model = inference.load_model(MODEL)
    features = _features(model)
    if features is not None:  # one row of zeros must go through
        row = pd.DataFrame([[0.0] * len(features)], columns=features)
        (inference.predict_proba if hasattr(inference, "predict_proba")
         else inference.predict)(model, row)
    print(f"ok: model sha256 {actual}" + (f", {len(features)} features" if features else ""))
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
