"""Infections: CTCAE v5.0 grade by the treatment needed, sepsis from grade 3, pathogen class,
infection density per 100 patient-days."""

from __future__ import annotations

import pytest

from celltrial.clinical.infection import grade_infection, infection_density
from celltrial.errors import InvalidValue, NotComputable

# (term, treatment, life-threatening, fatal, grade)
ROWS = [
    ("Lung infection", "none", False, False, None),     # no grade 1 for site terms
    ("Lung infection", "local_or_oral", False, False, 2),
    ("Lung infection", "iv", False, False, 3),
    ("Lung infection", "invasive", False, False, 3),
    ("Lung infection", "iv", True, False, 4),
    ("Lung infection", "iv", True, True, 5),
    ("Sepsis", "none", False, False, 3),
    ("Sepsis", "iv", True, False, 4),
    ("Sepsis", "iv", False, True, 5),
    ("Infections and infestations - Other", "none", False, False, 1),
    ("Infections and infestations - Other", "local_or_oral", False, False, 2),
]


@pytest.mark.parametrize(("term", "treatment", "life", "fatal", "grade"), ROWS)
def test_infection_grade(term, treatment, life, fatal, grade):
    result = grade_infection({"term": term, "pathogen": "viral", "treatment": treatment,
                              "life_threatening": life, "fatal": fatal})
    assert result.grade == grade and result.pathogen == "viral"


@pytest.mark.parametrize("infection", [
    {"term": "Flu", "pathogen": "viral"}, {"term": "Sepsis", "pathogen": "prion"},
    {"term": "Sepsis", "pathogen": "bacterial", "treatment": "pills"},
    {"term": "Sepsis", "pathogen": "bacterial", "fatal": "yes"}])
def test_invalid(infection):
    with pytest.raises(InvalidValue):
        grade_infection(infection)


def test_density():
    assert infection_density(3, [100, 50, 50]) == pytest.approx(1.5, rel=1e-12)
    assert infection_density(0, [10]) == 0.0
    with pytest.raises(NotComputable):
        infection_density(1, [0, 0])
