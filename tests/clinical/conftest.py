"""Shared data for the clinical tests: a patient eligible for nct04762485."""

from __future__ import annotations

from typing import Any

import pytest

ELIGIBLE = {
    "relapsed_refractory": True, "diagnosis": "AML", "age_years": 40, "ecog": 1,
    "cd7_blast_pct": 85.0, "lvef": 0.6, "nyha_class": 1, "ast_x_uln": 1.0, "alt_x_uln": 1.0,
    "bilirubin_mg_dl": 0.8, "pregnant_or_lactating": False, "congenital_immunodeficiency": False,
    "cns_leukemia": False, "uncontrolled_infection": False, "active_hbv_hcv": False,
    "hiv_infection": False, "thrombosis_embolism": False, "recent_mi_or_arrhythmia": False,
    "investigator_unsuitable": False,
}


@pytest.fixture
def eligible() -> dict[str, Any]:
    """A fresh copy of a patient who meets every nct04762485 criterion."""
    return dict(ELIGIBLE)
