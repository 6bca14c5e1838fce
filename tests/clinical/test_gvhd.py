"""Acute GVHD, MAGIC (Harris et al., BBMT 2016;22:4-10, Tables 1 and 2): each organ's
stage boundaries and each overall-grade rule."""

from __future__ import annotations

import pytest

from celltrial.clinical.gvhd import (grade_gvhd, overall_grade, stage_liver, stage_lower_gi,
                                     stage_skin)
from celltrial.errors import InvalidValue

# (BSA %, bullae %, stage)
SKIN_ROWS = [(0, None, 0), (0.5, None, 1), (24.9, None, 1), (25, None, 2), (50, None, 2),
             (50.1, None, 3), (100, 5, 3), (100, 5.1, 4)]


@pytest.mark.parametrize(("bsa", "bullae", "stage"), SKIN_ROWS)
def test_skin(bsa, bullae, stage):
    assert stage_skin(bsa, bullae) == stage


LIVER_ROWS = [(None, 0), (1.99, 0), (2.0, 1), (3.0, 1), (3.01, 2), (6.0, 2), (6.01, 3),
              (15.0, 3), (15.01, 4)]


@pytest.mark.parametrize(("bilirubin", "stage"), LIVER_ROWS)
def test_liver(bilirubin, stage):
    assert stage_liver(bilirubin) == stage


# (stool mL or mL/kg, episodes, severe pain/bleeding, paediatric, stage)
GI_ROWS = [
    (499, None, False, False, 0), (500, None, False, False, 1), (999, None, False, False, 1),
    (1000, None, False, False, 2), (1500, None, False, False, 2), (1501, None, False, False, 3),
    (None, 2, False, False, 0), (None, 3, False, False, 1), (None, 4, False, False, 1),
    (None, 5, False, False, 2), (None, 7, False, False, 2), (None, 8, False, False, 3),
    (400, 5, False, False, 2),      # the higher of volume and episodes
    (0, None, True, False, 4),      # severe pain / grossly bloody stool
    (9.9, None, False, True, 0), (10, None, False, True, 1), (19.9, None, False, True, 1),
    (20, None, False, True, 2), (30, None, False, True, 2), (30.1, None, False, True, 3),
    (None, 3, False, True, 0), (None, 4, False, True, 1), (None, 6, False, True, 1),
    (None, 7, False, True, 2), (None, 10, False, True, 2), (None, 11, False, True, 3),
]


@pytest.mark.parametrize(("ml", "episodes", "severe", "child", "stage"), GI_ROWS)
def test_lower_gi(ml, episodes, severe, child, stage):
    assert stage_lower_gi(ml, episodes, severe_pain_or_bleeding=severe, paediatric=child) == stage


# (skin, liver, upper GI, lower GI, overall grade 0-4)
GRADE_ROWS = [
    (0, 0, 0, 0, 0),
    (1, 0, 0, 0, 1), (2, 0, 0, 0, 1),
    (3, 0, 0, 0, 2), (0, 1, 0, 0, 2), (0, 0, 1, 0, 2), (0, 0, 0, 1, 2), (2, 1, 1, 1, 2),
    (0, 2, 0, 0, 3), (0, 3, 0, 0, 3), (0, 0, 0, 2, 3), (0, 0, 0, 3, 3), (3, 3, 1, 3, 3),
    (4, 0, 0, 0, 4), (0, 4, 0, 0, 4), (0, 0, 0, 4, 4), (1, 0, 1, 4, 4),
]


@pytest.mark.parametrize(("skin", "liver", "upper", "lower", "grade"), GRADE_ROWS)
def test_overall_grade(skin, liver, upper, lower, grade):
    assert overall_grade(skin, liver, upper, lower) == grade


def test_grade_observation():
    result = grade_gvhd({"skin_bsa_pct": 30, "bilirubin_mg_dl": 1.0, "stool_ml": 1200,
                         "upper_gi_persistent": True})
    assert (result.skin, result.liver, result.upper_gi, result.lower_gi, result.roman) == \
        (2, 0, 1, 2, "III")


@pytest.mark.parametrize("obs", [{"skin": 10}, {"skin_bsa_pct": 120}, {"bilirubin_mg_dl": -1},
                                 {"upper_gi_persistent": "yes"}])
def test_invalid(obs):
    with pytest.raises(InvalidValue):
        grade_gvhd(obs)
