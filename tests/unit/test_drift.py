"""The data drift gate's statistics (against scipy and by hand), its decisions (warn and
fail levels, Holm's correction, seeded samples) and its reports."""

from __future__ import annotations

import math
import re
from xml.etree import ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy.stats import chi2_contingency, ks_2samp

from mlbuild.accuracy import stats
from mlbuild.accuracy.drift import (
    EPSILON,
    Drift,
    DriftConfig,
    category_counts,
    check_drift,
    chi2,
    ks,
    not_gated,
    numeric_bins,
    psi,
)
from mlbuild.accuracy.gates import GatesConfig
from mlbuild.accuracy.report import drift_html, drift_junit_xml, drift_markdown
from mlbuild.errors import ConfigError


def frame(rows: int, seed: int, shift: float = 0.0, label_shares=(0.5, 0.3, 0.2)) -> pd.DataFrame:
    """Two numeric features, a categorical one and a label; ``shift`` moves ``x``."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "x": rng.normal(shift, 1.0, rows),
        "y": rng.integers(0, 17, rows),  # pixel-like: few distinct values, many ties
        "colour": rng.choice(["red", "green", "blue"], rows, p=[0.5, 0.3, 0.2]),
        "label": rng.choice([0, 1, 2], rows, p=list(label_shares)),
    })


def by_name(drift: Drift):
    return {r.name: r for r in drift.results}


# ----------------------------------------------------------------------------- statistics


def test_psi_of_numeric_columns_uses_the_reference_deciles_with_open_ends():
    reference = np.arange(100.0)                      # deciles at 10, 20, ..., 90
    current = np.concatenate([np.arange(50.0), np.full(50, 500.0)])  # half beyond the top
    ref, cur = numeric_bins(reference, current)
    assert ref.tolist() == [10] * 10 + [0]             # 10 bins, and none missing
    assert cur.tolist() == [10] * 5 + [0] * 4 + [50, 0]  # 500 lands in the open top bin
    shares_r, shares_c = ref / 100, cur / 100
    expected = sum((c - r) * math.log(c / r)
                   for r, c in zip(np.where(shares_r > 0, shares_r, EPSILON),
                                   np.where(shares_c > 0, shares_c, EPSILON), strict=True))
    assert psi(reference, current) == pytest.approx(expected)
    assert psi(reference, reference) == 0.0


def test_psi_deduplicates_the_edges_of_a_column_with_ties_and_bins_missing_values():
    reference = np.array([0.0] * 80 + [16.0] * 20)  # deciles 0 (seven times), 3.2, 16
    ref, cur = numeric_bins(reference, np.array([0.0] * 50 + [16.0] * 40 + [np.nan] * 10))
    # bins: below 0, [0, 3.2), [3.2, 16), 16 and above, missing
    assert ref.tolist() == [0, 80, 0, 20, 0] and cur.tolist() == [0, 50, 0, 40, 10]


def test_psi_of_categories_gives_an_unseen_category_its_own_bin():
    reference = ["a"] * 60 + ["b"] * 40
    current = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    ref, cur, categories = category_counts(reference, current)
    assert categories == ["a", "b", "c"] and (ref.tolist(), cur.tolist()) == ([60, 40, 0], [50, 30, 20])
    expected = ((0.5 - 0.6) * math.log(0.5 / 0.6) + (0.3 - 0.4) * math.log(0.3 / 0.4)
                + (0.2 - EPSILON) * math.log(0.2 / EPSILON))
    assert psi(reference, current, categorical=True) == pytest.approx(expected)


def test_ks_is_scipys_two_sample_test_without_missing_values():
    a, b = frame(300, 1)["x"].to_numpy(), frame(400, 2, shift=0.3)["x"].to_numpy()
    expected = ks_2samp(a, b)
    with_gaps = np.append(b, [np.nan, np.nan])
    assert ks(a, with_gaps) == pytest.approx((expected.statistic, expected.pvalue))
    # D by hand: the largest gap between the two empirical CDFs
    grid = np.sort(np.concatenate([a, b]))
    gap = np.abs(np.searchsorted(np.sort(a), grid, "right") / len(a)
                 - np.searchsorted(np.sort(b), grid, "right") / len(b)).max()
    assert ks(a, b)[0] == pytest.approx(gap)


def test_chi2_is_scipys_contingency_test_with_cramers_v():
    a, b = frame(500, 1)["colour"], frame(300, 2)["colour"].replace({"blue": "purple"})
    table = pd.crosstab(np.r_[np.zeros(len(a)), np.ones(len(b))], np.r_[a, b]).to_numpy()
    expected = chi2_contingency(table, correction=False)
    v, p, statistic, dof = chi2(a, b)
    assert (statistic, p, dof) == pytest.approx((expected.statistic, expected.pvalue,
                                                 expected.dof))
    assert v == pytest.approx(math.sqrt(expected.statistic / table.sum()))
    assert chi2(["a"] * 10, ["a"] * 5) == (0.0, 1.0, 0.0, 0)  # one category: nothing to test


# ----------------------------------------------------------------------------- decisions


def test_an_unchanged_sample_passes():
    drift = check_drift(frame(2000, 1), frame(2000, 2), DriftConfig(), label="label")
    assert drift.passed and drift.failures == [] and drift.drifted == []
    assert len(drift.results) == 8  # psi for each column, ks for x and y, chi2 for the rest
    assert {r.metric for r in drift.results if r.details["column"] == "label"} == {"psi", "chi2"}
    assert all(r.kind == "drift" for r in drift.results)
    assert drift.summary().startswith("data drift gate passed (4 columns, 2000 reference rows")


def test_a_shifted_feature_fails_and_is_named():
    drift = check_drift(frame(2000, 1), frame(2000, 2, shift=1.0), DriftConfig(), label="label")
    assert not drift.passed and drift.drifted == ["x"]
    failed = {r.name for r in drift.failures}
    assert failed == {"drift psi x", "drift ks x"}
    ks_x = by_name(drift)["drift ks x"]
    assert ks_x.estimate > 0.2 and ks_x.limit == 0.2 and ks_x.p_value < 0.01
    assert "x has drifted" in ks_x.reason and "Holm-adjusted over 4 tests" in ks_x.reason
    assert drift.summary().endswith("; drifted: x")


def test_a_shifted_label_fails_by_chi_square():
    reference, current = frame(2000, 1), frame(2000, 2, label_shares=(0.2, 0.3, 0.5))
    drift = check_drift(reference, current, DriftConfig(), label="label")
    result = by_name(drift)["drift chi2 label"]
    assert result.passed is False and result.metric == "chi2"
    table = pd.crosstab(np.r_[np.zeros(2000), np.ones(2000)],
                        np.r_[reference["label"], current["label"]]).to_numpy()
    cramers_v = math.sqrt(chi2_contingency(table, correction=False).statistic / 4000)
    assert result.estimate == pytest.approx(cramers_v) and result.estimate >= 0.2
    assert "chi-square test" in result.reason and drift.drifted == ["label"]


def test_a_numeric_label_of_a_regressor_is_compared_as_numbers():
    reference, current = frame(500, 1), frame(500, 2)
    drift = check_drift(reference, current, DriftConfig(), label="label",
                        label_categorical=False)
    assert {r.metric for r in drift.results if r.details["column"] == "label"} == {"psi", "ks"}


def test_a_warn_level_is_reported_and_does_not_fail():
    config = DriftConfig(ks={"warn": 0.1, "fail": 0.5}, psi={"warn": 0.1, "fail": 5.0})
    drift = check_drift(frame(3000, 1), frame(3000, 2, shift=0.4), config, label="label")
    ks_x = by_name(drift)["drift ks x"]
    assert ks_x.passed is True and ks_x.details["level"] == "warn"
    assert "warn level 0.1" in ks_x.reason and "does not fail the gate" in ks_x.reason
    assert drift.passed and drift.warned == ["x"] and drift.counts()["warned"] >= 1
    strict = DriftConfig(ks={"warn": 0.05, "fail": 0.1})
    assert check_drift(frame(3000, 1), frame(3000, 2, shift=0.4), strict).drifted[0] == "x"


def test_a_large_effect_in_a_small_sample_does_not_count_without_holm_significance():
    reference, current = frame(12, 1), frame(12, 2, shift=0.9)
    drift = check_drift(reference, current, DriftConfig(), label="label")
    ks_x = by_name(drift)["drift ks x"]
    raw = [r.details["p_raw"] for r in drift.results if r.p_value is not None]
    assert ks_x.estimate >= 0.2 and ks_x.p_value >= 0.01     # large, but not significant
    assert ks_x.passed is True and ks_x.details["level"] == "ok"
    assert ks_x.details["level_reached"] == "fail" and "cannot tell it from chance" in ks_x.reason
    assert sorted(r.p_value for r in drift.results if r.p_value is not None) == \
        pytest.approx(sorted(stats.holm(raw)))
    # PSI has no test: it counts by its value alone
    assert by_name(drift)["drift psi x"].p_value is None


def test_a_tiny_significant_shift_in_a_huge_table_stays_below_the_warn_level():
    reference, current = frame(200_000, 1), frame(200_000, 2, shift=0.03)
    drift = check_drift(reference[["x"]], current[["x"]], DriftConfig())
    ks_x = by_name(drift)["drift ks x"]
    assert ks_x.p_value < 1e-6 and ks_x.estimate < 0.1
    assert ks_x.passed is True and ks_x.details["level"] == "ok"


def test_tables_above_max_rows_are_compared_on_a_seeded_sample_and_the_check_says_so():
    reference, current = frame(5000, 1), frame(5000, 2, shift=0.05)
    config = DriftConfig(max_rows=1000, seed=7)
    first, again = (check_drift(reference, current, config) for _ in range(2))
    assert [r.estimate for r in first.results] == [r.estimate for r in again.results]
    other = check_drift(reference, current, DriftConfig(max_rows=1000, seed=8))
    assert [r.estimate for r in first.results] != [r.estimate for r in other.results]
    assert first.reference_rows == 5000 and first.results[0].details["reference_rows"] == 1000
    assert any("a seeded sample of 1000 of them" in n and "seed = 7" in n for n in first.notes)
    assert any("seeded sample" in n for n in first.notes if "new data" in n)


def test_columns_exclude_and_categorical_choose_what_is_compared_and_how():
    config = DriftConfig(exclude=["x"], categorical=["y"])
    drift = check_drift(frame(500, 1), frame(500, 2), config, label="label")
    assert {r.details["column"] for r in drift.results} == {"y", "colour", "label"}
    assert {r.metric for r in drift.results if r.details["column"] == "y"} == {"psi", "chi2"}
    only = check_drift(frame(500, 1), frame(500, 2), DriftConfig(columns=["x"]))
    assert {r.name for r in only.results} == {"drift psi x", "drift ks x"}
    with pytest.raises(ConfigError, match=r"columns names 'z'.*does not have"):
        check_drift(frame(50, 1), frame(50, 2), DriftConfig(columns=["z"]))


def test_a_column_one_table_lacks_is_noted_not_compared():
    reference = frame(300, 1).drop(columns=["colour"])
    current = frame(300, 2).drop(columns=["y"])
    drift = check_drift(reference, current, DriftConfig(), label="label")
    assert {r.details["column"] for r in drift.results} == {"x", "label"}
    assert any("colour, which the released model's training data does not have" in n
               for n in drift.notes)
    assert any("y, which the new data no longer has" in n for n in drift.notes)


def test_without_a_reference_every_result_is_not_gated_with_the_reason():
    drift = not_gated(frame(100, 1), DriftConfig(), "no model is released yet", label="label")
    assert len(drift.results) == 8 and drift.passed
    assert all(r.passed is None and r.reason == "Not gated: no model is released yet."
               for r in drift.results)
    assert drift.counts() == {"gated": 0, "passed": 0, "failed": 0, "not_gated": 8,
                              "warned": 0}


def test_the_levels_are_validated_and_the_gate_is_absent_unless_configured():
    with pytest.raises(ValidationError, match="warn .* must not be above fail"):
        DriftConfig(psi={"warn": 0.3, "fail": 0.2})
    with pytest.raises(ValidationError, match="Extra inputs"):
        DriftConfig(psi={"warn": 0.1, "fail": 0.2, "error": 1})
    assert GatesConfig().drift is None
    configured = GatesConfig.model_validate({"drift": {"psi": {"warn": 0.05, "fail": 0.3}}})
    assert configured.drift.psi.fail == 0.3 and configured.drift.ks.fail == 0.2


def test_a_check_survives_its_json_form():
    drift = check_drift(frame(500, 1), frame(500, 2, shift=1.0), DriftConfig(), label="label")
    again = Drift.from_dict(drift.to_dict())
    assert again == drift and again.drifted == ["x"]


# ----------------------------------------------------------------------------- reports


@pytest.fixture(scope="module")
def drifted():
    shifted = frame(2000, 2, shift=1.0, label_shares=(0.45, 0.3, 0.25))
    return check_drift(frame(2000, 1), shifted, DriftConfig(), label="label")


def test_the_html_report_names_the_drifted_columns_first_without_inline_style(drifted):
    text = drift_html(drifted)
    assert "style=" not in text and "<style" not in text and "<script" not in text
    assert '<link rel="stylesheet" href="report.css">' in text
    body = text[text.index("<body>"):]
    assert body.index('id="verdict"') < body.index('id="drifted"') < body.index("<table>")
    assert re.search(r'id="drifted">Drifted columns: <strong>x</strong></p>', text)
    rows = re.findall(r'<tr class="([\w-]+)">', text)
    first = rows[:len(drifted.failures)]
    assert first == ["failed"] * len(drifted.failures)
    assert "<details><summary>" in text  # the quiet passes fold away


def test_the_junit_of_the_drift_gate_has_a_case_per_statistic(drifted):
    suite = ET.fromstring(drift_junit_xml(drifted))
    assert suite.get("name") == "drift" and suite.get("tests") == str(len(drifted.results))
    assert suite.get("failures") == str(len(drifted.failures))
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert set(failed) == {r.name for r in drifted.failures}
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["summary"] == drifted.summary()


def test_the_markdown_lists_what_needs_action_and_counts_the_rest(drifted):
    text = drift_markdown(drifted)
    assert text.startswith("### ❌ FAILED: Data drift: data drift gate FAILED")
    assert "**Drifted columns:** x" in text
    for result in drifted.failures:
        assert result.reason in text
    quiet = sum(r.passed and r.details.get("level") == "ok" for r in drifted.results)
    assert f"{quiet} statistic(s) passed below their warn level" in text
