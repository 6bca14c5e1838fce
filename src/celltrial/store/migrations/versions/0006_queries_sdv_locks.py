"""Monitoring queries, source-data verification, record/subject/study locks, data managers.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

- ``data_query``: a monitor's query on a record or field, its status (open, answered,
  closed), the site's answer and the monitor's closing or re-opening note; every step is also
  an audit row (celltrial.store.queries).
- ``record_status``: per clinical record, its source-data verification (who, when, which
  version) and its lock (celltrial.store.sdv, celltrial.store.locks).
- ``subject_lock`` and ``study_lock``: a subject whose records may no longer change, and a
  study whose database is locked (read-only for every write path).
- ``user.role`` admits ``data_manager`` (locks records, subjects and the study database).
  On SQLite the CHECK constraint is widened in place, by the procedure SQLite documents for
  loosening a CHECK constraint (sqlite.org/lang_altertable.html, "Making Other Kinds Of Table
  Schema Changes": edit ``sqlite_schema`` under ``writable_schema`` and bump
  ``schema_version``): rebuilding ``user`` would break the foreign keys of ``session``.

On PostgreSQL, where migration 0003 created the roles, ``celltrial_owner`` owns the new
tables and ``celltrial_app`` may read and write them (and use ``data_query_id_seq``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

NEW_TABLES = ("data_query", "record_status", "subject_lock", "study_lock")
OLD_ROLES = "'admin', 'investigator', 'coordinator', 'monitor', 'statistician'"
NEW_ROLES = f"{OLD_ROLES}, 'data_manager'"


def _set_roles(old: str, new: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        version = bind.exec_driver_sql("PRAGMA schema_version").scalar()
        bind.exec_driver_sql("PRAGMA writable_schema = ON")
        changed = bind.exec_driver_sql(
            "UPDATE sqlite_master SET sql = replace(sql, ?, ?) "
            "WHERE type = 'table' AND name = 'user'",
            (f"role IN ({old})", f"role IN ({new})")).rowcount
        bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
        bind.exec_driver_sql("PRAGMA writable_schema = OFF")
        if changed != 1:
            raise RuntimeError("the user table's role constraint was not found")
        return
    op.drop_constraint(op.f("ck_user_role"), "user", type_="check")
    op.create_check_constraint(op.f("ck_user_role"), "user", f"role IN ({new})")


def upgrade() -> None:
    op.create_table(
        "data_query",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("usubjid", sa.String(length=64), nullable=False),
        sa.Column("domain", sa.String(length=8), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("raised_by", sa.String(length=64), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_by", sa.String(length=64), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('open', 'answered', 'closed')",
                           name=op.f("ck_data_query_status")),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"],
                                name=op.f("fk_data_query_study_id_study")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_query")),
    )
    op.create_index(op.f("ix_data_query_study_id"), "data_query", ["study_id"], unique=False)
    op.create_table(
        "record_status",
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("domain", sa.String(length=8), nullable=False),
        sa.Column("usubjid", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("sdv_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sdv_by", sa.String(length=64), nullable=True),
        sa.Column("sdv_version", sa.Integer(), nullable=True),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_by", sa.String(length=64), nullable=True),
        sa.Column("lock_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"],
                                name=op.f("fk_record_status_study_id_study")),
        sa.PrimaryKeyConstraint("study_id", "domain", "usubjid", "seq",
                                name=op.f("pk_record_status")),
    )
    for table in ("subject_lock", "study_lock"):
        keys = ["study_id", "usubjid"] if table == "subject_lock" else ["study_id"]
        op.create_table(
            table,
            sa.Column("study_id", sa.String(length=64), nullable=False),
            *([sa.Column("usubjid", sa.String(length=64), nullable=False)]
              if table == "subject_lock" else []),
            sa.Column("locked_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("locked_by", sa.String(length=64), nullable=False),
            sa.Column("reason", sa.Text(), nullable=True),
            sa.ForeignKeyConstraint(["study_id"], ["study.id"],
                                    name=op.f(f"fk_{table}_study_id_study")),
            sa.PrimaryKeyConstraint(*keys, name=op.f(f"pk_{table}")),
        )
    _set_roles(OLD_ROLES, NEW_ROLES)
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        has_roles = bind.exec_driver_sql(
            "SELECT count(*) FROM pg_roles WHERE rolname IN ('celltrial_owner', "
            "'celltrial_app')").scalar() == 2
        owner = bind.exec_driver_sql(
            "SELECT tableowner FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename = 'audit'").scalar()
        if has_roles and owner == "celltrial_owner":
            for table in NEW_TABLES:
                op.execute(f'ALTER TABLE "{table}" OWNER TO celltrial_owner')
                op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO '
                           "celltrial_app")
            op.execute("GRANT USAGE, SELECT ON SEQUENCE data_query_id_seq TO celltrial_app")


def downgrade() -> None:
    bind = op.get_bind()
    managers = bind.exec_driver_sql(
        "SELECT count(*) FROM \"user\" WHERE role = 'data_manager'").scalar()
    if managers:
        raise RuntimeError(f"{managers} user(s) have the role data_manager: change their role "
                           "before downgrading below 0006")
    _set_roles(NEW_ROLES, OLD_ROLES)
    op.drop_table("study_lock")
    op.drop_table("subject_lock")
    op.drop_table("record_status")
    op.drop_index(op.f("ix_data_query_study_id"), table_name="data_query")
    op.drop_table("data_query")
