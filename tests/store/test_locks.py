"""Record, subject and study locks and source-data verification, at the store level (so the
web app, the API, imports and scripts are all held to them), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from celltrial.errors import StoreError
from celltrial.store import (audit_trail, count_records, import_csv_dir, read_domain,
                             update_record, verify_audit, void_record, write_domains,
                             write_record)
from celltrial.store.audit import now
from celltrial.store.engine import write_transaction
from celltrial.store.locks import (LockInfo, Locked, locks_of, refusal, set_record_lock,
                                   set_study_lock, set_subject_lock)
from celltrial.store.permissions import NotPermitted
from celltrial.store.queries import close_query, raise_query
from celltrial.store.schema import User
from celltrial.store.sdv import describe, set_sdv, verifications
from tests.store.conftest import STUDY
from tests.store.oversight import add_users


@pytest.fixture()
def trial(filled):
    return add_users(filled)


LB_ROW = {"USUBJID": "101-001", "LBTESTCD": "NEUT", "LBSTRESN": 2.0, "LBSTRESU": "10^9/L",
          "LBDTC": "2024-03-01"}


def test_refusal_names_the_widest_lock_first():
    lock = LockInfo("dm1", now().replace(year=2026, month=12, day=1, hour=9, minute=30),
                    "final analysis")
    text = refusal("correct LB x", study=lock, record=lock, study_id="S")
    assert text.startswith("Study S (database lock) is locked (by dm1, 2026-12-01 09:30 UTC: "
                           "final analysis); cannot correct LB x")
    assert refusal("x", record=lock, key="LB k").startswith("Record LB k is locked")
    assert refusal("x") is None


def test_a_locked_record_refuses_a_correction_a_void_and_a_delete(trial):
    assert set_record_lock(trial, STUDY, "AE", "101-001", 1, locked=True, user="dm1",
                           reason="data clean")
    assert not set_record_lock(trial, STUDY, "AE", "101-001", 1, locked=True, user="dm1")
    before = len(audit_trail(trial))
    with pytest.raises(Locked, match=r"Record AE USUBJID=101-001;AESEQ=1 is locked \(by dm1"):
        update_record(trial, "AE", (STUDY, "101-001", 1), {"AETOXGR": 3}, user="inv101",
                      reason="source", version=1)
    with pytest.raises(Locked, match="cannot void"):
        void_record(trial, "AE", (STUDY, "101-001", 1), user="inv101", reason="x", version=1)
    from celltrial.store import delete_record
    with pytest.raises(Locked, match="cannot delete"):
        delete_record(trial, "AE", (STUDY, "101-001", 1), user="inv101", reason="x")
    assert len(audit_trail(trial)) == before
    assert read_domain(trial, STUDY, "AE")["AETOXGR"].tolist() == [2.0, 3.0]
    # other records of the subject stay writable
    update_record(trial, "LB", (STUDY, "101-001", 1), {"LBDTC": "2024-01-08T09:00"}, user="inv101",
                  reason="same", version=1)
    with pytest.raises(StoreError, match="Invalid `reason`"):
        set_record_lock(trial, STUDY, "AE", "101-001", 1, locked=False, user="dm1")
    assert set_record_lock(trial, STUDY, "AE", "101-001", 1, locked=False, user="admin",
                           reason="query from the sponsor")
    update_record(trial, "AE", (STUDY, "101-001", 1), {"AETOXGR": 3}, user="inv101",
                  reason="source", version=1)
    rows = audit_trail(trial, STUDY, table="record_status")
    assert rows["field"].tolist() == ["AE locked", "AE locked"]
    assert rows["user"].tolist() == ["dm1", "admin"]
    assert rows["reason"].tolist() == ["data clean", "query from the sponsor"]
    assert rows["new_value"].iloc[1] is None and rows["old_value"].iloc[1].endswith("UTC")


def test_a_locked_subject_refuses_a_new_record_and_corrections(trial):
    set_subject_lock(trial, STUDY, "101-001", locked=True, user="dm1", reason="casebook done")
    counts = count_records(trial, STUDY)
    with pytest.raises(Locked, match="Subject 101-001 is locked .*cannot add LB records"):
        write_record(trial, STUDY, "LB", LB_ROW, user="inv101", reason="entry")
    with pytest.raises(Locked, match="Subject 101-001 is locked"):
        update_record(trial, "DM", (STUDY, "101-001"), {"AGE": 35}, user="inv101",
                      reason="x", version=1)
    assert count_records(trial, STUDY) == counts
    write_record(trial, STUDY, "LB", {**LB_ROW, "USUBJID": "101-002"}, user="inv101",
                 reason="entry")
    assert locks_of(trial, STUDY)["subjects"]["101-001"].reason == "casebook done"
    with pytest.raises(StoreError, match="Invalid `reason`"):
        set_subject_lock(trial, STUDY, "101-001", locked=False, user="dm1", reason="")
    set_subject_lock(trial, STUDY, "101-001", locked=False, user="dm1", reason="late lab")
    write_record(trial, STUDY, "LB", LB_ROW, user="inv101", reason="entry")
    rows = audit_trail(trial, STUDY, table="subject_lock")
    assert rows["action"].tolist() == ["insert", "delete"]
    assert rows["reason"].tolist() == ["casebook done", "late lab"]


def _csv(tmp_path: Path) -> Path:
    pd.DataFrame([{**LB_ROW, "USUBJID": "101-002"}]).to_csv(tmp_path / "LB.csv", index=False)
    return tmp_path


def test_a_study_lock_makes_every_write_path_refuse(trial, tmp_path):
    assert set_study_lock(trial, STUDY, locked=True, user="dm1", reason="final analysis")
    counts, before = count_records(trial, STUDY), len(audit_trail(trial))
    attempts = {
        "import": lambda: import_csv_dir(trial, STUDY, _csv(tmp_path), user="dm.entry"),
        "write": lambda: write_domains(trial, STUDY, {"LB": pd.DataFrame([LB_ROW])},
                                       user="x", reason="x"),
        "entry": lambda: write_record(trial, STUDY, "LB", LB_ROW, user="x", reason="x"),
        "correct": lambda: update_record(trial, "LB", (STUDY, "101-001", 1), {"LBTOXGR": 1},
                                         user="x", reason="x"),
        "void": lambda: void_record(trial, "LB", (STUDY, "101-001", 1), user="x",
                                    reason="x"),
        "query": lambda: raise_query(trial, STUDY, "LB", "101-001", 1, "?", user="mon101"),
        "sdv": lambda: set_sdv(trial, STUDY, "LB", "101-001", 1, verified=True,
                               user="mon101"),
        "record lock": lambda: set_record_lock(trial, STUDY, "LB", "101-001", 1,
                                               locked=True, user="dm1"),
        "subject lock": lambda: set_subject_lock(trial, STUDY, "101-001", locked=True,
                                                 user="dm1"),
    }
    for name, attempt in attempts.items():
        with pytest.raises(Locked, match=rf"Study {STUDY} \(database lock\) is locked "
                                         r"\(by dm1, .* UTC: final analysis\)"):
            attempt()
    assert count_records(trial, STUDY) == counts and len(audit_trail(trial)) == before
    with pytest.raises(StoreError, match="Invalid `reason`"):
        set_study_lock(trial, STUDY, locked=False, user="dm1", reason=" ")
    with pytest.raises(NotPermitted, match="Role monitor may not lock"):
        set_study_lock(trial, STUDY, locked=False, user="mon101", reason="x")
    assert set_study_lock(trial, STUDY, locked=False, user="dm1", reason="late SAE report")
    import_csv_dir(trial, STUDY, _csv(tmp_path), user="dm.entry")
    rows = audit_trail(trial, STUDY, table="study_lock")
    assert rows["action"].tolist() == ["insert", "delete"]
    assert rows["reason"].tolist() == ["final analysis", "late SAE report"]
    assert rows["user"].tolist() == ["dm1", "dm1"]
    assert verify_audit(trial).intact


def test_a_study_is_not_locked_while_a_query_is_open(trial):
    q = raise_query(trial, STUDY, "LB", "101-001", 1, "?", user="mon101")
    with pytest.raises(StoreError, match="1 query\\(ies\\) not closed"):
        set_study_lock(trial, STUDY, locked=True, user="dm1")
    close_query(trial, STUDY, q.id, user="mon101", note="raised in error")
    assert set_study_lock(trial, STUDY, locked=True, user="dm1")


@pytest.mark.parametrize("user", ["inv101", "mon101", "monall"])
def test_only_a_data_manager_or_admin_locks(trial, user):
    with pytest.raises(NotPermitted, match="may not lock or unlock data"):
        set_record_lock(trial, STUDY, "LB", "101-001", 1, locked=True, user=user)
    assert locks_of(trial, STUDY)["records"] == {}


def test_sdv_set_and_clear_by_a_monitor_audited(trial):
    assert set_sdv(trial, STUDY, "LB", "101-001", 1, verified=True, user="mon101")
    assert not set_sdv(trial, STUDY, "LB", "101-001", 1, verified=True, user="monall")
    flag = verifications(trial, STUDY)[("LB", "101-001", 1)]
    assert (flag.by, flag.version) == ("mon101", 1)
    assert describe(flag, 1).startswith("verified by mon101")
    update_record(trial, "LB", (STUDY, "101-001", 1), {"LBDTC": "2024-01-08T09:00"}, user="inv101",
                  reason="same", version=1)
    assert describe(flag, 2) == "changed since verification (version 1 verified by mon101)"
    assert set_sdv(trial, STUDY, "LB", "101-001", 1, verified=True, user="mon101")
    with pytest.raises(StoreError, match="Invalid `reason`"):
        set_sdv(trial, STUDY, "LB", "101-001", 1, verified=False, user="mon101")
    assert set_sdv(trial, STUDY, "LB", "101-001", 1, verified=False, user="mon101",
                   reason="source document was the wrong visit")
    assert verifications(trial, STUDY) == {}
    rows = audit_trail(trial, STUDY, table="record_status")
    assert rows["field"].tolist() == ["LB sdv"] * 3
    assert rows["new_value"].tolist() == ["verified version 1", "verified version 2", None]
    assert rows["old_value"].tolist() == [None, "verified version 1", "verified version 2"]
    assert rows["user"].tolist() == ["mon101"] * 3


@pytest.mark.parametrize(("user", "match"), [
    ("inv101", "Role investigator may not set or clear source-data verification"),
    ("dm1", "Role data_manager may not"), ("admin", "Role admin may not"),
    ("mon102", "not of site 102"),
])
def test_sdv_only_by_a_monitor_of_the_site(trial, user, match):
    with pytest.raises(NotPermitted, match=match):
        set_sdv(trial, STUDY, "LB", "101-001", 1, verified=True, user=user)
    assert verifications(trial, STUDY) == {}


def test_the_role_constraint_admits_data_manager_and_nothing_unknown(trial):
    with pytest.raises(sa.exc.IntegrityError):
        with write_transaction(trial.engine) as connection:
            connection.execute(User.__table__.insert(), {
                "username": "x", "role": "sponsor", "password_hash": "x",
                "created_at": now()})
    with trial.engine.connect() as connection:
        roles = connection.execute(sa.select(User.__table__.c.role).where(
            User.__table__.c.username == "dm1")).scalars().all()
    assert roles == ["data_manager"]


def test_the_application_role_may_use_the_new_tables(postgres_url):
    """PostgreSQL as celltrial_app (migration 0006 grants the new tables)."""
    from celltrial.store import init_db, open_store, register_study
    from tests.conftest import PG_USER
    from tests.store.conftest import TITLE, make_frames

    init_db(postgres_url)
    store = open_store(postgres_url.replace(f"//{PG_USER}@", "//celltrial_app@"))
    try:
        register_study(store, STUDY, TITLE)
        write_domains(store, STUDY, make_frames(), user="dm.entry", reason="entry")
        add_users(store)
        q = raise_query(store, STUDY, "LB", "101-001", 1, "?", user="mon101")
        close_query(store, STUDY, q.id, user="mon101")
        set_sdv(store, STUDY, "LB", "101-001", 1, verified=True, user="mon101")
        set_record_lock(store, STUDY, "LB", "101-001", 1, locked=True, user="dm1")
        set_subject_lock(store, STUDY, "101-002", locked=True, user="dm1")
        set_subject_lock(store, STUDY, "101-002", locked=False, user="dm1", reason="r")
        set_study_lock(store, STUDY, locked=True, user="dm1")
        set_study_lock(store, STUDY, locked=False, user="dm1", reason="r")
        assert verify_audit(store).intact
    finally:
        store.close()
