"""CTCAE v5.0 lab grading: every threshold of every term, on both sides of the boundary.

Rows read like the CTCAE table: (term, value, unit, lln, uln, baseline, qualifier, grade).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from celltrial.clinical import LabGrade, grade_febrile_neutropenia, grade_lab
from celltrial.clinical.ctcae import TERMS
from celltrial.errors import InvalidValue, NotComputable

NEUT, PLT, LYM, WBC = ("Neutrophil count decreased", "Platelet count decreased",
                       "Lymphocyte count decreased", "White blood cell decreased")
ALT, AST, BILI = ("Alanine aminotransferase increased", "Aspartate aminotransferase increased",
                  "Blood bilirubin increased")

_ = None  # not given

ROWS = [
    # Neutrophil count decreased: <LLN-1.5 / <1.5-1.0 / <1.0-0.5 / <0.5 (10^9/L)
    (NEUT, 2.0, "10^9/L", 2.0, _, _, _, 0), (NEUT, 1.99, "10^9/L", 2.0, _, _, _, 1),
    (NEUT, 1.5, "10^9/L", 2.0, _, _, _, 1), (NEUT, 1.49, "10^9/L", 2.0, _, _, _, 2),
    (NEUT, 1.0, "10^9/L", 2.0, _, _, _, 2), (NEUT, 0.99, "10^9/L", 2.0, _, _, _, 3),
    (NEUT, 0.5, "10^9/L", 2.0, _, _, _, 3), (NEUT, 0.49, "10^9/L", 2.0, _, _, _, 4),
    (NEUT, 1500, "/mm3", 2000, _, _, _, 1), (NEUT, 1499, "/mm3", 2000, _, _, _, 2),
    (NEUT, 500, "cells/uL", _, _, _, _, 3), (NEUT, 499, "/uL", _, _, _, _, 4),
    # Platelet count decreased: <LLN-75 / <75-50 / <50-25 / <25
    (PLT, 150, "10^9/L", 150, _, _, _, 0), (PLT, 149, "10^9/L", 150, _, _, _, 1),
    (PLT, 75, "10^9/L", 150, _, _, _, 1), (PLT, 74.9, "10^9/L", 150, _, _, _, 2),
    (PLT, 50, "10^9/L", _, _, _, _, 2), (PLT, 49.9, "10^9/L", _, _, _, _, 3),
    (PLT, 25, "10^9/L", _, _, _, _, 3), (PLT, 24.9, "10^9/L", _, _, _, _, 4),
    (PLT, 25000, "/mm3", _, _, _, _, 3), (PLT, 24999, "/mm3", _, _, _, _, 4),
    # Lymphocyte count decreased: <LLN-0.8 / <0.8-0.5 / <0.5-0.2 / <0.2
    (LYM, 1.0, "10^9/L", 1.0, _, _, _, 0), (LYM, 0.99, "10^9/L", 1.0, _, _, _, 1),
    (LYM, 0.8, "10^9/L", 1.0, _, _, _, 1), (LYM, 0.79, "10^9/L", 1.0, _, _, _, 2),
    (LYM, 0.5, "10^9/L", _, _, _, _, 2), (LYM, 0.49, "10^9/L", _, _, _, _, 3),
    (LYM, 0.2, "10^9/L", _, _, _, _, 3), (LYM, 0.19, "10^9/L", _, _, _, _, 4),
    # White blood cell decreased: <LLN-3.0 / <3.0-2.0 / <2.0-1.0 / <1.0
    (WBC, 4.0, "10^9/L", 4.0, _, _, _, 0), (WBC, 3.99, "10^9/L", 4.0, _, _, _, 1),
    (WBC, 3.0, "10^9/L", 4.0, _, _, _, 1), (WBC, 2.99, "10^9/L", 4.0, _, _, _, 2),
    (WBC, 2.0, "10^9/L", _, _, _, _, 2), (WBC, 1.99, "10^9/L", _, _, _, _, 3),
    (WBC, 1.0, "10^9/L", _, _, _, _, 3), (WBC, 0.99, "10^9/L", _, _, _, _, 4),
    # Anemia: <LLN-10.0 g/dL / <10.0-8.0 / <8.0; transfusion 3; life-threatening 4; death 5
    ("Anemia", 12.0, "g/dL", 12.0, _, _, _, 0),
    ("Anemia", 11.9, "g/dL", 12.0, _, _, _, 1),
    ("Anemia", 10.0, "g/dL", 12.0, _, _, _, 1),
    ("Anemia", 9.9, "g/dL", 12.0, _, _, _, 2),
    ("Anemia", 8.0, "g/dL", _, _, _, _, 2),
    ("Anemia", 7.9, "g/dL", _, _, _, _, 3),
    ("Anemia", 100, "g/L", 120, _, _, _, 1), ("Anemia", 99, "g/L", 120, _, _, _, 2),
    ("Anemia", 80, "g/L", _, _, _, _, 2), ("Anemia", 79, "g/L", _, _, _, _, 3),
    ("Anemia", 6.2, "mmol/L", 7.4, _, _, _, 1),
    ("Anemia", 6.19, "mmol/L", 7.4, _, _, _, 2),
    ("Anemia", 4.9, "mmol/L", _, _, _, _, 2),
    ("Anemia", 4.89, "mmol/L", _, _, _, _, 3),
    ("Anemia", 9.0, "g/dL", 12.0, _, _, "transfusion_indicated", 3),
    ("Anemia", 7.0, "g/dL", 12.0, _, _, "life_threatening", 4),
    ("Anemia", 7.0, "g/dL", 12.0, _, _, "death", 5),
    ("Anemia", 13.0, "g/dL", 12.0, _, _, "transfusion_indicated", 0),
    # ALT/AST, baseline normal: >ULN-3.0xULN / >3.0-5.0 / >5.0-20.0 / >20.0 x ULN
    (ALT, 40, "U/L", _, 40, 20, _, 0), (ALT, 40.1, "U/L", _, 40, 20, _, 1),
    (ALT, 120, "U/L", _, 40, 20, _, 1), (ALT, 120.1, "U/L", _, 40, 20, _, 2),
    (ALT, 200, "U/L", _, 40, 20, _, 2), (ALT, 200.1, "U/L", _, 40, 20, _, 3),
    (ALT, 800, "U/L", _, 40, 20, _, 3), (ALT, 800.1, "U/L", _, 40, 20, _, 4),
    (AST, 40.1, "U/L", _, 40, _, _, 1), (AST, 800.1, "U/L", _, 40, _, _, 4),
    # ALT/AST, baseline abnormal (80 > ULN 40): 1.5-3.0 / >3.0-5.0 / >5.0-20.0 / >20.0 x base
    (ALT, 119.9, "U/L", _, 40, 80, _, 0), (ALT, 120, "U/L", _, 40, 80, _, 1),
    (ALT, 240, "U/L", _, 40, 80, _, 1), (ALT, 240.1, "U/L", _, 40, 80, _, 2),
    (ALT, 400, "U/L", _, 40, 80, _, 2), (ALT, 400.1, "U/L", _, 40, 80, _, 3),
    (AST, 1600, "U/L", _, 40, 80, _, 3), (AST, 1600.1, "U/L", _, 40, 80, _, 4),
    # Bilirubin, baseline normal: >ULN-1.5 / >1.5-3.0 / >3.0-10.0 / >10.0 x ULN
    (BILI, 1.2, "mg/dL", _, 1.2, 0.5, _, 0), (BILI, 1.21, "mg/dL", _, 1.2, 0.5, _, 1),
    (BILI, 1.8, "mg/dL", _, 1.2, 0.5, _, 1), (BILI, 1.81, "mg/dL", _, 1.2, 0.5, _, 2),
    (BILI, 3.6, "mg/dL", _, 1.2, 0.5, _, 2), (BILI, 3.61, "mg/dL", _, 1.2, 0.5, _, 3),
    (BILI, 12.0, "mg/dL", _, 1.2, 0.5, _, 3), (BILI, 12.01, "mg/dL", _, 1.2, 0.5, _, 4),
    (BILI, 21, "umol/L", _, 21, _, _, 0), (BILI, 21.1, "umol/L", _, 21, _, _, 1),
    # Bilirubin, baseline abnormal (2.0 > ULN 1.2): >1.0-1.5 / >1.5-3.0 / >3.0-10.0 / >10.0 x base
    (BILI, 2.0, "mg/dL", _, 1.2, 2.0, _, 0), (BILI, 2.01, "mg/dL", _, 1.2, 2.0, _, 1),
    (BILI, 3.0, "mg/dL", _, 1.2, 2.0, _, 1), (BILI, 3.01, "mg/dL", _, 1.2, 2.0, _, 2),
    (BILI, 6.0, "mg/dL", _, 1.2, 2.0, _, 2), (BILI, 6.01, "mg/dL", _, 1.2, 2.0, _, 3),
    (BILI, 20.0, "mg/dL", _, 1.2, 2.0, _, 3), (BILI, 20.01, "mg/dL", _, 1.2, 2.0, _, 4),
    # Creatinine: >ULN-1.5xULN / >1.5-3.0 x base or ULN / >3.0 x base or 3.0-6.0 x ULN / >6.0
    ("Creatinine increased", 100, "umol/L", _, 100, 80, _, 0),
    ("Creatinine increased", 100.1, "umol/L", _, 100, 80, _, 1),
    ("Creatinine increased", 150, "umol/L", _, 100, 100, _, 1),
    ("Creatinine increased", 150.1, "umol/L", _, 100, 100, _, 2),
    ("Creatinine increased", 90.1, "umol/L", _, 100, 60, _, 2),  # >1.5 x baseline
    ("Creatinine increased", 90.0, "umol/L", _, 100, 60, _, 0),
    ("Creatinine increased", 300, "umol/L", _, 100, 200, _, 2),
    ("Creatinine increased", 300.1, "umol/L", _, 100, 200, _, 3),
    ("Creatinine increased", 180.1, "umol/L", _, 100, 60, _, 3),  # >3.0 x baseline
    ("Creatinine increased", 600, "umol/L", _, 100, 300, _, 3),
    ("Creatinine increased", 600.1, "umol/L", _, 100, 300, _, 4),
    ("Creatinine increased", 1.71, "mg/dL", _, 1.13, _, _, 2),
    # Fibrinogen decreased, baseline normal: <1.0-0.75xLLN / <0.75-0.5 / <0.5-0.25 / <0.25 xLLN
    ("Fibrinogen decreased", 2.0, "g/L", 2.0, _, 3.0, _, 0),
    ("Fibrinogen decreased", 1.99, "g/L", 2.0, _, 3.0, _, 1),
    ("Fibrinogen decreased", 1.5, "g/L", 2.0, _, 3.0, _, 1),
    ("Fibrinogen decreased", 1.49, "g/L", 2.0, _, 3.0, _, 2),
    ("Fibrinogen decreased", 1.0, "g/L", 2.0, _, 3.0, _, 2),
    ("Fibrinogen decreased", 0.99, "g/L", 2.0, _, 3.0, _, 3),
    ("Fibrinogen decreased", 0.5, "g/L", 2.0, _, 3.0, _, 3),
    ("Fibrinogen decreased", 0.49, "g/L", 2.0, _, 3.0, _, 4),
    ("Fibrinogen decreased", 50, "mg/dL", 150, _, _, _, 3),
    ("Fibrinogen decreased", 49, "mg/dL", 150, _, _, _, 4),  # absolute <50 mg/dL
    # Fibrinogen, baseline abnormal (1.6 < LLN 2.0): <25% / 25-<50% / 50-<75% / >=75% decrease
    ("Fibrinogen decreased", 1.6, "g/L", 2.0, _, 1.6, _, 0),
    ("Fibrinogen decreased", 1.59, "g/L", 2.0, _, 1.6, _, 1),
    ("Fibrinogen decreased", 1.21, "g/L", 2.0, _, 1.6, _, 1),
    ("Fibrinogen decreased", 1.2, "g/L", 2.0, _, 1.6, _, 2),
    ("Fibrinogen decreased", 0.81, "g/L", 2.0, _, 1.6, _, 2),
    ("Fibrinogen decreased", 0.8, "g/L", 2.0, _, 1.6, _, 3),
    ("Fibrinogen decreased", 0.5, "g/L", 2.0, _, 1.6, _, 3),
    ("Fibrinogen decreased", 0.49, "g/L", 2.0, _, 1.6, _, 4),
    ("Fibrinogen decreased", 0.4, "g/L", 2.0, _, 1.6, _, 4),  # 75% decrease
    # Hypokalemia: <LLN-3.0 (1 asymptomatic, 2 symptomatic) / <3.0-2.5 / <2.5
    ("Hypokalemia", 3.5, "mmol/L", 3.5, _, _, _, 0),
    ("Hypokalemia", 3.49, "mmol/L", 3.5, _, _, "asymptomatic", 1),
    ("Hypokalemia", 3.0, "mmol/L", 3.5, _, _, "asymptomatic", 1),
    ("Hypokalemia", 3.0, "mmol/L", 3.5, _, _, "symptomatic", 2),
    ("Hypokalemia", 3.0, "mmol/L", 3.5, _, _, "intervention_indicated", 2),
    ("Hypokalemia", 3.0, "mmol/L", 3.5, _, _, _, 2),  # assumed worst case
    ("Hypokalemia", 2.99, "mmol/L", 3.5, _, _, "asymptomatic", 3),
    ("Hypokalemia", 2.5, "mmol/L", 3.5, _, _, _, 3),
    ("Hypokalemia", 2.49, "mmol/L", 3.5, _, _, _, 4),
    ("Hypokalemia", 3.2, "mEq/L", 3.5, _, _, "hospitalization", 3),
    ("Hypokalemia", 2.8, "mmol/L", 3.5, _, _, "death", 5),
    # Hyponatremia: <LLN-130 / 125-129 asymptomatic 2, symptomatic 3 / 120-124 3 / <120 4
    ("Hyponatremia", 135, "mmol/L", 135, _, _, _, 0),
    ("Hyponatremia", 134, "mmol/L", 135, _, _, _, 1),
    ("Hyponatremia", 130, "mmol/L", 135, _, _, _, 1),
    ("Hyponatremia", 129, "mmol/L", 135, _, _, "asymptomatic", 2),
    ("Hyponatremia", 125, "mmol/L", 135, _, _, "asymptomatic", 2),
    ("Hyponatremia", 125, "mmol/L", 135, _, _, "symptomatic", 3),
    ("Hyponatremia", 129, "mmol/L", 135, _, _, _, 3),  # assumed worst case
    ("Hyponatremia", 124, "mmol/L", 135, _, _, "asymptomatic", 3),
    ("Hyponatremia", 120, "mmol/L", 135, _, _, _, 3),
    ("Hyponatremia", 119, "mmol/L", 135, _, _, _, 4),
    # Hypocalcemia (corrected): <LLN-8.0 mg/dL (2 if symptomatic) / <8.0-7.0 / <7.0-6.0 / <6.0
    ("Hypocalcemia", 8.5, "mg/dL", 8.5, _, _, _, 0),
    ("Hypocalcemia", 8.4, "mg/dL", 8.5, _, _, "asymptomatic", 1),
    ("Hypocalcemia", 8.0, "mg/dL", 8.5, _, _, "asymptomatic", 1),
    ("Hypocalcemia", 8.0, "mg/dL", 8.5, _, _, "symptomatic", 2),
    ("Hypocalcemia", 8.0, "mg/dL", 8.5, _, _, _, 2),
    ("Hypocalcemia", 7.99, "mg/dL", 8.5, _, _, "asymptomatic", 2),
    ("Hypocalcemia", 7.0, "mg/dL", 8.5, _, _, _, 2),
    ("Hypocalcemia", 6.99, "mg/dL", 8.5, _, _, _, 3),
    ("Hypocalcemia", 6.0, "mg/dL", 8.5, _, _, _, 3),
    ("Hypocalcemia", 5.99, "mg/dL", 8.5, _, _, _, 4),
    ("Hypocalcemia", 2.0, "mmol/L", 2.1, _, _, "asymptomatic", 1),
    ("Hypocalcemia", 1.99, "mmol/L", 2.1, _, _, "asymptomatic", 2),
    ("Hypocalcemia", 1.75, "mmol/L", 2.1, _, _, _, 2),
    ("Hypocalcemia", 1.74, "mmol/L", 2.1, _, _, _, 3),
    ("Hypocalcemia", 1.5, "mmol/L", 2.1, _, _, _, 3),
    ("Hypocalcemia", 1.49, "mmol/L", 2.1, _, _, _, 4),
    # Hypocalcemia (ionized): <LLN-1.0 / <1.0-0.9 / <0.9-0.8 / <0.8 mmol/L
    ("Hypocalcemia (ionized)", 1.1, "mmol/L", 1.1, _, _, _, 0),
    ("Hypocalcemia (ionized)", 1.0, "mmol/L", 1.1, _, _, "asymptomatic", 1),
    ("Hypocalcemia (ionized)", 0.99, "mmol/L", 1.1, _, _, _, 2),
    ("Hypocalcemia (ionized)", 0.9, "mmol/L", 1.1, _, _, _, 2),
    ("Hypocalcemia (ionized)", 0.89, "mmol/L", 1.1, _, _, _, 3),
    ("Hypocalcemia (ionized)", 0.8, "mmol/L", 1.1, _, _, _, 3),
    ("Hypocalcemia (ionized)", 0.79, "mmol/L", 1.1, _, _, _, 4),
    # Hypophosphatemia (v5.0, clinical criteria only)
    ("Hypophosphatemia", 0.8, "mmol/L", 0.8, _, _, _, 0),
    ("Hypophosphatemia", 0.79, "mmol/L", 0.8, _, _, "asymptomatic", 1),
    ("Hypophosphatemia", 0.3, "mmol/L", 0.8, _, _, "asymptomatic", 1),
    ("Hypophosphatemia", 0.5, "mmol/L", 0.8, _, _, "oral_replacement", 2),
    ("Hypophosphatemia", 0.5, "mmol/L", 0.8, _, _, "hospitalization", 3),
    ("Hypophosphatemia", 0.5, "mmol/L", 0.8, _, _, "life_threatening", 4),
    ("Hypophosphatemia", 0.5, "mmol/L", 0.8, _, _, "death", 5),
    ("Hypophosphatemia", 0.9, "mmol/L", 0.8, _, _, "oral_replacement", 0),
    ("Hypophosphatemia", 0.79, "mmol/L", 0.8, _, _, _, 1),  # assumed: laboratory finding only
    ("Hypophosphatemia", 0.5, "mmol/L", _, _, _, "oral_replacement", 2),  # LLN not given
    # Hypophosphatemia, numeric CTCAE v4.03 only when asked for by name
    ("Hypophosphatemia (CTCAE v4.03)", 0.8, "mmol/L", 0.9, _, _, _, 1),
    ("Hypophosphatemia (CTCAE v4.03)", 0.79, "mmol/L", 0.9, _, _, _, 2),
    ("Hypophosphatemia (CTCAE v4.03)", 0.6, "mmol/L", 0.9, _, _, _, 2),
    ("Hypophosphatemia (CTCAE v4.03)", 0.59, "mmol/L", 0.9, _, _, _, 3),
    ("Hypophosphatemia (CTCAE v4.03)", 0.3, "mmol/L", 0.9, _, _, _, 3),
    ("Hypophosphatemia (CTCAE v4.03)", 0.29, "mmol/L", 0.9, _, _, _, 4),
    ("Hypophosphatemia (CTCAE v4.03)", 2.5, "mg/dL", 2.7, _, _, _, 1),
    ("Hypophosphatemia (CTCAE v4.03)", 2.49, "mg/dL", 2.7, _, _, _, 2),
    # Hypoalbuminemia: <LLN-3 g/dL / <3-2 / <2
    ("Hypoalbuminemia", 3.5, "g/dL", 3.5, _, _, _, 0),
    ("Hypoalbuminemia", 3.49, "g/dL", 3.5, _, _, _, 1),
    ("Hypoalbuminemia", 3.0, "g/dL", 3.5, _, _, _, 1),
    ("Hypoalbuminemia", 2.99, "g/dL", 3.5, _, _, _, 2),
    ("Hypoalbuminemia", 2.0, "g/dL", _, _, _, _, 2),
    ("Hypoalbuminemia", 1.99, "g/dL", _, _, _, _, 3),
    ("Hypoalbuminemia", 30, "g/L", 35, _, _, _, 1),
    ("Hypoalbuminemia", 29.9, "g/L", 35, _, _, _, 2),
    ("Hypoalbuminemia", 19.9, "g/L", 35, _, _, "life_threatening", 4),
    # Directions that ADLB grades alongside (K, Na, Ca high)
    ("Hyperkalemia", 5.0, "mmol/L", _, 5.0, _, _, 0),
    ("Hyperkalemia", 5.01, "mmol/L", _, 5.0, _, _, 1),
    ("Hyperkalemia", 5.5, "mmol/L", _, 5.0, _, _, 1),
    ("Hyperkalemia", 5.51, "mmol/L", _, 5.0, _, _, 2),
    ("Hyperkalemia", 6.01, "mmol/L", _, 5.0, _, _, 3),
    ("Hyperkalemia", 7.01, "mmol/L", _, 5.0, _, _, 4),
    ("Hypernatremia", 150, "mmol/L", _, 145, _, _, 1),
    ("Hypernatremia", 150.1, "mmol/L", _, 145, _, _, 2),
    ("Hypernatremia", 155.1, "mmol/L", _, 145, _, _, 3),
    ("Hypernatremia", 160.1, "mmol/L", _, 145, _, _, 4),
    ("Hypercalcemia", 11.5, "mg/dL", _, 10.5, _, _, 1),
    ("Hypercalcemia", 11.51, "mg/dL", _, 10.5, _, _, 2),
    ("Hypercalcemia", 2.9, "mmol/L", _, 2.6, _, _, 1),
    ("Hypercalcemia", 2.91, "mmol/L", _, 2.6, _, _, 2),
    ("Hypercalcemia", 3.41, "mmol/L", _, 2.6, _, _, 4),
]


@pytest.mark.parametrize(
    ("term", "value", "unit", "lln", "uln", "baseline", "qualifier", "grade"), ROWS)
def test_ctcae_thresholds(term, value, unit, lln, uln, baseline, qualifier, grade):
    result = grade_lab(term, value, unit, lln=lln, uln=uln, baseline=baseline, qualifier=qualifier)
    assert result == grade
    assert int(result) == grade
    assert isinstance(result, LabGrade) and result.grade == grade


def test_every_term_has_rows():
    tested = {row[0].lower() for row in ROWS}
    assert set(TERMS) <= tested


def test_result_carries_rule_units_and_assumption():
    r = grade_lab("Hypokalemia", 3.2, "mmol/L", lln=3.5)
    assert r == 2 and r.assumed and "worst case" in r.assumed
    r = grade_lab("Hypokalemia", 3.2, "mmol/L", lln=3.5, qualifier="asymptomatic")
    assert r == 1 and r.assumed is None
    r = grade_lab("Blood bilirubin increased", 2.0, "mg/dL", uln=1.2)
    assert r == 2 and r.value_si == pytest.approx(34.2) and r.unit_si == "umol/L"
    assert "baseline assumed normal" in r.assumed
    assert "1.5 x ULN" in r.rule
    assert grade_lab("Neutrophil count decreased", 0.3, "10^9/L") > 3
    r = grade_lab("Hypophosphatemia", 0.5, "mmol/L", lln=0.8)
    assert r == 1 and "laboratory finding only" in r.assumed
    with pytest.raises(AttributeError):
        r.rule = "x"  # type: ignore[misc]


def test_term_is_case_insensitive():
    assert grade_lab("NEUTROPHIL COUNT DECREASED", 0.4, "x10^9/L") == 4
    assert grade_lab("alanine aminotransferase increased", 900, "U/L", uln=40) == 4


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(term="Neutrophils low", value=1.0, unit="10^9/L"), "Invalid `term`"),
    (dict(term=NEUT, value=1.0, unit="g/dL"), "Invalid `unit`"),
    (dict(term=NEUT, value=1.0, unit=""), "Invalid `unit`"),
    (dict(term=NEUT, value=1.0, unit=None), "Invalid `unit`"),
    (dict(term=NEUT, value=-1.0, unit="10^9/L"), "Invalid `value`"),
    (dict(term=NEUT, value=float("nan"), unit="10^9/L"), "Invalid `value`"),
    (dict(term=NEUT, value="low", unit="10^9/L"), "Invalid `value`"),
    (dict(term="Hyponatremia", value=13.5, unit="mmol/L", lln=135), "possible sodium"),
    (dict(term="Hypokalemia", value=3.2, unit="mmol/L", lln=3.5, qualifier="dizzy"),
     "Invalid `qualifier`"),
    (dict(term=NEUT, value=0.4, unit="10^9/L", qualifier="symptomatic"),
     "Invalid `qualifier`"),
    (dict(term=NEUT, value=0.4, unit="10^9/L", lln=0), "Invalid `lln`"),
    (dict(term="Febrile neutropenia", value=0.4, unit="10^9/L"), "grade_febrile_neutropenia"),
])
def test_bad_input_names_the_problem(kwargs, message):
    with pytest.raises(InvalidValue, match=message):
        grade_lab(**kwargs)


@pytest.mark.parametrize(("term", "value", "unit", "kwargs", "message"), [
    (NEUT, 1.7, "10^9/L", {}, "needs lln"),
    (ALT, 50, "U/L", {}, "needs uln"),
    (ALT, 50, "U/L", {"baseline": 30}, "needs ULN"),
    ("Hypophosphatemia", 0.5, "mmol/L", {}, "clinical criteria only"),
])
def test_missing_reference_is_not_guessed(term, value, unit, kwargs, message):
    with pytest.raises(NotComputable, match=message):
        grade_lab(term, value, unit, **kwargs)


@pytest.mark.parametrize(("anc", "unit", "temp", "hours", "qualifier", "grade"), [
    (0.99, "10^9/L", 38.4, None, None, 3), (1.0, "10^9/L", 38.4, None, None, 0),
    (0.5, "10^9/L", 38.3, None, None, 0), (0.5, "10^9/L", 38.0, 1.5, None, 3),
    (0.5, "10^9/L", 38.0, 1.0, None, 0), (0.5, "10^9/L", 37.9, 5.0, None, 0),
    (999, "/mm3", 39.0, None, None, 3), (0.2, "10^9/L", 39.0, None, "life_threatening", 4),
    (0.2, "10^9/L", 39.0, None, "death", 5),
])
def test_febrile_neutropenia(anc, unit, temp, hours, qualifier, grade):
    assert grade_febrile_neutropenia(anc, unit, temp, sustained_hours=hours,
                                     qualifier=qualifier) == grade


_LOW = [(NEUT, 2.0), (PLT, 150.0), (LYM, 1.0), (WBC, 4.0)]


@given(st.sampled_from(_LOW), st.floats(0, 5), st.floats(0, 5))
def test_counts_never_improve_when_worse(term_lln, a, b):
    term, lln = term_lln
    scale = 40.0 if term == PLT else 1.0
    hi, lo = max(a, b) * scale, min(a, b) * scale
    assert grade_lab(term, lo, "10^9/L", lln=lln) >= grade_lab(term, hi, "10^9/L", lln=lln)


@given(st.sampled_from([ALT, AST, BILI, "Creatinine increased"]), st.floats(0, 3000),
       st.floats(0, 3000), st.one_of(st.none(), st.floats(1, 200)))
def test_high_terms_never_improve_when_worse(term, a, b, baseline):
    lo, hi = min(a, b), max(a, b)
    kw = dict(uln=40.0, baseline=baseline)
    assert grade_lab(term, hi, "U/L" if term in (ALT, AST) else "umol/L", **kw) >= grade_lab(
        term, lo, "U/L" if term in (ALT, AST) else "umol/L", **kw)


@given(st.sampled_from([("Hypokalemia", 3.5, "mmol/L", 1.0), ("Hyponatremia", 135, "mmol/L", 90),
                        ("Hypocalcemia", 8.5, "mg/dL", 1.0), ("Hypoalbuminemia", 35, "g/L", 0),
                        ("Fibrinogen decreased", 2.0, "g/L", 0.0)]),
       st.floats(0, 1), st.floats(0, 1), st.sampled_from([None, "asymptomatic", "symptomatic"]))
def test_electrolytes_never_improve_when_lower(spec, a, b, qualifier):
    term, lln, unit, floor = spec
    if term in ("Hypoalbuminemia", "Fibrinogen decreased"):
        qualifier = None
    lo, hi = (floor + (lln * 1.2 - floor) * x for x in sorted((a, b)))
    assert grade_lab(term, lo, unit, lln=lln, qualifier=qualifier) >= grade_lab(
        term, hi, unit, lln=lln, qualifier=qualifier)


def test_labgrade_survives_pickle():
    import pickle

    r = grade_lab("Hyponatremia", 128, "mmol/L", lln=135)
    back = pickle.loads(pickle.dumps(r))
    assert back == 3 and back.rule == r.rule and back.assumed == r.assumed
