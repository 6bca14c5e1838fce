"""Signing one record from its page (issue 15 part 4; 21 CFR 11.50, 11.70, 11.200): the
subject page links each record to ``.../records/{domain}/{seq}/sign``, where a role that signs
records (investigator, coordinator) re-enters user name and password and picks the meaning;
the page lists the record's signatures with the signer's printed name, meaning, date and time
and whether each still matches the record's content hash. A correction breaks them; a wrong
password, a role that does not sign, a missing CSRF token sign nothing and write nothing
(SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import re

from celltrial.store import audit_trail
from celltrial.store.signatures import set_full_name, signatures
from tests.web.conftest import PASSWORD, STUDY, form_token

S = f"/studies/{STUDY}"


def _rows(html: str) -> list[tuple[str, str]]:
    """(status class, the row's text) of each signature row of a record's signing page."""
    rows = re.findall(r'<tr class="signature (valid|broken)"[^>]*>(.*?)</tr>', html, re.S)
    return [(status, re.sub(r"<[^>]+>", " ", text)) for status, text in rows]


def _audited(site) -> int:
    return len(audit_trail(site.store, STUDY))


def test_sign_a_record_see_it_and_see_it_break_when_the_record_changes(site, api_post):
    set_full_name(site.store, "inv01", "Ana Ruiz", by="setup")
    created = api_post("inv01", f"/api{S}/labs", {"usubjid": "01-002", "test": "NEUT",
                                                  "value": 0.4, "date": "2024-01-20"})
    assert created.status_code == 201, created.text
    seq = created.json()["record"]["LBSEQ"]
    url = f"{S}/subjects/01-002/records/LB/{seq}/sign"
    inv = site.login("inv01")
    assert f'href="{url}" class="sign-record">sign</a>' in inv.get(f"{S}/subjects/01-002").text

    page = inv.get(url)
    assert page.status_code == 200
    assert 'id="sign-form"' in page.text and "Not signed." in page.text
    assert re.findall(r'name="meaning" value="(\w+)"', page.text) == [
        "authored", "reviewed", "approved"]

    # a wrong password: refused next to the password field, nothing signed, nothing audited
    before = _audited(site)
    wrong = inv.post(url, data={"csrf_token": form_token(page.text), "meaning": "reviewed",
                                "username": "inv01", "password": "not the password"},
                     follow_redirects=False)
    assert wrong.status_code == 422
    assert 'id="error-password">Wrong user name or password' in wrong.text
    assert signatures(site.store, STUDY) == [] and _audited(site) == before

    # signed as reviewed: shown with name, meaning, date and time, matching the record
    done = inv.post(url, data={"csrf_token": form_token(page.text), "meaning": "reviewed",
                               "username": "inv01", "password": PASSWORD},
                    follow_redirects=False)
    assert (done.status_code, done.headers["location"]) == (303, url + "#signatures")
    rows = _rows(inv.get(url).text)
    assert len(rows) == 1 and rows[0][0] == "valid"
    text = rows[0][1]
    assert "Ana Ruiz (inv01, investigator)" in text and "reviewed" in text
    assert dt.datetime.now(dt.UTC).strftime("%Y-%m-%d") in text
    assert "valid: matches the record" in text
    signed = audit_trail(site.store, STUDY, table="signature")
    assert signed["user"].tolist() == ["inv01"] and signed["source"].tolist() == ["web"]
    assert "electronic signature, reviewed" in signed["reason"].iloc[0]
    assert ">signed</a>" in inv.get(f"{S}/subjects/01-002").text

    # the record is corrected: the signature no longer matches its content hash
    corrected = api_post("inv01", f"/api{S}/corrections", {
        "usubjid": "01-002", "domain": "LB", "seq": seq, "version": 1,
        "changes": {"LBSTRESN": 0.8}, "reason": "transcription error"})
    assert corrected.status_code == 200, corrected.text
    monitor = site.login("mon01").get(url)
    assert [status for status, _ in _rows(monitor.text)] == ["broken"]
    assert "broken: the record changed after signing" in monitor.text
    assert 'id="sign-form"' not in monitor.text  # a monitor reads, does not sign
    assert "signed: broken</a>" in site.login("mon01").get(f"{S}/subjects/01-002").text


def test_who_may_sign_a_record_and_the_csrf_token(site):
    inv = site.login("inv01")
    url = f"{S}/subjects/01-001/records/DM/0/sign"
    token = form_token(inv.get(url).text)
    before = (len(signatures(site.store, STUDY)), _audited(site))
    # no CSRF token, and a monitor posting: nothing signed
    assert inv.post(url, data={"meaning": "approved", "username": "inv01",
                               "password": PASSWORD}).status_code == 403
    mon = site.login("mon01")
    assert mon.post(url, data={"csrf_token": form_token(mon.get(url).text),
                               "meaning": "approved", "username": "mon01",
                               "password": PASSWORD}).status_code == 403
    # another site's subject, an unknown domain or record: not found
    assert site.login("coord02").get(url).status_code == 404
    assert inv.get(f"{S}/subjects/01-001/records/XX/1/sign").status_code == 404
    assert inv.get(f"{S}/subjects/01-001/records/LB/999/sign").status_code == 404
    # a meaning a record does not take: refused next to the meaning
    page = inv.post(url, data={"csrf_token": token, "meaning": "certified",
                               "username": "inv01", "password": PASSWORD})
    assert page.status_code == 422 and 'id="error-meaning">Invalid `meaning`' in page.text
    assert (len(signatures(site.store, STUDY)), _audited(site)) == before
