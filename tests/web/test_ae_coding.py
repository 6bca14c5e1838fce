"""Issue 10: AEs a monitor would reject are refused at entry with a message naming the field,
and nothing is written (rules: celltrial.clinical.ae_terms, checked by the store)."""

from __future__ import annotations

import pytest

from tests.web.conftest import STUDY

S = f"/studies/{STUDY}"
BASE = {"usubjid": "01-002", "start": "2024-01-12", "related": "RELATED"}

# the entries of issue 10, each with the field the refusal names
REFUSED = [
    ({"term": "sore arm lol", "grade": 1, "serious": "N", "outcome": "RECOVERED/RESOLVED"},
     "AEDECOD"),
    ({"term": "Headache", "grade": 2, "serious": "N", "outcome": "whatever"}, "AEOUT"),
    ({"term": "Neutrophil count decreased", "grade": 5, "serious": "Y", "outcome": "FATAL"},
     "AETOXGR"),
    ({"term": "Headache", "grade": 5, "serious": "Y", "outcome": "FATAL"}, "AETOXGR"),
    ({"term": "Sepsis", "grade": 5, "serious": "N", "outcome": "FATAL"}, "AESER"),
    ({"term": "Sepsis", "grade": 5, "serious": "Y", "outcome": "RECOVERED/RESOLVED"}, "AEOUT"),
]


@pytest.mark.parametrize(("entry", "field"), REFUSED)
def test_miscoded_adverse_event_is_refused_and_nothing_is_written(site, api_post, entry,
                                                                  field) -> None:
    before = site.counts()
    response = api_post("inv01", f"/api{S}/adverse-events", {**BASE, **entry})
    assert response.status_code in (400, 422), response.text
    assert field in response.text
    assert site.counts() == before


def test_a_correctly_coded_fatal_event_is_stored(site, api_post) -> None:
    response = api_post("inv01", f"/api{S}/adverse-events", {
        **BASE, "term": "Sepsis", "grade": 5, "serious": "Y", "outcome": "FATAL",
        "end": "2024-01-20"})
    assert response.status_code == 201, response.text
    record = response.json()["record"]
    assert (record["AEDECOD"], record["AETOXGR"], record["AETOXSCL"]) == ("Sepsis", 5,
                                                                          "CTCAE v5.0")
