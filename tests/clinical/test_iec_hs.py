"""IEC-HS (Hines et al., Transplant Cell Ther 2023;29:438): both sides of each laboratory
bound, the timing rule, the need for an organ criterion and the severity grades."""

from __future__ import annotations

import pytest

from celltrial.clinical.iec_hs import grade_iec_hs, identify_iec_hs
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
