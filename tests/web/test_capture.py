"""Data entry with automatic grading, validation before write, corrections, audit trail."""

from __future__ import annotations

import html
import re

import pytest

from celltrial.clinical import grade_crs, grade_icans, grade_lab, ice_score
from celltrial.store import audit_trail, read_domain
from tests.web.conftest import STUDY, form_token, form_value

S = f"/studies/{STUDY}"


def _lb(site, usubjid: str) -> list[dict]:
    frame = read_domain(site.store, STUDY, "LB")
    return frame[frame["USUBJID"] == usubjid].to_dict("records")


def test_lab_form_grades_anc_like_grade_lab_and_audits_the_user(site) -> None:
    client = site.login("inv01")
    page = client.get(f"{S}/subjects/01-001/labs/new")
    assert page.status_code == 200
    before = len(_lb(site, "01-001"))
    filled = {"csrf_token": form_token(page.text), "submission": form_value(page.text,
                                                                              "submission"),
              "test": "NEUT", "value": "0.4", "unit": "", "lln": "1.8",
              "date": "2024-01-12T08:00"}
    response = client.post(f"{S}/subjects/01-001/labs/new", data=filled)
    expected = grade_lab("Neutrophil count decreased", 0.4, "10^9/L", lln=1.8)
    assert int(expected) == 4
    assert [r.status_code for r in response.history] == [303]  # post/redirect/get
    assert response.status_code == 200 and "/saved/" in str(response.url)
    assert f'class="grade g4">{int(expected)}<' in response.text
    assert html.escape(expected.rule, quote=False) in response.text
    rows = _lb(site, "01-001")
    assert len(rows) == before + 1
    stored = rows[-1]
    assert (stored["LBTESTCD"], stored["LBSTRESN"], stored["LBSTRESU"]) == ("NEUT", 0.4,
                                                                           "10^9/L")
    assert stored["LBTOXGR"] == 4 and stored["LBORNRLO"] == 1.8
    reloaded = client.get(response.url)  # the result page reloaded: nothing written again
    again = client.post(f"{S}/subjects/01-001/labs/new", data=filled)  # the form resubmitted
    assert reloaded.status_code == again.status_code == 200
    assert "already been saved" in again.text and str(again.url) == str(response.url)
    assert len(_lb(site, "01-001")) == before + 1
    key = f"USUBJID=01-001;LBSEQ={int(stored['LBSEQ'])}"
    trail = audit_trail(site.store, STUDY, table="lb", record_key=key)
    assert list(trail["user"]) == ["inv01"]
    assert list(trail["action"]) == ["insert"] and list(trail["source"]) == ["web"]
    audit_page = client.get(f"{S}/audit").text
    assert key in audit_page and "inv01" in audit_page


@pytest.mark.parametrize(("body", "term", "args"), [
    ({"test": "NEUT", "value": 0.4}, "Neutrophil count decreased", (0.4, "10^9/L", {})),
    ({"test": "NEUT", "value": 700, "unit": "cells/uL"}, "Neutrophil count decreased",
     (700, "cells/uL", {})),
    ({"test": "PLAT", "value": 20}, "Platelet count decreased", (20, "10^9/L", {})),
    ({"test": "HGB", "value": 7.5, "unit": "g/dL", "lln": 12},
     "Anemia", (7.5, "g/dL", {"lln": 12})),
    ({"test": "ALT", "value": 130, "uln": 40}, "Alanine aminotransferase increased",
     (130, "U/L", {"uln": 40})),
])
def test_api_lab_grade_equals_grade_lab(site, api_post, body, term, args) -> None:
    value, unit, limits = args
    expected = grade_lab(term, value, unit, **limits)
    response = api_post("coord02", f"/api{S}/labs",
                        {"usubjid": "02-001", "date": "2024-02-03", **body})
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["grading"]["grade"] == int(expected)
    assert result["grading"]["rule"] == expected.rule
    assert result["record"]["LBTOXGR"] == int(expected)
    assert _lb(site, "02-001")[-1]["LBTOXGR"] == int(expected)


def test_potassium_is_graded_both_ways(site, api_post) -> None:
    response = api_post("coord02", f"/api{S}/labs", {"usubjid": "02-001", "test": "K",
                                                     "value": 2.8, "lln": 3.5, "uln": 5.1,
                                                     "date": "2024-02-03"})
    assert response.status_code == 201
    expected = grade_lab("Hypokalemia", 2.8, "mmol/L", lln=3.5, uln=5.1)
    assert response.json()["grading"] == {"grade": int(expected), "term": "Hypokalemia",
                                          "rule": expected.rule, "assumed": expected.assumed}


def test_crs_observation_with_one_vasopressor_is_grade_3(site, api_post) -> None:
    obs = {"temperature_c": 39.1, "hypotension": "one_vasopressor", "oxygen": "low_flow"}
    assert grade_crs(obs) == 3
    response = api_post("inv01", f"/api{S}/observations",
                        {"usubjid": "01-001", "date": "2024-01-13", **obs})
    assert response.status_code == 201, response.text
    assert response.json()["grading"] == {"crs": 3, "icans": None}  # ICANS not assessed
    record = response.json()["record"]
    assert record["XCICAGR"] is None
    assert (record["XCCRSGR"], record["XCHYPOT"], record["XCTEMP"]) == (3, "one_vasopressor",
                                                                      39.1)
    client = site.login("inv01")
    form = client.post(f"{S}/subjects/01-001/observations/new", data={
        "csrf_token": form_token(client.get(f"{S}/subjects/01-001/observations/new").text),
        "date": "2024-01-14", "temperature_c": "37.2", "fever_masked": "Y",
        "hypotension": "one_vasopressor"})
    assert form.status_code == 200 and [r.status_code for r in form.history] == [303]
    assert "CRS grade <strong class=\"grade g3\">3</strong>" in form.text
    assert "ICANS not assessed" in form.text


@pytest.mark.parametrize("observed", [{}, {"fever_masked": "Y"}])
def test_an_observation_with_nothing_assessed_is_refused_not_grade_0(site, api_post,
                                                                      observed) -> None:
    before = site.counts()
    response = api_post("inv01", f"/api{S}/observations",
                        {"usubjid": "01-001", "date": "2024-01-13", **observed})
    assert response.status_code == 422
    assert "not grade 0" in response.json()["errors"]["_form"]
    assert site.counts() == before


def test_an_observation_of_crs_only_leaves_icans_ungraded(site, api_post) -> None:
    response = api_post("inv01", f"/api{S}/observations",
                        {"usubjid": "01-001", "date": "2024-01-13", "temperature_c": 37.0})
    assert response.status_code == 201, response.text
    assert (response.json()["record"]["XCCRSGR"], response.json()["record"]["XCICAGR"]) == (
        0, None)


def test_icans_from_ice_items_is_graded_like_grade_icans(site, api_post) -> None:
    items = {"orientation": 2, "naming": 2, "commands": 1, "writing": 0, "attention": 0}
    expected = grade_icans({"ice_score": ice_score(items), "consciousness": "awakens_to_voice"})
    response = api_post("inv01", f"/api{S}/observations", {
        "usubjid": "01-001", "date": "2024-01-15", "consciousness": "awakens_to_voice",
        **items})
    assert response.status_code == 201, response.text
    assert response.json()["grading"]["icans"] == expected == 2
    assert response.json()["record"]["XCICE"] == 5


@pytest.mark.parametrize(("path", "body", "field"), [
    ("observations", {"date": "2024-01-13", "hypotension": "pressors"}, "hypotension"),
    ("observations", {"date": "2024-01-13", "temperature_c": -1}, "temperature_c"),
    ("observations", {"date": "2024-01-13", "orientation": 9, "naming": 3, "commands": 1,
                      "writing": 1, "attention": 1}, "orientation"),
    ("labs", {"test": "NEUT", "value": -0.4, "date": "2024-01-13"}, "value"),
    ("labs", {"test": "NEUT", "value": "abc", "date": "2024-01-13"}, "value"),
    ("labs", {"test": "NEUT", "value": 0.4, "unit": "furlongs", "date": "2024-01-13"}, "unit"),
    ("labs", {"test": "NEUT", "value": 1.7, "date": "2024-01-13"}, "lln"),
    ("labs", {"test": "NEUT", "value": 0.4, "date": "2024-02-30"}, "date"),
    ("labs", {"test": "GLUC", "value": 5, "date": "2024-01-13"}, "test"),
    ("adverse-events", {"term": "Fever", "grade": 7, "start": "2024-01-13", "serious": "N",
                        "related": "RELATED"}, "grade"),
    ("adverse-events", {"term": "Fever", "grade": 2, "start": "2024-01-13", "serious": "N",
                        "related": "maybe"}, "related"),
    ("adverse-events", {"term": "Fever", "grade": 2, "start": "2024-01-13",
                        "end": "2024-01-02", "serious": "N", "related": "RELATED"}, "end"),
])
def test_invalid_api_input_names_the_field_and_writes_nothing(site, api_post, path, body,
                                                              field) -> None:
    before = site.counts()
    response = api_post("inv01", f"/api{S}/{path}", {"usubjid": "01-001", **body})
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert field in errors, errors
    assert f"`{field}`" in errors[field] or field in errors[field]
    assert site.counts() == before


@pytest.mark.parametrize(("kind", "form", "field", "kept"), [
    ("observations", {"date": "2024-01-13", "temperature_c": "39.5",
                      "hypotension": "pressors"}, "hypotension", ["pressors", "39.5"]),
    ("labs", {"test": "NEUT", "value": "-3", "date": "2024-01-13", "lln": "1.8"}, "value",
     ['value="-3"', 'value="1.8"', 'value="2024-01-13"']),
    ("adverse-events", {"term": "Nausea", "grade": "2", "start": "2024-13-01",
                        "serious": "N", "related": "RELATED"}, "start",
     ['value="Nausea"', 'value="2024-13-01"']),
])
def test_invalid_form_shows_the_error_by_the_field_and_keeps_the_input(site, kind, form,
                                                                       field, kept) -> None:
    client = site.login("inv01")
    token = form_token(client.get(f"{S}/subjects/01-001/{kind}/new").text)
    before = site.counts()
    response = client.post(f"{S}/subjects/01-001/{kind}/new", data={"csrf_token": token,
                                                                     **form})
    assert response.status_code == 422
    error = re.search(rf'id="error-{field}">([^<]*)<', response.text)
    assert error and error.group(1).strip()  # a plain message next to the field
    assert "Invalid `" not in html.unescape(error.group(1))
    for text in kept:
        assert text in response.text
    assert site.counts() == before


def test_adverse_event_is_stored_and_audited(site, api_post) -> None:
    response = api_post("inv01", f"/api{S}/adverse-events", {
        "usubjid": "01-002", "term": "CRS", "decod": "Cytokine release syndrome", "grade": 2,
        "start": "2024-01-11", "end": "2024-01-14", "serious": True, "related": "RELATED"})
    assert response.status_code == 201, response.text
    record = response.json()["record"]
    assert (record["AETOXGR"], record["AETOXSCL"], record["AESER"]) == (2, "ASTCT 2019", "Y")
    key = f"USUBJID=01-002;AESEQ={record['AESEQ']}"
    trail = audit_trail(site.store, STUDY, table="ae", record_key=key)
    assert list(trail["user"]) == ["inv01"]
    page = site.login("inv01").get(f"{S}/subjects/01-002").text
    assert "Cytokine release syndrome" in page


def test_correction_needs_a_reason_and_regrades(site, api_post) -> None:
    created = api_post("inv01", f"/api{S}/labs", {"usubjid": "01-002", "test": "NEUT",
                                                  "value": 0.4, "date": "2024-01-20"})
    seq = created.json()["record"]["LBSEQ"]
    key = f"USUBJID=01-002;LBSEQ={seq}"
    for reason in (None, "", "   "):
        body = {"usubjid": "01-002", "domain": "LB", "seq": seq, "version": 1,
                "changes": {"LBSTRESN": 0.8}}
        if reason is not None:
            body["reason"] = reason
        refused = api_post("inv01", f"/api{S}/corrections", body)
        assert refused.status_code == 422
        assert "reason" in refused.json()["errors"]
    client = site.login("inv01")
    url = f"{S}/subjects/01-002/records/LB/{seq}/correct"
    form = client.get(url).text
    assert form_value(form, "version") == "1"
    page = client.post(url, data={"csrf_token": form_token(form), "version": "1",
                                  "LBSTRESN": "0.8", "reason": ""})
    assert page.status_code == 422
    assert 'id="error-reason"' in page.text and 'value="0.8"' in page.text
    assert _lb(site, "01-002")[-1]["LBSTRESN"] == 0.4
    assert list(audit_trail(site.store, STUDY, record_key=key)["action"]) == ["insert"]

    done = client.post(url, data={"csrf_token": form_token(client.get(url).text),
                                  "version": "1", "LBSTRESN": "0.8",
                                  "reason": "transcription error"},
                       follow_redirects=False)
    assert done.status_code == 303
    stored = [r for r in _lb(site, "01-002") if r["LBSEQ"] == seq][0]
    assert stored["LBSTRESN"] == 0.8
    assert stored["LBTOXGR"] == int(grade_lab("Neutrophil count decreased", 0.8, "10^9/L")) == 3
    trail = audit_trail(site.store, STUDY, record_key=key)
    updates = trail[trail["action"] == "update"]
    assert set(updates["field"]) == {"LBSTRESN", "LBTOXGR", "LBORRES"}
    assert set(updates["reason"]) == {"transcription error"}
    assert set(updates["user"]) == {"inv01"}


def test_correction_of_an_observation_regrades_crs(site, api_post) -> None:
    created = api_post("inv01", f"/api{S}/observations", {
        "usubjid": "01-002", "date": "2024-01-21", "temperature_c": 38.5,
        "hypotension": "fluids"})
    seq = created.json()["record"]["XCSEQ"]
    assert created.json()["grading"]["crs"] == 2
    response = api_post("inv01", f"/api{S}/corrections", {
        "usubjid": "01-002", "domain": "XC", "seq": seq, "reason": "vasopressor started",
        "version": 1, "changes": {"XCHYPOT": "multiple_vasopressors"}})
    assert response.status_code == 200, response.text
    assert response.json()["record"]["XCCRSGR"] == 4
    bad = api_post("inv01", f"/api{S}/corrections", {
        "usubjid": "01-002", "domain": "XC", "seq": seq, "reason": "typo",
        "version": 2, "changes": {"XCHYPOT": "pressors"}})
    assert bad.status_code == 422 and "XCHYPOT" in bad.json()["errors"]


def test_malformed_json_is_400(site) -> None:
    client = site.login("inv01")
    response = client.post(f"/api{S}/labs", content=b"[1, 2", headers={
        "X-CSRF-Token": site.api_token("inv01"), "Content-Type": "application/json"})
    assert response.status_code == 400


def test_a_record_entered_in_error_is_voided_with_a_reason_not_deleted(site, api_post) -> None:
    created = api_post("inv01", f"/api{S}/labs", {"usubjid": "01-002", "test": "NEUT",
                                                  "value": 2.2, "lln": 1.8, "date": "2024-01-22"})
    assert created.status_code == 201, created.text
    seq = created.json()["record"]["LBSEQ"]
    before = site.counts()
    body = {"usubjid": "01-002", "domain": "LB", "seq": seq, "version": 1}
    refused = api_post("inv01", f"/api{S}/voids", {**body, "reason": " "})
    assert refused.status_code == 422 and "reason" in refused.json()["errors"]
    client = site.login("inv01")
    url = f"{S}/subjects/01-002/records/LB/{seq}/void"
    page = client.get(url)
    assert page.status_code == 200 and form_value(page.text, "version") == "1"
    done = client.post(url, data={"csrf_token": form_token(page.text), "version": "1",
                                  "reason": "entered for the wrong patient"},
                       follow_redirects=False)
    assert done.status_code == 303
    assert site.counts() == before  # kept, not deleted
    assert [r for r in _lb(site, "01-002") if r["LBSEQ"] == seq] == []  # out of analysis
    shown = client.get(f"{S}/subjects/01-002").text
    assert "entered in error: entered for the wrong patient" in shown
    again = api_post("inv01", f"/api{S}/voids", {**body, "version": 2, "reason": "x"})
    assert again.status_code == 422 and "already voided" in again.json()["errors"]["_form"]
    stale = api_post("inv01", f"/api{S}/voids", {**body, "reason": "x"})
    assert stale.status_code == 409 and stale.json()["current"]["version"] == 2
    trail = audit_trail(site.store, STUDY, record_key=f"USUBJID=01-002;LBSEQ={seq}")
    assert trail.iloc[-1][["field", "new_value"]].tolist() == ["voided",
                                                              "entered for the wrong patient"]


def test_two_corrections_racing_through_the_api_one_wins_one_gets_409(site, api_post) -> None:
    created = api_post("inv01", f"/api{S}/labs", {"usubjid": "01-001", "test": "NEUT",
                                                  "value": 0.2, "lln": 1.8,
                                                  "date": "2024-01-23"})
    seq = created.json()["record"]["LBSEQ"]
    body = {"usubjid": "01-001", "domain": "LB", "seq": seq, "version": 1, "reason": "typo"}
    first = api_post("inv01", f"/api{S}/corrections", {**body, "changes": {"LBSTRESN": 3.029}})
    second = api_post("inv01", f"/api{S}/corrections", {**body, "changes": {"LBORNRLO": 4.029}})
    assert (first.status_code, second.status_code) == (200, 409)
    current = second.json()["current"]
    assert (current["LBSTRESN"], current["LBTOXGR"], current["version"]) == (3.029, 0, 2)
    stored = [r for r in _lb(site, "01-001") if r["LBSEQ"] == seq][0]
    assert stored["LBTOXGR"] == grade_lab("Neutrophil count decreased", stored["LBSTRESN"],
                                          "10^9/L", lln=stored["LBORNRLO"])


def test_an_api_retry_with_the_same_idempotency_key_writes_nothing(site) -> None:
    client = site.login("inv01")
    before = site.counts()
    headers = {"X-CSRF-Token": site.api_token("inv01"),
               "Idempotency-Key": "retry-0123456789abcdef"}
    body = {"usubjid": "01-002", "test": "NEUT", "value": 0.9, "lln": 1.8,
            "date": "2024-01-24"}
    first = client.post(f"/api{S}/labs", json=body, headers=headers)
    second = client.post(f"/api{S}/labs", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["replayed"] is True
    assert second.json()["record"] == first.json()["record"]
    assert site.counts()["LB"] == before["LB"] + 1
    reused = client.post(f"/api{S}/adverse-events", headers=headers, json={
        "usubjid": "01-002", "term": "Fever", "grade": 1, "start": "2024-01-24",
        "serious": "N", "related": "RELATED"})
    assert reused.status_code == 422 and "another submission" in reused.json()["detail"]
    bad = client.post(f"/api{S}/labs", json=body,
                      headers={**headers, "Idempotency-Key": "short"})
    assert bad.status_code == 422 and "idempotency key" in bad.json()["detail"]
