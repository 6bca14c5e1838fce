"""The subject page shows the cross-check warnings (celltrial.store.crosscheck): a grade 4
neutrophil count entered without an AE is flagged, and the flag goes once the AE is logged."""

from __future__ import annotations

from tests.web.conftest import STUDY

S = f"/studies/{STUDY}"


def test_grade_4_lab_without_an_ae_is_flagged_until_the_ae_is_logged(site, api_post):
    lab = api_post("inv01", f"/api{S}/labs", {"usubjid": "01-001", "test": "NEUT",
                                              "value": 0.3, "date": "2024-01-15", "lln": 1.8})
    assert lab.status_code == 201, lab.text
    page = site.login("inv01").get(f"{S}/subjects/01-001").text
    assert "Checks to review" in page and "Grade 4 NEUT" in page
    ae = api_post("inv01", f"/api{S}/adverse-events", {
        "usubjid": "01-001", "term": "Neutrophil count decreased", "grade": 4,
        "start": "2024-01-14", "serious": "N", "related": "RELATED"})
    assert ae.status_code == 201, ae.text
    page = site.login("inv01").get(f"{S}/subjects/01-001").text
    assert "Grade 4 NEUT" not in page
