"""T-cell and NK-cell aplasia after CD7 CAR-T: counts below stated thresholds, time to recovery.

Why: CD7 is on normal T and NK cells, so CD7 CAR-T cells deplete them (on-target, off-tumour;
Pan 2021 JCO, ../shared/CLINICAL_REFERENCE.md section 6: "CD7+ normal T depleted, CD7- T cells
expanded"). No consensus grading of T/NK aplasia exists; the thresholds are therefore data,
each with its source (:data:`THRESHOLDS`), and a protocol or analysis may declare its own
:class:`AplasiaThreshold` rows.

Definitions (the project's, stated here):

- A marker is *aplastic* on a measurement when its absolute count (cells/uL) is below the
  threshold (strictly below: a count equal to the threshold is not aplasia).
- *Onset*: the first post-infusion measurement (day >= 0) below the threshold.
- *Recovery*: the first of ``recovery_consecutive`` consecutive measurements at or above the
  threshold after onset (2 by default, so one transient value does not end aplasia; the same
  idea as ANC recovery on 3 consecutive values, CIBMTR forms manual, initial ANC recovery).
- *Duration*: recovery day minus onset day; without recovery, the aplasia is ongoing at the
  last measurement and the duration is censored there (``recovered`` is False).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from celltrial.errors import invalid

__all__ = ["THRESHOLDS", "AplasiaResult", "AplasiaThreshold", "assess_aplasia"]


@dataclass(frozen=True)
class AplasiaThreshold:
    """Aplasia of ``marker`` = absolute count below ``below_per_ul`` cells/uL (``source``)."""

    marker: str
    below_per_ul: float
    source: str
    recovery_consecutive: int = 2


THRESHOLDS: dict[str, AplasiaThreshold] = {t.marker: t for t in (
    AplasiaThreshold(
        "CD4", 200.0,
        "Hayden PJ et al. Management of adults and children receiving CAR T-cell therapy: 2021 "
        "best practice recommendations of the EBMT, JACIE and EHA. Ann Oncol 2022;33:259-275 "
        "(Pneumocystis prophylaxis continued until CD4+ >= 200/uL)"),
    AplasiaThreshold(
        "CD3", 200.0,
        "Project convention: the CTCAE v5.0 grade 4 bound of 'Lymphocyte count decreased' "
        "(< 0.2 x 10^9/L) applied to CD3+ T cells"),
    AplasiaThreshold(
        "CD8", 100.0,
        "Project convention: half the CD4 bound (the CD4:CD8 ratio of about 2 in healthy "
        "adults); no published CD8 aplasia bound was found"),
    AplasiaThreshold(
        "CD56", 50.0,
        "Project convention: no published NK-cell aplasia bound was found; 50/uL, about half "
        "the lower limit of usual adult NK reference ranges, marks near-absent NK cells"),
)}
"""Default thresholds (cells/uL): CD3+ T, CD4+ T, CD8+ T and CD56+ NK cells, each sourced."""


@dataclass(frozen=True)
class AplasiaResult:
    """One marker's aplasia: onset day, recovery day (None if not recovered), duration in days
    (to recovery, or censored at the last measurement), nadir count and the threshold used."""

    marker: str
    threshold: AplasiaThreshold
    aplastic: bool
    onset_day: float | None
    recovery_day: float | None
    duration_days: float | None
    recovered: bool
    nadir_per_ul: float | None
    last_day: float | None


def _course(counts: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    out = []
    for row in counts:
        try:
            day, value = row
        except (TypeError, ValueError):
            raise invalid("count", row, "a (study day, cells/uL) pair") from None
        for what, v, hi in (("day", day, 1e5), ("count", value, 1e6)):
            if not isinstance(v, numbers.Real) or isinstance(v, bool) or not math.isfinite(v) \
                    or (what == "count" and not 0 <= v <= hi):
                raise invalid(what, v, "a study day" if what == "day"
                              else f"a count in cells/uL between 0 and {hi:g}")
        out.append((float(day), float(value)))
    return sorted(out)


def assess_aplasia(marker: str, counts: Iterable[tuple[float, float]], *,
                   thresholds: Mapping[str, AplasiaThreshold] | None = None) -> AplasiaResult:
    """Aplasia of ``marker`` (CD3, CD4, CD8, CD56 or a declared one) from (day, cells/uL).

    >>> r = assess_aplasia("CD4", [(0, 450), (14, 20), (60, 150), (90, 210), (120, 260)])
    >>> r.onset_day, r.recovery_day, r.duration_days
    (14.0, 90.0, 76.0)
    """
    table = THRESHOLDS if thresholds is None else thresholds
    if marker not in table:
        raise invalid("marker", marker, f"one of {sorted(table)} (or declare its threshold)")
    t = table[marker]
    course = [(d, v) for d, v in _course(counts) if d >= 0]
    below = [(d, v) for d, v in course if v < t.below_per_ul]
    if not below:
        return AplasiaResult(marker, t, False, None, None, None, False,
                             min((v for _, v in course), default=None),
                             course[-1][0] if course else None)
    onset = below[0][0]
    after = [(d, v) for d, v in course if d > onset]
    recovery = None
    for i in range(len(after) - t.recovery_consecutive + 1):
        window = after[i:i + t.recovery_consecutive]
        if all(v >= t.below_per_ul for _, v in window):
            recovery = window[0][0]
            break
    last = course[-1][0]
    end = recovery if recovery is not None else last
    nadir = min(v for d, v in course if d >= onset and (recovery is None or d < recovery))
    return AplasiaResult(marker, t, True, onset, recovery, end - onset, recovery is not None,
                         nadir, last)
