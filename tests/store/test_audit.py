"""The audit trail is append-only: the ORM refuses, and so does the database itself."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from celltrial.errors import StoreError
from celltrial.store import audit_trail
from celltrial.store.schema import AuditRecord


def test_orm_refuses_to_update_an_audit_row(filled):
    with filled.sessions() as session:
        row = session.scalars(sa.select(AuditRecord).limit(1)).one()
        row.new_value = "tampered"
        with pytest.raises(StoreError, match="append-only"):
            session.commit()


def test_orm_refuses_to_delete_an_audit_row(filled):
    with filled.sessions() as session:
        row = session.scalars(sa.select(AuditRecord).limit(1)).one()
        session.delete(row)
        with pytest.raises(StoreError, match="append-only"):
            session.commit()


@pytest.mark.parametrize("statement", [
    sa.update(AuditRecord).values(reason="tampered"),
    sa.delete(AuditRecord),
])
def test_orm_refuses_bulk_statements(filled, statement):
    with filled.sessions() as session, pytest.raises(StoreError, match="append-only"):
        session.execute(statement)


@pytest.mark.parametrize("sql", [
    "UPDATE audit SET reason = 'tampered'",
    "DELETE FROM audit",
])
def test_database_trigger_refuses_raw_sql(filled, sql):
    before = audit_trail(filled)
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        with filled.engine.begin() as connection:
            connection.exec_driver_sql(sql)
    after = audit_trail(filled)
    assert after.equals(before)


def test_new_audit_rows_may_still_be_added(filled):
    with filled.sessions() as session:
        first = session.scalars(sa.select(AuditRecord).limit(1)).one()
        session.add(AuditRecord(at=first.at, user="monitor", study_id=first.study_id,
                                table="ae", record_key="USUBJID=101-001;AESEQ=1",
                                field=None, old_value=None, new_value=None,
                                reason="reviewed", action="insert", source="test"))
        session.commit()
    assert audit_trail(filled, user="monitor")["reason"].tolist() == ["reviewed"]
