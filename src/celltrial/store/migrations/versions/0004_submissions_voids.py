"""Idempotent submissions and records voided as entered in error.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

- ``submission``: the idempotency key of every accepted data-entry submission (a form's hidden
  field, the API's ``Idempotency-Key`` header) with the record it wrote, so that a refreshed
  page or a repeated request writes nothing the second time (docs/store.md).
- every domain table gains ``voided``: the reason a record was marked "entered in error".
  A voided record stays in the table and in the audit trail but is left out of what
  ``read_domains`` returns, hence out of every analysis.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DOMAIN_TABLES = ("dm", "sc", "ex", "ae", "lb", "vs", "xc", "rs", "tu", "tr", "pc", "is", "pr",
                 "ds")


def upgrade() -> None:
    op.create_table(
        "submission",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("user", sa.String(length=64), nullable=False),
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("domain", sa.String(length=8), nullable=False),
        sa.Column("record_key", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_submission")),
    )
    for table in DOMAIN_TABLES:
        op.add_column(table, sa.Column("voided", sa.Text(), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        has_roles = bind.exec_driver_sql(
            "SELECT count(*) FROM pg_roles WHERE rolname IN ('celltrial_owner', "
            "'celltrial_app')").scalar() == 2
        owner = bind.exec_driver_sql(
            "SELECT tableowner FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename = 'audit'").scalar()
        if has_roles and owner == "celltrial_owner":
            op.execute("ALTER TABLE submission OWNER TO celltrial_owner")
            op.execute("GRANT SELECT, INSERT ON submission TO celltrial_app")


def downgrade() -> None:
    for table in DOMAIN_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("voided")
    op.drop_table("submission")
