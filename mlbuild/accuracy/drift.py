"""Data drift: how far a new data snapshot has moved from the released model's training data.

Per column (every feature and the label), pure functions over two pandas frames:

* **PSI** (population stability index), for every column: numeric columns binned at the
  reference's deciles (deduplicated edges, open ends), categories as their own bins (a
  category the reference never had is a bin of its own); empty bins count as a share of
  ``EPSILON`` so the logarithm stays finite. Judged by its value alone.
* **KS** for numeric columns: the two-sample Kolmogorov–Smirnov statistic D (the largest
  gap between the two empirical distribution functions).
* **chi-square** for categorical columns and a classifier's label: the test of the 2 x k
  table of counts, with Cramér's V as the effect size.

A KS or chi-square result reaches its warn or fail level only when its Holm-adjusted
p-value (over every test of the check) is below ``alpha`` too: a huge table makes a tiny
shift significant, and a small one makes a large effect noise; only a shift that is both
large and real counts. A warn level is reported and does not fail.

Each result is a :class:`~mlbuild.accuracy.gates.GateResult` of kind ``"drift"`` named
``drift <statistic> <column>``, so the reports and JUnit of the accuracy gates show them.
Tables above ``max_rows`` are compared on a seeded sample, and the check says so.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from mlbuild.accuracy import stats
from mlbuild.config import Section
from mlbuild.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    # gates.py imports this module for [gates.drift]: GateResult is imported where used
    from mlbuild.accuracy.gates import GateResult

Statistic = Literal["psi", "ks", "chi2"]
Level = Literal["ok", "warn", "fail"]
#: the share an empty bin counts as in PSI (the log of 0 is not finite)
EPSILON = 1e-4
#: the bin of missing values, in PSI and in the chi-square table
MISSING = "<missing>"
#: what each statistic is, in words, for reasons and reports
MEANING = {"psi": "PSI", "ks": "KS D", "chi2": "Cramér's V"}


# ----------------------------------------------------------------------------- config


class DriftLevels(Section):
    """A statistic's two levels: at ``warn`` or above it is reported, at ``fail`` it fails."""

    warn: float = Field(ge=0.0)
    fail: float = Field(gt=0.0)

    @model_validator(mode="after")
    def _ordered(self):
        if self.warn > self.fail:
            raise ValueError(f"warn ({self.warn}) must not be above fail ({self.fail})")
        return self


class DriftConfig(Section):
    """``[gates.drift]``: the released model's training data against a new snapshot."""

    #: PSI: under 0.1 stable, 0.1 to 0.25 a moderate shift, above 0.25 a major one
    psi: DriftLevels = DriftLevels(warn=0.1, fail=0.25)
    #: the KS statistic D of numeric columns (the largest gap between the two CDFs)
    ks: DriftLevels = DriftLevels(warn=0.1, fail=0.2)
    #: Cramér's V of categorical columns and the label (the chi-square test's effect size)
    chi2: DriftLevels = DriftLevels(warn=0.1, fail=0.2)
    #: a KS or chi-square level counts only when its Holm-adjusted p-value is below this
    alpha: float = Field(default=0.01, gt=0.0, lt=0.5)
    #: the columns to compare (default: every column both tables have), and those not to
    columns: list[str] | None = None
    exclude: list[str] = []
    #: columns compared as categories besides the label and non-numeric ones
    categorical: list[str] = []
    #: a larger table is compared on a seeded sample of this many rows
    max_rows: int = Field(default=200_000, ge=100)
    seed: int = 0
    #: PSI's bins of a numeric column: the reference's quantiles
    bins: int = Field(default=10, ge=2)

    def levels(self, statistic: Statistic) -> DriftLevels:
        return getattr(self, statistic)


# ----------------------------------------------------------------------------- statistics


def _valid(values) -> np.ndarray:
    import numpy as np

    array = np.asarray(values, dtype=float)
    return array[~np.isnan(array)]


def psi_from_shares(reference, current) -> float:
    """PSI of two vectors of bin shares; an empty bin counts as ``EPSILON``."""
    import numpy as np

    ref = np.where(np.asarray(reference, float) > 0, reference, EPSILON)
    cur = np.where(np.asarray(current, float) > 0, current, EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def numeric_bins(reference, current, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Counts of each table in the reference's quantile bins: ``bins - 1`` inner edges,
    deduplicated, open at both ends; missing values in a last bin of their own."""
    import numpy as np

    ref_all, cur_all = (np.asarray(v, dtype=float) for v in (reference, current))
    ref, cur = ref_all[~np.isnan(ref_all)], cur_all[~np.isnan(cur_all)]
    inner = np.linspace(0, 1, bins + 1)[1:-1]
    edges = np.unique(np.quantile(ref, inner)) if len(ref) else np.array([])

    def counts(values, total):
        # bin i holds edges[i-1] <= x < edges[i]
        placed = np.bincount(np.searchsorted(edges, values, side="right"),
                             minlength=len(edges) + 1)
        return np.append(placed, total - len(values))

    return counts(ref, len(ref_all)), counts(cur, len(cur_all))


def category_counts(reference, current) -> tuple[np.ndarray, np.ndarray, list]:
    """Counts of each category (missing values as one) in each table, over the union of
    their categories: the reference's first, then the ones only the new data has."""
    import pandas as pd

    ref = pd.Series(reference).astype(object).fillna(MISSING).value_counts(sort=False)
    cur = pd.Series(current).astype(object).fillna(MISSING).value_counts(sort=False)
    categories = list(ref.index) + [c for c in cur.index if c not in ref.index]
    return (ref.reindex(categories, fill_value=0).to_numpy(),
            cur.reindex(categories, fill_value=0).to_numpy(), categories)


def psi(reference, current, categorical: bool = False, bins: int = 10) -> float:
    """The population stability index of a column between two tables."""
    if categorical:
        ref, cur, _ = category_counts(reference, current)
    else:
        ref, cur = numeric_bins(reference, current, bins)
    if not ref.sum() or not cur.sum():
        return math.nan
    return psi_from_shares(ref / ref.sum(), cur / cur.sum())


def ks(reference, current) -> tuple[float, float]:
    """The two-sample KS statistic D and its p-value, missing values left out."""
    from scipy.stats import ks_2samp

    ref, cur = _valid(reference), _valid(current)
    if not len(ref) or not len(cur):
        return math.nan, math.nan
    # With many ties scipy's exact p-value may fail; it then warns and uses the asymptotic one.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful")
        result = ks_2samp(ref, cur)
    return float(result.statistic), float(result.pvalue)


def chi2(reference, current) -> tuple[float, float, float, int]:
    """Cramér's V, the p-value, the chi-square statistic and its degrees of freedom of
    the 2 x k table of category counts (no continuity correction)."""
    import numpy as np
    from scipy.stats import chi2_contingency

    ref, cur, _ = category_counts(reference, current)
    table = np.vstack([ref, cur])
    if table.shape[1] < 2 or not ref.sum() or not cur.sum():
        return 0.0, 1.0, 0.0, 0  # one category on both sides: nothing can differ
    result = chi2_contingency(table, correction=False)
    statistic = float(result.statistic)
    v = math.sqrt(statistic / (table.sum() * (min(table.shape) - 1)))
    return v, float(result.pvalue), statistic, int(result.dof)


# ----------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class Drift:
    """The drift gate's results: one per column and statistic, with what the check saw."""

    results: list[GateResult]
    reference_rows: int = 0
    current_rows: int = 0
    #: what a reader needs besides the rows: samples taken, columns only one table has
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed is not False for r in self.results)

    @property
    def failures(self) -> list[GateResult]:
        return [r for r in self.results if r.passed is False]

    @property
    def warnings(self) -> list[GateResult]:
        return [r for r in self.results if r.passed and r.details.get("level") == "warn"]

    @property
    def drifted(self) -> list[str]:
        """The columns with a failed statistic, the furthest beyond its fail level first."""
        return _columns_by_severity(self.failures)

    @property
    def warned(self) -> list[str]:
        """The columns at a warn level that did not fail, the furthest first."""
        drifted = set(self.drifted)
        return [c for c in _columns_by_severity(self.warnings) if c not in drifted]

    def counts(self) -> dict[str, int]:
        passed = sum(r.passed is True for r in self.results)
        failed = sum(r.passed is False for r in self.results)
        return {"gated": passed + failed, "passed": passed, "failed": failed,
                "not_gated": len(self.results) - passed - failed,
                "warned": len(self.warnings)}

    def summary(self) -> str:
        c = self.counts()
        verdict = "passed" if self.passed else "FAILED"
        columns = len({r.details.get("column") for r in self.results} - {None})
        drifted = f"; drifted: {', '.join(self.drifted)}" if self.drifted else ""
        return (f"data drift gate {verdict} ({columns} columns, {self.reference_rows} reference "
                f"rows, {self.current_rows} new rows): {c['passed']} passed ({c['warned']} at "
                f"a warn level), {c['failed']} failed of {c['gated']} gated; {c['not_gated']} "
                f"not gated{drifted}")

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "summary": self.summary(), "counts": self.counts(),
                "drifted": self.drifted, "warned": self.warned,
                "reference_rows": self.reference_rows, "current_rows": self.current_rows,
                "notes": list(self.notes), "results": [r.to_dict() for r in self.results]}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Drift:
        """The check again from :meth:`to_dict` (e.g. read back from drift.json)."""
        from mlbuild.accuracy.gates import GateResult

        results = [GateResult(**{**r, "interval": tuple(r["interval"]) if r.get("interval")
                                 else None}) for r in raw["results"]]
        return cls(results, raw["reference_rows"], raw["current_rows"], list(raw["notes"]))


def _columns_by_severity(results: list[GateResult]) -> list[str]:
    worst: dict[str, float] = {}
    for r in results:
        column = r.details["column"]
        severity = (r.estimate or 0.0) / r.limit if r.limit else 0.0
        worst[column] = max(worst.get(column, 0.0), severity)
    return sorted(worst, key=lambda c: -worst[c])


def column_kinds(frame: pd.DataFrame, config: DriftConfig, label: str | None = None,
                 label_categorical: bool = True) -> dict[str, str]:
    """Each column's kind for the check: ``numeric`` or ``categorical``."""
    import pandas as pd

    kinds = {}
    for name in frame.columns:
        dtype = frame[name].dtype
        categorical = (name in config.categorical or (name == label and label_categorical)
                       or pd.api.types.is_bool_dtype(dtype)
                       or not pd.api.types.is_numeric_dtype(dtype))
        kinds[name] = "categorical" if categorical else "numeric"
    return kinds


def _statistics(kind: str) -> tuple[Statistic, ...]:
    return ("psi", "ks") if kind == "numeric" else ("psi", "chi2")


def _selected(frame: pd.DataFrame, config: DriftConfig) -> list[str]:
    if config.columns is None:
        wanted = list(frame.columns)
    else:
        unknown = [c for c in config.columns if c not in frame.columns]
        if unknown:
            raise ConfigError(
                f"[gates.drift] columns names {', '.join(map(repr, unknown))}, which the new "
                f"data does not have (it has: {', '.join(map(str, frame.columns[:20]))}"
                f"{', …' if len(frame.columns) > 20 else ''}).",
                hint="fix the names, or leave `columns` out to compare every column.")
        wanted = list(config.columns)
    return [c for c in wanted if c not in config.exclude]


def sample_rows(frame: pd.DataFrame, max_rows: int, seed: int, what: str
                ) -> tuple[pd.DataFrame, str | None]:
    """``frame``, or a seeded sample of ``max_rows`` of its rows (in their order) with a
    note saying so."""
    import numpy as np

    if len(frame) <= max_rows:
        return frame, None
    rows = np.sort(np.random.default_rng(seed).choice(len(frame), max_rows, replace=False))
    note = (f"The {what} has {len(frame)} rows; a seeded sample of {max_rows} of them was "
            f"compared ([gates.drift] max_rows = {max_rows}, seed = {seed}).")
    return frame.iloc[rows].reset_index(drop=True), note


def not_gated(current: pd.DataFrame, config: DriftConfig, reason: str, *,
              label: str | None = None, label_categorical: bool = True) -> Drift:
    """Every result of the check, not gated for ``reason`` (e.g. no released data yet)."""
    from mlbuild.accuracy.gates import GateResult

    kinds = column_kinds(current, config, label, label_categorical)
    results = [
        GateResult(f"drift {statistic} {column}", "drift", statistic, None,
                   f"Not gated: {reason}.", len(current), limit=config.levels(statistic).fail,
                   details={"column": column, "statistic": statistic, "kind": kinds[column]})
        for column in _selected(current, config) for statistic in _statistics(kinds[column])]
    return Drift(results, 0, len(current), [f"Not gated: {reason}."])


def check_drift(reference: pd.DataFrame, current: pd.DataFrame, config: DriftConfig, *,
                label: str | None = None, label_categorical: bool = True) -> Drift:
    """Compare every selected column of ``current`` with ``reference``.

    ``label`` is compared as categories when ``label_categorical`` (a classifier's), as
    numbers otherwise. A column one table lacks is reported, not gated.
    """
    columns = _selected(current, config)
    notes = []
    missing = [c for c in columns if c not in reference.columns]
    if missing:
        notes.append(f"Not compared: {', '.join(map(str, missing))}, which the released model's "
                     "training data does not have.")
    dropped = [c for c in reference.columns if c not in current.columns
               and c not in config.exclude and (config.columns is None or c in config.columns)]
    if dropped:
        notes.append(f"Not compared: {', '.join(map(str, dropped))}, which the new data no "
                     "longer has.")
    columns = [c for c in columns if c in reference.columns]
    reference_rows, current_rows = len(reference), len(current)
    reference, note_ref = sample_rows(reference[columns], config.max_rows, config.seed,
                                      "released model's training data")
    current, note_cur = sample_rows(current[columns], config.max_rows, config.seed,
                                    "new data")
    notes += [n for n in (note_ref, note_cur) if n]
    ref_kinds = column_kinds(reference, config, label, label_categorical)
    kinds = {c: ("numeric" if k == "numeric" and ref_kinds[c] == "numeric" else "categorical")
             for c, k in column_kinds(current, config, label, label_categorical).items()}

    measured = []  # (column, statistic, value, p or None, extra details)
    for column in columns:
        ref, cur = reference[column], current[column]
        categorical = kinds[column] == "categorical"
        measured.append((column, "psi", psi(ref, cur, categorical, config.bins), None, {}))
        if categorical:
            v, p, statistic, dof = chi2(ref, cur)
            measured.append((column, "chi2", v, p, {"chi2": statistic, "dof": dof}))
        else:
            d, p = ks(ref, cur)
            measured.append((column, "ks", d, p, {}))
    tested = [i for i, m in enumerate(measured) if m[3] is not None and not math.isnan(m[3])]
    adjusted = dict(zip(tested, stats.holm([measured[i][3] for i in tested]), strict=True))
    results = [_result(*m, adjusted.get(i), len(tested), kinds[m[0]], config,
                       len(reference), len(current))
               for i, m in enumerate(measured)]
    return Drift(results, reference_rows, current_rows, notes)


def _result(column: str, statistic: Statistic, value: float, p_raw: float | None,
            extra: dict, p_adjusted: float | None, tests: int, kind: str, config: DriftConfig,
            n_reference: int, n_current: int) -> GateResult:
    from mlbuild.accuracy.gates import GateResult

    levels = config.levels(statistic)
    name = f"drift {statistic} {column}"
    what = MEANING[statistic]
    details = {"column": column, "statistic": statistic, "kind": kind, "warn": levels.warn,
               "fail": levels.fail, "reference_rows": n_reference, "current_rows": n_current,
               **extra}
    if value is None or math.isnan(value):
        return GateResult(name, "drift", statistic, None,
                          f"Not gated: {column} has no values to compare in one of the tables.",
                          n_current, limit=levels.fail, details=details)
    level: Level = ("fail" if value >= levels.fail else "warn" if value >= levels.warn
                    else "ok")
    reason = f"{what} = {value:.4g}"
    if statistic == "psi":
        bins = "its categories" if kind == "categorical" else "the reference's quantile bins"
        reason += f" over {bins} ({n_reference} reference rows, {n_current} new rows)"
    else:
        test = "chi-square test" if statistic == "chi2" else "KS test"
        significant = p_adjusted < config.alpha
        reason += (f" ({test}: p = {p_raw:.3g}, Holm-adjusted over {tests} tests "
                   f"{p_adjusted:.3g}, {'below' if significant else 'not below'} alpha "
                   f"{config.alpha})")
        details.update(p_raw=p_raw, alpha=config.alpha)
        if level != "ok" and not significant:
            details["level_reached"] = level
            reason += (f": it reaches the {level} level {getattr(levels, level)}, but the "
                       "sample cannot tell it from chance, so it does not count.")
            level = "ok"
            details["level"] = level
            return GateResult(name, "drift", statistic, True, reason, n_current, value,
                              limit=levels.fail, p_value=p_adjusted, details=details)
    details["level"] = level
    if level == "fail":
        reason += f": at or above the fail level {levels.fail}: {column} has drifted."
    elif level == "warn":
        reason += (f": at or above the warn level {levels.warn}, below the fail level "
                   f"{levels.fail}: a warning, which does not fail the gate.")
    else:
        reason += f": below the warn level {levels.warn}."
    return GateResult(name, "drift", statistic, level != "fail", reason, n_current, value,
                      limit=levels.fail, p_value=p_adjusted, details=details)
