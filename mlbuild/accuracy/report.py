"""Reports of an evaluation: ``metrics.json`` (everything), ``junit.xml`` (a test case per
gate and slice, failures carrying the numbers), ``report.md`` (short enough for a
pull-request comment) and ``report.html`` (plots: confusion matrices, ROC or calibration,
candidate beside the released model). Written whether the gates pass or not.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np

from mlbuild.accuracy.evaluation import Evaluation
from mlbuild.accuracy.metrics import Predictions, confusion_matrix

FILES = {"metrics": "metrics.json", "junit": "junit.xml", "markdown": "report.md",
         "html": "report.html"}


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


def _mark(passed: bool | None) -> str:
    return {True: "✅ pass", False: "❌ FAIL", None: "➖ not gated"}[passed]


def markdown(ev: Evaluation, title: str = "Accuracy") -> str:
    head = "✅" if ev.passed else "❌"
    lines = [f"### {head} {title}: {ev.summary()}", ""]
    if ev.plan is not None:
        lines += [f"Sample: {ev.plan.describe()}", ""]
        lines += [f"> {w}" for w in ev.plan.warnings] + ([""] if ev.plan.warnings else [])
    names = sorted(ev.metrics)
    if names:
        lines += ["| metric | candidate | released |", "| --- | ---: | ---: |"]
        for name in names:
            base = ev.baseline_metrics.get(name)
            lines.append(f"| {name} | {ev.metrics[name]:.4f} | "
                         f"{'—' if base is None else f'{base:.4f}'} |")
        lines.append("")
    lines += ["| gate | result | what it showed |", "| --- | --- | --- |"]
    shown = [r for r in ev.results if r.kind != "slice" or r.passed is False]
    for result in shown:
        lines.append(f"| {result.name} | {_mark(result.passed)} | {result.reason} |")
    hidden = len(ev.results) - len(shown)
    if hidden:
        note = (f"{hidden} slice gate(s) passed or were too small to gate; see report.html "
                "or metrics.json.")
        lines += ["", note]
    return "\n".join(lines) + "\n"


def _figure_png(ev: Evaluation) -> str | None:
    """Confusion matrices and ROC or calibration curves, candidate beside the baseline."""
    if ev.model_kind != "classification" or ev.candidate is None or ev.candidate.proba is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [("candidate", ev.candidate)]
    if ev.baseline is not None:
        models.append(("released", ev.baseline))
    classes = ev.candidate.proba.shape[1]
    fig, axes = plt.subplots(1, len(models) + 1, figsize=(5 * (len(models) + 1), 4.5))
    for ax, (name, p) in zip(axes, models, strict=False):
        matrix = confusion_matrix(p.y_true, p.y_pred, classes)
        ax.imshow(matrix, cmap="Blues")
        ax.set_title(f"{name}: confusion matrix")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if classes <= 12:
            for (i, j), count in np.ndenumerate(matrix):
                ax.text(j, i, str(count), ha="center", va="center", fontsize=7)
    curve = axes[-1]
    for name, p in models:
        _curve(curve, name, p, classes)
    curve.legend(loc="lower right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _curve(ax, name: str, p: Predictions, classes: int) -> None:
    if classes == 2:
        from sklearn.metrics import roc_curve

        fpr, tpr, _ = roc_curve(p.y_true, p.proba[:, 1])
        ax.plot(fpr, tpr, label=name)
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.set_title("ROC")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        return
    confidence = p.proba.max(axis=1)
    correct = (p.y_pred == p.y_true).astype(float)
    edges = np.linspace(0, 1, 11)
    bins = np.clip(np.digitize(confidence, edges) - 1, 0, 9)
    used = [b for b in range(10) if np.any(bins == b)]
    ax.plot([confidence[bins == b].mean() for b in used],
            [correct[bins == b].mean() for b in used], "o-", label=name)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_title("calibration (top-class confidence)")
    ax.set_xlabel("predicted confidence")
    ax.set_ylabel("observed accuracy")


def html_report(ev: Evaluation, title: str = "Accuracy") -> str:
    rows = "".join(
        f"<tr class='{'fail' if r.passed is False else ''}'><td>{html.escape(r.name)}</td>"
        f"<td>{_mark(r.passed)}</td><td>{html.escape(r.reason)}</td></tr>" for r in ev.results)
    metric_rows = "".join(
        f"<tr><td>{name}</td><td>{ev.metrics[name]:.4f}</td>"
        f"<td>{'' if name not in ev.baseline_metrics else f'{ev.baseline_metrics[name]:.4f}'}"
        f"</td></tr>" for name in sorted(ev.metrics))
    png = _figure_png(ev)
    figure = f"<img alt='plots' src='data:image/png;base64,{png}'>" if png else ""
    plan = "" if ev.plan is None else "".join(
        f"<p>{html.escape(line)}</p>" for line in (f"Sample: {ev.plan.describe()}",
                                                   *(f"Warning: {w}" for w in ev.plan.warnings)))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:4px 8px}}
table{{border-collapse:collapse;margin:1em 0}}.fail{{background:#fdd}}</style></head><body>
<h1>{html.escape(title)}: {html.escape(ev.summary())}</h1>{plan}
<table><tr><th>metric</th><th>candidate</th><th>released</th></tr>{metric_rows}</table>
{figure}
<table><tr><th>gate</th><th>result</th><th>what it showed</th></tr>{rows}</table>
</body></html>
"""


def write_reports(ev: Evaluation, folder: str | Path, title: str = "Accuracy",
                  extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write the four reports into ``folder``; return their paths by kind."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    texts = {"metrics": metrics_json(ev, extra), "junit": junit_xml(ev),
             "markdown": markdown(ev, title), "html": html_report(ev, title)}
    paths = {}
    for kind, text in texts.items():
        paths[kind] = folder / FILES[kind]
        paths[kind].write_text(text)
    return paths
