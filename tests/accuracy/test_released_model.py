"""Accuracy tests of the released model, one test per kind of gate."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.accuracy


def _check(evaluation, kind: str) -> None:
    results = [r for r in evaluation.results if r.kind == kind]
    failed = [r for r in results if r.passed is False]
    assert not failed, "\n".join(f"{r.name}: {r.reason}" for r in failed)


def test_threshold_gates(evaluation):
    assert any(r.kind == "threshold" for r in evaluation.results), "no threshold gate configured"
    _check(evaluation, "threshold")


def test_no_significant_drop_from_the_model_it_replaced(evaluation):
    _check(evaluation, "change")


def test_slice_gates(evaluation):
    _check(evaluation, "slice")


def test_the_fast_tier_sample_reaches_the_planned_power(evaluation, tier):
    if tier == "fast":
        assert evaluation.plan is not None
        assert evaluation.n == evaluation.plan.rows
    else:
        assert evaluation.plan is None
