"""Deploy as promotion, Gitflow: the image AcceptanceTest passed, by digest, never rebuilt.

``mlbuild stage deploy --env staging`` (from ``develop``) and ``--env production`` (from
``main``) point the registry tag of the environment at the pushed image's digest by
copying its manifest, record the deployment in the store
(``deployments/<env>/<time>-<digest>.json``: environment, image, digest, model sha256,
commit, time, who, what it replaced) and write a Kubernetes Deployment pinned by
``image@sha256:`` to ``reports/deploy/<env>/deployment.yaml``. Production takes only the
digest that staging holds. ``--to <digest>`` rolls an environment back to a digest it held
before. Promoting what an environment already holds changes nothing.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from mlbuild.errors import ConfigError, MissingError
from mlbuild.images import docker
from mlbuild.settings import reports_dir
from mlbuild.store import Store

#: environment -> the branches it is deployed from, and the environment it must follow
ENVIRONMENTS = {"staging": (("develop",), None), "production": (("main",), "staging")}
RECORDS = "deployments"


@dataclass(frozen=True)
class Deployment:
    environment: str
    registry: str
    repository: str
    digest: str
    model_sha256: str | None
    commit: str | None
    time: str
    who: str
    replaced: str | None   # the digest the environment held before, if any
    rollback: bool = False

    @property
    def image(self) -> str:
        return f"{self.registry}/{self.repository}@{self.digest}"


def branch() -> str | None:
    """The branch being built: Jenkins' BRANCH_NAME (``mlbuild ci`` sets it too), else git's."""
    if os.environ.get("BRANCH_NAME"):
        return os.environ["BRANCH_NAME"]
    found = subprocess.run(["git", "rev-parse", "--abbrev-ref", "HEAD"], capture_output=True,
                           text=True, check=False)
    if found.returncode != 0:
        return None
    return found.stdout.strip() or None


def history(store: Store, environment: str) -> list[Deployment]:
    """Every deployment to ``environment``, the newest first."""
    keys = store.list(f"{RECORDS}/{environment}/")
    records = [Deployment(**json.loads(store.get_bytes(k))) for k in keys if k.endswith(".json")]
    return sorted(records, key=lambda d: d.time, reverse=True)


def _check_environment(environment: str, on_branch: str | None) -> str | None:
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"There is no environment {environment!r}; mlbuild deploys to "
                          f"{' and '.join(ENVIRONMENTS)}.")
    branches, follows = ENVIRONMENTS[environment]
    if on_branch not in branches:
        raise ConfigError(
            f"{environment} is deployed from {' or '.join(branches)} (Gitflow), not from "
            f"{on_branch or 'an unknown branch'}.",
            hint=f"merge into {branches[0]} and deploy from there (BRANCH_NAME names the branch "
                 "in CI; `mlbuild ci --branch` sets it).")
    return follows


def promote(store: Store, environment: str, registry: str, repository: str, digest: str, *,
            model_sha256: str | None, commit: str | None, on_branch: str | None,
            rollback: bool = False) -> tuple[Deployment, bool]:
    """Point ``environment`` at ``digest``; return its deployment and whether anything changed."""
    follows = _check_environment(environment, on_branch)
    past = history(store, environment)
    if rollback and digest not in {d.digest for d in past}:
        held = ", ".join(sorted({d.digest for d in past})) or "nothing yet"
        raise MissingError(f"{environment} never held {digest}, so it cannot roll back to it "
                           f"(it held: {held}).", hint=f"`mlbuild deploy history --env "
                                                     f"{environment}` lists its deployments.")
    if follows and not rollback:
        upstream = docker.registry_digest(registry, repository, follows)
        if upstream != digest:
            raise MissingError(
                f"{environment} takes only the image {follows} holds; {follows} holds "
                f"{upstream or 'nothing'} in {registry}/{repository}, not {digest}.",
                hint=f"deploy to {follows} first (from {ENVIRONMENTS[follows][0][0]}).")
    held = docker.registry_digest(registry, repository, environment)
    if held == digest and past and past[0].digest == digest:
        return past[0], False
    docker.tag_digest(registry, repository, digest, environment)
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    record = Deployment(environment, registry, repository, digest, model_sha256, commit, now,
                        os.environ.get("BUILD_USER_ID") or getpass.getuser(), held, rollback)
    key = f"{RECORDS}/{environment}/{now.replace(':', '')}-{digest.split(':')[-1][:12]}.json"
    store.put_bytes(json.dumps(asdict(record), indent=2, sort_keys=True).encode() + b"\n", key)
    write_manifest(record)
    return record, True


def kubernetes_manifest(record: Deployment) -> str:
    """A Deployment of the image pinned by digest: what runs cannot change under its tag."""
    app = record.repository.rsplit("/", 1)[-1]
    name = f"{app}-{record.environment}"

    def labels(indent: int) -> str:
        return "\n".join(f"{' ' * indent}{k}: {v}" for k, v in
                         (("app", app), ("environment", record.environment)))

    return f"""\
# Written by `mlbuild stage deploy --env {record.environment}` at {record.time}.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
{labels(4)}
  annotations:
    mlbuild.io/model-sha256: "{record.model_sha256 or ''}"
    mlbuild.io/commit: "{record.commit or ''}"
spec:
  replicas: 1
  selector:
    matchLabels:
{labels(6)}
  template:
    metadata:
      labels:
{labels(8)}
    spec:
      containers:
        - name: model
          image: {record.image}
"""


def manifest_path(environment: str) -> Path:
    return Path(reports_dir(), "deploy", environment, "deployment.yaml")


def write_manifest(record: Deployment) -> Path:
    path = manifest_path(record.environment)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(kubernetes_manifest(record))
    return path
