"""Accuracy: metrics, the statistics of the gates, data drift, evaluation, plans and reports."""


from mlbuild.accuracy.drift import Drift, DriftConfig, check_drift
from mlbuild.accuracy.evaluation import (
    Evaluation,
    SamplePlan,
    TiersConfig,
    evaluate,
    plan_sample,
    predict_in_chunks,
    stratified_sample,
)
from mlbuild.accuracy.gates import GateResult, GatesConfig
from mlbuild.accuracy.metrics import METRICS, Predictions
from mlbuild.accuracy.report import write_reports

__all__ = [
    "METRICS",
    "Drift",
    "DriftConfig",
    "Evaluation",
    "GateResult",
    "GatesConfig",
    "Predictions",
    "SamplePlan",
    "TiersConfig",
    "check_drift",
    "evaluate",
    "plan_sample",
    "predict_in_chunks",
    "stratified_sample",
    "write_reports",
]
