"""DLT evaluation from the shipped protocol's DLT rules and exceptions (all data)."""

from __future__ import annotations

import pytest

from celltrial.clinical import Toxicity, evaluate_dlt
from celltrial.errors import InvalidValue
from celltrial.protocols import load

CRS, ICANS = "Cytokine release syndrome", "Immune effector cell-associated neurotoxicity syndrome"
ANC = "Neutrophil count decreased"
H = 1 / 24  # one hour in (fractional) days


@pytest.fixture(scope="module")
def protocol():
    return load("cd7-aml-mll")  # D1-D5 rules, X1-X4 exceptions, 28-day window


def tox(term, category, grade, onset, resolution=None, course=()):
    return {"term": term, "category": category, "grade": grade, "onset_day": onset,
            "resolution_day": resolution, "grade_course": list(course)}


# (toxicity, is DLT, rule, excused by); a row with a rule, no DLT and no exception met that rule
# only outside the window (listed in ``not_counted``, not in ``events``)
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
    # --- window: judged on the day the toxicity first met the rule's grade (study days)
    (tox(CRS, "crs", 4, 29, 31), False, "D1", None),                           # day 29: outside
    (tox(CRS, "crs", 4, 28, 31), True, "D1", None),                            # day 28 inside
    (tox(CRS, "crs", 4, 20, course=[(20, 2), (28 + 23 * H, 4)]), True, "D1", None),  # 23:00 d28
    (tox(CRS, "crs", 4, 20, course=[(20, 2), (29, 4)]), False, "D1", None),    # 00:00 day 29
    # an AE starting inside the window reaches the DLT grade inside vs after it
    (tox(ANC, "hematologic", 4, 2, course=[(2, 1), (20, 4), (40, 3)]), True, "D4", None),
    (tox(ANC, "hematologic", 4, 2, course=[(2, 1), (28, 4), (40, 3)]), True, "D4", None),
    (tox(ANC, "hematologic", 4, 2, course=[(2, 1), (29, 4), (40, 3)]), False, "D4", None),
    (tox(ANC, "hematologic", 4, 2, course=[(2, 1), (300, 4)]), False, "D4", None),  # post-HSCT
    # --- X1 (ASTCT 2019): grade 3 CRS improving to grade <= 2 within 72 h, clock times
    (tox(CRS, "crs", 3, 2, course=[(2 + 10 * H, 3), (2 + 81 * H, 2)]), False, "D1", "X1"),  # 71 h
    (tox(CRS, "crs", 3, 2, course=[(2 + 10 * H, 3), (2 + 82 * H, 2)]), False, "D1", "X1"),  # 72 h
    (tox(CRS, "crs", 3, 2, course=[(2 + 10 * H, 3), (2 + 83 * H, 2)]), True, "D1", None),   # 73 h
    # hours count from the first time the course reached grade 3, not from the AE's onset
    (tox(CRS, "crs", 3, 1, course=[(1, 1), (2, 3), (5, 2)]), False, "D1", "X1"),  # 72 h from d2
    (tox(CRS, "crs", 3, 1, course=[(1, 3), (2, 3), (5, 2)]), True, "D1", None),   # 96 h from d1
    # a worse grade in the window takes X1 (grade 3 only) away; one after the window does not
    (tox(CRS, "crs", 4, 3, course=[(3, 3), (4, 4), (5, 2)]), True, "D1", None),
    (tox(CRS, "crs", 4, 27, course=[(27, 3), (28.5, 2), (30, 4)]), False, "D1", "X1"),
    # --- X4: grade 4 cytopenia counts only if it persists beyond day 28 (read on the counts)
    (tox(ANC, "hematologic", 4, 5, course=[(5, 4), (28, 3)]), False, "D4", "X4"),  # ends d28
    (tox(ANC, "hematologic", 4, 5, course=[(5, 4), (29, 3)]), True, "D4", None),   # ends d29
    (tox(ANC, "hematologic", 4, 5, course=[(5, 4), (30, 4)]), True, "D4", None),   # still 4 d30
    # a second grade-4 episode inside the window is judged on its own
    (tox(ANC, "hematologic", 4, 2, course=[(2, 4), (10, 3), (25, 4), (40, 3)]), True, "D4", None),
    # a course that never shows the reported grade: met on the onset day (conservative), and
    # the counts after it still tell when it ended
    (tox(ANC, "hematologic", 4, 2, course=[(2, 3), (9, 2)]), False, "D4", "X4"),  # ends day 9
    (tox(ANC, "hematologic", 4, 2, course=[(0, 3), (2, 3)]), True, "D4", None),   # no count after
]


@pytest.mark.parametrize(("toxicity", "is_dlt", "rule", "excused"), ROWS)
def test_dlt_rules_and_exceptions(protocol, toxicity, is_dlt, rule, excused):
    result = evaluate_dlt(protocol, [toxicity])
    assert result.is_dlt is is_dlt
    if rule is None:
        assert not result.events and not result.not_counted
    elif not is_dlt and excused is None:
        (late,) = result.not_counted
        assert not result.events and late.rule_id == rule and late.status == "outside_window"
        assert f"outside window (met on day {late.met_day:g})" in late.reason
        assert result.outside_window == (late.toxicity,)
    else:
        (event,) = result.events
        assert (event.rule_id, event.excused_by) == (rule, excused)
        assert event.status == ("dlt" if is_dlt else "excused")
        assert event.reason.startswith(f"{rule}: ") and "; met on day " in event.reason
        assert event.reason.endswith(event.detail)


def test_reasons_name_the_day_and_the_hours(protocol):
    late = evaluate_dlt(protocol, [tox(ANC, "hematologic", 4, 2, course=[(2, 1), (300, 4)])])
    assert late.not_counted[0].reason == ("D4: Hematologic toxicity grade 4 (CTCAE v5.0); "
                                          "outside window (met on day 300)")
    crs = [tox(CRS, "crs", 3, 2, course=[(2 + 10 * H, 3), (2 + 83 * H, 2)])]
    assert evaluate_dlt(protocol, crs).events[0].reason == (
        "D1: CRS grade >= 3 (ASTCT 2019); met on day 2 10:00; "
        "X1 not applied: grade <= 2 after 73 h > 72 h")
    crs = [tox(CRS, "crs", 3, 2, course=[(2 + 10 * H, 3), (2 + 81 * H, 2)])]
    assert evaluate_dlt(protocol, crs).events[0].detail == (
        "X1: Grade 3 CRS resolving to grade <= 2 within 72 h (after 71 h)")


def test_docstring_examples():
    import doctest

    import celltrial.clinical.dlt

    result = doctest.testmod(celltrial.clinical.dlt)
    assert result.attempted > 0 and result.failed == 0


# --- censoring (e.g. allogeneic HSCT on day 20): toxicities first meeting a DLT rule after the
# censoring day do not count; the course is read only up to that day, and a duration it then
# cannot show is counted as a DLT (conservative).
# (toxicity, censoring day, status, excused by, words in the reason)
CENSORED = [
    (tox(CRS, "crs", 4, 20, 22), 20, "dlt", None, "met on day 20"),               # same day
    (tox(CRS, "crs", 4, 21, 22), 20, "censored", None, "after censoring (day 20: hsct)"),
    (tox(ANC, "hematologic", 4, 2, course=[(2, 1), (20, 4), (40, 3)]), 20, "dlt", None,
     "cannot be judged, course read up to the censoring on day 20 (hsct); counted"),
    (tox(ANC, "hematologic", 4, 2, course=[(2, 1), (21, 4), (40, 3)]), 20, "censored", None,
     "met on day 21"),
    # X4 judged before the transplant: ended on day 15 -> excused
    (tox(ANC, "hematologic", 4, 5, course=[(5, 4), (15, 3)]), 20, "excused", "X4",
     "ended day 15"),
    # the end on day 25 is after the transplant: the course stops at day 20 -> counted
    (tox(ANC, "hematologic", 4, 10, course=[(10, 4), (25, 3)]), 20, "dlt", None,
     "cannot be judged"),
    (tox(ANC, "hematologic", 4, 10, 25), 20, "dlt", None, "cannot be judged"),
    # the same without censoring: excused
    (tox(ANC, "hematologic", 4, 10, course=[(10, 4), (25, 3)]), None, "excused", "X4",
     "ended day 25"),
    # X1 needs the fall to grade <= 2; a transplant before it can be seen -> counted
    (tox(CRS, "crs", 3, 19, course=[(19, 3), (21, 2)]), 20, "dlt", None, "cannot be judged"),
    (tox(CRS, "crs", 3, 19, course=[(19, 3), (20.5, 2)]), 20, "excused", "X1", "after 36 h"),
]


@pytest.mark.parametrize(("toxicity", "censor", "status", "excused", "words"), CENSORED)
def test_censoring(protocol, toxicity, censor, status, excused, words):
    result = evaluate_dlt(protocol, [toxicity], censor_day=censor,
                          censor_event=None if censor is None else "hsct")
    (event,) = result.considered
    assert (event.status, event.excused_by) == (status, excused)
    assert words in event.reason
    assert result.is_dlt is (status == "dlt")
    assert (event in result.not_counted) is (status == "censored")


def test_censor_day_is_checked(protocol):
    with pytest.raises(InvalidValue, match="`censor_day`"):
        evaluate_dlt(protocol, [], first_infusion_day=5, censor_day=2)


@pytest.fixture(scope="module")
def lasting(protocol):
    """cd7-aml-mll with X4 replaced by "grade 4 neutropenia counts only if it lasts more than
    14 days" (the new ``counts_only_if_lasts_more_than_days``)."""
    from celltrial.protocols import DLTException

    x5 = DLTException(id="X5", description="Grade 4 neutropenia lasting <= 14 days",
                      terms=[ANC], grade=4, counts_only_if_lasts_more_than_days=14)
    dlt = protocol.dlt.model_copy(update={"exceptions": [*protocol.dlt.exceptions[:3], x5]})
    return protocol.model_copy(update={"dlt": dlt})


# (grade course, censoring day, is DLT, excused by, words in the reason)
LASTING = [
    ([(5, 4), (19, 3)], None, False, "X5", "lasted 14 days"),      # day 5 -> day 19
    ([(5, 4), (20, 3)], None, True, None, "lasted 15 days > 14"),  # day 5 -> day 20
    ([(5 + 6 * H, 4), (19 + 6 * H, 2)], None, False, "X5", "lasted 14 days"),
    ([(5, 4), (19 + 1 * H, 2)], None, True, None, "> 14"),         # 14 days and 1 hour
    ([(5, 4), (25, 4)], None, True, None, "still grade >= 4 after 20 days > 14"),
    ([(5, 4), (12, 4)], None, True, None, "still ongoing"),
    ([(5, 4), (12, 4), (30, 3)], 15, True, None, "cannot be judged"),  # censored on day 15
    ([(5, 4), (12, 3)], 15, False, "X5", "lasted 7 days"),
]


@pytest.mark.parametrize(("course", "censor", "is_dlt", "excused", "words"), LASTING)
def test_lasting_more_than_days(lasting, course, censor, is_dlt, excused, words):
    result = evaluate_dlt(lasting, [tox(ANC, "hematologic", 4, course[0][0], course=course)],
                          censor_day=censor, censor_event="hsct" if censor else None)
    (event,) = result.events
    assert (result.is_dlt, event.excused_by) == (is_dlt, excused)
    assert words in event.reason


def test_one_condition_per_exception():
    from pydantic import ValidationError

    from celltrial.protocols import DLTException

    with pytest.raises(ValidationError, match="one condition per exception"):
        DLTException(id="X9", description="both", counts_only_if_persists_beyond_day=28,
                     counts_only_if_lasts_more_than_days=14)
    with pytest.raises(ValidationError, match="`within_hours` needs"):
        DLTException(id="X9", description="hours alone", within_hours=72)


def test_shipped_protocols_censor_at_hsct_therapy_and_withdrawal():
    from celltrial.protocols import list_ids

    for study in list_ids():
        censored_by = load(study).dlt.censored_by
        assert censored_by.events == ["hsct", "new_anticancer_therapy", "withdrawal"]
        assert censored_by.assumed and censored_by.rationale


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
