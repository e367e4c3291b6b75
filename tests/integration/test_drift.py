"""The data drift gate through the reference project, for real: the lock records the
released model's training data; new data with a shifted column stops CheckDrift with exit 8
and a report naming the column; unchanged data passes, and publishing on it is followed by
a no-op run."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import pytest

from mlbuild.errors import GateFailedError
from tests.conftest import ok

pytestmark = pytest.mark.integration

SHIFTED = "pixel_3_4"


def _use_data(project, frame) -> None:
    """Point the project's data source at a CSV of ``frame``, written beside it."""
    path = project.root / "data" / "digits.csv"
    path.parent.mkdir(exist_ok=True)
    frame.to_csv(path, index=False)
    project.edit("configs/pipeline.toml", 'source = "builtin:digits"', f'source = "file://{path}"')


def _digits():
    from tasks.fetch import digits_frame

    return digits_frame()


def test_the_lock_records_the_training_data_and_the_accuracy_report_shows_the_drift_gate(built):
    entry = json.loads(built.lock.read_text())["models"]["digits"]
    data = entry["data"]
    assert {k: data[k] for k in ("task", "output", "file", "snapshot", "baseline")} == {
        "task": "FetchData", "output": "raw", "file": "raw.arrow", "snapshot": None,
        "baseline": None}  # the first release: its data was compared with none
    stored = built.store / "FetchData" / data["fingerprint"] / "raw.arrow"
    assert stored.is_file() and len(data["sha256"]) == 64

    # EvaluateAccuracy's reports carry the drift gate's rows (not gated: nothing released yet)
    (folder,) = {p.parent for p in built.store.glob("EvaluateAccuracy/*/report.html")}
    html = (folder / "report.html").read_text()
    assert "<h2>Data drift</h2>" in html and "style=" not in html
    suite = ET.parse(folder / "junit.xml").getroot()
    drift_cases = [c for c in suite.iter("testcase") if ".drift." in c.get("classname")]
    assert len(drift_cases) == 130 and all(c.find("skipped") is not None for c in drift_cases)
    markdown = (folder / "report.md").read_text()
    assert "#### Data drift:" in markdown and "releases no model 'digits' yet" in markdown

    before = built.manifests()
    ok(built.luigi("PublishModel"))
    assert built.ran_since(before) == set()  # recording the data changed nothing to re-run


def test_a_shifted_column_stops_the_run_at_the_drift_gate_naming_the_column(built):
    lock = built.lock.read_bytes()
    frame = _digits()
    frame[SHIFTED] = (frame[SHIFTED] + 6).clip(upper=16)
    _use_data(built, frame)

    result = built.mlbuild("run", "CheckDrift")
    assert result.returncode == GateFailedError.exit_code, result.stdout + result.stderr
    assert f"The data drift gate failed: {SHIFTED} drifted" in result.stderr

    folder = built.root / "reports" / "drift"
    html = (folder / "report.html").read_text()
    drifted = html[html.index('id="drifted"'):]
    assert drifted.startswith(f'id="drifted">Drifted columns: <strong>{SHIFTED}</strong></p>')
    assert html.index('id="verdict"') < html.index('id="drifted"') < html.index("<table>")
    assert '<div class="verdict failed" id="verdict"><strong>FAILED</strong>' in html
    report = json.loads((folder / "drift.json").read_text())
    assert report["passed"] is False and report["drifted"] == [SHIFTED]
    assert report["reference"]["sha256"] == json.loads(lock)["models"]["digits"]["data"]["sha256"]
    failed = {c.get("name") for c in ET.parse(folder / "junit.xml").getroot().iter("testcase")
              if c.find("failure") is not None}
    assert failed == {f"drift psi {SHIFTED}", f"drift ks {SHIFTED}"}
    assert f"**Drifted columns:** {SHIFTED}" in (folder / "report.md").read_text()
    assert built.lock.read_bytes() == lock


def test_unchanged_data_passes_and_a_run_after_publishing_it_is_a_no_op(built):
    released = json.loads(built.lock.read_text())["models"]["digits"]["data"]
    _use_data(built, _digits())  # the same table from another source: new data, no drift

    ok(built.mlbuild("run", "CheckDrift"))
    report = json.loads((built.root / "reports" / "drift" / "drift.json").read_text())
    assert report["passed"] is True and report["drifted"] == []
    assert report["counts"]["passed"] == 130 and report["counts"]["not_gated"] == 0
    assert report["reference"]["fingerprint"] == released["fingerprint"]

    ok(built.mlbuild("run", "PublishModel"))
    data = json.loads(built.lock.read_text())["models"]["digits"]["data"]
    assert data["fingerprint"] != released["fingerprint"]
    assert data["baseline"] == {k: released[k] for k in data["baseline"]}  # what it was compared with
    accuracy = (built.root / "reports" / "accuracy" / "fast" / "report.html").read_text()
    assert "No column drifted." in accuracy and "Drifted columns" not in accuracy
    assert "<details><summary>130 statistic(s) passed below their warn level" in accuracy

    before = built.manifests()
    ok(built.luigi("PublishModel"))
    assert built.ran_since(before) == set()  # the new lock entry does not move the drift gate
