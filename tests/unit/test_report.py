"""Reports of an evaluation: metrics.json, junit.xml, report.md, report.html."""

from __future__ import annotations

import json
import re
from xml.etree import ElementTree as ET

import numpy as np
import pytest

from mlbuild.accuracy.evaluation import TiersConfig, evaluate, plan_sample
from mlbuild.accuracy.gates import GatesConfig
from mlbuild.accuracy.metrics import Predictions
from mlbuild.accuracy.plots import calibration_bins, write_plots
from mlbuild.accuracy.report import (
    FILES,
    html_report,
    junit_xml,
    markdown,
    metrics_json,
    write_reports,
)

ROWS = 2000


def classifier(y, skill: float, seed: int, classes: int) -> Predictions:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, (len(y), classes))
    logits[np.arange(len(y)), y] += skill
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return Predictions(y, proba.argmax(axis=1), proba)


def evaluation(classes: int = 2, *, baseline: bool = True, collapse: bool = True,
               proba: bool = True, required: tuple[str, ...] = ("r10",)):
    """10 regions; region r9 collapses when ``collapse``; 3 small regions are not gated."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, classes, ROWS)
    candidate = classifier(y, 4.0, 1, classes)
    region = np.array([f"r{i % 10}" for i in range(ROWS)], dtype="<U8")
    small = rng.permutation(ROWS)[:15]
    region[small] = np.array([f"tiny{i % 3}" for i in range(15)])
    if collapse:
        rows = np.flatnonzero(region == "r9")[:120]
        candidate.y_pred[rows] = (y[rows] + 1) % classes
    if not proba:
        candidate = Predictions(candidate.y_true, candidate.y_pred)
    released = classifier(y, 4.0, 2, classes) if baseline else None
    if released is not None and not proba:
        released = Predictions(released.y_true, released.y_pred)
    config = GatesConfig.model_validate({
        "bootstrap_resamples": 200,
        "threshold": [{"metric": "accuracy", "min": 0.8}],
        "change": {"metric": "accuracy", "margin": 0.02},
        "slices": [{"by": "region", "min": 0.8, "min_rows": 20, "required": list(required)}],
    })
    plan = plan_sample(TiersConfig(), config, ROWS)
    return evaluate(candidate, config, kind="classification", tier="fast", baseline=released,
                    columns={"region": region}, plan=plan)


@pytest.fixture(scope="module")
def failing():
    return evaluation()


@pytest.fixture(scope="module")
def written(failing, tmp_path_factory):
    folder = tmp_path_factory.mktemp("reports") / "accuracy" / "fast"
    return failing, write_reports(failing, folder, "Accuracy (fast tier)", {"model": "abc"})


def test_the_evaluation_of_the_fixture_fails_as_planted(failing):
    failed = {r.name.split(":")[0] for r in failing.failures}
    change = "accuracy not worse than the released model by 0.02 or more (non-inferiority)"
    assert failed == {"slice region=r9", "slice region=r10", change}
    assert sum(r.passed is None for r in failing.results) == 3


def test_write_reports_writes_the_reports_with_the_css_and_plot_beside_them(written):
    _, paths = written
    assert set(paths) == {"metrics", "junit", "markdown", "html", "css", "plots"}
    folder = paths["metrics"].parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES.values())
    for kind, path in paths.items():
        assert path.name == FILES[kind] and path.stat().st_size > 0


def test_reports_are_written_for_a_failing_evaluation(written):
    ev, paths = written
    assert ev.passed is False
    assert json.loads(paths["metrics"].read_text())["passed"] is False
    assert paths["markdown"].read_text().startswith("### ❌ FAILED: Accuracy (fast tier): ")
    assert "FAILED" in paths["html"].read_text()


def test_junit_has_one_testcase_per_gate_result(written):
    ev, paths = written
    suite = ET.parse(paths["junit"]).getroot()
    assert suite.tag == "testsuite" and suite.get("name") == "accuracy.fast"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [r.name for r in ev.results]
    assert suite.get("tests") == str(len(ev.results))
    assert suite.get("failures") == str(len(ev.failures)) == "3"
    assert suite.get("skipped") == "3"
    for case, result in zip(cases, ev.results, strict=True):
        assert case.get("classname") == f"accuracy.fast.{result.kind}"
        failure, skipped = case.find("failure"), case.find("skipped")
        if result.passed is False:
            assert skipped is None
            assert failure.get("message") == result.reason
            detail = json.loads(failure.text)
            assert detail["name"] == result.name and detail["n"] == result.n
        elif result.passed is None:
            assert failure is None
            assert skipped.get("message") == result.reason
        else:
            assert failure is None and skipped is None
            assert case.find("system-out").text == result.reason


def test_junit_failures_carry_the_numbers(written):
    ev, paths = written
    suite = ET.parse(paths["junit"]).getroot()
    (slice_case,) = [c for c in suite.findall("testcase")
                     if c.get("name").startswith("slice region=r9:")]
    message = slice_case.find("failure").get("message")
    r9 = next(r for r in ev.results if r.name.startswith("slice region=r9:"))
    assert f"{r9.estimate:.4f}" in message
    assert re.search(r"\(\d+/\d+, interval \[0\.\d{4}, 0\.\d{4}\]\)", message)
    assert "p = " in message and "intersection–union" in message
    assert "passes a model at the limit with probability" in message


def test_junit_of_a_passing_evaluation_has_no_failures():
    ev = evaluation(collapse=False, baseline=False, required=())
    assert ev.passed is True
    suite = ET.fromstring(junit_xml(ev))
    assert suite.get("failures") == "0"
    assert suite.findall("testcase/failure") == []
    (skipped_change,) = [c for c in suite.findall("testcase") if ".change" in c.get("classname")]
    assert skipped_change.find("skipped").get("message").startswith("Not gated")
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["summary"] == ev.summary()
    assert properties["not_gated"] == str(ev.counts()["not_gated"]) == suite.get("skipped")


def test_markdown_names_the_failing_gate_and_is_short(written):
    ev, paths = written
    text = paths["markdown"].read_text()
    lines = text.splitlines()
    assert len(lines) < 60
    for result in ev.failures:
        assert result.name in text and result.reason in text
    assert "❌ FAIL" in text
    assert "slice region=r0:" not in text  # passing slices are summarised, not listed
    assert "passed or were too small to gate" in text
    assert ev.plan.describe() in text
    assert "| metric | candidate | released |" in text


def test_markdown_shows_the_released_model_beside_the_candidate(written):
    ev, paths = written
    text = paths["markdown"].read_text()
    row = next(line for line in text.splitlines() if line.startswith("| accuracy |"))
    assert f"{ev.metrics['accuracy']:.4f}" in row
    assert f"{ev.baseline_metrics['accuracy']:.4f}" in row
    assert ev.metrics["accuracy"] != ev.baseline_metrics["accuracy"]


def test_markdown_without_a_baseline_shows_a_dash():
    ev = evaluation(baseline=False)
    row = next(line for line in markdown(ev).splitlines() if line.startswith("| accuracy |"))
    assert row.endswith("| — |")
    assert "Not gated: there is no released model" in markdown(ev)


def test_html_has_no_inline_style_script_or_data_uri(written):
    # Jenkins serves archived files with "default-src 'none'; img-src 'self'; style-src 'self'"
    _, paths = written
    text = paths["html"].read_text()
    assert "<style" not in text and "style=" not in text and "<script" not in text
    assert "data:" not in text
    assert '<link rel="stylesheet" href="report.css">' in text
    assert '<img src="plots.png" width="800"' in text
    assert paths["plots"].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_html_opens_with_the_verdict_and_lists_failed_gates_first(written):
    ev, paths = written
    text = paths["html"].read_text()
    body = text[text.index("<body>"):]
    assert body.index('id="verdict"') < body.index("<h2>Gates</h2>") < body.index("<h2>Plots")
    assert '<div class="verdict failed" id="verdict"><strong>FAILED</strong>' in text
    rows = re.findall(r'<tr class="(\w[\w-]*)">', text)
    assert rows == sorted(rows, key=["failed", "passed", "not-gated"].index)
    assert rows.count("failed") == len(ev.failures) == 3
    assert "❌" not in text and "✅" not in text  # words, not emoji: many hosts lack the font


def test_html_shows_each_metric_beside_the_released_model_with_the_change(written):
    ev, paths = written
    text = paths["html"].read_text()
    change = ev.metrics["accuracy"] - ev.baseline_metrics["accuracy"]
    assert (f'<td>accuracy</td><td class="number">{ev.metrics["accuracy"]:.4f}</td>'
            f'<td class="number">{ev.baseline_metrics["accuracy"]:.4f}</td>'
            f'<td class="number">{change:+.4f}</td>') in text


def test_html_without_a_baseline_leaves_the_released_and_change_columns_empty():
    ev = evaluation(baseline=False)
    text = html_report(ev)
    assert (f'<td>accuracy</td><td class="number">{ev.metrics["accuracy"]:.4f}</td>'
            '<td class="number"></td><td class="number"></td>') in text


def test_the_plot_fits_800_pixels_for_every_kind_of_evaluation(tmp_path):
    import matplotlib.image

    for name, ev in {"binary": evaluation(), "multiclass": evaluation(classes=4, baseline=False),
                     "no probabilities": evaluation(proba=False, baseline=False)}.items():
        width, height = write_plots(ev, tmp_path / f"{name}.png")
        pixels = matplotlib.image.imread(tmp_path / f"{name}.png")
        assert pixels.shape[:2] == (height, width) and width == 800, name


def test_calibration_bins_hold_equal_row_counts():
    ev = evaluation(classes=4, baseline=False)
    bins = calibration_bins(ev.candidate)
    counts = [n for _, _, n in bins]
    assert len(bins) == 10 and sum(counts) == ROWS and max(counts) - min(counts) <= 1
    confidences = [c for c, _, _ in bins]
    assert confidences == sorted(confidences)
    small = calibration_bins(ev.candidate.take(np.arange(60)))
    assert [n for _, _, n in small] == [30, 30]  # never bins of a handful of rows


def _strict_json(text: str):
    def reject(constant):
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=reject)


def test_metrics_json_has_every_gate_and_the_plan(written):
    ev, paths = written
    data = _strict_json(paths["metrics"].read_text())
    assert data["model"] == "abc"
    assert data["tier"] == "fast" and data["n"] == ROWS and data["model_kind"] == "classification"
    assert data["metrics"] == pytest.approx(ev.metrics)
    assert data["baseline_metrics"] == pytest.approx(ev.baseline_metrics)
    assert [g["name"] for g in data["gates"]] == [r.name for r in ev.results]
    assert [g["passed"] for g in data["gates"]] == [r.passed for r in ev.results]
    assert data["plan"]["rows"] == ev.plan.rows and data["plan"]["describe"] == ev.plan.describe()
    assert data["counts"] == ev.counts() and data["summary"] == ev.summary()
    assert data["gates"][0]["details"]["operating_characteristic"]["exact"] is True
    threshold = data["gates"][0]
    assert threshold["interval"] == pytest.approx(list(ev.results[0].interval))


def test_metrics_json_turns_nan_into_null():
    # One class only: the AUC is undefined, for the candidate and for the released model.
    y = np.ones(50, int)
    proba = np.tile([0.2, 0.8], (50, 1))
    candidate = Predictions(y, np.ones(50, int), proba)
    config = GatesConfig.model_validate({"bootstrap_resamples": 100, "threshold": [
        {"metric": "auc", "min": 0.5, "mode": "point"}]})
    with np.errstate(all="ignore"):
        ev = evaluate(candidate, config, kind="classification", tier="full",
                      baseline=Predictions(y, np.ones(50, int), proba.copy()))
    text = metrics_json(ev, {"extra": np.float64("nan"), "list": [float("nan"), 1.0]})
    assert "NaN" not in text
    data = _strict_json(text)
    assert data["gates"][0]["estimate"] is None
    assert data["baseline_metrics"]["auc"] is None
    assert data["extra"] is None and data["list"] == [None, 1.0]
    assert data["gates"][0]["passed"] is False
