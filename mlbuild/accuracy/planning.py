"""``mlbuild accuracy plan``: the fast tier's plan from a pipeline config, with overrides.

Only ``[accuracy]`` and ``[gates]`` (and ``[schema] allowed_labels``, for the number of
classes) are read, so the command works for any project whose config has those sections,
and from flags alone where there is no config.
"""

from __future__ import annotations

from pathlib import Path

from mlbuild.accuracy.evaluation import SamplePlan, TiersConfig, plan_sample
from mlbuild.accuracy.gates import GatesConfig
from mlbuild.config import Section, read_toml, validate
from mlbuild.errors import ConfigError

#: read when no --pipeline-config is given, if it exists
DEFAULT_CONFIG = Path("configs/pipeline.toml")


class _Plannable(Section):
    """The sections a plan needs; any others in the file are not this command's business."""

    model_config = {**Section.model_config, "extra": "ignore"}
    accuracy: TiersConfig = TiersConfig()
    gates: GatesConfig = GatesConfig()


def _read(path: Path | None) -> dict:
    if path is None:
        return read_toml(DEFAULT_CONFIG) if DEFAULT_CONFIG.exists() else {}
    if not path.exists():
        raise ConfigError(f"The pipeline config {path} does not exist.",
                          hint="give the path of your pipeline.toml, or leave --pipeline-config "
                               "out to plan from the flags alone.")
    return read_toml(path)


def _check_flags(flags: dict[str, float | None], has_accuracy_gate: bool) -> None:
    """Name each flag given out of range, in the flag's own words, all at once."""
    problems = []
    for name, value in flags.items():
        if value is None or 0 < value < 1:
            continue
        percent = f" Did you mean {value / 100:g} ({value:g}%)?" if 1 < value <= 100 else ""
        problems.append(f"--{name} {value:g}: a share between 0 and 1.{percent}")
    expected, drop = flags.get("expected"), flags.get("drop")
    if (drop is not None and 0 < drop < 1 and expected is not None and 0 < expected < 1
            and drop >= expected):
        problems.append(f"--drop {drop:g} is not less than --expected {expected:g}: the gate "
                        f"would be at {expected - drop:g}.")
    if drop is not None and (has_accuracy_gate or flags.get("limit") is not None):
        problems.append(f"--drop {drop:g} plans a gate only where there is no accuracy gate; "
                        "this plan has one: give its limit with --limit instead.")
    if problems:
        raise ConfigError("Cannot plan:\n" + "\n".join(f"  - {p}" for p in problems),
                          hint="accuracies, levels and margins are fractions: 0.95, not 95.")


def plan_from_config(path: str | None, *, expected: float | None = None, limit: float | None = None,
                     drop: float | None = None, alpha: float | None = None,
                     power: float | None = None, interval: str | None = None,
                     margin: float | None = None, discordance: float | None = None,
                     classes: int | None = None) -> SamplePlan:
    """The plan for the config at ``path`` (default: configs/pipeline.toml if it exists),
    each given value overriding it."""
    raw = _read(None if path is None else Path(path))
    accuracy, gates = dict(raw.get("accuracy", {})), dict(raw.get("gates", {}))
    _check_flags({"expected": expected, "limit": limit, "drop": drop, "alpha": alpha,
                  "power": power, "margin": margin, "discordance": discordance},
                 any(t.get("metric") == "accuracy" for t in gates.get("threshold", [])))
    overrides = {"expected": expected, "drop": drop, "alpha": alpha, "power": power,
                 "discordance": discordance}
    accuracy.update({k: v for k, v in overrides.items() if v is not None})
    if alpha is not None:
        gates["confidence"] = 1 - alpha
    if interval is not None:
        gates["interval"] = interval
    if limit is not None:
        others = [t for t in gates.get("threshold", []) if t.get("metric") != "accuracy"]
        gates["threshold"] = [{"metric": "accuracy", "min": limit}, *others]
    if margin is not None or (alpha is not None and gates.get("change")):
        change = dict(gates.get("change") or {})
        change.update({k: v for k, v in (("margin", margin), ("alpha", alpha)) if v is not None})
        gates["change"] = change
    where = f"Cannot plan: {path or DEFAULT_CONFIG if raw else 'the command line'}"
    sections = validate({"accuracy": accuracy, "gates": gates}, _Plannable, where)
    labels = raw.get("schema", {}).get("allowed_labels")
    k = classes or (len(labels) if labels else None)
    shares = {"class": {str(i): 1 / k for i in range(k)}} if k else None
    try:
        return plan_sample(sections.accuracy, sections.gates, None, shares, strict=True)
    except ConfigError as exc:
        raise ConfigError(f"Cannot plan: {exc.message}", hint=exc.hint) from None
    except ValueError as exc:
        raise ConfigError(f"Cannot plan: {exc}") from None
