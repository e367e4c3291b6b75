"""The accuracy tests: the model models.lock releases, through the project's real
inference code, on the test split, with the same gate code as the pipeline.

    make accuracy        # fast tier (MLBUILD_ACCURACY_TIER=fast)
    make accuracy-full   # full tier, for scheduled runs

They need the pipeline's results (models.lock and the test split in the store): run
`make pipeline` first, or point MLBUILD_STORE at the team's store.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "accuracy: the accuracy tests of the released model")


@pytest.fixture(scope="session")
def tier() -> str:
    tier = os.environ.get("MLBUILD_ACCURACY_TIER", "fast")
    if tier not in ("fast", "full"):
        pytest.fail(f"MLBUILD_ACCURACY_TIER must be fast or full, not {tier!r}.")
    return tier


@pytest.fixture(scope="session")
def evaluation(tier):
    """The released model, evaluated once per session; its reports are archived."""
    from mlbuild import MlbuildError, evaluate_released
    from mlbuild.settings import reports_dir
    from tasks import EvaluateAccuracy

    try:
        return evaluate_released(EvaluateAccuracy(), tier,
                                 Path(reports_dir(), "accuracy-tests", tier))
    except MlbuildError as exc:
        pytest.fail(f"Cannot run the accuracy tests: {exc}", pytrace=False)
