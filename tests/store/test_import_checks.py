"""Cross-field checks at the door: required fields, end >= start, case-sensitive test codes,
LBORRES vs LBSTRESN vs LBTOXGR. Each refused case names file, row and column and writes
nothing (SQLite and PostgreSQL); the rules themselves are tables of cases below."""

from __future__ import annotations

from decimal import Decimal

import pytest

from celltrial.errors import StoreError
from celltrial.store import import_csv_dir, write_domains
from celltrial.store.consistency import end_before_start, lab_grades, results_agree

from .conftest import STUDY, make_frames
from .test_validate import _bad_frames, _snapshot

# (case, domain, data row (1-based), column, bad value, text the message must hold)
CASES = [
    ("AE without grade", "AE", 2, "AETOXGR", "", "must be given (required in every AE record"),
    ("AE without seriousness", "AE", 1, "AESER", "", "must be given (required in every AE"),
    ("AE without relatedness", "AE", 2, "AEREL", "", "must be given (required in every AE"),
    ("AE without start", "AE", 1, "AESTDTC", "", "must be given (required in every AE"),
    ("LB without test code", "LB", 2, "LBTESTCD", "", "must be given (required in every LB"),
    ("AE ends before it starts", "AE", 1, "AEENDTC", "2024-01-11",
     "must be on or after AESTDTC `2024-01-12`"),
    ("lower-case test code", "LB", 3, "LBTESTCD", "neut", "must be `NEUT` (test codes are "
     "case-sensitive"),
    ("lower-case vital sign", "VS", 1, "VSTESTCD", "weight", "must be `WEIGHT`"),
    ("standard result differs from original", "LB", 3, "LBSTRESN", "0.3",
     "must be LBORRES `0.2` 10^9/L expressed in 10^9/L"),
    ("original in /uL not 1000x the standard", "LB", 1, "LBORRES", "150",
     "must be LBORRES `150` /uL expressed in 10^9/L"),
    ("original unit that does not convert", "LB", 1, "LBORRESU", "mg/dL",
     "must be a unit of NEUT that converts to 10^9/L"),
    ("grade of ANC 0.2 is 4, not 2", "LB", 3, "LBTOXGR", "2", "must be 4: the CTCAE v5.0 "
     "grade of NEUT 0.2 10^9/L"),
    ("grade of ANC 1.5 below LLN is 1, not 3", "LB", 1, "LBTOXGR", "3",
     "must be 1: the CTCAE v5.0 grade of NEUT 1.5 10^9/L"),
]
# the column the message names, where it is not the one changed
NAMED = {"original in /uL not 1000x the standard": "LBSTRESN"}


def _csv(frames, folder):
    folder.mkdir()
    for name, frame in frames.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


@pytest.mark.parametrize(("case", "domain", "row", "column", "value", "rule"), CASES,
                         ids=[c[0] for c in CASES])
def test_cross_field_problem_is_refused_naming_file_row_column(guarded, tmp_path, case,
                                                               domain, row, column, value,
                                                               rule):
    folder = _csv(_bad_frames(domain, row, column, value), tmp_path / "in")
    before = _snapshot(guarded)
    with pytest.raises(StoreError) as caught:
        import_csv_dir(guarded, STUDY, folder, user="u")
    message = str(caught.value)
    named = NAMED.get(case, column)
    assert f"{domain}.csv row {row} (line {row + 1}), column {named}: Invalid `{named}`" \
        in message, message
    assert rule in message and "nothing was written" in message, message
    assert _snapshot(guarded) == before


def test_api_writes_pass_the_same_checks(guarded):
    before = _snapshot(guarded)
    with pytest.raises(StoreError, match=r"domain AE row 2, column AESER: .*must be given"):
        write_domains(guarded, STUDY, _bad_frames("AE", 2, "AESER", None), user="u",
                      reason="r")
    assert _snapshot(guarded) == before


def test_update_cannot_make_a_grade_disagree(filled):
    from celltrial.store import update_record

    with pytest.raises(StoreError, match=r"column LBTOXGR: Invalid `LBTOXGR`: got `1`, must "
                                         r"be 4"):
        update_record(filled, "LB", (STUDY, "101-002", 1), {"LBTOXGR": 1}, user="m",
                      reason="typo")


def test_consistent_frames_are_written(store):
    summary = write_domains(store, STUDY, make_frames(), user="u", reason="r")
    assert summary.records["LB"] == 4


# (start, end, end before start?)
DATES = [
    ("2024-01-12", "2024-01-11", True),
    ("2024-01-12", "2024-01-12", False),
    ("2024-01-12T10:00", "2024-01-12T09:59", True),
    ("2024-01-12T10:00", "2024-01-12", False),   # same day at the date's precision
    ("2024-01-12", "2024-01-12T00:00", False),
    ("2024-01-12", "2024-02-01", False),
]


@pytest.mark.parametrize(("start", "end", "before"), DATES)
def test_end_before_start_at_shared_precision(start, end, before):
    assert end_before_start(start, end) is before


# (LBORRES, LBSTRESN in LBORRESU, agree?)
RESULTS = [
    ("1500", 1500.0, True),
    ("1500", 1500.4, True),      # rounds to 1500
    ("1500", 1501.0, False),
    ("0.2", 0.2, True),
    ("0.2", 0.26, False),
    ("1.2", 1.1988304, True),    # bilirubin 20.5 umol/L reported as 1.2 mg/dL
    ("0.123457", 0.1234567, True),
    ("1.23457e+06", 1234567.0, True),
]


@pytest.mark.parametrize(("orres", "value", "agree"), RESULTS)
def test_original_and_standard_results_agree_to_the_digits_given(orres, value, agree):
    assert results_agree(Decimal(orres), value) is agree


# (test, value, unit, LLN, ULN, grade without qualifier, grades a qualifier allows)
GRADES = [
    ("NEUT", 0.2, "10^9/L", 1.8, 7.5, 4, {4}),
    ("NEUT", 1.5, "10^9/L", 1.8, 7.5, 1, {1}),
    ("NEUT", 5.0, "10^9/L", 1.8, 7.5, 0, {0}),
    ("HGB", 95.0, "g/L", 120.0, 170.0, 2, {2, 3, 4, 5}),   # transfusion, life-threatening
    ("K", 3.2, "mmol/L", 3.5, 5.1, 2, {1, 2, 3, 4, 5}),    # asymptomatic 1, worst case 2
    ("SODIUM", 140.0, "mmol/L", 135.0, 145.0, 0, {0}),
]


@pytest.mark.parametrize(("code", "value", "unit", "lln", "uln", "grade", "allowed"), GRADES)
def test_lab_grades_come_from_grade_lab(code, value, unit, lln, uln, grade, allowed):
    from celltrial.clinical import grade_lab

    (base, rule), grades = lab_grades(code, value, unit, lln, uln)
    assert (base, set(grades)) == (grade, allowed)
    if code == "NEUT":
        assert base == int(grade_lab("Neutrophil count decreased", value, unit, lln=lln,
                                     uln=uln)) and rule


@pytest.mark.parametrize("code", ["ALT", "AST", "BILI", "CREAT", "FIBRINO", "IL6", "MRD"])
def test_grades_needing_a_baseline_or_without_a_term_are_not_checked_per_row(code):
    assert lab_grades(code, 100.0, "U/L", 7.0, 40.0) is None
