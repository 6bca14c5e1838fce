"""Server-side web sessions, login throttling and account state.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

- ``session``: one row per login of the web app, keyed by the SHA-256 of the random token the
  browser's cookie carries (never the token itself), with the user, when it was created and
  last used, when and why it was revoked (logout, account disabled, password reset), and the
  client's address and user agent (docs/web.md, "Sessions and logins").
- ``login_throttle``: failed logins per client address in the current window, kept in the
  store so that every worker process counts the same failures.
- ``user`` gains ``disabled_at``, ``locked_at``, ``failed_logins`` (consecutive) and
  ``last_login_at``.

On PostgreSQL, where migration 0003 created the roles, ``celltrial_owner`` owns the new tables
and ``celltrial_app`` may read and write them (``user`` is already granted).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

NEW_TABLES = ("session", "login_throttle")


def upgrade() -> None:
    op.add_column("user", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("user", sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("user", sa.Column("failed_logins", sa.Integer(), nullable=False,
                                    server_default="0"))
    op.add_column("user", sa.Column("last_login_at", sa.DateTime(timezone=True),
                                    nullable=True))
    op.create_table(
        "session",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=32), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=256), nullable=True),
        sa.Column("data", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["username"], ["user.username"],
                                name=op.f("fk_session_username_user")),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_session")),
    )
    op.create_index(op.f("ix_session_username"), "session", ["username"], unique=False)
    op.create_table(
        "login_throttle",
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_login_throttle")),
    )
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


def downgrade() -> None:
    op.drop_table("login_throttle")
    op.drop_index(op.f("ix_session_username"), table_name="session")
    op.drop_table("session")
    with op.batch_alter_table("user") as batch:
        for column in ("last_login_at", "failed_logins", "locked_at", "disabled_at"):
            batch.drop_column(column)
