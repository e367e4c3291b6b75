"""The command line prints an error's message and its hint (once, on a line of its own)."""

from __future__ import annotations

from mlbuild.cli import main
from mlbuild.core.runlog import read_failures, record_failure
from mlbuild.errors import ConfigError, ObjectMissingError


def test_an_error_is_printed_with_its_hint_once_on_its_own_line(tmp_path, capsys):
    lock = tmp_path / "models.lock"
    lock.write_text("{not json")
    assert main(["models", "list", "--lock", str(lock)]) == ConfigError.exit_code
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0].startswith(f"mlbuild: configuration error: {lock} is not a valid models.lock")
    assert "Hint" not in lines[0]
    assert err.count("Hint:") == 1
    assert lines[1] == ("Hint: restore it from git, or delete it and run the pipeline to write "
                        "it again.")


def test_a_task_failure_carries_its_hint_to_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("MLBUILD_RUN_DIR", str(tmp_path))
    record_failure("Train()", ObjectMissingError("s3://b/k does not exist.", hint="run it."))
    [failure] = read_failures(tmp_path)
    assert (failure.kind, failure.exit_code) == ("ObjectMissingError", 5)
    assert (failure.message, failure.hint) == ("s3://b/k does not exist.", "run it.")
    assert failure.text == "s3://b/k does not exist.\nHint: run it."
