"""``mlbuild stage retrain``: continuous training, run by a scheduled CI job.

1. Ask the data task for its fingerprint: for a snapshot source that is one listing of
   the bucket, so "nothing new" (the fingerprint the released model was trained on, or one
   already tried) ends the stage in about a second, exit 0.
2. New data: the drift gate first (CheckDrift, when ``[gates.drift]`` is configured), then
   the whole pipeline, whose gates compare the candidate with the released model.
3. Passed: the models.lock change is committed on a new branch ``retrain/<model>/<snapshot>``
   with the gates' summaries in the message, ``reports/retrain/report.md`` is written for
   the pull request, the checkout is left as it was, and ``--push`` pushes that branch
   alone. Failed: the reports stay, exit 8.

Each verdict is recorded in the store (``retrain/<model>/<data fingerprint>.json``), so a
snapshot is tried once, whichever machine runs the job next.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from mlbuild.ci import git
from mlbuild.ci.stages import StageResult, gate_report, gate_verdict, junit_path, write_junit
from mlbuild.core.manifest import git_commit, now
from mlbuild.errors import ConfigError, GateFailedError
from mlbuild.settings import reports_dir

NAME = "retrain"


def run_retrain(module: str, extra: list[str], push: bool = False, remote: str = "origin",
                workers: int = 1) -> StageResult:
    from mlbuild.ci.runner import project_task
    from mlbuild.ci.task_options import task_class
    from mlbuild.release.lockfile import LockFile
    from mlbuild.tasks.publish import PublishModel

    started = time.time()
    with project_task(module, "PublishModel", extra) as publish:
        publish = publish.project_task(PublishModel)
        data = publish.data_task()
        if data is None:
            raise ConfigError(f"{type(publish).__name__} declares no data task, so there is no "
                              "new data to retrain on.",
                              hint="return the task that fetches the data from data_task() in "
                                   "the project's ReleaseTask subclass.")
        config = publish.release_config().publish
        lockfile, model = Path(config.lockfile), config.model_name
        fingerprint = data.fingerprint  # resolves the data source: one listing
        released = LockFile.read(lockfile).models.get(model)
        released_data = (released.data if released else None) or {}
        if released_data.get("fingerprint") == fingerprint:
            return _done(f"stage retrain: no new data for {model} (the released model was "
                         f"trained on {_data_name(released_data)})")
        record_key = f"{NAME}/{model}/{fingerprint}.json"
        if publish.store.exists(record_key):
            record = json.loads(publish.store.get_bytes(record_key))
            return _done(f"stage retrain: no new data for {model}: {record['data']} was tried "
                         f"on {record['time']} ({record['verdict']})")

        git.check_tracked(lockfile)  # before any work: a change to it must be proposable
        original = lockfile.read_bytes() if lockfile.exists() else None
        gates = _gate_tasks(publish)
        try:
            for task in [*gates[:-1], task_class("FullPipeline", module)()]:
                outcome = _run(task, workers)
                if outcome.exit_code:  # e.g. published, then the image failed its test
                    return _failed(publish, task, gates, outcome, record_key, data, started)
            return _propose(publish, gates, data, lockfile, model, released, record_key,
                            push, remote)
        finally:
            _restore(lockfile, original)


def _gate_tasks(publish) -> list:
    """The drift gate (when ``[gates.drift]`` is configured) and the accuracy gates: the
    drift gate runs on its own first, so drifted data stops the stage before training."""
    from mlbuild.tasks.evaluate import EvaluateAccuracy

    tasks = [publish.project_task(EvaluateAccuracy)]
    if getattr(publish.release_config().gates, "drift", None) is not None:
        from mlbuild.tasks.drift import CheckDrift

        tasks.insert(0, publish.project_task(CheckDrift))
    return tasks


def _run(task, workers: int):
    from rich.console import Console

    from mlbuild.ci.runner import run_task

    console = Console(stderr=True, highlight=False)
    outcome = run_task(task, workers=workers, console=console)
    for failure in outcome.failures:
        console.print(f"✗ {failure.task} ({failure.kind})\n{failure.text}", markup=False,
                      soft_wrap=True)
    return outcome


def _summaries(gates: list, since: float) -> list[str]:
    """Each gate task's summary line (and its report), from this run or the store."""
    found = []
    for task in gates:
        verdict = gate_verdict(gate_report(task, since), task.report_folder()).strip()
        if verdict:
            found.append(f"{task.get_task_family()}: {verdict}")
    return found


def _failed(publish, task, gates: list, outcome, record_key: str, data,
            started: float) -> StageResult:
    """A failed gate is this data's verdict (recorded: it is not tried again); any other
    failure (the store, the engine) is not, so the next run tries again."""
    model = publish.release_config().publish.model_name
    verdicts = _summaries(gates, started) or [outcome.summary.splitlines()[-1]]
    message = f"stage retrain: {model} on {_data_name(_data_of(data))}: {task} failed"
    if outcome.exit_code == GateFailedError.exit_code:
        _record(publish, record_key, data, f"gates failed: {verdicts[-1].splitlines()[0]}")
    text = "\n".join([message, *verdicts])
    write_junit(NAME, f"retrain {model}", text)
    return StageResult(NAME, outcome.exit_code, junit_path(NAME), text)


def _propose(publish, gates: list, data, lockfile: Path, model: str, released,
             record_key: str, push: bool, remote: str) -> StageResult:
    from mlbuild.release.lockfile import LockFile

    entry = LockFile.read(lockfile).entry(model, lockfile)
    snapshot = _data_name(_data_of(data))
    branch = f"{NAME}/{model}/{_ref_safe(snapshot)}"
    title = f"Retrain {model} on {snapshot}"
    lines = [f"New model sha256:{entry.sha256[:12]} ({entry.size} bytes)"
             + (f", replacing sha256:{released.sha256[:12]}." if released else "."),
             *[s.split("; report:")[0] for s in _summaries(gates, 0)]]
    report = _write_report(title, lines, gates)
    root = git.toplevel(lockfile.resolve().parent)
    relative = str(lockfile.resolve().relative_to(root))
    commit = git.propose(branch, {relative: lockfile.read_bytes()},
                         f"{title}\n\n" + "\n".join(lines) + "\n", repo=root)
    if push:
        git.push(branch, remote, repo=root)
    _record(publish, record_key, data, f"passed: proposed on {branch} ({commit[:12]})")
    pushed = f", pushed to {remote}" if push else ""
    headline = (f"stage retrain: {model} retrained on {snapshot}: gates passed; proposed on "
                f"branch {branch} (commit {commit[:12]}){pushed}")
    summary = "\n".join([headline, *lines, f"pull request text: {report}"])
    write_junit(NAME, f"retrain {model}", None)
    return StageResult(NAME, 0, junit_path(NAME), summary)


def _write_report(title: str, lines: list[str], gates: list) -> Path:
    """reports/retrain/report.md: the pull request's text, the gates' reports included."""
    parts = [f"# {title}", "", *[f"- {line}" for line in lines]]
    for task in gates:
        folder = task.report_folder()
        markdown = folder / "report.md" if folder else None
        if markdown and markdown.exists():
            parts += ["", markdown.read_text().replace("\n# ", "\n## ", 1)]
    path = Path(reports_dir(), NAME, "report.md")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts).rstrip() + "\n")
    return path


def _record(publish, key: str, data, verdict: str) -> None:
    record = {"data": _data_name(_data_of(data)), "fingerprint": data.fingerprint,
              "verdict": verdict, "time": now(), "commit": git_commit()}
    publish.store.put_bytes((json.dumps(record, indent=2, sort_keys=True) + "\n").encode(), key)


def _data_of(data) -> dict:
    """What the data task's manifest says of the data it fetched (its snapshot)."""
    extra = data.read_manifest().extra if data.complete() else {}
    return {"fingerprint": data.fingerprint, "snapshot": extra.get("snapshot")}


def _data_name(data: dict) -> str:
    if data.get("snapshot"):
        return f"snapshot {data['snapshot']}"
    return f"data {str(data.get('fingerprint', '?'))[:12]}"


def _ref_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name.removeprefix("snapshot ")).strip("-.")


def _restore(lockfile: Path, original: bytes | None) -> None:
    """Leave the checkout as it was: the change lives on the proposed branch."""
    if original is None:
        lockfile.unlink(missing_ok=True)
    elif lockfile.read_bytes() != original:
        lockfile.write_bytes(original)


def _done(summary: str) -> StageResult:
    write_junit(NAME, NAME, None)
    return StageResult(NAME, 0, junit_path(NAME), summary)
