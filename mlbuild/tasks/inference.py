"""The project's inference module, as the release tasks and the serving image call it.

A project names one module (``ReleaseTask.inference``) that defines:

* ``load_model(path)`` — the model from the file the training task wrote;
* ``predict_proba(model, frame)`` — for a classifier whose classes are 0..K-1: class
  probabilities, shape (rows, K); the prediction is their argmax. Or ``predict(model,
  frame)`` — the predictions, for a regressor or a classifier without probabilities;
* optionally ``features(model)`` — the columns the model reads, so that a frame that lacks
  one is reported by name instead of failing inside the model.

The same module is copied into the serving image, so what the gates measured is what the
service computes.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from mlbuild.errors import ConfigError


class Inference:
    def __init__(self, module: str):
        if not module:
            raise ConfigError("The release task names no inference module.",
                              hint="set `inference = \"<package>.inference\"` on the project's "
                                   "ReleaseTask subclass.")
        try:
            self.module: ModuleType = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            raise ConfigError(f"The inference module {module!r} cannot be imported: {exc}.",
                              hint="check ReleaseTask.inference and PYTHONPATH.") from exc
        if not hasattr(self.module, "load_model") or not (
                hasattr(self.module, "predict_proba") or hasattr(self.module, "predict")):
            raise ConfigError(f"The inference module {module!r} must define load_model(path) "
                              "and predict_proba(model, frame) or predict(model, frame).",
                              hint="see mlbuild.tasks.inference for the contract.")
        self.name = module

    @property
    def path(self) -> str:
        return self.module.__file__

    def load(self, path):
        return self.module.load_model(path)

    def predictor(self, model):
        """``frame -> (predictions, probabilities or None)``, what the evaluation calls."""
        if hasattr(self.module, "predict_proba"):
            def predict_frame(frame):
                proba = self.module.predict_proba(model, frame)
                return proba.argmax(axis=1), proba
        else:
            def predict_frame(frame):
                return self.module.predict(model, frame), None
        return predict_frame

    def missing_features(self, model, columns) -> tuple[str, ...]:
        """The features ``model`` reads that ``columns`` lacks (a schema change since)."""
        if not hasattr(self.module, "features"):
            return ()
        present = set(columns)
        return tuple(f for f in self.module.features(model) if f not in present)
