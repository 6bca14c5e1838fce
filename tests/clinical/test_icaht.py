"""ICAHT (Rejeski et al., Blood 2023;142:865, Table 2): both sides of every duration and
threshold boundary, early and late, and the counting conventions."""

from __future__ import annotations

import pytest

from celltrial.clinical.icaht import days_at_or_below, early_icaht, late_icaht
from celltrial.errors import InvalidValue


def _run(value: float, first: int, n_days: int, after: float = 2.0) -> list[tuple[float, float]]:
    """ANC 2.0 before ``first``, ``value`` on ``n_days`` daily samples, then ``after``."""
    course = [(0.0, 2.0)] if first > 0 else []
    course += [(float(first + i), value) for i in range(n_days)]
    course.append((float(first + n_days), after))
    return course


# (ANC course, censor day, early grade, days <= 0.5, days <= 0.1)
EARLY_ROWS = [
    ([(d, 2.0) for d in range(31)], None, 0, 0, 0),
    (_run(0.51, 3, 20), None, 0, 0, 0),        # just above 0.5: not counted
    (_run(0.5, 3, 1), None, 1, 1, 0),          # 0.5 itself counts (<= 500/uL)
    (_run(0.3, 3, 6), None, 1, 6, 0),          # 6 days: grade 1
    (_run(0.3, 3, 7), None, 2, 7, 0),          # 7 days: grade 2
    (_run(0.3, 3, 13), None, 2, 13, 0),        # 13 days: grade 2
    (_run(0.3, 3, 14), None, 3, 14, 0),        # 14 days: grade 3
    (_run(0.3, 1, 29), None, 3, 29, 0),        # 29 days: grade 3
    (_run(0.3, 1, 30), None, 4, 30, 0),        # 30 days: grade 4
    (_run(0.1, 3, 6), None, 1, 6, 6),          # 6 days <= 0.1: not grade 4
    (_run(0.1, 3, 7), None, 4, 7, 7),          # 7 days <= 0.1: grade 4
    (_run(0.11, 3, 7), None, 2, 7, 0),         # 0.11 is not <= 0.1
    (_run(0.3, 3, 20), 16, 3, 14, 0),          # censored at day 16: days 3-16 = 14
    (_run(0.3, 3, 20), 15, 2, 13, 0),          # censored at day 15: 13 days
    ([(d, 0.2) for d in range(35, 40)], None, 0, 0, 0),  # only after day 30: not early
]


@pytest.mark.parametrize(("course", "censor", "grade", "le05", "le01"), EARLY_ROWS)
def test_early_icaht_table(course, censor, grade, le05, le01):
    result = early_icaht(course, censor_day=censor)
    assert (result.grade, result.days_le_0_5, result.days_le_0_1) == (grade, le05, le01)


# (daily ANC, threshold, days counted): non-stable recovery < 3 days counts
RECOVERY_ROWS = [
    ({0: 0.4, 1: 0.6, 2: 0.3}, 0.5, 3),             # 1-day blip counted
    ({0: 0.4, 1: 0.6, 2: 0.6, 3: 0.3}, 0.5, 4),     # 2-day blip counted
    ({0: 0.4, 1: 0.6, 2: 0.6, 3: 0.6, 4: 0.3}, 0.5, 2),  # 3 days above: stable recovery
    ({0: 0.6, 1: 0.4}, 0.5, 1),                     # leading days above: not counted
    ({0: 0.4, 1: 0.6}, 0.5, 1),                     # trailing day above: not closed, not counted
]


@pytest.mark.parametrize(("daily", "threshold", "days"), RECOVERY_ROWS)
def test_non_stable_recovery(daily, threshold, days):
    assert days_at_or_below(daily, threshold) == days


def test_locf_between_measurements():
    # day 3 = 0.3 carried to days 3..9 (7 days) -> grade 2; day 10 = 0.8 ends it
    result = early_icaht([(0, 1.2), (3, 0.3), (10, 0.8)])
    assert (result.grade, result.days_le_0_5, result.days_assessed) == (2, 7, 31)


def test_days_before_first_measurement_not_assessed():
    result = early_icaht([(5, 0.3), (12, 1.0)])
    assert result.days_assessed == 26 and result.days_le_0_5 == 7


# (late ANC course after day 30, grade)
LATE_ROWS = [
    ([(40, 1.6), (60, 1.6)], 0),
    ([(40, 1.5), (60, 1.5)], 1),      # <= 1.5 on 2 occasions
    ([(40, 1.5), (60, 1.6)], 0),      # one occasion only
    ([(40, 1.0), (60, 1.0)], 2),
    ([(40, 1.01), (60, 1.0)], 1),
    ([(40, 0.5), (60, 0.5)], 3),
    ([(40, 0.1), (60, 0.1)], 4),
    ([(40, 0.1), (60, 0.4)], 3),      # 0.1 once, <= 0.5 twice
    ([(30, 0.1), (31, 0.1)], 0),      # day 30 belongs to the early window
]


@pytest.mark.parametrize(("course", "grade"), LATE_ROWS)
def test_late_icaht_table(course, grade):
    assert late_icaht(course).grade == grade


def test_late_censoring():
    assert late_icaht([(40, 0.4), (60, 0.4), (90, 0.4)], censor_day=50).grade == 0


@pytest.mark.parametrize("bad", [[(0, -0.1)], [(0, "x")], [(True, 1.0)], [(0,)]])
def test_invalid_course(bad):
    with pytest.raises(InvalidValue):
        early_icaht(bad)
