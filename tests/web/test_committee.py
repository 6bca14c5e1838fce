"""The dose-escalation committee's page: the cohort's DLT adjudications and the design's
recommendation, a decision recorded and signed by two investigators, and the enrolment page
that then allows only the level it opened (issue 15 part 5, Done-when: "the committee page's
decision gates enrolment"); the same as JSON (SQLite and PostgreSQL).

The study is the library protocol ``cd7-tall-dlt`` (3+3, cohorts of 3, DL1-DL4): cohort 1
(01-001..003) was infused at DL1 and followed past the 28-day window without a DLT, so the
design recommends escalating to DL2; 01-004..007 are screened and wait.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pandas as pd
import pytest

from celltrial.store import (add_user, audit_trail, count_records, init_db, open_store,
                            read_domain, register_study, write_domains)
from celltrial.store.signatures import set_full_name
from celltrial.web import create_app
from tests.web.conftest import PASSWORD, Site, form_token

STUDY = "cd7-tall-dlt"
S = f"/studies/{STUDY}"
COHORT1 = ("01-001", "01-002", "01-003")
SCREENED = ("01-004", "01-005", "01-006", "01-007")
USERS = {  # username: (role, site, printed name)
    "inv01": ("investigator", "01", "Ana Ruiz"),
    "inv01b": ("investigator", "01", "Dev Patel"),
    "coord01": ("coordinator", "01", "Ben Okafor"),
    "mon01": ("monitor", "01", None),
}


def _frames() -> dict[str, pd.DataFrame]:
    subjects = [*COHORT1, *SCREENED]
    waiting = [None] * len(SCREENED)
    dm = pd.DataFrame({
        "USUBJID": subjects, "SUBJID": [s[-3:] for s in subjects], "SITEID": "01",
        "AGE": 40, "SEX": "F", "ARMCD": ["DL1"] * 3 + waiting,
        "ARM": ["0.5x10^6/kg"] * 3 + waiting, "RFICDTC": "2024-01-02",
        "RFSTDTC": ["2024-01-10", "2024-01-11", "2024-01-12", *waiting],
        "RFPENDTC": ["2024-03-01"] * 3 + waiting})
    ex = pd.DataFrame({"USUBJID": list(COHORT1), "EXSEQ": 1, "EXTRT": "CD7 CAR-T",
                       "EXDOSE": 5e5, "EXDOSU": "cells/kg",
                       "EXSTDTC": ["2024-01-10", "2024-01-11", "2024-01-12"]})
    return {"DM": dm, "EX": ex}


def _seed(url: str) -> Site:
    init_db(url)
    store = open_store(url)
    register_study(store, STUDY, "CD7 CAR-T, DLT-driven 3+3")
    write_domains(store, STUDY, _frames(), user="setup", reason="test subjects")
    for username, (role, site, name) in USERS.items():
        add_user(store, username, role, PASSWORD, site=site)
        if name:
            set_full_name(store, username, name, by="setup")
    return Site(url, store, create_app(url, secret_key="committee-test-" + "x" * 32))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def dec(request, tmp_path_factory) -> Iterator[Site]:
    if request.param == "sqlite":
        seeded = _seed(f"sqlite:///{tmp_path_factory.mktemp('dec') / 'celltrial.db'}")
        yield seeded
        seeded.store.close()
    else:
        from tests.conftest import postgres_schema_url

        with postgres_schema_url() as url:
            seeded = _seed(url)
            yield seeded
            seeded.store.close()


def _post_json(site: Site, username: str, path: str, body: dict):
    client = site.login(username)
    return client.post(path, json=body, headers={"X-CSRF-Token": site.api_token(username)})


def _armcd(site: Site, usubjid: str) -> str | None:
    value = read_domain(site.store, STUDY, "DM").set_index("USUBJID").loc[usubjid, "ARMCD"]
    return None if pd.isna(value) else value


def _form(client, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200, page.text
    return form_token(page.text)


def _status(html: str, decision: int) -> str:
    found = re.search(rf'id="decision-{decision}".*?<span class="status">([^<]*)</span>', html,
                      re.S)
    assert found, f"decision {decision} not on the page"
    return found.group(1)


def test_the_page_shows_the_cohort_its_adjudications_and_the_recommendation(dec):
    page = dec.login("mon01").get(f"{S}/committee")
    assert page.status_code == 200
    html = page.text
    for usubjid in COHORT1:
        assert f'id="patient-{usubjid}"' in html
    assert "followed through the 28-day window" in html
    assert "escalate to the next dose level: DL2" in html
    assert "Record and sign the decision" not in html  # a monitor reads only
    data = dec.login("mon01").get(f"/api{S}/committee").json()
    assert [p["usubjid"] for p in data["review"]["patients"]] == list(COHORT1)
    assert data["review"]["recommendation"]["action"] == "escalate"
    assert data["review"]["recommendation"]["dose_level"] == "DL2"
    assert data["quorum"] == 2


def test_the_committee_pages_decision_gates_enrolment(dec):
    inv, other = dec.login("inv01"), dec.login("inv01b")
    enrol = f"{S}/subjects/01-004/enrol"

    # before the decision: the first cohort is full, nothing is open
    page = inv.get(enrol)
    assert "No dose level is open" in page.text and "<select" not in page.text
    counts, audit = dec.counts(), len(audit_trail(dec.store, STUDY))
    refused = inv.post(enrol, data={"csrf_token": form_token(page.text), "dose_level": "DL2"})
    assert refused.status_code == 422 and "No dose level is open" in refused.text
    assert (dec.counts(), len(audit_trail(dec.store, STUDY))) == (counts, audit)

    # a differing decision without a reason is refused next to the reason field
    token = _form(inv, f"{S}/committee")
    base = {"csrf_token": token, "seen_action": "escalate", "seen_dose": "2",
            "username": "inv01", "password": PASSWORD}
    page = inv.post(f"{S}/committee/decisions",
                    data={**base, "action": "stay", "dose_level": "DL1", "reason": ""})
    assert page.status_code == 422
    assert re.search(r'id="error-reason">Invalid `reason`', page.text)
    # a wrong password is refused next to the password field
    page = inv.post(f"{S}/committee/decisions", data={**base, "action": "escalate",
                                                       "dose_level": "DL2",
                                                       "password": "not the password"})
    assert page.status_code == 422 and 'id="error-password">Wrong user name' in page.text
    assert "No decision recorded yet" in page.text

    # inv01 records the escalation and signs it; not in effect with one signature
    done = inv.post(f"{S}/committee/decisions",
                    data={**base, "action": "escalate", "dose_level": "DL2"},
                    follow_redirects=False)
    assert done.status_code == 303
    decision = int(done.headers["location"].rsplit("-", 1)[1])
    page = other.get(f"{S}/committee").text
    assert _status(page, decision) == "awaiting signatures (1 of 2)"
    assert "Signed by Ana Ruiz (inv01), approved" in page
    assert "No dose level is open" in inv.get(enrol).text

    # the second investigator signs: the decision is in effect and opens DL2 only
    sign = f"{S}/committee/decisions/{decision}/sign"
    wrong = other.post(sign, data={"csrf_token": form_token(page), "username": "inv01b",
                                   "password": "nope"})
    assert wrong.status_code == 422 and f'id="error-sign-{decision}"' in wrong.text
    signed = other.post(sign, data={"csrf_token": form_token(page), "username": "inv01b",
                                    "password": PASSWORD}, follow_redirects=False)
    assert signed.status_code == 303
    page = other.get(f"{S}/committee").text
    assert _status(page, decision) == "in effect"
    assert "Open at <strong>DL2</strong>" in page

    page = inv.get(enrol).text
    assert re.findall(r'<option value="([^"]+)"', page) == ["DL2"]
    counts, audit = dec.counts(), len(audit_trail(dec.store, STUDY))
    for level in ("DL1", "DL3"):
        refused = inv.post(enrol, data={"csrf_token": form_token(page), "dose_level": level})
        assert refused.status_code == 422 and "is not open: only DL2" in refused.text
    assert (dec.counts(), len(audit_trail(dec.store, STUDY))) == (counts, audit)
    assert _armcd(dec, "01-004") is None
    done = inv.post(enrol, data={"csrf_token": form_token(page), "dose_level": "DL2"},
                    follow_redirects=False)
    assert (done.status_code, done.headers["location"]) == (303, f"{S}/subjects/01-004")
    assert _armcd(dec, "01-004") == "DL2"

    # the JSON API: the same rule, one cohort of three at DL2
    answer = _post_json(dec, "coord01", f"/api{S}/enrolments",
                        {"usubjid": "01-005", "dose_level": "DL1"})
    assert answer.status_code == 422 and "only DL2" in answer.json()["detail"]
    for usubjid in ("01-005", "01-006"):
        answer = _post_json(dec, "coord01", f"/api{S}/enrolments",
                            {"usubjid": usubjid, "dose_level": "DL2"})
        assert answer.status_code == 201 and answer.json()["ARMCD"] == "DL2"
    answer = _post_json(dec, "coord01", f"/api{S}/enrolments",
                        {"usubjid": "01-007", "dose_level": "DL2"})
    assert answer.status_code == 422 and "is enrolled" in answer.json()["detail"]
    state = dec.login("mon01").get(f"/api{S}/committee").json()
    assert state["opening"]["places_left"] == 0
    assert state["decisions"][0]["status"] == "in effect"
    assert [s["full_name"] for s in state["decisions"][0]["signatures"]] == ["Ana Ruiz",
                                                                              "Dev Patel"]


@pytest.mark.parametrize(("username", "status"), [("mon01", 403), ("coord01", 403)])
def test_only_investigators_record_decisions(dec, username, status):
    client = dec.login(username)
    token = _form(client, f"{S}/committee")
    before = len(audit_trail(dec.store, STUDY))
    page = client.post(f"{S}/committee/decisions", data={
        "csrf_token": token, "action": "escalate", "dose_level": "DL2",
        "username": username, "password": PASSWORD})
    assert page.status_code == status
    answer = _post_json(dec, username, f"/api{S}/committee/decisions", {
        "action": "escalate", "dose_level": "DL2", "username": username,
        "password": PASSWORD})
    assert answer.status_code == status
    assert len(audit_trail(dec.store, STUDY)) == before


def test_forms_need_the_csrf_token(dec):
    client = dec.login("inv01")
    before = count_records(dec.store, STUDY)
    for url, body in ((f"{S}/committee/decisions", {"action": "escalate",
                                                     "dose_level": "DL2"}),
                      (f"{S}/subjects/01-007/enrol", {"dose_level": "DL2"})):
        assert client.post(url, data={**body, "username": "inv01",
                                      "password": PASSWORD}).status_code == 403
    assert client.post(f"/api{S}/enrolments",
                       json={"usubjid": "01-007", "dose_level": "DL2"}).status_code == 403
    assert count_records(dec.store, STUDY) == before


def test_the_study_page_links_the_committee(dec):
    assert f'href="{S}/committee"' in dec.login("mon01").get(S).text


def test_a_study_without_a_protocol_has_no_committee_page(site):
    client = site.login("inv01")
    assert client.get("/studies/cd7-web-test/committee").status_code == 404
    assert "/committee" not in client.get("/studies/cd7-web-test").text
