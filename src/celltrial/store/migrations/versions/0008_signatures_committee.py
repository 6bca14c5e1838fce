"""Electronic signatures and dose-escalation committee decisions.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

- ``signature``: one row per electronic signature (21 CFR 11.50, 11.200): the signed object
  (a clinical record, a subject's casebook or a committee decision), the meaning, the
  signer's user name, printed full name and role, the UTC date and time, and the SHA-256 of
  the object's content at signing (celltrial.store.signatures). Only ever inserted, each with
  an audit row.
- ``committee_decision``: one row per decision of the dose-escalation committee: the cohort
  reviewed, the design's recommendation, the committee's action and the dose level it opens,
  the reason when it differs from the recommendation, the data it was taken on, and the
  content hash its members' signatures bind to (celltrial.store.committee).
- ``user`` gains ``full_name``: the printed name shown with the user's signatures
  (21 CFR 11.50(a)(1)). ``ADD COLUMN`` on SQLite leaves the table (and the foreign keys of
  ``session``) in place.

On PostgreSQL, where migration 0003 created the roles, ``celltrial_owner`` owns the new
tables and ``celltrial_app`` may read and insert into them (and use their id sequences).
Signatures and decisions are never updated or deleted by the application, so the
application role is granted SELECT and INSERT only, as on ``audit``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

NEW_TABLES = ("signature", "committee_decision")


def upgrade() -> None:
    op.add_column("user", sa.Column("full_name", sa.Text(), nullable=True))
    op.create_table(
        "signature",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=16), nullable=False),
        sa.Column("object_key", sa.Text(), nullable=False),
        sa.Column("usubjid", sa.String(length=64), nullable=True),
        sa.Column("meaning", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("full_name", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("object_type IN ('record', 'casebook', 'decision')",
                           name=op.f("ck_signature_object_type")),
        sa.CheckConstraint("meaning IN ('authored', 'reviewed', 'approved')",
                           name=op.f("ck_signature_meaning")),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"],
                                name=op.f("fk_signature_study_id_study")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signature")),
    )
    op.create_index(op.f("ix_signature_study_id"), "signature", ["study_id"], unique=False)
    op.create_table(
        "committee_decision",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("cohort", sa.Integer(), nullable=True),
        sa.Column("current_dose", sa.Integer(), nullable=True),
        sa.Column("recommended_action", sa.String(length=16), nullable=False),
        sa.Column("recommended_dose", sa.Integer(), nullable=True),
        sa.Column("recommended_reason", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("dose", sa.Integer(), nullable=True),
        sa.Column("dose_level", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("enrolled_before", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("action IN ('escalate', 'stay', 'de-escalate', 'stop')",
                           name=op.f("ck_committee_decision_action")),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"],
                                name=op.f("fk_committee_decision_study_id_study")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_committee_decision")),
    )
    op.create_index(op.f("ix_committee_decision_study_id"), "committee_decision",
                    ["study_id"], unique=False)
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
                op.execute(f'GRANT SELECT, INSERT ON "{table}" TO celltrial_app')
                op.execute(f"GRANT USAGE, SELECT ON SEQUENCE {table}_id_seq TO celltrial_app")


def downgrade() -> None:
    op.drop_index(op.f("ix_committee_decision_study_id"), table_name="committee_decision")
    op.drop_table("committee_decision")
    op.drop_index(op.f("ix_signature_study_id"), table_name="signature")
    op.drop_table("signature")
    if op.get_bind().dialect.name == "sqlite":
        # ALTER TABLE ... DROP COLUMN (SQLite >= 3.35) keeps the table: rebuilding ``user``
        # would break the foreign keys of ``session``.
        op.execute('ALTER TABLE "user" DROP COLUMN full_name')
    else:
        op.drop_column("user", "full_name")
