"""Reports of an evaluation: ``metrics.json`` (everything), ``junit.xml`` (a test case per
gate and slice, failures carrying the numbers), ``report.md`` (short enough for a
pull-request comment) and ``report.html`` with ``report.css`` and ``plots.png`` beside it (the verdict first;
confusion matrices, ROC or calibration, candidate beside the released model: see
:mod:`mlbuild.accuracy.plots`). Written whether the gates pass or not.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np

from mlbuild.accuracy.evaluation import Evaluation
from mlbuild.accuracy.plots import write_plots

FILES = {"metrics": "metrics.json", "junit": "junit.xml", "markdown": "report.md",
         "html": "report.html", "css": "report.css", "plots": "plots.png"}


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


def metrics_json(ev: Evaluation, extra: dict[str, Any] | None = None) -> str:
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
        **(extra or {}),
    }
    return json.dumps(_clean(data), indent=2, sort_keys=True) + "\n"


def junit_xml(ev: Evaluation, suite: str = "accuracy") -> str:
    counts = ev.counts()
    root = ET.Element("testsuite", name=f"{suite}.{ev.tier}", tests=str(len(ev.results)),
                      failures=str(counts["failed"]), skipped=str(counts["not_gated"]),
                      errors="0")
    properties = ET.SubElement(root, "properties")
    for key, value in (("summary", ev.summary()), *counts.items()):
        ET.SubElement(properties, "property", name=key, value=str(value))
    for result in ev.results:
        case = ET.SubElement(root, "testcase", classname=f"{suite}.{ev.tier}.{result.kind}",
                             name=result.name)
        if result.passed is False:
            ET.SubElement(case, "failure", message=result.reason).text = json.dumps(
                _clean(result.to_dict()), indent=2, sort_keys=True)
        elif result.passed is None:
            ET.SubElement(case, "skipped", message=result.reason)
        else:
            ET.SubElement(case, "system-out").text = result.reason
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


#: what each gate result says, in words (no emoji: many CI hosts have no emoji font)
MARKS = {True: "pass", False: "FAIL", None: "not gated"}


def _ordered(ev: Evaluation):
    """Failed gates first, then passed, then those not gated: what needs action on top."""
    rank = {False: 0, True: 1, None: 2}
    return sorted(ev.results, key=lambda r: rank[r.passed])


def _delta(ev: Evaluation, name: str) -> str:
    base = ev.baseline_metrics.get(name)
    return "" if base is None else f"{ev.metrics[name] - base:+.4f}"


def _verdict(ev: Evaluation) -> str:
    return "PASSED" if ev.passed else "FAILED"


def markdown(ev: Evaluation, title: str = "Accuracy") -> str:
    head = "✅" if ev.passed else "❌"
    lines = [f"### {head} {_verdict(ev)}: {title}: {ev.summary()}", ""]
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
.better { color: #1b5e20; }
.worse { color: #b71c1c; }
img { max-width: 100%; height: auto; }
.note { color: #555; }
"""

_CLASS = {True: "passed", False: "failed", None: "not-gated"}


def html_report(ev: Evaluation, title: str = "Accuracy", plots: tuple[int, int] | None = None,
                ) -> str:
    """The HTML report: the verdict first, failed gates on top, no inline style or script
    (it must render under Jenkins' Content-Security-Policy), report.css and plots.png beside it."""
    e = html.escape
    rows = "".join(
        f"<tr class=\"{_CLASS[r.passed]}\"><td>{e(r.name)}</td><td><span class=\"badge "
        f"{_CLASS[r.passed]}\">{MARKS[r.passed]}</span></td><td>{e(r.reason)}</td></tr>"
        for r in _ordered(ev))
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
    verdict = _verdict(ev)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{verdict}: {e(title)}</title>
<link rel="stylesheet" href="{FILES['css']}"></head><body>
<div class="verdict {verdict.lower()}" id="verdict"><strong>{verdict}</strong>{e(ev.summary())}</div>
<h1>{e(title)}</h1>{plan}
<h2>Gates</h2>
<table><thead><tr><th>gate</th><th>result</th><th>what it showed</th></tr></thead>
<tbody>{rows}</tbody></table>
<h2>Metrics</h2>
<table><thead><tr><th>metric</th><th>candidate</th><th>released</th><th>change</th></tr></thead>
<tbody>{metric_rows}</tbody></table>
{figure}
</body></html>
"""


def write_reports(ev: Evaluation, folder: str | Path, title: str = "Accuracy",
                  extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write the reports (and the CSS and plot the HTML shows) into ``folder``; return
    their paths by kind."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    size = write_plots(ev, folder / FILES["plots"])
    texts = {"metrics": metrics_json(ev, extra), "junit": junit_xml(ev),
             "markdown": markdown(ev, title), "html": html_report(ev, title, size), "css": CSS}
    paths = {"plots": folder / FILES["plots"]}
    for kind, text in texts.items():
        paths[kind] = folder / FILES[kind]
        paths[kind].write_text(text)
    return paths
