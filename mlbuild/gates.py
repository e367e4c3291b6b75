"""Accuracy gates: decide from a finite test sample whether a model may ship.

A point estimate compared with a threshold ignores sampling error. In ``confident``
mode a gate passes only when the one-sided lower confidence bound of the metric meets
the threshold, i.e. when the sample *proves* it; ``point`` mode compares the estimate
(see ../shared/ACCURACY.md). This module is the one place gate logic lives, so that the
host's evaluation and the serving image's acceptance test decide the same way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Literal

from mlbuild.errors import ConfigError, DataError

Mode = Literal["point", "confident"]
MODES = ("point", "confident")


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Wilson score interval of a proportion (Wilson, 1927)."""
    if n <= 0:
        raise ValueError("A proportion needs at least one observation.")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, n]; got {successes} of {n}.")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def lower_bound(successes: int, n: int, confidence: float) -> float:
    """One-sided lower Wilson bound at ``confidence`` (the two-sided interval at 2c - 1)."""
    return wilson_interval(successes, n, 2 * confidence - 1)[0]


@dataclass(frozen=True)
class GateResult:
    name: str
    metric: str
    estimate: float
    interval: tuple[float, float]
    n: int
    threshold: float
    mode: Mode
    confidence: float
    bound: float  # the value compared with the threshold
    passed: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ProportionGate:
    """``metric >= threshold`` for a proportion such as accuracy."""

    metric: str
    threshold: float
    mode: Mode = "confident"
    confidence: float = 0.95

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(f"Gate mode must be one of {MODES}; got {self.mode!r}.")
        if not 0.5 <= self.confidence < 1:
            raise ConfigError(
                f"Gate confidence must be in [0.5, 1), e.g. 0.95; got {self.confidence}. Below "
                "0.5 the one-sided lower bound lies above the estimate, so a confident gate "
                "would pass what a point gate fails."
            )

    def check(self, successes: int, n: int) -> GateResult:
        if n <= 0:
            raise DataError(
                f"The {self.metric} gate has no rows to judge. Hint: check that the test data "
                "is not empty."
            )
        estimate = successes / n
        interval = wilson_interval(successes, n, self.confidence)
        if self.mode == "point":
            bound, what = estimate, "the point estimate"
        else:
            bound = lower_bound(successes, n, self.confidence)
            what = f"the one-sided {self.confidence:.0%} lower bound"
        passed = bound >= self.threshold
        verdict = "meets" if passed else "is below"
        reason = (
            f"{self.metric} = {estimate:.4f} ({successes}/{n}, {self.confidence:.0%} Wilson "
            f"interval [{interval[0]:.4f}, {interval[1]:.4f}]); {what} {bound:.4f} {verdict} "
            f"the threshold {self.threshold:.4f}."
        )
        if not passed and self.mode == "confident" and estimate >= self.threshold:
            reason += " The estimate meets it, but this sample is too small to prove it."
        return GateResult(
            name=f"{self.metric} >= {self.threshold} ({self.mode})",
            metric=self.metric,
            estimate=estimate,
            interval=interval,
            n=n,
            threshold=self.threshold,
            mode=self.mode,
            confidence=self.confidence,
            bound=bound,
            passed=passed,
            reason=reason,
        )
