"""ICAHT: immune effector cell-associated haematotoxicity (neutropenia), early and late grade.

Source: Rejeski K, Subklewe M, Aljurf M, et al. Immune effector cell-associated
hematotoxicity: EHA/EBMT consensus grading and best practice recommendations. Blood
2023;142(10):865-877, the ICAHT grading table (Table 2). The thrombocytopenia companion
(T-ICAHT, Blood 2024, Table 1) states the counting conventions the neutrophil grading uses
("the principal logic of the existing N-ICAHT grading"), applied here. The neutrophil table
below was written from the published table as two engineers remember it (the 2023 paper's
text could not be retrieved in the session that wrote it, the 2024 T-ICAHT table could):
check it against Rejeski 2023, Table 2, before clinical use.

- *Early ICAHT* (day 0-30 after infusion) is graded from the cumulative number of days with
  ANC at or below 0.5 x 10^9/L (500/uL) and at or below 0.1 x 10^9/L (100/uL):

  ========================  =======  =========  ==========  =====================
  days in day 0-30          grade 1  grade 2    grade 3     grade 4
  ========================  =======  =========  ==========  =====================
  ANC <= 0.5 x 10^9/L       1-6      7-13       14-29       >= 30 (never above)
  ANC <= 0.1 x 10^9/L       -        -          -           >= 7
  ========================  =======  =========  ==========  =====================

  The grade is the highest row met (:data:`EARLY_RULES`). Days of non-stable count recovery
  (fewer than 3 consecutive days above the threshold between two days at or below it) count
  as days at or below it (:data:`STABLE_RECOVERY_DAYS`). Counting stops at the censoring day
  (progression, next line of therapy or death), given as ``censor_day``.
- *Late ICAHT* (after day 30): ANC <= 1.5 -> grade 1, <= 1.0 -> 2, <= 0.5 -> 3,
  <= 0.1 x 10^9/L -> 4, measured on at least two occasions (the table's footnote: two or
  more laboratory tests or non-transient neutropenia; :data:`LATE_RULES`,
  :data:`LATE_MIN_OCCASIONS`). Neutropenia from another cause (relapse, drugs) is not ICAHT:
  the caller censors at such a cause.

Project readings, stated because the consensus leaves them to the data manager:

- The threshold comparison is "at or below" (ANC <= 500/uL) as in the consensus table
  (the project brief paraphrased it as "< 0.5"; the comparator is data:
  :data:`COMPARATOR`).
- Days between two ANC measurements take the earlier measurement's value (last observation
  carried forward, one value per study day, the latest of the day when there are several);
  days before the first measurement in the window are not assessed and do not count.
- A trailing run of fewer than 3 days above the threshold at the end of the assessed days is
  not a confirmed recovery but is not counted as neutropenic either (no later day at or
  below the threshold closes it).

ANC values are in 10^9/L (= 10^3/uL).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass

from celltrial.errors import invalid

__all__ = ["COMPARATOR", "EARLY_RULES", "EARLY_WINDOW", "LATE_MIN_OCCASIONS", "LATE_RULES",
           "STABLE_RECOVERY_DAYS", "EarlyICAHT", "LateICAHT", "days_at_or_below",
           "early_icaht", "late_icaht"]

EARLY_WINDOW: tuple[int, int] = (0, 30)
"""Early ICAHT counts study days 0 to 30 inclusive (Rejeski 2023, Table 2)."""

COMPARATOR = "<="
"""ANC at or below the threshold counts (Rejeski 2023, Table 2: "ANC <= 500/uL")."""

EARLY_RULES: tuple[tuple[int, float, int], ...] = (
    (4, 0.1, 7),
    (4, 0.5, 30),
    (3, 0.5, 14),
    (2, 0.5, 7),
    (1, 0.5, 1),
)
"""(grade, ANC threshold x10^9/L, minimum days at or below it in day 0-30); the first row met
gives the grade (Rejeski 2023, Table 2, early ICAHT)."""

LATE_RULES: tuple[tuple[int, float], ...] = ((4, 0.1), (3, 0.5), (2, 1.0), (1, 1.5))
"""(grade, ANC threshold x10^9/L) after day 30 (Rejeski 2023, Table 2, late ICAHT)."""

LATE_MIN_OCCASIONS = 2
"""Late ICAHT needs the threshold met on at least 2 measurements (Table 2 footnote)."""

STABLE_RECOVERY_DAYS = 3
"""A recovery above the threshold lasting fewer than 3 consecutive days is not stable and
its days count as neutropenic (T-ICAHT, Blood 2024, Table 1 legend, citing the N-ICAHT
convention)."""


@dataclass(frozen=True)
class EarlyICAHT:
    """Early ICAHT: ``grade`` 0-4, days at or below 0.5 and 0.1 x 10^9/L, days assessed."""

    grade: int
    days_le_0_5: int
    days_le_0_1: int
    days_assessed: int


@dataclass(frozen=True)
class LateICAHT:
    """Late ICAHT: ``grade`` 0-4 and the number of measurements after day 30 at or below
    each threshold (``occasions`` keyed by the threshold in 10^9/L)."""

    grade: int
    occasions: dict[float, int]
    measurements: int


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and math.isfinite(float(value))


def _course(anc: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for row in anc:
        try:
            day, value = row
        except (TypeError, ValueError):
            raise invalid("ANC measurement", row, "a (study day, ANC x10^9/L) pair") from None
        if not _is_number(day):
            raise invalid("ANC day", day, "a study day (number)")
        if not _is_number(value) or not 0.0 <= float(value) <= 100.0:
            raise invalid("ANC", value, "a neutrophil count in 10^9/L between 0 and 100")
        out.append((float(day), float(value)))
    return sorted(out, key=lambda r: r[0])


def _daily(course: list[tuple[float, float]], first: int, last: int) -> dict[int, float]:
    """One ANC per study day from ``first`` to ``last``: the latest measurement on or before it."""
    daily: dict[int, float] = {}
    i, current = 0, None
    for d in range(first, last + 1):
        while i < len(course) and course[i][0] <= d + 1e-9:
            current = course[i][1]
            i += 1
        if current is not None:
            daily[d] = current
    return daily


def days_at_or_below(daily: dict[int, float], threshold: float) -> int:
    """Days at or below ``threshold``, counting non-stable recoveries (< 3 days above it,
    closed by a later day at or below it) as neutropenic days (:data:`STABLE_RECOVERY_DAYS`).

    >>> days_at_or_below({0: 0.4, 1: 0.6, 2: 0.6, 3: 0.3}, 0.5)
    4
    >>> days_at_or_below({0: 0.4, 1: 0.6, 2: 0.6, 3: 0.6, 4: 0.3}, 0.5)
    2
    """
    days = sorted(daily)
    low = [daily[d] <= threshold for d in days]
    total, i = 0, 0
    seen_low = False
    while i < len(days):
        if low[i]:
            total += 1
            seen_low = True
            i += 1
            continue
        j = i
        while j < len(days) and not low[j]:
            j += 1
        run = j - i
        if seen_low and j < len(days) and run < STABLE_RECOVERY_DAYS:
            total += run
        i = j
    return total


def early_icaht(anc: Iterable[tuple[float, float]], *,
                censor_day: float | None = None) -> EarlyICAHT:
    """Early ICAHT grade (day 0-30) from an ANC course of (study day, ANC x 10^9/L).

    ``censor_day``: the day of progression, next therapy or death; days after it do not count.

    >>> early_icaht([(0, 1.2), (3, 0.3), (10, 0.8)]).grade   # days 3-9 at or below 0.5
    2
    >>> early_icaht([(0, 0.05), (7, 0.6)]).grade              # 7 days at or below 0.1
    4
    """
    course = _course(anc)
    first, last = EARLY_WINDOW
    if censor_day is not None:
        if not _is_number(censor_day):
            raise invalid("censor_day", censor_day, "a study day (number)")
        last = min(last, math.floor(float(censor_day)))
    daily = _daily(course, first, last) if last >= first else {}
    counts = {t: days_at_or_below(daily, t) for t in {r[1] for r in EARLY_RULES}}
    grade = next((g for g, t, n in EARLY_RULES if counts[t] >= n), 0)
    return EarlyICAHT(grade, counts[0.5], counts[0.1], len(daily))


def late_icaht(anc: Iterable[tuple[float, float]], *,
               censor_day: float | None = None) -> LateICAHT:
    """Late ICAHT grade (after day 30) from an ANC course of (study day, ANC x 10^9/L).

    >>> late_icaht([(45, 0.9), (60, 0.95), (90, 2.0)]).grade
    2
    >>> late_icaht([(45, 0.05), (60, 1.4)]).grade   # 0.1 met once only
    1
    """
    course = _course(anc)
    if censor_day is not None and not _is_number(censor_day):
        raise invalid("censor_day", censor_day, "a study day (number)")
    late = [v for d, v in course if d > EARLY_WINDOW[1]
            and (censor_day is None or d <= float(censor_day))]
    occasions = {t: sum(v <= t for v in late) for _, t in LATE_RULES}
    grade = next((g for g, t in LATE_RULES if occasions[t] >= LATE_MIN_OCCASIONS), 0)
    return LateICAHT(grade, occasions, len(late))
