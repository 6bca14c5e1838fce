"""PostgreSQL: the application role owns nothing and cannot rewrite the audit trail.

Migration 0003 makes ``celltrial_owner`` the owner of every table and ``celltrial_app`` a
login role with INSERT and SELECT only on ``audit`` (docs/store.md, "Roles on PostgreSQL").
Each statement below is what the outside review ran as the superuser the documented URL used
to connect as; as ``celltrial_app`` each is refused and the trail is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from celltrial.store import (Store, audit_trail, init_db, open_store, read_domain,
                             register_study, update_record, verify_audit, write_domains)
from tests.conftest import PG_USER
from tests.store.conftest import STUDY, TITLE, make_frames


@pytest.fixture()
def app_store(postgres_url) -> Iterator[Store]:
    """The store migrated by the superuser, opened as the application role."""
    init_db(postgres_url)
    app_url = postgres_url.replace(f"//{PG_USER}@", "//celltrial_app@")
    store = open_store(app_url)
    yield store
    store.close()


def test_the_application_role_runs_the_trial(app_store):
    register_study(app_store, STUDY, TITLE)
    write_domains(app_store, STUDY, make_frames(), user="dm.entry", reason="initial entry")
    update_record(app_store, "AE", (STUDY, "101-001", 1), {"AETOXGR": 3}, user="inv01",
                  reason="source document", version=1)
    assert read_domain(app_store, STUDY, "AE")["AETOXGR"].tolist() == [3.0, 3.0]
    assert verify_audit(app_store).intact
    with app_store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT current_user").scalar() == "celltrial_app"


@pytest.mark.parametrize(("sql", "refusal"), [
    ("UPDATE audit SET reason = 'tampered'", "permission denied"),
    ("DELETE FROM audit", "permission denied"),
    ("TRUNCATE audit", "permission denied"),
    ("DROP TABLE audit", "must be owner"),
    ("ALTER TABLE audit DISABLE TRIGGER ALL", "must be owner"),
    ("DROP TRIGGER audit_no_update_delete ON audit", "must be owner"),
    ("SET session_replication_role = replica", "permission denied"),
    ("ALTER TABLE audit OWNER TO celltrial_app", "must be owner"),
    ("CREATE TABLE forged (id integer)", "permission denied"),
])
def test_the_application_role_cannot_rewrite_the_audit_trail(app_store, sql, refusal):
    register_study(app_store, STUDY, TITLE)
    write_domains(app_store, STUDY, make_frames(), user="dm.entry", reason="initial entry")
    before = audit_trail(app_store)
    with pytest.raises(sa.exc.DBAPIError, match=refusal):
        with app_store.engine.begin() as connection:
            connection.exec_driver_sql(sql)
    assert audit_trail(app_store).equals(before)
    assert verify_audit(app_store).intact


def test_tables_belong_to_the_owner_role(app_store):
    with app_store.engine.connect() as connection:
        owners = dict(connection.exec_driver_sql(
            "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = current_schema()"
        ).all())
    assert owners and set(owners.values()) == {"celltrial_owner"}
    assert {"audit", "lb", "dm", "user", "alembic_version"} <= set(owners)
