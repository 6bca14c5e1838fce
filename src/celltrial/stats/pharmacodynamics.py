"""Pharmacodynamics of CD7 CAR-T: CD7+ cell depletion and recovery, cytokine peaks.

Rules (celltrial's, stated in docs/stats.md; the registrations list the outcomes without
definitions):

- Baseline: the last non-missing value on or before day 0 (the first infusion).
- CD7+ cells (``CD7ABS`` cells/uL, ``CD7PCT`` %): nadir = the lowest value after day 0 and its
  first day; time to clearance = the first day after day 0 with a value <= ``threshold``;
  recovery = the first day after the nadir with a value >= ``recovery_fraction`` x baseline.
- Cytokines (IL-6, IL-10, IFN-gamma, TNF-alpha, pg/mL): peak = the highest value after day 0,
  time to peak = its first day, fold change = peak / baseline.

Every value is a number or a :class:`~celltrial.stats.result.Missing` with its reason.
Frame-level functions take a long table with columns USUBJID, PARAMCD, ADY (study day), AVAL.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from celltrial.errors import invalid
from celltrial.stats.result import Missing

Value = float | Missing
CYTOKINES: tuple[str, ...] = ("IL6", "IL10", "IFNG", "TNFA")
CD7_TESTS: tuple[str, ...] = ("CD7ABS", "CD7PCT")


def _series(days: object, values: object) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(days, dtype=float).ravel()
    v = np.asarray(values, dtype=float).ravel()
    if d.size != v.size:
        raise invalid("values", f"{v.size} values", f"one per day ({d.size})")
    ok = np.isfinite(d) & np.isfinite(v)
    order = np.argsort(d[ok], kind="stable")
    return d[ok][order], v[ok][order]


def baseline(days: object, values: object) -> Value:
    """The last non-missing value on or before day 0."""
    d, v = _series(days, values)
    pre = d <= 0
    if not pre.any():
        return Missing("no value on or before day 0 (baseline)")
    return float(v[pre][-1])


@dataclass(frozen=True)
class CD7Response:
    """CD7+ cell kinetics of one subject after CD7 CAR-T."""

    baseline: Value
    nadir: Value
    nadir_day: Value
    clearance_day: Value
    recovery_day: Value


def cd7_response(days: object, values: object, threshold: float,
                 recovery_fraction: float = 0.5) -> CD7Response:
    """Nadir, time to clearance (<= threshold) and recovery (>= fraction x baseline) of CD7+ cells.

    >>> r = cd7_response([-1, 7, 14, 28, 60], [800, 40, 2, 5, 500], threshold=10)
    >>> r.nadir, r.nadir_day, r.clearance_day, r.recovery_day
    (2.0, 14.0, 14.0, 60.0)
    """
    if not math.isfinite(threshold) or threshold < 0:
        raise invalid("threshold", threshold, "a finite level >= 0")
    if not 0 < recovery_fraction:
        raise invalid("recovery_fraction", recovery_fraction, "> 0")
    d, v = _series(days, values)
    base = baseline(d, v)
    post = d > 0
    if not post.any():
        none = Missing("no value after day 0")
        return CD7Response(base, none, none, none, none)
    dp, vp = d[post], v[post]
    i = int(np.argmin(vp))
    below = np.flatnonzero(vp <= threshold)
    clearance: Value = float(dp[below[0]]) if below.size else Missing(
        f"never <= {threshold:g} after day 0 (last value day {dp[-1]:g})")
    if isinstance(base, Missing):
        recovery: Value = Missing("no baseline: recovery is relative to baseline")
    else:
        target = recovery_fraction * base
        after = np.flatnonzero((np.arange(dp.size) > i) & (vp >= target))
        recovery = float(dp[after[0]]) if after.size else Missing(
            f"not back to >= {target:g} ({recovery_fraction:g} x baseline) by day {dp[-1]:g}")
    return CD7Response(base, float(vp[i]), float(dp[i]), clearance, recovery)


@dataclass(frozen=True)
class CytokineResponse:
    """Cytokine peak of one subject after infusion."""

    baseline: Value
    peak: Value
    peak_day: Value
    fold_change: Value


def cytokine_response(days: object, values: object) -> CytokineResponse:
    """Peak after day 0, its day, and fold change from baseline.

    >>> cytokine_response([0, 3, 7, 14], [5, 400, 120, 10]).fold_change
    80.0
    """
    d, v = _series(days, values)
    base = baseline(d, v)
    post = d > 0
    if not post.any():
        none = Missing("no value after day 0")
        return CytokineResponse(base, none, none, none)
    dp, vp = d[post], v[post]
    i = int(np.argmax(vp))
    peak = float(vp[i])
    if isinstance(base, Missing):
        fold: Value = base
    elif base <= 0:
        fold = Missing(f"baseline is {base:g}: fold change undefined")
    else:
        fold = peak / base
    return CytokineResponse(base, peak, float(dp[i]), fold)


def _frame(results: dict[tuple[str, str], object]) -> pd.DataFrame:
    rows = []
    for (subject, test), res in results.items():
        row: dict[str, object] = {"USUBJID": subject, "PARAMCD": test}
        for name, item in asdict(res).items():  # type: ignore[call-overload]
            missing = isinstance(item, dict) or isinstance(item, Missing)
            row[name] = math.nan if missing else float(item)
            if missing:
                row[f"{name}_reason"] = item["reason"] if isinstance(item, dict) else item.reason
        rows.append(row)
    return pd.DataFrame(rows)


def cd7_table(adlb: pd.DataFrame, thresholds: dict[str, float],
              recovery_fraction: float = 0.5) -> pd.DataFrame:
    """Per subject and CD7 test (``CD7ABS``, ``CD7PCT``): the :class:`CD7Response` as columns
    (NaN plus ``<name>_reason`` where missing). ``thresholds``: clearance level per PARAMCD."""
    rows = adlb[adlb["PARAMCD"].isin(thresholds)]
    return _frame({(str(s), str(p)): cd7_response(g["ADY"], g["AVAL"], thresholds[str(p)],
                                                   recovery_fraction)
                   for (s, p), g in rows.groupby(["USUBJID", "PARAMCD"], sort=True)})


def cytokine_table(adlb: pd.DataFrame, tests: tuple[str, ...] = CYTOKINES) -> pd.DataFrame:
    """Per subject and cytokine: baseline, peak, peak_day, fold_change (NaN plus reason)."""
    rows = adlb[adlb["PARAMCD"].isin(tests)]
    return _frame({(str(s), str(p)): cytokine_response(g["ADY"], g["AVAL"])
                   for (s, p), g in rows.groupby(["USUBJID", "PARAMCD"], sort=True)})
