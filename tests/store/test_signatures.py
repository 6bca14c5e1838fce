"""Electronic signatures (21 CFR 11.50, 11.70, 11.200): password re-entry, meaning, printed
name, UTC time and the content hash a signature is bound to; a signature is broken once its
record or casebook changes (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from celltrial.store import audit_trail, update_record, verify_audit, void_record, write_record
from celltrial.store.permissions import NotPermitted
from celltrial.store.schema import User
from celltrial.store.signatures import (
    MEANINGS,
    SignatureRefused,
    content_hash,
    export_signatures_csv,
    set_full_name,
    sign,
    signatures,
)
from tests.store.conftest import STUDY
from tests.store.oversight import PASSWORD, add_users

CORRECTION = {"LBORRES": "1600", "LBSTRESN": 1.6}
"""A correction of 101-001's neutrophil count (LBSEQ 1: 1500 /uL stored)."""
NAMES = {"inv101": "Ana Ruiz", "coord102": "Ben Okafor", "mon101": "Chloe Martin"}


@pytest.fixture()
def trial(filled):
    add_users(filled)
    for username, name in NAMES.items():
        set_full_name(filled, username, name, by="admin")
    return filled


def _sign(store, object_type="casebook", meaning="reviewed", *, user="inv101",
          username=None, password=PASSWORD, **where):
    where.setdefault("usubjid", "101-001")
    return sign(store, STUDY, object_type, meaning, user=user,
                username=user if username is None else username, password=password, **where)


def _account(store, username):
    table = User.__table__
    with store.engine.connect() as connection:
        return connection.execute(sa.select(table).where(table.c.username == username)).one()


def _signature_rows(store):
    trail = audit_trail(store, STUDY, table="signature")
    return trail[trail["action"] == "insert"]


def test_a_casebook_signature_holds_meaning_name_time_and_content_hash(trial):
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    s = _sign(trial, "casebook", "approved")
    assert (s.object_type, s.object_key, s.usubjid) == ("casebook", "USUBJID=101-001", "101-001")
    assert (s.meaning, s.username, s.full_name, s.role) == ("approved", "inv101", "Ana Ruiz",
                                                           "investigator")
    assert s.statement == MEANINGS["approved"]
    assert s.signed_at.utcoffset() == dt.timedelta(0)
    assert before <= s.signed_at <= dt.datetime.now(dt.UTC)
    assert len(s.content_hash) == 64 and s.valid
    assert s.line().startswith("Signed by Ana Ruiz (inv101), approved, ")
    rows = _signature_rows(trial)
    assert rows["user"].tolist() == ["inv101"]
    assert rows["record_key"].tolist() == [f"signature={s.id};USUBJID=101-001"]
    assert "I approve these data" in rows["reason"].iloc[0]
    assert verify_audit(trial).intact


@pytest.mark.parametrize(("change", "signed_status", "other_status"), [
    # what happens after signing      the signed casebook  101-002's casebook
    ("correct a lab value",           "broken",            "valid"),
    ("void an adverse event",         "broken",            "valid"),
    ("add a vital sign",              "broken",            "valid"),
    ("nothing",                       "valid",             "valid"),
])
def test_a_casebook_signature_breaks_when_the_casebook_changes(trial, change, signed_status,
                                                                other_status):
    mine = _sign(trial, "casebook", "reviewed", usubjid="101-001")
    other = _sign(trial, "casebook", "reviewed", usubjid="101-002")
    if change == "correct a lab value":
        update_record(trial, "LB", (STUDY, "101-001", 1), CORRECTION, user="inv101",
                      reason="transcription error")
    elif change == "void an adverse event":
        void_record(trial, "AE", (STUDY, "101-001", 1), user="inv101",
                    reason="entered in error")
    elif change == "add a vital sign":
        write_record(trial, STUDY, "VS", {"USUBJID": "101-001", "VSTESTCD": "WEIGHT",
                                          "VSSTRESN": 71.0, "VSSTRESU": "kg",
                                          "VSDTC": "2024-02-01"},
                     user="inv101", reason="visit")
    now = {s.id: s.status for s in signatures(trial, STUDY)}
    assert (now[mine.id], now[other.id]) == (signed_status, other_status)


def test_a_record_signature_breaks_on_correction_and_the_record_can_be_signed_again(trial):
    s = _sign(trial, "record", "authored", usubjid="101-001", domain="LB", seq=1)
    assert s.object_key == "LB USUBJID=101-001;LBSEQ=1" and s.valid
    with pytest.raises(SignatureRefused, match="already signed"):
        _sign(trial, "record", "authored", usubjid="101-001", domain="LB", seq=1)
    update_record(trial, "LB", (STUDY, "101-001", 1), CORRECTION, user="inv101",
                  reason="transcription error")
    update_record(trial, "LB", (STUDY, "101-001", 2), {"LBORRES": "251", "LBSTRESN": 251.0},
                  user="inv101", reason="another record")
    (old,) = signatures(trial, STUDY, object_key=s.object_key)
    assert old.status == "broken"
    again = _sign(trial, "record", "authored", usubjid="101-001", domain="LB", seq=1)
    statuses = [x.status for x in signatures(trial, STUDY, object_key=s.object_key)]
    assert (again.valid, statuses) == (True, ["broken", "valid"])


def test_a_voided_record_is_not_signed(trial):
    void_record(trial, "LB", (STUDY, "101-001", 2), user="inv101", reason="entered in error")
    with pytest.raises(SignatureRefused, match="voided"):
        _sign(trial, "record", "reviewed", usubjid="101-001", domain="LB", seq=2)
    assert signatures(trial, STUDY) == []


def test_a_wrong_password_signs_nothing_and_counts_towards_the_lockout(trial):
    for attempt in (1, 2):
        with pytest.raises(SignatureRefused, match="Wrong user name or password"):
            _sign(trial, password="not the password", lockout_after=3)
        assert _account(trial, "inv101").failed_logins == attempt
    with pytest.raises(SignatureRefused, match="now locked"):
        _sign(trial, password="still not it", lockout_after=3)
    assert _account(trial, "inv101").locked_at is not None
    with pytest.raises(SignatureRefused, match="locked"):  # the right password, too late
        _sign(trial, lockout_after=3)
    assert signatures(trial, STUDY) == []
    trail = audit_trail(trial, None, table="user")
    locked = trail[trail["field"] == "locked_at"]
    assert locked["record_key"].tolist() == ["inv101"]
    assert "when signing" in locked["reason"].iloc[0]


def test_a_right_password_resets_the_failure_count(trial):
    with pytest.raises(SignatureRefused):
        _sign(trial, password="wrong")
    _sign(trial)
    assert _account(trial, "inv101").failed_logins == 0


@pytest.mark.parametrize(("signer", "username", "object_type", "usubjid", "error", "match"), [
    # who       re-enters   signs       subject    refused with       because
    ("inv101",  "coord102", "casebook", "101-001", SignatureRefused, "signed-in user"),
    ("mon101",  "mon101",   "casebook", "101-001", NotPermitted,     "may not sign"),
    ("coord102", "coord102", "casebook", "102-001", NotPermitted,    "may not sign"),
    ("inv101",  "inv101",   "casebook", "102-001", NotPermitted,     "not of site 101"),
    ("dm1",     "dm1",      "record",   "101-001", NotPermitted,     "may not sign"),
])
def test_only_the_signed_in_user_of_a_signing_role_and_site_signs(trial, signer, username,
                                                                  object_type, usubjid, error,
                                                                  match):
    where = {"domain": "LB", "seq": 1} if object_type == "record" else {}
    with pytest.raises(error, match=match):
        _sign(trial, object_type, "reviewed", user=signer, username=username,
              usubjid=usubjid, **where)
    assert signatures(trial, STUDY) == []
    assert _account(trial, signer).failed_logins == 0  # no password was tried


def test_a_coordinator_signs_a_record_of_their_site(trial):
    s = _sign(trial, "record", "authored", user="coord102", usubjid="102-001", domain="VS",
              seq=1)
    assert (s.full_name, s.role, s.valid) == ("Ben Okafor", "coordinator", True)


def test_no_printed_name_no_signature(trial):
    table = User.__table__
    with trial.engine.begin() as connection:
        connection.execute(table.update().where(table.c.username == "coord102").values(
            full_name=None))
    with pytest.raises(SignatureRefused, match="no full name"):
        _sign(trial, "record", "authored", user="coord102", usubjid="102-001", domain="VS",
              seq=1)
    assert signatures(trial, STUDY) == []


@pytest.mark.parametrize(("object_type", "meaning"), [
    ("casebook", "authored"), ("decision", "reviewed"), ("page", "reviewed"),
])
def test_a_meaning_the_object_does_not_take_is_refused(trial, object_type, meaning):
    with pytest.raises(SignatureRefused, match="Invalid `(meaning|object)`"):
        _sign(trial, object_type, meaning)


def test_set_full_name_is_audited_and_checked(trial):
    set_full_name(trial, "inv101", "  Ana   Ruiz Lopez ", by="admin")
    assert _account(trial, "inv101").full_name == "Ana Ruiz Lopez"
    trail = audit_trail(trial, None, table="user")
    names = trail[trail["field"] == "full_name"]
    assert names["new_value"].tolist()[-1] == "Ana Ruiz Lopez"
    with pytest.raises(Exception, match="Invalid `full_name`"):
        set_full_name(trial, "inv101", "   ", by="admin")


def test_content_hash_reads_whole_floats_as_integers_and_ignores_missing_values():
    assert content_hash({"a": 1.0, "b": None}) == content_hash({"a": 1})
    assert content_hash({"a": float("nan"), "b": "x"}) == content_hash({"b": "x"})
    assert content_hash({"a": 1.5}) != content_hash({"a": 1})
    assert content_hash([{"x": 1}]) != content_hash([{"x": 2}])


def test_the_export_lists_each_signature_with_its_status_now(trial, tmp_path):
    _sign(trial, "casebook", "approved")
    update_record(trial, "LB", (STUDY, "101-001", 1), CORRECTION, user="inv101",
                  reason="transcription error")
    _sign(trial, "casebook", "approved")
    frame = pd.read_csv(export_signatures_csv(trial, STUDY, tmp_path))
    assert frame["status"].tolist() == ["broken", "valid"]
    assert frame["full_name"].tolist() == ["Ana Ruiz", "Ana Ruiz"]
    assert frame["statement"].iloc[0] == MEANINGS["approved"]
    assert all(pd.Timestamp(t).tzinfo is not None for t in frame["signed_at"])
