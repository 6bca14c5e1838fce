"""Queries: raise -> answer -> close, raise -> correct -> close, re-open; roles, site scope,
the audit rows of every step and the export (SQLite and PostgreSQL)."""

from __future__ import annotations

import pandas as pd
import pytest

from celltrial.errors import StoreError
from celltrial.store import audit_trail, update_record, verify_audit
from celltrial.store.engine import write_transaction
from celltrial.store.permissions import NotPermitted
from celltrial.store.queries import (
    TRANSITIONS,
    answer_query,
    close_query,
    export_queries_csv,
    get_query,
    list_queries,
    next_status,
    query_history,
    raise_query,
    reopen_query,
)
from tests.store.conftest import STUDY
from tests.store.oversight import add_users


@pytest.fixture()
def trial(filled):
    return add_users(filled)


def _steps(store, query):
    trail = audit_trail(store, STUDY, table="data_query")
    return trail[trail["record_key"] == f"query={query.id};USUBJID={query.usubjid}"]


def test_next_status_is_the_declared_life_cycle():
    assert next_status("open", "answer") == "answered"
    assert next_status("answered", "close") == "closed"
    assert next_status("closed", "reopen") == "open"
    for status in ("open", "answered", "closed"):
        for action in ("answer", "close", "reopen"):
            if (status, action) not in TRANSITIONS:
                with pytest.raises(StoreError, match=f"query that is {status}"):
                    next_status(status, action)


def test_raise_answer_close_with_an_audit_row_for_each_step(trial):
    q = raise_query(trial, STUDY, "LB", "101-001", 1, "ANC 1500 /uL: source says 1.5?",
                    user="mon101", field="LBORRES")
    assert (q.status, q.field, q.site_id, q.raised_by) == ("open", "LBORRES", "101", "mon101")
    assert q.record == "LB USUBJID=101-001;LBSEQ=1, field LBORRES"
    a = answer_query(trial, STUDY, q.id, "Source checked: 1500 /uL is right", user="inv101")
    assert (a.status, a.answered_by) == ("answered", "inv101")
    c = close_query(trial, STUDY, q.id, user="mon101", note="agreed")
    assert (c.status, c.closed_by, c.note) == ("closed", "mon101", "agreed")
    steps = _steps(trial, q)
    assert steps["action"].tolist() == ["insert", "update", "update"]
    assert steps["user"].tolist() == ["mon101", "inv101", "mon101"]
    assert steps["new_value"].tolist()[1:] == ["answered", "closed"]
    assert steps["old_value"].tolist()[1:] == ["open", "answered"]
    assert steps["reason"].tolist() == ["ANC 1500 /uL: source says 1.5?",
                                        "Source checked: 1500 /uL is right", "agreed"]
    assert len(query_history(trial, STUDY, c)) == 3
    assert verify_audit(trial).intact


def test_raise_correct_close_in_one_transaction(trial):
    q = raise_query(trial, STUDY, "AE", "101-001", 1, "Grade 2 CRS or grade 3?",
                    user="mon101", field="AETOXGR")
    with write_transaction(trial.engine):
        update_record(trial, "AE", (STUDY, "101-001", 1), {"AETOXGR": 3}, user="inv101",
                      reason="query: source says grade 3", version=1)
        answer_query(trial, STUDY, q.id, "Corrected to grade 3", user="inv101")
    close_query(trial, STUDY, q.id, user="mon101")
    trail = audit_trail(trial, STUDY)
    ae = trail[(trail["table"] == "ae") & (trail["action"] == "update")]
    assert ae["new_value"].tolist() == ["3"]
    assert get_query(trial, STUDY, q.id).status == "closed"


def test_a_failed_correction_leaves_the_query_open(trial):
    q = raise_query(trial, STUDY, "AE", "101-001", 1, "Grade?", user="mon101")
    with pytest.raises(StoreError):
        with write_transaction(trial.engine):
            answer_query(trial, STUDY, q.id, "Corrected", user="inv101")
            update_record(trial, "AE", (STUDY, "101-001", 1), {"AETOXGR": 9}, user="inv101",
                          reason="query", version=1)
    assert get_query(trial, STUDY, q.id).status == "open"
    assert len(_steps(trial, q)) == 1


def test_reopen_needs_a_note_and_goes_back_to_open(trial):
    q = raise_query(trial, STUDY, "VS", "102-001", 1, "Weight 48 kg at 16?", user="monall")
    answer_query(trial, STUDY, q.id, "Yes, per source", user="coord102")
    with pytest.raises(StoreError, match="Invalid `note`"):
        reopen_query(trial, STUDY, q.id, " ", user="monall")
    r = reopen_query(trial, STUDY, q.id, "Please attach the scale reading", user="mon102")
    assert (r.status, r.note) == ("open", "Please attach the scale reading")
    with pytest.raises(StoreError, match="query that is open"):
        reopen_query(trial, STUDY, q.id, "again", user="mon102")
    assert [x.id for x in list_queries(trial, STUDY, statuses=("open",))] == [q.id]


@pytest.mark.parametrize(("user", "action"), [
    ("inv101", "raise"), ("dm1", "raise"), ("mon101", "answer"), ("inv101", "close"),
])
def test_only_the_roles_of_the_rule_take_each_step(trial, user, action):
    q = raise_query(trial, STUDY, "LB", "101-001", 2, "IL-6 unit?", user="mon101")
    with pytest.raises(NotPermitted, match="may not"):
        if action == "raise":
            raise_query(trial, STUDY, "LB", "101-001", 2, "x", user=user)
        elif action == "answer":
            answer_query(trial, STUDY, q.id, "x", user=user)
        else:
            close_query(trial, STUDY, q.id, user=user)
    assert len(_steps(trial, q)) == 1


def test_site_scope_a_monitor_of_site_a_cannot_query_site_b(trial):
    before = len(audit_trail(trial))
    with pytest.raises(NotPermitted, match="not of site 101"):
        raise_query(trial, STUDY, "VS", "102-001", 1, "?", user="mon101")
    q = raise_query(trial, STUDY, "VS", "102-001", 1, "?", user="mon102")
    with pytest.raises(NotPermitted, match="not of site 101"):
        answer_query(trial, STUDY, q.id, "x", user="inv101")
    assert len(audit_trail(trial)) == before + 1


def test_refused_inputs(trial):
    with pytest.raises(StoreError, match="Invalid `field`"):
        raise_query(trial, STUDY, "LB", "101-001", 1, "?", user="mon101", field="AETOXGR")
    with pytest.raises(StoreError, match="must be a stored record"):
        raise_query(trial, STUDY, "LB", "101-001", 99, "?", user="mon101")
    with pytest.raises(StoreError, match="Invalid `query`"):
        raise_query(trial, STUDY, "LB", "101-001", 1, "   ", user="mon101")
    with pytest.raises(NotPermitted, match="active user"):
        raise_query(trial, STUDY, "LB", "101-001", 1, "?", user="nobody")


def test_export_writes_every_query(trial, tmp_path):
    q1 = raise_query(trial, STUDY, "LB", "101-001", 1, "=cmd|' /C calc'!A0", user="mon101")
    raise_query(trial, STUDY, "DM", "101-002", None, "Age?", user="mon101", field="AGE")
    answer_query(trial, STUDY, q1.id, "checked", user="inv101")
    file = export_queries_csv(trial, STUDY, tmp_path)
    frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    assert frame["status"].tolist() == ["answered", "open"]
    assert frame["text"].tolist() == ["'=cmd|' /C calc'!A0", "Age?"]
    assert frame["seq"].tolist() == ["1", ""]
    assert frame["site_id"].tolist() == ["101", "101"]
