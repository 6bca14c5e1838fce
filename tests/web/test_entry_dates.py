"""Issue 10: a date after today or before the subject's informed consent is refused at entry,
next to its field, with nothing written (celltrial.web.capture.entry_date_problems)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from celltrial.store import write_domains
from celltrial.web.capture import entry_date_problems
from tests.web.conftest import STUDY

S = f"/studies/{STUDY}"
TODAY = dt.date(2024, 3, 1)


@pytest.mark.parametrize(("domain", "record", "consent", "field"), [
    ("LB", {"LBDTC": "2099-01-01"}, None, "date"),
    ("LB", {"LBDTC": "2024-03-02"}, None, "date"),             # tomorrow
    ("LB", {"LBDTC": "2024-03-01T23:59"}, None, None),         # today, with a time
    ("LB", {"LBDTC": "2024-01-04"}, "2024-01-05", "date"),     # day before consent
    ("LB", {"LBDTC": "2024-01-05"}, "2024-01-05", None),       # consent day
    ("XC", {"XCDTC": "2024-01-04T10:00"}, "2024-01-05T09:00", "date"),
    ("AE", {"AESTDTC": "2024-02-01", "AEENDTC": "2024-04-01"}, "2024-01-05", "end"),
    ("AE", {"AESTDTC": "2023-12-31"}, "2024-01-05", "start"),
    ("AE", {"AESTDTC": "2024-02-01"}, None, None),
])
def test_entry_dates(domain, record, consent, field):
    problems = entry_date_problems(domain, record, today=TODAY, consent=consent)
    assert set(problems) == (set() if field is None else {field}), problems


@pytest.mark.parametrize(("record", "field"), [
    ({"LBDTC": "2024-01-10"}, None),       # screening lab, before the screen failure
    ({"LBDTC": "2024-01-12"}, None),       # the day of the screen failure
    ({"LBDTC": "2024-01-13"}, "date"),     # after it: not a trial record
])
def test_no_data_after_a_screen_failure(record, field):
    problems = entry_date_problems("LB", record, today=TODAY, consent="2024-01-05",
                                   screen_failed="2024-01-12")
    assert set(problems) == (set() if field is None else {field}), problems


def test_future_lab_is_refused_by_the_api_and_nothing_is_written(site, api_post):
    before = site.counts()
    response = api_post("inv01", f"/api{S}/labs", {"usubjid": "01-001", "test": "NEUT",
                                                   "value": 1.2, "date": "2099-01-01",
                                                   "lln": 1.8})
    assert response.status_code == 422, response.text
    assert "on or before today" in response.text
    assert site.counts() == before


def test_lab_before_consent_is_refused_and_after_consent_is_stored(site, api_post):
    write_domains(site.store, STUDY, {"DM": pd.DataFrame({
        "USUBJID": ["01-009"], "SUBJID": ["009"], "SITEID": ["01"], "AGE": [40], "SEX": ["F"],
        "ARMCD": ["DL1"], "RFICDTC": ["2024-01-05"]})}, user="setup", reason="test subject")
    before = site.counts()
    body = {"usubjid": "01-009", "test": "NEUT", "value": 1.2, "lln": 1.8}
    refused = api_post("inv01", f"/api{S}/labs", {**body, "date": "2024-01-04"})
    assert refused.status_code == 422 and "informed consent" in refused.text
    assert site.counts() == before
    stored = api_post("inv01", f"/api{S}/labs", {**body, "date": "2024-01-05"})
    assert stored.status_code == 201, stored.text


def test_lab_after_a_screen_failure_is_refused(site, api_post):
    write_domains(site.store, STUDY, {
        "DM": pd.DataFrame({"USUBJID": ["01-008"], "SUBJID": ["008"], "SITEID": ["01"],
                            "AGE": [33], "SEX": ["M"], "RFICDTC": ["2024-01-05"]}),
        "DS": pd.DataFrame({"USUBJID": ["01-008"], "DSSEQ": [1], "DSDECOD": ["SCREEN FAILURE"],
                            "DSTERM": ["Screen failure: criteria not met I4"],
                            "DSSTDTC": ["2024-01-12"]})}, user="setup", reason="test subject")
    before = site.counts()
    response = api_post("inv01", f"/api{S}/labs", {"usubjid": "01-008", "test": "NEUT",
                                                   "value": 1.2, "lln": 1.8,
                                                   "date": "2024-02-01"})
    assert response.status_code == 422 and "failed screening" in response.text
    assert site.counts() == before
