"""What a person sees from each command, run exactly as typed: the exit code, the words of
the message, no traceback, and no Luigi usage text listing options mlbuild has not."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest

from mlbuild.errors import ConfigError, MissingError
from tests.conftest import ok

pytestmark = pytest.mark.integration


def refused(result, code: int, *words: str) -> str:
    text = result.stdout + result.stderr
    assert result.returncode == code, text
    for word in words:
        assert word in text, f"{word!r} not in:\n{text}"
    assert "Traceback" not in text and "usage: mlbuild [--local-scheduler]" not in text
    return text


def test_a_bad_parameter_value_names_the_choices(project):
    refused(project.mlbuild("run", "EvaluateAccuracy", "--tier", "medium"), ConfigError.exit_code,
            "EvaluateAccuracy: 'medium' is not one of the choices fast, full",
            "--tier {fast,full}")


def test_an_option_the_task_has_not_is_named_with_the_tasks_options(project):
    refused(project.mlbuild("run", "PublishModel", "--tier", "fast"), ConfigError.exit_code,
            "PublishModel has no option --tier", "PublishModel's options:")


def test_help_on_a_task_lists_its_options(project):
    text = ok(project.mlbuild("run", "EvaluateAccuracy", "--help")).stdout
    assert "EvaluateAccuracy's options:" in text and "--tier {fast,full}" in text
    assert "rows to evaluate" in text


def test_a_misspelt_task_gets_a_suggestion(project):
    refused(project.mlbuild("run", "PublishModle"), ConfigError.exit_code,
            "There is no task 'PublishModle'", "Did you mean PublishModel?")


def test_plain_luigi_with_a_missing_config_says_so_in_a_few_lines(project):
    result = project.luigi("PublishModel", "--pipeline-config", "configs/missing.toml")
    assert result.returncode == 23  # luigi.cfg [retcode] scheduling_error
    lines = result.stderr.splitlines()
    at = next(i for i, line in enumerate(lines) if "configs/missing.toml does not exist" in line)
    assert at < 5 and "Traceback" not in result.stderr
    assert "--pipeline-config" in lines[at]  # the hint names where the path came from


@pytest.mark.parametrize("args, words", [
    (["--expected", "95", "--drop", "2"], ["--expected 95", "Did you mean 0.95 (95%)?"]),
    (["--expected", "0.95", "--drop", "0.96"], ["--drop 0.96 is not less than --expected 0.95",
                                                "would be at -0.01"]),
])
def test_accuracy_plan_names_bad_flags_in_their_own_words(project, args, words):
    text = refused(project.mlbuild("accuracy", "plan", *args), ConfigError.exit_code, *words)
    assert "p0" not in text and "p1" not in text


def test_a_missing_data_file_is_blamed_on_the_task_that_reads_it(project):
    project.edit("configs/pipeline.toml", 'source = "builtin:digits"', 'source = "file://no.csv"')
    refused(project.mlbuild("run", "PublishModel"), MissingError.exit_code,
            "✗ FetchData() (MissingError)", "no.csv does not exist")


DATA, RELEASE = ["FetchData", "ValidateData", "SplitData"], ["EvaluateAccuracy", "PublishModel"]


def test_a_run_says_how_long_each_task_took_and_a_no_op_says_it_is_one(project):
    ran = ok(project.mlbuild("run", "PublishModel")).stderr
    summary = next(line for line in ran.splitlines() if line.startswith("ran: "))
    # Each task with its duration, in the order they ran (the drift gate and the training
    # both wait for the split only: either may come first).
    durations = re.findall(r"(\w+)\([^)]*\) ([\d.]+) s", summary)
    assert [name for name, _ in durations] in (
        [*DATA, "TrainModel", "CheckDrift", *RELEASE], [*DATA, "CheckDrift", "TrainModel", *RELEASE]
    ), summary
    assert re.fullmatch(r"ran: (\w+\([\w=]*\) [\d.]+ s, )+PublishModel\(\) [\d.]+ s", summary)
    again = ok(project.mlbuild("run", "PublishModel")).stderr
    assert "ran: nothing: PublishModel() is complete" in again
    assert "0 task(s) ran;" in again and "already complete" not in again


def test_status_warns_once_and_works_from_a_subfolder(project):
    sub = project.root / "notebooks" / "deep"
    sub.mkdir(parents=True)
    result = subprocess.run([sys.executable, "-m", "mlbuild.cli", "status"], cwd=sub,
                            env=project.env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "FetchData()" in result.stdout and "of 10 complete" in result.stdout
    assert result.stderr.count("No image registry is configured") == 1


def test_gc_speaks_in_sizes_and_refuses_a_store_that_is_not_there(built):
    text = ok(built.mlbuild("gc", "--keep-runs", "0", "--dry-run")).stdout
    assert re.search(r"would remove .*\(\d+ object\(s\), [\d.]+ (B|KiB|MiB)\)", text), text
    assert re.search(r"\d+ result\(s\), [\d.]+ (B|KiB|MiB), would remove", text), text
    help_text = ok(built.mlbuild("gc", "--help")).stdout
    assert "A run is a result no other result needs" in " ".join(help_text.split())
    built.extra_env["MLBUILD_STORE"] = str(built.root / "no-such-store")
    refused(built.mlbuild("gc"), MissingError.exit_code, "no-such-store does not exist")


def test_a_passing_accuracy_stage_prints_its_verdict_and_report(built):
    text = ok(built.mlbuild("stage", "accuracy")).stdout
    assert re.search(r"stage accuracy: accuracy gates passed \(fast tier, \d+ rows\)", text), text
    assert "report: reports/accuracy/fast/report.html" in text


SLOW = '''source = "builtin:synthetic"
synthetic = { rows = 300000, features = 30, classes = 10 }'''


def test_sigterm_prints_a_message_exits_143_and_leaves_no_temporary_folder(project, tmp_path):
    project.edit("configs/pipeline.toml", 'source = "builtin:digits"', SLOW)
    project.edit("configs/pipeline.toml", '"pixel_*" = "number"', '"f*" = "number"')
    project.edit("configs/pipeline.toml", "min_rows = 500", "min_rows = 5")
    # Long enough to be stopped in training on any machine (100 rounds took 11 s in CI: the
    # run ended, and failed its gates, before the first progress line).
    project.edit("configs/pipeline.toml", "num_iterations = 100", "num_iterations = 5000")
    temp = tmp_path / "tmp"
    temp.mkdir()
    log = tmp_path / "stderr.log"
    with open(log, "w") as stderr:
        run = subprocess.Popen([sys.executable, "-m", "mlbuild.cli", "run", "PublishModel"],
                               cwd=project.root, env={**project.env, "TMPDIR": str(temp)},
                               stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 240
    # Off a terminal, a long training says how far it is every 10 s.
    while "… TrainModel(): round" not in log.read_text():
        assert run.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.5)
    assert any(p.name.startswith("mlbuild-run-") for p in temp.iterdir())
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=60) == 143
    text = log.read_text()
    assert "mlbuild: terminated (SIGTERM)" in text and "Traceback" not in text
    assert list(temp.iterdir()) == []
    assert list((project.root / ".mlbuild" / "cache" / "tmp").iterdir()) == []
    assert not list(project.store.glob("TrainModel/*/manifest.json"))
