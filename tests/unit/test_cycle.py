"""The release cycle declared once (configs/ci.toml): the Jenkinsfile generated from it,
the same stages run by `mlbuild ci`, and every Jenkinsfile that is not the generated one
refused without running anything (Groovy is never parsed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlbuild.ci.cycle import load_cycle
from mlbuild.ci.jenkinsfile import generate, groovy
from mlbuild.cli import main

REPO = Path(__file__).resolve().parents[2]

DECLARED = '''
[jenkins]
aws_credentials = "team-aws"

[[stage]]
name = "Data"
run = ["aws s3 cp s3://bucket/data.csv data/ # not a comment", "echo 'it''s' > said.txt"]
aws = true

[[stage]]
name = "Release candidate"
run = "touch release-ran"
branches = ["release/*"]

[[stage]]
name = "Nightly"
run = "touch nightly-ran"
scheduled = true
branches = ["main", "develop"]

[[stage]]
name = "Deploy"
run = "touch deploy-ran"
branches = ["main"]
scheduled = false
'''


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "ci.toml").write_text(DECLARED)
    (tmp_path / "luigi.cfg").write_text("[core]\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_committed_jenkinsfile_is_the_generated_one():
    cycle = load_cycle(REPO / "configs" / "ci.toml")
    assert (REPO / "Jenkinsfile").read_text() == generate(cycle, "configs/ci.toml"), \
        "run `mlbuild ci jenkinsfile` and commit the Jenkinsfile"


def test_commands_are_single_quoted_groovy_kept_as_written():
    assert groovy("aws s3 cp s3://b/k .") == "'aws s3 cp s3://b/k .'"
    assert groovy("echo 'a' \\ $HOME") == "'echo \\'a\\' \\\\ $HOME'"


def test_branch_patterns_schedules_and_credentials_become_when_blocks(project):
    text = generate(load_cycle())
    assert "sh 'aws s3 cp s3://bucket/data.csv data/ # not a comment'" in text
    assert "withCredentials([aws(credentialsId: 'team-aws'" in text
    assert "when { branch pattern: 'release/*', comparator: 'GLOB' }" in text
    nightly = text[text.index("stage('Nightly')"):text.index("stage('Deploy')")]
    assert re.search(r"allOf \{\s*anyOf \{ branch 'main'; branch 'develop' \}\s*"
                     r"triggeredBy 'TimerTrigger'\s*\}", nightly)
    deploy = text[text.index("stage('Deploy')"):]
    assert "branch 'main'" in deploy and "not { triggeredBy 'TimerTrigger' }" in deploy


@pytest.mark.parametrize("branch, scheduled, ran", [
    ("main", False, {"said.txt", "deploy-ran"}),
    ("main", True, {"said.txt", "nightly-ran"}),
    ("develop", False, {"said.txt"}),
    ("release/2.0", False, {"said.txt", "release-ran"}),
    ("feature/x", False, {"said.txt"}),
])
def test_mlbuild_ci_runs_the_declared_stages_for_the_branch(project, capsys, branch, scheduled,
                                                            ran, monkeypatch):
    monkeypatch.setenv("PATH", f"{project}:{__import__('os').environ['PATH']}")
    (project / "aws").write_text("#!/bin/sh\nexit 0\n")  # a stand-in for the AWS CLI
    (project / "aws").chmod(0o755)
    assert main(["ci", "jenkinsfile"]) == 0
    args = ["ci", "--branch", branch] + (["--scheduled"] if scheduled else [])
    assert main(args) == 0
    made = {p.name for p in project.iterdir()} & {"said.txt", "release-ran", "nightly-ran",
                                                  "deploy-ran"}
    assert made == ran
    if "said.txt" in ran:
        assert (project / "said.txt").read_text() == "its\n"  # sh -c, as Jenkins' sh step


GENERATED_STAGE = "        stage('Deploy') {"
#: the hand-written constructs that a Groovy-guessing runner got wrong (issue 15)
VARIANTS = {
    "a // inside a string": ("sh 'touch deploy-ran'", "sh 'aws s3 cp s3://bucket/data.csv data/'"),
    "branch pattern, REGEXP": ("branch 'main'",
                               'branch pattern: "release/.*", comparator: "REGEXP"'),
    "when expression": ("branch 'main'", "expression { return env.DEPLOY == 'yes' }"),
    "parallel stages": (GENERATED_STAGE, "        stage('Both') { parallel {\n"
                                         "            stage('A') { steps { sh 'touch a' } }\n"
                                         "        } }\n" + GENERATED_STAGE),
    'sh """…"""': ("sh 'touch deploy-ran'", 'sh """touch deploy-ran"""'),
    "sh script:": ("sh 'touch deploy-ran'", "sh script: 'touch deploy-ran'"),
    "a comment": ("pipeline {", "// hand edited\npipeline {"),
}


@pytest.mark.parametrize("name", VARIANTS)
def test_a_jenkinsfile_that_is_not_the_generated_one_is_refused_and_nothing_runs(
        project, capsys, name):
    assert main(["ci", "jenkinsfile"]) == 0
    old, new = VARIANTS[name]
    text = (project / "Jenkinsfile").read_text()
    assert old in text
    (project / "Jenkinsfile").write_text(text.replace(old, new, 1))
    capsys.readouterr()
    assert main(["ci", "--branch", "main"]) == 3
    err = capsys.readouterr().err
    assert "is not the Jenkinsfile generated from configs/ci.toml" in err
    assert "mlbuild ci jenkinsfile" in err and "Traceback" not in err
    assert not any(p.name.endswith("-ran") or p.name == "said.txt" for p in project.iterdir())
    assert main(["ci", "jenkinsfile", "--check"]) == 3


def test_a_missing_jenkinsfile_named_on_the_command_line_is_refused(project, capsys):
    assert main(["ci", "--jenkinsfile", "ci/Jenkinsfile.missing"]) == 3
    assert "ci/Jenkinsfile.missing does not exist" in capsys.readouterr().err


def test_a_malformed_declaration_names_its_problems(project, capsys):
    (project / "configs" / "ci.toml").write_text(DECLARED.replace("scheduled = true",
                                                                  'scheduled = "nightly"'))
    assert main(["ci", "--dry-run"]) == 3
    assert "stage.2.scheduled" in capsys.readouterr().err
