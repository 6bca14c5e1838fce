"""The audit trail is append-only: the ORM refuses, and so does the database itself."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
import sqlalchemy as sa

from celltrial.errors import StoreError
from celltrial.store import (audit_trail, init_db, open_store, register_study, verify_audit,
                             write_domains, write_transaction)
from celltrial.store.audit import GENESIS, append_audit, audit_row, chain_hash, now
from celltrial.store.schema import AuditRecord
from tests.store.conftest import STUDY, TITLE


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


def test_audit_rows_are_appended_only_through_the_chain(filled):
    with filled.sessions() as session:
        first = session.scalars(sa.select(AuditRecord).limit(1)).one()
        session.add(AuditRecord(at=first.at, user="monitor", study_id=first.study_id,
                                table="ae", record_key="USUBJID=101-001;AESEQ=1",
                                reason="reviewed", action="insert", source="test"))
        with pytest.raises(StoreError, match="append_audit"):
            session.commit()
    with write_transaction(filled.engine) as connection:
        append_audit(connection, audit_row(
            at=now(), user="monitor", study_id=STUDY, table="ae",
            key="USUBJID=101-001;AESEQ=1", action="insert", reason="reviewed", source="test"))
    assert audit_trail(filled, user="monitor")["reason"].tolist() == ["reviewed"]
    assert verify_audit(filled).intact


def test_every_write_extends_an_intact_chain(filled):
    check = verify_audit(filled)
    assert check.intact and check.rows == len(audit_trail(filled)) > 14
    with filled.engine.connect() as connection:
        hashes = connection.exec_driver_sql("SELECT hash FROM audit ORDER BY id").scalars().all()
    assert len(set(hashes)) == len(hashes) and check.head == hashes[-1]


def test_chain_hash_is_the_documented_sha256():
    """Format v1 by hand: SHA-256 of the compact JSON array [previous, at, user, ...]."""
    row = {"at": dt.datetime(2026, 12, 1, 14, 0, 0, 5, tzinfo=dt.UTC), "user": "inv01",
           "study_id": "s", "table": "lb", "record_key": "USUBJID=1;LBSEQ=1",
           "field": "LBSTRESN", "old_value": "0.2", "new_value": "0.8", "reason": "typo",
           "action": "update", "source": "web"}
    text = ('["' + GENESIS + '","2026-12-01 14:00:00.000005","inv01","s","lb",'
            '"USUBJID=1;LBSEQ=1","LBSTRESN","0.2","0.8","typo","update","web"]')
    assert chain_hash(GENESIS, row) == hashlib.sha256(text.encode()).hexdigest()
    naive = {**row, "at": row["at"].replace(tzinfo=None)}
    assert chain_hash(GENESIS, naive) == chain_hash(GENESIS, row)


def _tamper(store, *sql: str) -> None:
    """What someone with the database owner's rights could do behind the application."""
    with store.engine.begin() as connection:
        if store.engine.dialect.name == "sqlite":
            connection.exec_driver_sql("DROP TRIGGER audit_no_update")
            connection.exec_driver_sql("DROP TRIGGER audit_no_delete")
        else:
            connection.exec_driver_sql("ALTER TABLE audit DISABLE TRIGGER USER")
        for statement in sql:
            connection.exec_driver_sql(statement)


@pytest.mark.parametrize(("sql", "broken"), [
    (["UPDATE audit SET reason = 'tampered' WHERE id = 5"], 5),
    (["DELETE FROM audit WHERE id = 5"], 6),
    (["UPDATE audit SET new_value = 'x', hash = NULL WHERE id = 7"], 7),
])
def test_verify_audit_names_the_first_edited_or_missing_row(filled, sql, broken):
    assert verify_audit(filled).intact
    _tamper(filled, *sql)
    check = verify_audit(filled)
    assert not check.intact and check.broken_id == broken


def test_verify_audit_from_the_command_line(filled):
    from typer.testing import CliRunner

    from celltrial.cli.main import app

    runner = CliRunner()
    ok = runner.invoke(app, ["db", "verify-audit", "--db", filled.engine.url.render_as_string(
        hide_password=False)])
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output
    _tamper(filled, "UPDATE audit SET \"user\" = 'someone' WHERE id = 3")
    bad = runner.invoke(app, ["db", "verify-audit", "--db", filled.engine.url.render_as_string(
        hide_password=False)])
    assert bad.exit_code == 1
    assert "row 3" in bad.output


@pytest.mark.parametrize("sql", [
    "REPLACE INTO audit (id, at, user, \"table\", record_key, action) "
    "VALUES (1, '2026-01-01', 'x', 'lb', 'k', 'insert')",
    "INSERT OR REPLACE INTO audit (id, at, user, \"table\", record_key, action) "
    "VALUES (1, '2026-01-01', 'x', 'lb', 'k', 'insert')",
])
def test_sqlite_refuses_to_replace_an_audit_row(sqlite_url, frames, sql):
    init_db(sqlite_url)
    store = open_store(sqlite_url)
    try:
        register_study(store, STUDY, TITLE)
        write_domains(store, STUDY, frames, user="dm.entry", reason="initial entry")
        before = audit_trail(store)
        with pytest.raises(sa.exc.DatabaseError, match="cannot be reused"):
            with store.engine.begin() as connection:
                connection.exec_driver_sql(sql)
        with store.sessions() as session, pytest.raises(sa.exc.DatabaseError,
                                                         match="cannot be reused"):
            session.execute(sa.text(sql))
        assert audit_trail(store).equals(before)
        assert verify_audit(store).intact
    finally:
        store.close()
