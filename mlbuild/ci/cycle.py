"""The release cycle, declared once: ``configs/ci.toml``.

Its stages, their commands, the branches they run on, whether the scheduled (timer) run
or the others run them, and which need the AWS credentials binding. Jenkins runs the
Jenkinsfile generated from it (:mod:`mlbuild.ci.jenkinsfile`); ``mlbuild ci`` runs the
same declaration here. Nothing reads Groovy back: a Jenkinsfile that is not the generated
one is refused, so a local run can never take a stage or a branch condition for another.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from pydantic import Field, field_validator

from mlbuild.config import Section, load_config

DEFAULT = Path("configs/ci.toml")


class StageSpec(Section):
    """One stage: its commands, each a `sh` step (locally `sh -e -c`, as Jenkins runs it)."""

    name: str = Field(min_length=1, pattern=r"^[^'\\\n]+$")
    run: list[str] = Field(min_length=1)
    #: run only on these branches: names or glob patterns such as release/* (empty: all)
    branches: list[str] = []
    #: True: only in the scheduled run; False: never in it; unset: in both
    scheduled: bool | None = None
    #: whether the step needs the AWS credentials binding of [jenkins] aws_credentials
    aws: bool = False

    @field_validator("run", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value

    def runs_on(self, branch: str, scheduled: bool) -> bool:
        if self.branches and not any(fnmatch.fnmatchcase(branch, b) for b in self.branches):
            return False
        return self.scheduled is None or self.scheduled == scheduled


class HtmlReport(Section):
    """A folder of HTML reports Jenkins shows with the HTML Publisher plugin."""

    name: str = Field(min_length=1, pattern=r"^[^'\\\n]+$")
    folder: str
    index: str = "report.html"


class JenkinsSettings(Section):
    #: the scheduled run's cron line, and the branches that get it
    cron: str = "H 2 * * *"
    cron_branches: list[str] = ["main", "develop"]
    #: the Jenkins credentials ID of an AWS binding (access key and secret key)
    aws_credentials: str = "mlbuild-aws"
    #: environment of every stage in Jenkins (never credentials)
    environment: dict[str, str] = {}
    junit: str = "reports/junit/*.xml"
    archive: list[str] = ["reports/**", "models.lock"]


class Cycle(Section):
    jenkins: JenkinsSettings = JenkinsSettings()
    stages: list[StageSpec] = Field(alias="stage", min_length=1)
    html_reports: list[HtmlReport] = Field(default=[], alias="html_report")

    def plan(self, branch: str, scheduled: bool) -> list[tuple[StageSpec, bool]]:
        """Every stage, and whether it runs on ``branch`` in a scheduled run or not."""
        return [(stage, stage.runs_on(branch, scheduled)) for stage in self.stages]


def load_cycle(path: str | os.PathLike = DEFAULT) -> Cycle:
    return load_config(path, Cycle)
