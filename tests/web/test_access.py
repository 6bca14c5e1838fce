"""Roles and site scope: what each user sees and may write."""

from __future__ import annotations

import pytest

from celltrial.store import audit_trail
from celltrial.web.access import RULES
from tests.web.conftest import SITE01, SITE02, STUDY, USERS, form_token

S = f"/studies/{STUDY}"
LAB = {"test": "NEUT", "value": 0.4, "date": "2024-01-12"}


def test_every_role_of_the_store_has_a_rule() -> None:
    from celltrial.store.schema import ROLES

    assert set(RULES) == set(ROLES)


@pytest.mark.parametrize(("username", "visible"), [
    ("admin", {*SITE01, *SITE02}), ("inv01", set(SITE01)), ("coord02", set(SITE02)),
    ("mon01", set(SITE01)), ("monall", {*SITE01, *SITE02}), ("stat", {*SITE01, *SITE02}),
])
def test_subject_lists_are_limited_to_the_users_sites(site, username, visible) -> None:
    client = site.login(username)
    listed = {s["USUBJID"] for s in client.get(f"/api{S}/subjects").json()}
    assert listed == visible
    page = client.get(S).text
    for subject in (*SITE01, *SITE02):
        assert (f"/subjects/{subject}\"" in page) == (subject in visible)


def test_study_page_shows_dose_level_and_status(site) -> None:
    subjects = {s["USUBJID"]: s for s in site.login("inv01").get(f"/api{S}/subjects").json()}
    assert subjects["01-001"]["DOSE_LEVEL"] == "DL1"
    assert subjects["01-001"]["STATUS"] == "INFUSED"
    assert subjects["01-002"]["STATUS"] == "ENROLLED"


@pytest.mark.parametrize("username", ["inv01", "mon01"])
def test_a_subject_of_another_site_is_404_like_a_missing_one(site, username) -> None:
    client = site.login(username)
    other = client.get(f"/api{S}/subjects/02-001")
    missing = client.get(f"/api{S}/subjects/99-999")
    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()
    assert client.get(f"{S}/subjects/02-001").status_code == 404
    assert client.get(f"/api{S}/subjects/01-001").status_code == 200


def test_unknown_study_is_404(site) -> None:
    client = site.login("admin")
    assert client.get("/api/studies/nope/subjects").status_code == 404
    assert client.get("/studies/nope").status_code == 404


def test_site_01_user_cannot_write_a_site_02_subject(site, api_post) -> None:
    before = site.counts()
    response = api_post("inv01", f"/api{S}/labs", {"usubjid": "02-001", **LAB})
    assert response.status_code == 404
    client = site.login("inv01")
    assert client.get(f"{S}/subjects/02-001/labs/new").status_code == 404
    token = form_token(client.get(f"{S}/subjects/01-001/labs/new").text)
    page = client.post(f"{S}/subjects/02-001/labs/new",
                       data={"csrf_token": token, **{k: str(v) for k, v in LAB.items()}})
    assert page.status_code == 404
    correction = api_post("inv01", f"/api{S}/corrections", {
        "usubjid": "02-001", "domain": "LB", "seq": 1, "version": 1, "changes": {"LBSTRESN": 1.0},
        "reason": "try"})
    assert correction.status_code == 404
    assert site.counts() == before


@pytest.mark.parametrize("username", ["mon01", "monall", "stat"])
def test_read_only_roles_cannot_write(site, api_post, username) -> None:
    before = site.counts()
    subject = "01-001"
    for path, body in ((f"/api{S}/labs", LAB),
                       (f"/api{S}/observations", {"date": "2024-01-12", "temperature_c": 39}),
                       (f"/api{S}/adverse-events", {"term": "Fever", "grade": 1,
                                                    "start": "2024-01-12", "serious": "N",
                                                    "related": "RELATED"}),
                       (f"/api{S}/corrections", {"domain": "LB", "seq": 1, "reason": "x",
                                                 "changes": {"LBSTRESN": 1.0}})):
        response = api_post(username, path, {"usubjid": subject, **body})
        assert response.status_code == 403, path
    client = site.login(username)
    assert client.get(f"{S}/subjects/{subject}/labs/new").status_code == 403
    token = form_token(client.get("/studies").text)
    page = client.post(f"{S}/subjects/{subject}/labs/new",
                       data={"csrf_token": token, **{k: str(v) for k, v in LAB.items()}})
    assert page.status_code == 403
    assert "Enter a lab value" not in client.get(f"{S}/subjects/{subject}").text
    assert site.counts() == before


def test_statistician_sees_no_identifier_beyond_usubjid_and_no_audit(site) -> None:
    client = site.login("stat")
    listed = client.get(f"/api{S}/subjects").json()
    assert listed and all("SUBJID" not in s for s in listed)
    dm = client.get(f"/api{S}/subjects/01-001").json()["domains"]["DM"][0]
    assert "SUBJID" not in dm and dm["USUBJID"] == "01-001"
    assert client.get(f"/api{S}/audit").status_code == 403
    assert client.get(f"{S}/audit").status_code == 403
    assert "SUBJID" in site.login("inv01").get(f"/api{S}/subjects/01-001").json()[
        "domains"]["DM"][0]


def test_audit_trail_is_limited_to_the_users_sites(site, api_post) -> None:
    assert api_post("coord02", f"/api{S}/labs", {"usubjid": "02-001", **LAB}).status_code == 201
    assert api_post("inv01", f"/api{S}/labs", {"usubjid": "01-002", **LAB}).status_code == 201
    mine = site.login("inv01").get(f"/api{S}/audit").json()
    keys = {r["record_key"] for r in mine}
    assert any(k.startswith("USUBJID=01-002;LBSEQ=") for k in keys)
    assert not any("02-001" in k for k in keys)
    everything = site.login("admin").get(f"/api{S}/audit").json()
    assert len(everything) == len(audit_trail(site.store, STUDY))
    assert any("02-001" in r["record_key"] for r in everything)


def test_users_table_roles_are_known() -> None:
    assert {role for role, _ in USERS.values()} == set(RULES)
