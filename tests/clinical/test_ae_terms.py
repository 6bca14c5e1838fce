"""AE coding rules (celltrial.clinical.ae_terms): CTCAE v5.0 terms with the grades NCI defines
for each, the ASTCT 2019 syndromes, grade 5 = fatal and serious, CDISC CT outcome list.

Expected values are read off NCI's CTCAE v5.0 workbook ("-" = grade not defined)."""

from __future__ import annotations

import pytest

from celltrial.clinical.ae_terms import ASTCT, CTCAE, ae_problems, ctcae_terms, lookup

# term, grades NCI defines (CTCAE v5.0, Clean Copy sheet)
CTCAE_GRADES = [
    ("Neutrophil count decreased", (1, 2, 3, 4)),
    ("Platelet count decreased", (1, 2, 3, 4)),
    ("Anemia", (1, 2, 3, 4, 5)),
    ("Headache", (1, 2, 3)),
    ("Febrile neutropenia", (3, 4, 5)),
    ("Sepsis", (3, 4, 5)),
    ("Cytokine release syndrome", (1, 2, 3, 4, 5)),
    ("Alopecia", (1, 2)),
    ("Death NOS", (5,)),
]


def test_the_term_list_is_ctcae_v5_complete():
    table = ctcae_terms()
    assert len(table) == 837
    assert sum(t.endswith("- Other, specify") for t in table) == 26
    assert all(t.grades and set(t.grades) <= {1, 2, 3, 4, 5} for t in table.values())


@pytest.mark.parametrize(("term", "grades"), CTCAE_GRADES)
def test_grades_each_term_has(term, grades):
    assert lookup(term, CTCAE).allowed_grades == grades


# term, grade, serious, outcome, expected (field, words in the message) or None
CASES = [
    # issue 10's entries a monitor would reject
    ("sore arm lol", 1, "N", "RECOVERED/RESOLVED", ("AEDECOD", "CTCAE v5.0 term")),
    ("Headache", 2, "N", "whatever", ("AEOUT", "RECOVERED/RESOLVED")),
    ("Neutrophil count decreased", 5, "Y", "FATAL", ("AETOXGR", "(1, 2, 3, 4); got 5")),
    ("Headache", 5, "Y", "FATAL", ("AETOXGR", "(1, 2, 3); got 5")),
    ("Headache", 4, "Y", "NOT RECOVERED/NOT RESOLVED", ("AETOXGR", "got 4")),
    ("Sepsis", 5, "N", "FATAL", ("AESER", "Y for a grade 5")),
    ("Sepsis", 5, "Y", "RECOVERED/RESOLVED", ("AEOUT", "FATAL for a grade 5")),
    ("Sepsis", 3, "Y", "FATAL", ("AETOXGR", "5 for an event whose outcome is FATAL")),
    ("Febrile neutropenia", 2, "N", "RECOVERED/RESOLVED", ("AETOXGR", "(3, 4, 5)")),
    ("headache", 1, "N", "RECOVERED/RESOLVED", ("AEDECOD", "did you mean 'Headache'")),
    # accepted
    ("Headache", 3, "N", "RECOVERED/RESOLVED", None),
    ("Sepsis", 5, "Y", "FATAL", None),
    ("Febrile neutropenia", 3, "Y", "RECOVERING/RESOLVING", None),
    ("Neutrophil count decreased", 4, "N", None, None),
    ("Investigations - Other, specify", 5, "Y", "FATAL", None),
]


@pytest.mark.parametrize(("term", "grade", "serious", "outcome", "expected"), CASES)
def test_ctcae_coding(term, grade, serious, outcome, expected):
    problems = ae_problems(term=term, grade=grade, serious=serious, outcome=outcome)
    if expected is None:
        assert problems == []
    else:
        field, words = expected
        assert any(f == field and words in m for f, m in problems), problems


@pytest.mark.parametrize(("term", "grade", "ok"), [
    ("Cytokine release syndrome", 4, True),
    ("Cytokine release syndrome", 5, True),
    ("Immune effector cell-associated neurotoxicity syndrome", 3, True),
    ("Immune effector cell-associated neurotoxicity syndrome", 0, False),
    ("Neurotoxicity", 2, False),  # not an ASTCT 2019 syndrome name
])
def test_astct_syndromes(term, grade, ok):
    fatal = grade == 5
    problems = ae_problems(term=term, grade=grade, scale=ASTCT, serious="Y" if fatal else "N",
                           outcome="FATAL" if fatal else "RECOVERED/RESOLVED")
    assert (problems == []) is ok, problems
