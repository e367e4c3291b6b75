"""Reports of an evaluation: ``metrics.json`` (everything), ``junit.xml`` (a test case per
gate and slice, failures carrying the numbers), ``report.md`` (short enough for a
pull-request comment) and ``report.html`` with ``report.css`` and ``plots.png`` beside it (the verdict first;
confusion matrices, ROC or calibration, candidate beside the released model: see
:mod:`mlbuild.accuracy.plots`). Written whether the gates pass or not.

The data drift gate (:mod:`mlbuild.accuracy.drift`) has reports of its own, made of the same
pieces (``drift.json``, ``junit.xml``, ``report.md``, ``report.html``: the drifted columns
first), and joins an evaluation's reports as a "Data drift" section when given.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np

from mlbuild.accuracy.drift import Drift
from mlbuild.accuracy.evaluation import Evaluation
from mlbuild.accuracy.gates import GateResult
from mlbuild.accuracy.plots import write_plots

FILES = {"metrics": "metrics.json", "junit": "junit.xml", "markdown": "report.md",
         "html": "report.html", "css": "report.css", "plots": "plots.png"}
#: the drift gate's reports (CheckDrift's outputs)
DRIFT_FILES = {"drift": "drift.json", "junit": "junit.xml", "markdown": "report.md",
               "html": "report.html", "css": "report.css"}


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN to None."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def metrics_json(ev: Evaluation, extra: dict[str, Any] | None = None,
                 drift: Drift | None = None) -> str:
    data = {
        "passed": ev.passed,
        "tier": ev.tier,
        "model_kind": ev.model_kind,
        "n": ev.n,
        "metrics": ev.metrics,
        "baseline_metrics": ev.baseline_metrics,
        "counts": ev.counts(),
        "summary": ev.summary(),
        "plan": None if ev.plan is None else ev.plan.to_dict(),
        "gates": [r.to_dict() for r in ev.results],
        **({"drift": drift.to_dict()} if drift is not None else {}),
        **(extra or {}),
    }
    return json.dumps(_clean(data), indent=2, sort_keys=True) + "\n"


def _testcase(root: ET.Element, result: GateResult, classname: str) -> None:
    case = ET.SubElement(root, "testcase", classname=classname, name=result.name)
    if result.passed is False:
        ET.SubElement(case, "failure", message=result.reason).text = json.dumps(
            _clean(result.to_dict()), indent=2, sort_keys=True)
    elif result.passed is None:
        ET.SubElement(case, "skipped", message=result.reason)
    else:
        ET.SubElement(case, "system-out").text = result.reason


def _suite(name: str, results: list[GateResult], properties: dict[str, Any]) -> ET.Element:
    failed = sum(r.passed is False for r in results)
    skipped = sum(r.passed is None for r in results)
    root = ET.Element("testsuite", name=name, tests=str(len(results)), failures=str(failed),
                      skipped=str(skipped), errors="0")
    holder = ET.SubElement(root, "properties")
    for key, value in properties.items():
        ET.SubElement(holder, "property", name=key, value=str(value))
    return root


def _xml(root: ET.Element) -> str:
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def junit_xml(ev: Evaluation, suite: str = "accuracy", drift: Drift | None = None) -> str:
    """One test suite: a test case per gate and slice, then one per drift statistic."""
    drifts = drift.results if drift is not None else []
    extra = {"drift": drift.summary()} if drift is not None else {}
    root = _suite(f"{suite}.{ev.tier}", ev.results + drifts,
                  {"summary": ev.summary(), **ev.counts(), **extra})
    for result in ev.results:
        _testcase(root, result, f"{suite}.{ev.tier}.{result.kind}")
    for result in drifts:
        _testcase(root, result, f"{suite}.{ev.tier}.drift.{result.metric}")
    return _xml(root)


def drift_junit_xml(drift: Drift, suite: str = "drift") -> str:
    """The drift gate's own test suite: a test case per column and statistic."""
    root = _suite(suite, drift.results, {"summary": drift.summary(), **drift.counts()})
    for result in drift.results:
        _testcase(root, result, f"{suite}.{result.metric}")
    return _xml(root)


#: what each gate result says, in words (no emoji: many CI hosts have no emoji font)
MARKS = {True: "pass", False: "FAIL", None: "not gated"}


def _ordered(ev: Evaluation):
    """Failed gates first, then passed, then those not gated: what needs action on top."""
    rank = {False: 0, True: 1, None: 2}
    return sorted(ev.results, key=lambda r: rank[r.passed])


def _delta(ev: Evaluation, name: str) -> str:
    base = ev.baseline_metrics.get(name)
    return "" if base is None else f"{ev.metrics[name] - base:+.4f}"


def _verdict(ev: Evaluation | Drift, drift: Drift | None = None) -> str:
    return "PASSED" if ev.passed and (drift is None or drift.passed) else "FAILED"


def _mark(result: GateResult) -> str:
    if result.passed and result.details.get("level") == "warn":
        return "warn"
    return MARKS[result.passed]


def _drift_lines(drift: Drift) -> list[str]:
    """The drift section of report.md: the drifted columns first, then the statistics that
    failed, warned or were not gated (the passing ones only counted)."""
    lines = []
    if drift.drifted:
        lines.append(f"**Drifted columns:** {', '.join(drift.drifted)}")
    if drift.warned:
        lines.append(f"Warnings (not failing): {', '.join(drift.warned)}")
    lines += [""] if lines else []
    lines += [f"> {note}" for note in drift.notes] + ([""] if drift.notes else [])
    shown = _drift_shown(drift)
    if shown:
        lines += ["| statistic | result | what it showed |", "| --- | --- | --- |"]
        for result in shown:
            mark = {"pass": "✅ pass", "warn": "⚠️ warn", "FAIL": "❌ **FAIL**",
                    "not gated": "➖ not gated"}[_mark(result)]
            lines.append(f"| {result.name} | {mark} | {result.reason} |")
    hidden = len(drift.results) - len(shown)
    if hidden:
        lines += ["", f"{hidden} statistic(s) passed below their warn level; see report.html."]
    return lines


def _drift_shown(drift: Drift) -> list[GateResult]:
    """The drift results worth a row of their own: all but the quiet passes, failures on top;
    when every result is not gated for one reason, that reason alone (a note says it)."""
    if all(r.passed is None for r in drift.results) and drift.notes:
        return []
    rank = {"FAIL": 0, "warn": 1, "not gated": 2}
    return sorted((r for r in drift.results if _mark(r) != "pass"),
                  key=lambda r: rank[_mark(r)])


def drift_markdown(drift: Drift, title: str = "Data drift") -> str:
    head = "✅" if drift.passed else "❌"
    return "\n".join([f"### {head} {_verdict(drift)}: {title}: {drift.summary()}", "",
                      *_drift_lines(drift)]) + "\n"


def markdown(ev: Evaluation, title: str = "Accuracy", drift: Drift | None = None) -> str:
    head = "✅" if ev.passed and (drift is None or drift.passed) else "❌"
    lines = [f"### {head} {_verdict(ev, drift)}: {title}: {ev.summary()}", ""]
    if ev.plan is not None:
        lines += [f"Sample: {ev.plan.describe()}", ""]
        lines += [f"> {w}" for w in ev.plan.warnings] + ([""] if ev.plan.warnings else [])
    lines += ["| gate | result | what it showed |", "| --- | --- | --- |"]
    shown = [r for r in _ordered(ev) if r.kind != "slice" or r.passed is False]
    for result in shown:
        mark = {True: "✅ pass", False: "❌ **FAIL**", None: "➖ not gated"}[result.passed]
        lines.append(f"| {result.name} | {mark} | {result.reason} |")
    hidden = len(ev.results) - len(shown)
    if hidden:
        note = (f"{hidden} slice gate(s) passed or were too small to gate; see report.html "
                "or metrics.json.")
        lines += ["", note]
    names = sorted(ev.metrics)
    if names:
        lines += ["", "| metric | candidate | released | change |", "| --- | ---: | ---: | ---: |"]
        for name in names:
            base = ev.baseline_metrics.get(name)
            lines.append(f"| {name} | {ev.metrics[name]:.4f} | "
                         f"{'—' if base is None else f'{base:.4f}'} | {_delta(ev, name) or '—'} |")
    if drift is not None:
        lines += ["", f"#### Data drift: {drift.summary()}", "", *_drift_lines(drift)]
    return "\n".join(lines) + "\n"


CSS = """\
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; margin: 0 auto;
       padding: 1em 1.5em; max-width: 1100px; color: #1b1b1b; line-height: 1.4; }
.verdict { padding: 0.8em 1em; border-radius: 6px; margin: 0 0 1em; font-size: 1.15em; }
.verdict.passed { background: #e3f4e6; border: 2px solid #2e7d32; }
.verdict.failed { background: #fde7e7; border: 2px solid #c62828; }
.verdict strong { font-size: 1.3em; margin-right: 0.5em; }
.verdict.passed strong { color: #1b5e20; }
.verdict.failed strong { color: #b71c1c; }
h1 { font-size: 1.3em; margin: 0.3em 0; }
h2 { font-size: 1.1em; margin: 1.4em 0 0.4em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #bbb; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #fde7e7; }
.badge { display: inline-block; padding: 0 6px; border-radius: 3px; font-weight: bold;
         white-space: nowrap; }
.badge.passed { background: #2e7d32; color: #fff; }
.badge.failed { background: #c62828; color: #fff; }
.badge.not-gated { background: #9e9e9e; color: #fff; }
.badge.warn { background: #e65100; color: #fff; }
tr.warn td { background: #fff3e0; }
.drifted { font-size: 1.05em; }
details { margin: 0.5em 0 1em; }
summary { cursor: pointer; }
.better { color: #1b5e20; }
.worse { color: #b71c1c; }
img { max-width: 100%; height: auto; }
.note { color: #555; }
"""

_CLASS = {True: "passed", False: "failed", None: "not-gated"}


def _html_rows(results: list[GateResult]) -> str:
    e = html.escape
    rows = ""
    for r in results:
        mark = _mark(r)
        css = "warn" if mark == "warn" else _CLASS[r.passed]
        rows += (f"<tr class=\"{css}\"><td>{e(r.name)}</td><td><span class=\"badge {css}\">"
                 f"{mark}</span></td><td>{e(r.reason)}</td></tr>")
    return rows


_TABLE_HEAD = "<table><thead><tr><th>{}</th><th>result</th><th>what it showed</th></tr></thead>"


def _drift_html(drift: Drift, heading: str = "Data drift", summary: bool = True) -> str:
    """The drift section: the drifted columns first, then the statistics that failed,
    warned or were not gated; the quiet passes folded into a <details>."""
    e = html.escape
    parts = [f"<h2>{e(heading)}</h2>"] + ([f"<p>{e(drift.summary())}</p>"] if summary else [])
    if drift.drifted:
        parts.append("<p class=\"drifted\" id=\"drifted\">Drifted columns: "
                     + ", ".join(f"<strong>{e(str(c))}</strong>" for c in drift.drifted) + "</p>")
    else:
        parts.append("<p class=\"drifted\" id=\"drifted\">No column drifted.</p>")
    if drift.warned:
        parts.append(f"<p>Warnings (not failing): {e(', '.join(map(str, drift.warned)))}</p>")
    parts += [f"<p class=\"note\">{e(note)}</p>" for note in drift.notes]
    shown = _drift_shown(drift)
    if shown:
        parts.append(f"{_TABLE_HEAD.format('statistic')}<tbody>{_html_rows(shown)}</tbody></table>")
    quiet = [r for r in drift.results if _mark(r) == "pass"]
    if quiet:
        parts.append(f"<details><summary>{len(quiet)} statistic(s) passed below their warn "
                     f"level</summary>{_TABLE_HEAD.format('statistic')}<tbody>"
                     f"{_html_rows(quiet)}</tbody></table></details>")
    return "\n".join(parts)


def _page(title: str, verdict: str, summary: str, body: str) -> str:
    e = html.escape
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{verdict}: {e(title)}</title>
<link rel="stylesheet" href="{FILES['css']}"></head><body>
<div class="verdict {verdict.lower()}" id="verdict"><strong>{verdict}</strong>{e(summary)}</div>
<h1>{e(title)}</h1>{body}
</body></html>
"""


def drift_html(drift: Drift, title: str = "Data drift") -> str:
    """The drift gate's HTML report: the verdict, then the drifted columns, then the rows;
    no inline style or script, report.css beside it."""
    return _page(title, _verdict(drift), drift.summary(),
                 "\n" + _drift_html(drift, "Columns", summary=False))


def html_report(ev: Evaluation, title: str = "Accuracy", plots: tuple[int, int] | None = None,
                drift: Drift | None = None) -> str:
    """The HTML report: the verdict first, failed gates on top, no inline style or script
    (it must render under Jenkins' Content-Security-Policy), report.css and plots.png beside it."""
    e = html.escape
    rows = _html_rows(_ordered(ev))
    metric_rows = ""
    for name in sorted(ev.metrics):
        base = ev.baseline_metrics.get(name)
        delta = _delta(ev, name)
        metric_rows += (f"<tr><td>{e(name)}</td><td class=\"number\">{ev.metrics[name]:.4f}</td>"
                        f"<td class=\"number\">{'' if base is None else f'{base:.4f}'}</td>"
                        f"<td class=\"number\">{delta}</td></tr>")
    plan = "" if ev.plan is None else "".join(
        f"<p class=\"note\">{e(line)}</p>" for line in (
            f"Sample: {ev.plan.describe()}", *(f"Warning: {w}" for w in ev.plan.warnings)))
    figure = "" if plots is None else (
        f"<h2>Plots</h2><img src=\"{FILES['plots']}\" width=\"{plots[0]}\" "
        f"height=\"{plots[1]}\" alt=\"confusion matrices and curves of the candidate and the "
        "released model\">")
    body = f"""{plan}
<h2>Gates</h2>
<table><thead><tr><th>gate</th><th>result</th><th>what it showed</th></tr></thead>
<tbody>{rows}</tbody></table>
<h2>Metrics</h2>
<table><thead><tr><th>metric</th><th>candidate</th><th>released</th><th>change</th></tr></thead>
<tbody>{metric_rows}</tbody></table>
{figure}"""
    if drift is not None:
        body += "\n" + _drift_html(drift)
    return _page(title, _verdict(ev, drift), ev.summary(), body)


def write_reports(ev: Evaluation, folder: str | Path, title: str = "Accuracy",
                  extra: dict[str, Any] | None = None, drift: Drift | None = None
                  ) -> dict[str, Path]:
    """Write the reports (and the CSS and plot the HTML shows) into ``folder``; return
    their paths by kind. ``drift``: the data drift gate's results, shown in a section."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    size = write_plots(ev, folder / FILES["plots"])
    texts = {"metrics": metrics_json(ev, extra, drift), "junit": junit_xml(ev, drift=drift),
             "markdown": markdown(ev, title, drift), "html": html_report(ev, title, size, drift),
             "css": CSS}
    paths = {"plots": folder / FILES["plots"]}
    for kind, text in texts.items():
        paths[kind] = folder / FILES[kind]
        paths[kind].write_text(text)
    return paths


def write_drift_reports(drift: Drift, folder: str | Path, title: str = "Data drift",
                        extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write the drift gate's reports into ``folder``; return their paths by kind."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = json.dumps(_clean({**drift.to_dict(), **(extra or {})}), indent=2, sort_keys=True)
    texts = {"drift": data + "\n", "junit": drift_junit_xml(drift),
             "markdown": drift_markdown(drift, title), "html": drift_html(drift, title),
             "css": CSS}
    paths = {}
    for kind, text in texts.items():
        paths[kind] = folder / DRIFT_FILES[kind]
        paths[kind].write_text(text)
    return paths
