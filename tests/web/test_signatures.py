"""Electronic signatures in the web app (issue 15 part 4, Done-when: "an e-signature breaks
when the signed record changes"): the investigator signs a subject's casebook with the
password re-entered; the subject page and the API show it valid, then broken once a record
of the casebook is corrected; the printed name comes from the administrators' page or
``celltrial web add-user --full-name``; ``celltrial db export --signatures`` writes it
(SQLite and PostgreSQL)."""

from __future__ import annotations

import re

import pandas as pd
from typer.testing import CliRunner

from celltrial.cli.main import app
from celltrial.store import audit_trail, init_db, open_store
from celltrial.store.signatures import full_names, signatures
from tests.web.conftest import PASSWORD, STUDY, form_token

S = f"/studies/{STUDY}"


def _signature_lines(html: str) -> list[str]:
    return re.findall(r'<li class="signature (valid|broken)">([^<]*)', html)


def _set_name(site, username: str, name: str):
    admin = site.login("admin")
    token = form_token(admin.get("/admin/users").text)
    return admin.post("/admin/users/name", data={"csrf_token": token, "username": username,
                                                 "full_name": name}, follow_redirects=False)


def _sign_casebook(client, usubjid: str, password: str = PASSWORD, meaning: str = "approved"):
    url = f"{S}/subjects/{usubjid}/sign"
    page = client.get(url)
    assert page.status_code == 200
    return client.post(url, data={"csrf_token": form_token(page.text), "meaning": meaning,
                                  "username": "inv01", "password": password},
                       follow_redirects=False)


def test_an_e_signature_breaks_when_the_signed_record_changes(site, api_post):
    inv = site.login("inv01")
    # no printed name recorded yet: nothing is signed
    refused = _sign_casebook(inv, "01-002")
    assert refused.status_code == 422 and "no full name" in refused.text
    assert _set_name(site, "inv01", "Ana  Ruiz").status_code == 303
    assert full_names(site.store)["inv01"] == "Ana Ruiz"
    named = audit_trail(site.store, None, table="user")
    assert named[named["field"] == "full_name"]["user"].tolist() == ["admin"]

    created = api_post("inv01", f"/api{S}/labs", {"usubjid": "01-002", "test": "NEUT",
                                                  "value": 0.4, "date": "2024-01-20"})
    assert created.status_code == 201, created.text
    seq = created.json()["record"]["LBSEQ"]

    wrong = _sign_casebook(inv, "01-002", password="not the password")
    assert wrong.status_code == 422
    assert 'id="error-password">Wrong user name or password' in wrong.text
    assert signatures(site.store, STUDY) == []
    assert _sign_casebook(inv, "01-002").status_code == 303
    assert _sign_casebook(inv, "01-001", meaning="reviewed").status_code == 303
    record = api_post("inv01", f"/api{S}/signatures", {
        "object": "record", "usubjid": "01-002", "domain": "LB", "seq": seq,
        "meaning": "authored", "username": "inv01", "password": PASSWORD})
    assert record.status_code == 201, record.text
    assert (record.json()["full_name"], record.json()["status"]) == ("Ana Ruiz", "valid")

    page = inv.get(f"{S}/subjects/01-002").text
    lines = _signature_lines(page)
    assert [status for status, _ in lines] == ["valid", "valid"]
    assert "Signed by Ana Ruiz (inv01), approved" in lines[1][1]

    corrected = api_post("inv01", f"/api{S}/corrections", {
        "usubjid": "01-002", "domain": "LB", "seq": seq, "version": 1,
        "changes": {"LBSTRESN": 0.8}, "reason": "transcription error"})
    assert corrected.status_code == 200, corrected.text

    page = site.login("mon01").get(f"{S}/subjects/01-002").text
    assert [status for status, _ in _signature_lines(page)] == ["broken", "broken"]
    assert "the data changed after signing" in page
    assert 'id="sign-link"' not in page  # a monitor does not sign
    listed = site.login("mon01").get(f"/api{S}/signatures").json()
    assert {(s["usubjid"], s["object_type"], s["status"]) for s in listed} == {
        ("01-002", "casebook", "broken"), ("01-002", "record", "broken"),
        ("01-001", "casebook", "valid")}
    # signing again binds the new content
    assert _sign_casebook(inv, "01-002").status_code == 303
    statuses = [status for status, _ in _signature_lines(inv.get(f"{S}/subjects/01-002").text)]
    assert statuses == ["valid", "broken", "broken"]


def test_who_may_sign_a_casebook(site, api_post):
    # a coordinator does not sign casebooks; another site's subject is not found
    coord = site.login("coord02")
    page = coord.get(f"{S}/subjects/02-001/sign")
    assert page.status_code == 200 and "does not sign casebooks" in page.text
    token = form_token(coord.get(f"{S}/subjects/02-001").text)
    assert coord.post(f"{S}/subjects/02-001/sign", data={
        "csrf_token": token, "meaning": "approved", "username": "coord02",
        "password": PASSWORD}).status_code == 403
    assert coord.get(f"{S}/subjects/01-001/sign").status_code == 404
    answer = api_post("coord02", f"/api{S}/signatures", {
        "object": "casebook", "usubjid": "02-001", "meaning": "approved",
        "username": "coord02", "password": PASSWORD})
    assert answer.status_code == 403
    # no CSRF token, nothing signed
    before = len(signatures(site.store, STUDY))
    assert site.login("inv01").post(f"{S}/subjects/01-001/sign", data={
        "meaning": "approved", "username": "inv01", "password": PASSWORD}).status_code == 403
    assert len(signatures(site.store, STUDY)) == before
    # a subject id no store holds (NUL) is not found, on PostgreSQL too
    assert site.login("mon01").get(f"/api{S}/signatures?usubjid=01-001%00").status_code == 404


def test_add_user_full_name_and_export_of_signatures(sqlite_url, tmp_path):
    init_db(sqlite_url)
    runner = CliRunner()
    result = runner.invoke(app, ["web", "add-user", "inv7", "--role", "investigator",
                                 "--site", "07", "--password-stdin", "--full-name",
                                 "Maria  Lopez", "--db", sqlite_url],
                           input="a long passphrase\n")
    assert result.exit_code == 0, result.output
    assert "full name Maria Lopez" in result.output
    store = open_store(sqlite_url)
    try:
        assert full_names(store)["inv7"] == "Maria Lopez"
        from celltrial.store import register_study

        register_study(store, "s1", "Study one")
    finally:
        store.close()
    out = tmp_path / "export"
    result = runner.invoke(app, ["db", "export", "--study", "s1", "--out", str(out),
                                 "--signatures", "--db", sqlite_url])
    assert result.exit_code == 0, result.output
    assert list(pd.read_csv(out / "signatures.csv").columns)[:4] == [
        "id", "study_id", "object_type", "object_key"]
    assert "signers" in pd.read_csv(out / "committee_decisions.csv").columns
