"""celltrial.clinical: pure clinical rules (CTCAE v5.0 lab grading, ASTCT 2019 CRS/ICANS,
response criteria, DLT, eligibility screening, dose and bag planning, split-infusion hold
rules, ICAHT, IEC-HS, acute GVHD (MAGIC), T/NK-cell aplasia, infections)."""

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
from celltrial.clinical.aplasia import AplasiaResult, AplasiaThreshold, assess_aplasia
from celltrial.clinical.gvhd import GVHDGrade, grade_gvhd
from celltrial.clinical.icaht import EarlyICAHT, LateICAHT, early_icaht, late_icaht
from celltrial.clinical.iec_hs import IECHSAssessment, grade_iec_hs, identify_iec_hs
from celltrial.clinical.infection import InfectionGrade, grade_infection, infection_density
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
    "AplasiaResult", "AplasiaThreshold", "EarlyICAHT", "GVHDGrade", "IECHSAssessment",
    "InfectionGrade", "LateICAHT", "assess_aplasia", "early_icaht", "grade_gvhd",
    "grade_iec_hs", "grade_infection", "identify_iec_hs", "infection_density", "late_icaht",
]
