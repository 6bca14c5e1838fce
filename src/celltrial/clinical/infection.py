"""Infections: CTCAE v5.0 grade, pathogen class, and infection density.

Sources:
- NCI Common Terminology Criteria for Adverse Events v5.0 (27 Nov 2017), System Organ Class
  "Infections and infestations". Most site terms (e.g. Lung infection, Urinary tract
  infection, Skin infection) have no grade 1 and grade by the treatment the infection needs:
  grade 2 = localized, local or oral intervention indicated (antibiotic, antifungal,
  antiviral); grade 3 = IV antibiotic, antifungal or antiviral intervention indicated, or
  invasive intervention indicated; grade 4 = life-threatening consequences, urgent
  intervention indicated; grade 5 = death. Sepsis starts at grade 3 (blood culture positive
  with signs or symptoms, treatment indicated). "Infections and infestations - Other,
  specify" has grade 1 (asymptomatic or mild, observation only, intervention not
  indicated). :data:`TERMS` lists the terms and their lowest grade.
- Pathogen classes (bacterial, viral, fungal, parasitic, clinically documented without an
  organism) and infection density (infections per 100 patient-days at risk) follow the
  CAR-T infection analysis of Hill JA et al. Infectious complications of CD19-targeted
  chimeric antigen receptor-modified T-cell immunotherapy. Blood 2018;131(1):121-130.

An infection is a mapping: ``term`` (a key of :data:`TERMS`), ``pathogen`` (a key of
:data:`PATHOGEN_CLASSES`), ``treatment`` in none / local_or_oral / iv / invasive,
``life_threatening`` (bool), ``fatal`` (bool).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from celltrial.errors import NotComputable, invalid

__all__ = ["PATHOGEN_CLASSES", "TERMS", "TREATMENT_GRADES", "InfectionGrade",
           "grade_infection", "infection_density"]

TERMS: dict[str, int] = {
    "lung infection": 2,
    "upper respiratory infection": 2,
    "urinary tract infection": 2,
    "skin infection": 2,
    "device related infection": 2,
    "enterocolitis infectious": 2,
    "catheter related infection": 2,
    "sepsis": 3,
    "infections and infestations - other": 1,
}
"""CTCAE v5.0 infection term (lower case) -> its lowest defined grade."""

TREATMENT_GRADES: dict[str, int] = {"none": 1, "local_or_oral": 2, "iv": 3, "invasive": 3}
"""Treatment the infection needs -> CTCAE v5.0 grade (Infections and infestations SOC)."""

PATHOGEN_CLASSES: dict[str, str] = {
    "bacterial": "bacteria",
    "viral": "viruses, including reactivation (CMV, EBV, HHV-6, BK, HBV)",
    "fungal": "yeasts and moulds (e.g. Candida, Aspergillus, Pneumocystis)",
    "parasitic": "protozoa and helminths (e.g. Toxoplasma)",
    "clinically_documented": "infection diagnosed clinically or radiologically, no organism",
}
"""Pathogen class vocabulary (Hill 2018: bacterial, viral, fungal; plus parasitic and
clinically documented infections without an identified organism)."""


@dataclass(frozen=True)
class InfectionGrade:
    """CTCAE v5.0 grade of one infection, its term and pathogen class; ``grade`` is None when
    the term has no grade for the treatment given (e.g. an untreated lung infection)."""

    grade: int | None
    term: str
    pathogen: str
    reason: str


def grade_infection(infection: Mapping[str, Any]) -> InfectionGrade:
    """Grade one infection by CTCAE v5.0 (see module docstring).

    >>> grade_infection({"term": "Lung infection", "pathogen": "fungal", "treatment": "iv"}).grade
    3
    >>> grade_infection({"term": "Sepsis", "pathogen": "bacterial", "treatment": "none"}).grade
    3
    """
    if not isinstance(infection, Mapping):
        raise invalid("infection", infection, "a mapping with term, pathogen and treatment")
    term = str(infection.get("term", "")).strip().lower()
    if term not in TERMS:
        raise invalid("infection term", infection.get("term"), f"one of {sorted(TERMS)}")
    pathogen = infection.get("pathogen")
    if pathogen not in PATHOGEN_CLASSES:
        raise invalid("pathogen", pathogen, f"one of {list(PATHOGEN_CLASSES)}")
    treatment = infection.get("treatment", "none")
    if treatment not in TREATMENT_GRADES:
        raise invalid("treatment", treatment, f"one of {list(TREATMENT_GRADES)}")
    for flag in ("life_threatening", "fatal"):
        if not isinstance(infection.get(flag, False), bool):
            raise invalid(flag, infection.get(flag), "true or false")
    if infection.get("fatal", False):
        return InfectionGrade(5, term, pathogen, "death")
    if infection.get("life_threatening", False):
        return InfectionGrade(4, term, pathogen, "life-threatening; urgent intervention")
    grade = TREATMENT_GRADES[treatment]
    lowest = TERMS[term]
    if term == "sepsis":
        return InfectionGrade(3, term, pathogen, "sepsis starts at grade 3")
    if grade < lowest:
        return InfectionGrade(None, term, pathogen,
                              f"`{term}` has no grade below {lowest} (treatment `{treatment}`)")
    return InfectionGrade(grade, term, pathogen, f"treatment `{treatment}`")


def infection_density(n_infections: int, days_at_risk: Iterable[float]) -> float:
    """Infections per 100 patient-days at risk (Hill 2018).

    >>> infection_density(3, [30, 30, 40])
    3.0
    """
    if not isinstance(n_infections, numbers.Integral) or isinstance(n_infections, bool) \
            or n_infections < 0:
        raise invalid("n_infections", n_infections, "a count >= 0")
    days = [float(d) for d in days_at_risk]
    if any(not math.isfinite(d) or d < 0 for d in days):
        raise invalid("days_at_risk", days, "finite numbers of days >= 0")
    total = sum(days)
    if total <= 0:
        raise NotComputable("infection density needs > 0 patient-days at risk")
    return 100.0 * n_infections / total
