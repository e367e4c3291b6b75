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
    import pandas as pd

    from mlbuild.errors import MlbuildError
    from mlbuild.release.lockfile import LockFile
    from mlbuild.release.registry import released_model
    from mlbuild.settings import cache_dir, reports_dir, store_uri
    from mlbuild.store import LocalCache, locate, open_store
    from tasks import SplitData
    from tasks.config import load
    from tasks.evaluate import evaluate_model

    try:
        config = load()
        lock = LockFile.read(config.publish.lockfile)
        entry = lock.entry(config.publish.model_name, config.publish.lockfile)
        store, cache = open_store(store_uri()), LocalCache(cache_dir())
        model = cache.fetch(*locate(entry.uri, store), entry.sha256)
        baseline = released_model(lock, config.publish.model_name, entry.fingerprint)
        baseline_path = (cache.fetch(*locate(baseline["uri"], store), baseline["sha256"])
                         if baseline else None)
        split = SplitData()
        if not split.complete():
            raise MlbuildError(f"The test split for this configuration is not in the store "
                               f"{store.uri}. Hint: run `make pipeline` first.")
        test = pd.read_csv(split.fetch_outputs(cache)["test"])
    except MlbuildError as exc:
        pytest.fail(f"Cannot run the accuracy tests: {exc}", pytrace=False)
    folder = Path(reports_dir(), "accuracy-tests", tier)
    result, _ = evaluate_model(model, test, config, tier, baseline_path, folder,
                               {"model": entry.uri, "baseline": baseline})
    return result
