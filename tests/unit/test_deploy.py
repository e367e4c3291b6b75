"""Deploy as promotion: the Kubernetes manifest and the Gitflow rules (the registry side
is tested against the real local registry in tests/integration/test_stages.py)."""

from __future__ import annotations

import re

import pytest
import yaml

from mlbuild.ci.deploy import Deployment, kubernetes_manifest, promote
from mlbuild.errors import ConfigError
from mlbuild.store import LocalStore

RECORD = Deployment("staging", "registry.example:5000", "team/digits", "sha256:" + "a" * 64,
                    "b" * 64, "c" * 40, "2026-12-03T03:00:00.000+00:00", "ci", None)


def test_the_kubernetes_manifest_is_a_deployment_pinned_by_digest():
    doc = yaml.safe_load(kubernetes_manifest(RECORD))
    assert doc["kind"] == "Deployment" and doc["metadata"]["name"] == "digits-staging"
    labels = {"app": "digits", "environment": "staging"}
    assert doc["spec"]["selector"]["matchLabels"] == labels
    assert doc["spec"]["template"]["metadata"]["labels"] == labels
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"registry.example:5000/team/digits@sha256:{'a' * 64}"
    assert doc["metadata"]["annotations"]["mlbuild.io/model-sha256"] == "b" * 64


@pytest.mark.parametrize("environment, branch, words", [
    ("staging", "main", "staging is deployed from develop (Gitflow), not from main"),
    ("production", "develop", "production is deployed from main (Gitflow), not from develop"),
    ("production", None, "not from an unknown branch"),
    ("qa", "develop", "There is no environment 'qa'"),
])
def test_each_environment_deploys_from_its_own_branch_only(tmp_path, environment, branch,
                                                           words):
    store = LocalStore(str(tmp_path / "store"))
    with pytest.raises(ConfigError, match=re.escape(words)):
        promote(store, environment, "registry.example:5000", "team/digits", RECORD.digest,
                model_sha256=None, commit=None, on_branch=branch)
    assert store.list("") == []  # nothing recorded, and the registry was never asked
