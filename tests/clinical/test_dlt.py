"""DLT evaluation from the shipped protocol's DLT rules and exceptions (all data)."""

from __future__ import annotations

import pytest

from celltrial.clinical import Toxicity, evaluate_dlt
from celltrial.errors import InvalidValue
from celltrial.protocols import load

CRS, ICANS = "Cytokine release syndrome", "Immune effector cell-associated neurotoxicity syndrome"


@pytest.fixture(scope="module")
def protocol():
    return load("cd7-aml-mll")  # D1-D5 rules, X1-X4 exceptions, 28-day window


def tox(term, category, grade, onset, resolution=None, course=()):
    return {"term": term, "category": category, "grade": grade, "onset_day": onset,
            "resolution_day": resolution, "grade_course": list(course)}


# (toxicity, is DLT, rule, excused by)
ROWS = [
    (tox(CRS, "crs", 2, 3, 6), False, None, None),
    (tox(CRS, "crs", 3, 3, course=[(3, 3), (6, 2)]), False, "D1", "X1"),      # 72 h -> excused
    (tox(CRS, "crs", 3, 3, course=[(3, 3), (6.05, 2)]), True, "D1", None),    # 73.2 h
    (tox(CRS, "crs", 3, 3, resolution=6), False, "D1", "X1"),
    (tox(CRS, "crs", 3, 3), True, "D1", None),                                 # no resolution
    (tox(CRS, "crs", 4, 3, 5), True, "D1", None),
    (tox(ICANS, "icans", 2, 5, 7), False, None, None),
    (tox(ICANS, "icans", 3, 5, 6), True, "D2", None),
    (tox("Hypotension", "non_hematologic", 2, 4, 6), False, None, None),
    (tox("Hypokalemia", "non_hematologic", 3, 4, 11), False, "D3", "X3"),      # 7 days = 168 h
    (tox("Hypokalemia", "non_hematologic", 3, 4, 12), True, "D3", None),
    (tox("Fever", "non_hematologic", 3, 1, 20), False, "D3", "X2"),
    (tox("Lung infection", "non_hematologic", 4, 10, 14), True, "D3", None),
    (tox("Neutrophil count decreased", "hematologic", 3, 2), False, None, None),
    (tox("Neutrophil count decreased", "hematologic", 4, 2, 28), False, "D4", "X4"),
    (tox("Neutrophil count decreased", "hematologic", 4, 2, 29), True, "D4", None),
    (tox("Platelet count decreased", "hematologic", 4, 2, course=[(2, 4), (27, 3)]), False, "D4",
     "X4"),
    (tox("Platelet count decreased", "hematologic", 4, 2), True, "D4", None),  # ongoing
    (tox("Sepsis", "non_hematologic", 5, 20, 20), True, "D3", None),
    (tox("Neutrophil count decreased", "hematologic", 5, 20, 20), True, "D4", None),
    (tox(CRS, "crs", 4, 29, 31), False, None, None),                           # outside window
    (tox(CRS, "crs", 4, 28, 31), True, "D1", None),                            # day 28 inside
]


@pytest.mark.parametrize(("toxicity", "is_dlt", "rule", "excused"), ROWS)
def test_dlt_rules_and_exceptions(protocol, toxicity, is_dlt, rule, excused):
    result = evaluate_dlt(protocol, [toxicity])
    assert result.is_dlt is is_dlt
    if rule is None:
        assert all(e.rule_id is None for e in result.events) or not result.events
    else:
        (event,) = result.events
        assert (event.rule_id, event.excused_by) == (rule, excused)


def test_window_follows_first_infusion(protocol):
    late = tox(CRS, "crs", 4, 33, 35)
    assert not evaluate_dlt(protocol, [late]).is_dlt
    result = evaluate_dlt(protocol, [late], first_infusion_day=7)
    assert result.is_dlt and result.window == (7.0, 35.0)


def test_patient_history(protocol):
    """Grade 2 CRS, grade 3 CRS falling to 2 in 48 h, grade 4 neutropenia recovering day 21,
    then grade 3 ICANS on day 9: one DLT (ICANS)."""
    history = [tox(CRS, "crs", 3, 1, course=[(1, 2), (2, 3), (4, 2), (6, 0)]),
               tox("Neutrophil count decreased", "hematologic", 4, 0, 21),
               Toxicity(ICANS, "icans", 3, 9, 11)]
    result = evaluate_dlt(protocol, history)
    assert result.is_dlt and [e.rule_id for e in result.dlts] == ["D2"]
    assert [e.excused_by for e in result.events] == ["X1", "X4", None]
    assert "after 48 h" in result.events[0].reason  # from the day grade 3 began (day 2)
    assert result.assumed and "28 days" in result.definition


def test_no_rules_in_code_only_data(protocol):
    """Changing the protocol's data changes the decision (no special case in code)."""
    dlt = protocol.dlt.model_copy(update={"exceptions": []})
    strict = protocol.model_copy(update={"dlt": dlt})
    fever = tox("Fever", "non_hematologic", 3, 1, 2)
    assert not evaluate_dlt(protocol, [fever]).is_dlt
    assert evaluate_dlt(strict, [fever]).is_dlt


@pytest.mark.parametrize(("item", "message"), [
    ({"term": CRS, "category": "cytokine", "grade": 3, "onset_day": 1}, "`category`"),
    ({"term": CRS, "category": "crs", "grade": 6, "onset_day": 1}, "`grade`"),
    ({"term": CRS, "category": "crs", "grade": 3}, "`onset_day`"),
    ({"term": CRS, "category": "crs", "grade": 3, "onset_day": 1, "severity": 3}, "key"),
    ({"term": "", "category": "crs", "grade": 3, "onset_day": 1}, "`term`"),
    ({"term": CRS, "category": "crs", "grade": 3, "onset_day": 5, "resolution_day": 2},
     "`resolution_day`"),
])
def test_bad_toxicity_names_it(protocol, item, message):
    with pytest.raises(InvalidValue, match=message):
        evaluate_dlt(protocol, [item])
