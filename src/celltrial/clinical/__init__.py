"""celltrial.clinical: pure clinical rules (CTCAE v5.0 lab grading, ASTCT 2019 CRS/ICANS,
response criteria, DLT, eligibility screening, dose and bag planning, split-infusion hold
rules)."""

from celltrial.clinical.crs_icans import (
    Episode,
    daily_grades,
    episodes,
    grade_crs,
    grade_icans,
    ice_score,
)
from celltrial.clinical.ctcae import TERMS, LabGrade, grade_febrile_neutropenia, grade_lab
from celltrial.clinical.dlt import DLTEvent, DLTResult, Toxicity, evaluate_dlt
from celltrial.clinical.dosing import DoseInfeasible, DosePlan, Fraction, Product, plan_dose
from celltrial.clinical.eligibility import CriterionResult, ScreeningResult, screen
from celltrial.clinical.split_hold import FractionDecision, next_fraction
from celltrial.clinical.response import (
    ResponseResult,
    assess_extramedullary,
    assess_response,
    best_overall_response,
    first_response_day,
    overall_response,
    relapse_day,
    spd,
)

__all__ = [
    "TERMS", "CriterionResult", "DLTEvent", "DLTResult", "DoseInfeasible", "DosePlan",
    "Episode", "Fraction", "FractionDecision", "LabGrade", "Product", "ResponseResult",
    "ScreeningResult",
    "Toxicity", "assess_extramedullary", "assess_response", "best_overall_response",
    "daily_grades", "episodes", "evaluate_dlt", "first_response_day", "grade_crs",
    "grade_febrile_neutropenia", "grade_icans", "grade_lab", "ice_score", "next_fraction",
    "overall_response",
    "plan_dose", "relapse_day", "screen", "spd",
]
