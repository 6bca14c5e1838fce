"""IEC-HS (Hines et al., Transplant Cell Ther 2023;29:438): both sides of each laboratory
bound, the timing rule, the need for an organ criterion and the severity grades; the
readings of captured data (timing from the daily CRS grades, new or worsening cytopenia)."""

from __future__ import annotations

import math

import pytest

from celltrial.clinical.iec_hs import (
    crs_timing, grade_iec_hs, identify_iec_hs, new_or_worsening_cytopenia,
)
from celltrial.errors import InvalidValue

BASE = {"ferritin_ng_ml": 5000, "ferritin_uln_ng_ml": 400, "timing": "after_crs_resolution",
        "fibrinogen_mg_dl": 100, "other_explanation": False}

# (changes to BASE, present)
ROWS = [
    ({}, True),
    ({"ferritin_ng_ml": 800}, False),                        # exactly 2 x ULN: not above
    ({"ferritin_ng_ml": 801}, True),
    ({"ferritin_ng_ml": 700, "ferritin_uln_ng_ml": None, "ferritin_at_infusion_ng_ml": 350}, False),
    ({"ferritin_ng_ml": 701, "ferritin_uln_ng_ml": None, "ferritin_at_infusion_ng_ml": 350}, True),
    ({"ferritin_ng_ml": 300, "ferritin_rapid_rise": True}, True),
    ({"fibrinogen_mg_dl": 150}, False),                      # 150 is not < 150
    ({"fibrinogen_mg_dl": 149.9}, True),
    ({"fibrinogen_mg_dl": 180, "fibrinogen_lln_mg_dl": 200}, True),
    ({"fibrinogen_mg_dl": None, "ast_x_uln": 5.0}, False),   # 5 x ULN is not above 5
    ({"fibrinogen_mg_dl": None, "ast_x_uln": 5.1}, True),
    ({"fibrinogen_mg_dl": None, "alt_x_uln": 10.0, "alt_baseline_x_uln": 2.0}, False),  # 5x base
    ({"fibrinogen_mg_dl": None, "alt_x_uln": 10.1, "alt_baseline_x_uln": 2.0}, True),
    ({"fibrinogen_mg_dl": None, "hemophagocytosis": True}, True),
    ({"fibrinogen_mg_dl": None, "cytopenia": True}, True),
    ({"fibrinogen_mg_dl": None}, False),                     # no organ criterion
    ({"timing": "during_worsening_crs"}, False),             # graded as CRS
    ({"timing": "crs_resolving"}, True),
    ({"timing": "worsening_after_improvement"}, True),
    ({"timing": None}, False),
    ({"other_explanation": True}, False),
    ({"other_explanation": None}, False),
]


@pytest.mark.parametrize(("changes", "present"), ROWS)
def test_identification(changes, present):
    obs = {k: v for k, v in {**BASE, **changes}.items() if v is not None}
    assert identify_iec_hs(obs).present is present


@pytest.mark.parametrize(("severity", "grade"), [("mild", 1), ("mild_to_moderate", 2),
                                                  ("severe", 3), ("life_threatening", 4),
                                                  ("fatal", 5)])
def test_grade(severity, grade):
    assert grade_iec_hs(severity) == grade


@pytest.mark.parametrize("obs", [{"ferritin": 1}, {"ferritin_ng_ml": -1}, {"timing": "soon"},
                                 {"hemophagocytosis": "yes"}])
def test_invalid(obs):
    with pytest.raises(InvalidValue):
        identify_iec_hs(obs)
    with pytest.raises(InvalidValue):
        grade_iec_hs("moderate")


# --- reading captured data: timing from the daily CRS grades, cytopenia from the counts' grades

CRS = [(0, 0), (1, 1), (2, 2), (3, 2), (4, 1), (5, 0), (6, 0)]

# (day, daily CRS course, timing)
TIMING_ROWS = [
    (0, CRS, "before_crs"),                 # before the first grade >= 1
    (1, CRS, "during_worsening_crs"),       # first day of CRS
    (3, CRS, "during_worsening_crs"),       # grade 2 = worst so far: not resolving
    (4, CRS, "crs_resolving"),              # grade 1 below the worst (2)
    (4, [(1, 2), (3, 1), (5, 1)], "crs_resolving"),  # no observation on the day: the latest
    (5, CRS, "after_crs_resolution"),       # after the last grade >= 1
    (30, CRS, "after_crs_resolution"),
    (3, [(0, 0), (3, 0), (6, 0)], "no_crs"),
    (3, [], "no_crs"),
    (2, [(3, 1), (1, 0)], "before_crs"),    # unsorted input
]


@pytest.mark.parametrize(("day", "course", "timing"), TIMING_ROWS)
def test_crs_timing(day, course, timing):
    assert crs_timing(day, course) == timing


# (day, (day, worst neutrophil/platelet grade) course, criterion met): a second dip
CYTOPENIA_ROWS = [
    (28, [(3, 4), (14, 2), (21, 1), (28, 3)], True),   # nadir, recovery twice, grade 3 again
    (28, [(3, 3), (10, 1), (14, 2), (21, 3), (28, 4)], True),  # second dip worsening 3 -> 4
    (28, [(3, 4), (14, 2), (28, 3)], False),           # one value <= 2 is not a recovery
    (28, [(3, 4), (10, 2), (14, 3), (21, 2), (28, 3)], False),  # never 2 in a row
    (28, [(3, 4), (10, 2), (14, 2), (21, 3), (28, 3)], False),  # unchanged on the day
    (7, [(0, 1), (3, 3), (7, 4)], False),              # the first nadir after lymphodepletion
    (28, [(3, 4), (14, 3), (28, 4)], False),           # never recovered to <= 2
    (28, [(3, 2), (14, 1), (28, 3)], False),           # no earlier nadir: nothing recovered
    (28, [(3, 4), (10, 2), (14, 2), (28, 2)], False),  # below grade 3 on the day
    (28, [(28, 4)], False),                            # no previous count
    (28, [(3, 4), (10, 2), (14, 2)], False),           # no count on the day
    (28, [(3, 4), (10, 2), (14, 2), (21, 3), (21, 2), (28, 3)], False),  # day 21's worst: 3
]


@pytest.mark.parametrize(("day", "grades", "met"), CYTOPENIA_ROWS)
def test_new_or_worsening_cytopenia(day, grades, met):
    assert new_or_worsening_cytopenia(day, grades) is met


@pytest.mark.parametrize(("changes", "met"), [
    ({"other_explanation": None}, True),      # exclusion not judged: criteria 1-3 still met
    ({"other_explanation": True}, True),
    ({"timing": None}, False),
    ({"timing": "before_crs"}, False),
    ({"ferritin_ng_ml": 800}, False),
    ({"fibrinogen_mg_dl": 150}, False),       # no organ criterion left
    ({"fibrinogen_mg_dl": 150, "cytopenia": True}, True),
])
def test_met_but_exclusion(changes, met):
    obs = {k: v for k, v in {**BASE, **changes}.items() if v is not None}
    assert identify_iec_hs(obs).met_but_exclusion is met


@pytest.mark.parametrize("bad", [[(0, 7)], [(0,)], [("d", 1)], [(math.nan, 1)]])
def test_timing_and_cytopenia_refuse_bad_courses(bad):
    with pytest.raises(InvalidValue):
        crs_timing(1, bad)
    with pytest.raises(InvalidValue):
        new_or_worsening_cytopenia(1, bad)
