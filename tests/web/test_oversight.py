"""Queries, source-data verification and locks through the pages and the API: life cycles,
dashboards, audit rows, roles, site scope, CSRF and authentication (SQLite and PostgreSQL).

The module's store is shared by its tests: each test works on its own records and leaves no
lock behind."""

from __future__ import annotations

import html
import re

import pandas as pd
import pytest

from celltrial.store import audit_trail, import_csv_dir, read_domain
from celltrial.store.locks import Locked, locks_of
from celltrial.store.queries import close_query, list_queries
from tests.web.conftest import STUDY, form_token

S = f"/studies/{STUDY}"
LAB = {"test": "NEUT", "value": 0.4, "lln": 1.8, "date": "2024-01-12T08:00"}
AE = {"term": "Febrile neutropenia", "grade": 3, "start": "2024-01-13", "serious": "Y",
      "related": "RELATED"}


def _enter(api_post, usubjid: str, kind: str = "labs", body: dict | None = None) -> dict:
    response = api_post("inv01" if usubjid.startswith("01") else "coord02",
                        f"/api{S}/{kind}", {"usubjid": usubjid, **(body or LAB)})
    assert response.status_code == 201, response.text
    return response.json()["record"]


def _form(client, page_path: str, post_path: str | None = None, **fields):
    token = form_token(client.get(page_path).text)
    return client.post(post_path or page_path, data={"csrf_token": token, **fields},
                       follow_redirects=False)


def _query_id(response) -> int:
    assert response.status_code == 303, response.text
    found = re.fullmatch(rf"{S}/queries/(\d+)", response.headers["location"])
    assert found, response.headers["location"]
    return int(found.group(1))


def _steps(site, query_id: int) -> pd.DataFrame:
    trail = audit_trail(site.store, STUDY, table="data_query")
    return trail[trail["record_key"].str.startswith(f"query={query_id};")]


def test_raise_answer_close_on_the_pages_with_dashboard_and_audit(site, api_post) -> None:
    seq = _enter(api_post, "01-001")["LBSEQ"]
    mon, inv = site.login("mon01"), site.login("inv01")
    record = f"{S}/subjects/01-001/records/LB/{seq}"
    assert "raise query" in mon.get(f"{S}/subjects/01-001").text
    qid = _query_id(_form(mon, f"{record}/query", field="LBSTRESN",
                          text="Source: ANC 0.45 on the lab print-out?"))
    # the site sees it on its dashboard (study page) and on the subject page
    question = html.escape("Source: ANC 0.45 on the lab print-out?", quote=False)
    for page in (inv.get(S).text, inv.get(f"{S}/subjects/01-001").text):
        assert question in page and f"/queries/{qid}" in page
    assert "open (awaiting the site)" in inv.get(f"{S}/queries/{qid}").text
    answered = _form(inv, f"{S}/queries/{qid}", f"{S}/queries/{qid}/answer",
                     text="0.4 is right: the print-out rounds up")
    assert answered.status_code == 303
    assert "answered (awaiting the monitor)" in mon.get(f"{S}/queries/{qid}").text
    assert _form(mon, f"{S}/queries/{qid}", f"{S}/queries/{qid}/close",
                 text="agreed").status_code == 303
    page = mon.get(f"{S}/queries/{qid}").text
    assert "Query #%d: closed" % qid in page and "Re-open" in page
    assert f"/queries/{qid}" not in inv.get(S).text  # off the dashboard once closed
    steps = _steps(site, qid)
    assert steps["user"].tolist() == ["mon01", "inv01", "mon01"]
    assert steps["action"].tolist() == ["insert", "update", "update"]
    assert steps["new_value"].tolist()[1:] == ["answered", "closed"]
    assert set(steps["source"]) == {"web"}
    assert steps["record_key"].iloc[0] == f"query={qid};USUBJID=01-001"


def test_raise_correct_close_the_correction_answers_the_query(site, api_post) -> None:
    seq = _enter(api_post, "01-002", "adverse-events", AE)["AESEQ"]
    mon, inv = site.login("mon01"), site.login("inv01")
    record = f"{S}/subjects/01-002/records/AE/{seq}"
    qid = _query_id(_form(mon, f"{record}/query", field="AETOXGR", text="Grade 3 or 4?"))
    assert f"{record}/correct?query={qid}" in inv.get(f"{S}/queries/{qid}").text
    page = inv.get(f"{record}/correct?query={qid}").text
    assert f'name="query" value="{qid}"' in page
    response = inv.post(f"{record}/correct", data={
        "csrf_token": form_token(page), "version": "1", "query": str(qid), "AETOXGR": "4",
        "reason": "source: ICU admission"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == f"{S}/queries/{qid}"
    ae = read_domain(site.store, STUDY, "AE")
    assert ae[(ae["USUBJID"] == "01-002") & (ae["AESEQ"] == seq)]["AETOXGR"].tolist() == [4]
    assert "Record corrected: source: ICU admission" in mon.get(f"{S}/queries/{qid}").text
    assert _form(mon, f"{S}/queries/{qid}", f"{S}/queries/{qid}/close").status_code == 303
    steps = _steps(site, qid)
    assert steps["new_value"].tolist() == [steps["new_value"].iloc[0], "answered", "closed"]
    change = audit_trail(site.store, STUDY, table="ae",
                         record_key=f"USUBJID=01-002;AESEQ={seq}")
    assert change["action"].tolist() == ["insert", "update"]
    assert change["reason"].iloc[1] == "source: ICU admission"
    # a query id of another record cannot ride on this correction
    other = _enter(api_post, "01-002", "adverse-events", AE)["AESEQ"]
    assert inv.get(f"{S}/subjects/01-002/records/AE/{other}/correct?query={qid}"
                   ).status_code == 404


def test_query_life_cycle_through_the_api_with_a_correction(site, api_post) -> None:
    seq = _enter(api_post, "01-001")["LBSEQ"]
    raised = api_post("mon01", f"/api{S}/queries", {"usubjid": "01-001", "domain": "LB",
                                                    "seq": seq, "field": "LBSTRESN",
                                                    "text": "0.4 or 0.04?"})
    assert raised.status_code == 201 and raised.json()["status"] == "open"
    qid = raised.json()["id"]
    listed = site.login("inv01").get(f"/api{S}/queries?status=open").json()
    assert qid in [q["id"] for q in listed]
    stale = api_post("inv01", f"/api{S}/queries/{qid}/answer", {"text": "x", "correction": {
        "changes": {"LBSTRESN": 0.04}, "version": 7, "reason": "typo"}})
    assert stale.status_code == 409 and stale.json()["current"]["version"] == 1
    answered = api_post("inv01", f"/api{S}/queries/{qid}/answer", {"correction": {
        "changes": {"LBSTRESN": 0.04}, "version": 1, "reason": "typo in the decimal"}})
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "answered"
    assert answered.json()["corrected"]["LBSTRESN"] == 0.04
    assert answered.json()["corrected"]["version"] == 2
    again = api_post("inv01", f"/api{S}/queries/{qid}/answer", {"text": "again"})
    assert again.status_code == 422 and "query that is answered" in again.json()["detail"]
    assert api_post("mon01", f"/api{S}/queries/{qid}/reopen", {}).status_code == 422
    assert api_post("mon01", f"/api{S}/queries/{qid}/reopen",
                    {"text": "the grade too?"}).json()["status"] == "open"
    assert api_post("mon01", f"/api{S}/queries/{qid}/close",
                    {"text": "grade follows"}).json()["status"] == "closed"
    assert _steps(site, qid)["new_value"].tolist()[1:] == ["answered", "open", "closed"]


def test_site_scope_a_monitor_of_site_01_cannot_query_site_02(site, api_post) -> None:
    seq = _enter(api_post, "02-001")["LBSEQ"]
    before = len(audit_trail(site.store))
    mon = site.login("mon01")
    record = f"{S}/subjects/02-001/records/LB/{seq}"
    assert mon.get(f"{record}/query").status_code == 404
    token = form_token(mon.get(S).text)
    assert mon.post(f"{record}/query", data={"csrf_token": token, "text": "?"},
                    follow_redirects=False).status_code == 404
    assert api_post("mon01", f"/api{S}/queries", {"usubjid": "02-001", "domain": "LB",
                                                  "seq": seq, "text": "?"}).status_code == 404
    assert api_post("mon01", f"/api{S}/sdv", {"usubjid": "02-001", "domain": "LB",
                                              "seq": seq, "verified": True}).status_code == 404
    assert len(audit_trail(site.store)) == before
    # a query on site 02 is invisible to site 01 (404, not listed) and answered by site 02
    qid = api_post("monall", f"/api{S}/queries", {"usubjid": "02-001", "domain": "LB",
                                                  "seq": seq, "text": "?"}).json()["id"]
    inv = site.login("inv01")
    assert inv.get(f"{S}/queries/{qid}").status_code == 404
    assert qid not in [q["id"] for q in inv.get(f"/api{S}/queries").json()]
    assert api_post("inv01", f"/api{S}/queries/{qid}/answer", {"text": "x"}).status_code == 404
    assert api_post("coord02", f"/api{S}/queries/{qid}/answer",
                    {"text": "checked"}).status_code == 200
    close_query(site.store, STUDY, qid, user="monall")


@pytest.mark.parametrize(("username", "path", "fields"), [
    ("inv01", "records/LB/1/query", {"text": "?"}),
    ("stat", "records/LB/1/query", {"text": "?"}),
    ("inv01", "records/LB/1/sdv", {"verified": "1"}),
    ("dm", "records/LB/1/sdv", {"verified": "1"}),
    ("mon01", "records/LB/1/lock", {"locked": "1"}),
    ("inv01", "lock", {"locked": "1"}),
])
def test_roles_the_store_does_not_allow_get_403(site, api_post, username, path,
                                                fields) -> None:
    _enter(api_post, "01-001")
    before = len(audit_trail(site.store))
    client = site.login(username)
    token = form_token(client.get(S).text)
    response = client.post(f"{S}/subjects/01-001/{path}", data={"csrf_token": token,
                                                                **fields},
                           follow_redirects=False)
    assert response.status_code == 403
    assert len(audit_trail(site.store)) == before


def test_sdv_set_and_clear_by_a_monitor_audited(site, api_post) -> None:
    seq = _enter(api_post, "01-002")["LBSEQ"]
    mon = site.login("mon01")
    sdv = f"{S}/subjects/01-002/records/LB/{seq}/sdv"
    assert _form(mon, f"{S}/subjects/01-002", sdv, verified="1").status_code == 303
    assert re.search(r"verified by mon01, \d{4}-\d\d-\d\d \d\d:\d\d UTC",
                     mon.get(f"{S}/subjects/01-002").text)
    refused = _form(mon, f"{S}/subjects/01-002", sdv, verified="0", reason="")
    assert refused.status_code == 422 and "Invalid `reason`" in refused.text
    assert _form(mon, f"{S}/subjects/01-002", sdv, verified="0",
                 reason="wrong visit's source").status_code == 303
    trail = audit_trail(site.store, STUDY, table="record_status",
                        record_key=f"USUBJID=01-002;LBSEQ={seq}")
    assert trail["user"].tolist() == ["mon01", "mon01"]
    assert trail["new_value"].tolist() == ["verified version 1", None]
    assert trail["reason"].tolist() == ["source-data verification", "wrong visit's source"]
    assert api_post("inv01", f"/api{S}/sdv", {"usubjid": "01-002", "domain": "LB",
                                              "seq": seq, "verified": True}).status_code == 403


def test_a_locked_record_refuses_a_correction_and_a_void(site, api_post) -> None:
    seq = _enter(api_post, "01-001")["LBSEQ"]
    dm, inv = site.login("dm"), site.login("inv01")
    record = f"{S}/subjects/01-001/records/LB/{seq}"
    assert _form(dm, f"{S}/subjects/01-001", f"{record}/lock", locked="1").status_code == 303
    subject_page = inv.get(f"{S}/subjects/01-001").text
    assert "locked by dm" in subject_page and "locked: no correction" in subject_page
    page = inv.get(f"{record}/correct").text
    response = inv.post(f"{record}/correct", data={"csrf_token": form_token(page),
                                                   "version": "1", "LBSTRESN": "0.5",
                                                   "reason": "x"})
    assert response.status_code == 423
    assert f"Record LB USUBJID=01-001;LBSEQ={seq} is locked (by dm" in html.unescape(
        response.text)
    void = inv.post(f"{record}/void", data={"csrf_token": form_token(page), "version": "1",
                                            "reason": "x"})
    assert void.status_code == 423
    api = api_post("inv01", f"/api{S}/corrections", {
        "usubjid": "01-001", "domain": "LB", "seq": seq, "version": 1,
        "changes": {"LBSTRESN": 0.5}, "reason": "x"})
    assert api.status_code == 423 and "is locked" in api.json()["detail"]
    assert api_post("inv01", f"/api{S}/voids", {"usubjid": "01-001", "domain": "LB",
                                                "seq": seq, "version": 1,
                                                "reason": "x"}).status_code == 423
    lb = read_domain(site.store, STUDY, "LB")
    assert lb[(lb["USUBJID"] == "01-001") & (lb["LBSEQ"] == seq)]["LBSTRESN"].tolist() == [0.4]
    refused = _form(dm, f"{S}/subjects/01-001", f"{record}/lock", locked="0", reason=" ")
    assert refused.status_code == 422 and "Invalid `reason`" in refused.text
    assert _form(dm, f"{S}/subjects/01-001", f"{record}/lock", locked="0",
                 reason="sponsor query").status_code == 303
    assert api_post("inv01", f"/api{S}/corrections", {
        "usubjid": "01-001", "domain": "LB", "seq": seq, "version": 1,
        "changes": {"LBSTRESN": 0.5}, "reason": "x"}).status_code == 200
    trail = audit_trail(site.store, STUDY, table="record_status",
                        record_key=f"USUBJID=01-001;LBSEQ={seq}")
    assert trail["reason"].tolist() == ["record locked", "sponsor query"]
    assert trail["user"].tolist() == ["dm", "dm"]


def test_a_locked_subject_refuses_a_new_record(site, api_post) -> None:
    assert api_post("dm", f"/api{S}/locks", {"level": "subject", "usubjid": "02-001",
                                             "locked": True, "reason": "casebook complete"}
                    ).json() == {"changed": True}
    try:
        before = site.counts()
        coord = site.login("coord02")
        api = api_post("coord02", f"/api{S}/labs", {"usubjid": "02-001", **LAB})
        assert api.status_code == 423
        assert "Subject 02-001 is locked" in api.json()["detail"]
        page = coord.get(f"{S}/subjects/02-001/labs/new").text
        form = {"csrf_token": form_token(page), "submission": re.search(
            r'name="submission" value="([^"]+)"', page).group(1), "test": "NEUT",
            "value": "0.4", "date": "2024-01-12"}
        assert coord.post(f"{S}/subjects/02-001/labs/new", data=form).status_code == 423
        assert "This subject is locked" in coord.get(f"{S}/subjects/02-001").text
        assert "02-001" in coord.get(f"{S}/lock").text  # the locked subjects of one's sites
        assert "02-001" not in site.login("inv01").get(f"{S}/lock").text
        assert site.counts() == before
        assert api_post("dm", f"/api{S}/locks", {"level": "subject", "usubjid": "02-001",
                                                 "locked": False}).status_code == 422
    finally:
        assert api_post("dm", f"/api{S}/locks", {
            "level": "subject", "usubjid": "02-001", "locked": False,
            "reason": "late lab result"}).status_code == 200
    assert api_post("coord02", f"/api{S}/labs",
                    {"usubjid": "02-001", **LAB}).status_code == 201


def test_a_study_lock_refuses_web_api_and_import_writes(site, api_post, tmp_path) -> None:
    seq = _enter(api_post, "01-001")["LBSEQ"]
    for q in list_queries(site.store, STUDY, statuses=("open", "answered")):
        close_query(site.store, STUDY, q.id, user="monall", note="before the lock")
    dm, inv = site.login("dm"), site.login("inv01")
    assert "Lock the database" in dm.get(f"{S}/lock").text
    assert _form(dm, f"{S}/lock", locked="1", reason="final analysis").status_code == 303
    try:
        before, trail = site.counts(), len(audit_trail(site.store))
        assert "Locked by dm" in inv.get(f"{S}/lock").text
        api = api_post("inv01", f"/api{S}/labs", {"usubjid": "01-001", **LAB})
        assert api.status_code == 423
        assert f"Study {STUDY} (database lock) is locked" in api.json()["detail"]
        page = inv.get(f"{S}/subjects/01-001/labs/new").text
        form = {"csrf_token": form_token(page), "submission": re.search(
            r'name="submission" value="([^"]+)"', page).group(1), "test": "NEUT",
            "value": "0.4", "date": "2024-01-12"}
        assert inv.post(f"{S}/subjects/01-001/labs/new", data=form).status_code == 423
        assert api_post("inv01", f"/api{S}/corrections", {
            "usubjid": "01-001", "domain": "LB", "seq": seq, "version": 1,
            "changes": {"LBSTRESN": 0.5}, "reason": "x"}).status_code == 423
        assert api_post("mon01", f"/api{S}/queries", {"usubjid": "01-001", "domain": "LB",
                                                      "seq": seq, "text": "?"}
                        ).status_code == 423
        pd.DataFrame([{"USUBJID": "01-001", "LBTESTCD": "NEUT", "LBSTRESN": 2.0,
                       "LBSTRESU": "10^9/L", "LBDTC": "2024-03-01"}]).to_csv(
            tmp_path / "LB.csv", index=False)
        with pytest.raises(Locked, match="read-only"):
            import_csv_dir(site.store, STUDY, tmp_path, user="dm.import")
        assert site.counts() == before and len(audit_trail(site.store)) == trail
        refused = _form(dm, f"{S}/lock", locked="0", reason="")
        assert refused.status_code == 422 and "Invalid `reason`" in refused.text
        assert locks_of(site.store, STUDY)["study"] is not None
    finally:
        assert _form(dm, f"{S}/lock", locked="0",
                     reason="late SAE follow-up").status_code == 303
    rows = audit_trail(site.store, STUDY, table="study_lock")
    assert rows["action"].tolist()[-2:] == ["insert", "delete"]
    assert rows["reason"].tolist()[-2:] == ["final analysis", "late SAE follow-up"]
    assert rows["user"].tolist()[-2:] == ["dm", "dm"]
    assert api_post("inv01", f"/api{S}/labs", {"usubjid": "01-001", **LAB}).status_code == 201


SUBJ = f"{S}/subjects/01-001"
PAGE_ROUTES = [("get", f"{S}/queries"), ("get", f"{S}/queries/1"),
               ("post", f"{S}/queries/1/answer"), ("get", f"{SUBJ}/records/LB/1/query"),
               ("post", f"{SUBJ}/records/LB/1/query"), ("post", f"{SUBJ}/records/LB/1/sdv"),
               ("post", f"{SUBJ}/records/LB/1/lock"), ("post", f"{SUBJ}/lock"),
               ("get", f"{S}/lock"), ("post", f"{S}/lock")]
API_ROUTES = [("get", f"/api{S}/queries"), ("post", f"/api{S}/queries"),
              ("post", f"/api{S}/queries/1/close"), ("post", f"/api{S}/sdv"),
              ("post", f"/api{S}/locks"), ("get", f"/api{S}/locks")]


@pytest.mark.parametrize(("method", "path"), PAGE_ROUTES)
def test_pages_need_a_session(site, method, path) -> None:
    response = getattr(site.client(), method)(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(("method", "path"), API_ROUTES)
def test_api_needs_a_session(site, method, path) -> None:
    kwargs = {"json": {}} if method == "post" else {}
    assert getattr(site.client(), method)(path, **kwargs).status_code == 401


@pytest.mark.parametrize(("username", "path", "fields"), [
    ("mon01", f"{SUBJ}/records/LB/1/query", {"text": "?"}),
    ("mon01", f"{SUBJ}/records/LB/1/sdv", {"verified": "1"}),
    ("dm", f"{S}/lock", {"locked": "1"}),
])
def test_forms_without_the_csrf_token_are_refused(site, username, path, fields) -> None:
    before = len(audit_trail(site.store))
    response = site.login(username).post(path, data=fields, follow_redirects=False)
    assert response.status_code == 403
    assert len(audit_trail(site.store)) == before


def test_api_writes_without_the_csrf_header_are_refused(site) -> None:
    client = site.login("mon01")
    response = client.post(f"/api{S}/queries", json={"usubjid": "01-001", "domain": "LB",
                                                     "seq": 1, "text": "?"})
    assert response.status_code == 403
