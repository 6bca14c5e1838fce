"""Record versions, a hash-chained audit trail, no audit id reuse, and PostgreSQL roles.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

- Every domain table gains ``version`` (1 when written, +1 per correction): a correction names
  the version it saw and a stale one is refused (optimistic concurrency, docs/store.md).
- ``audit`` gains ``hash``: SHA-256 over the previous row's hash and the row's fields
  (``celltrial.store.audit.chain_hash``, format v1); rows already stored are chained here, in
  id order.
- SQLite: a BEFORE INSERT trigger refuses an audit row whose id exists, which is what
  ``REPLACE INTO audit`` and ``INSERT OR REPLACE`` do (their implicit delete fires no delete
  trigger: sqlite.org/lang_conflict.html).
- PostgreSQL, when the migrating role may create roles: ``celltrial_owner`` (NOLOGIN) owns
  every table, sequence and the trigger function; ``celltrial_app`` (LOGIN, owns nothing) may
  read and write the clinical tables but only INSERT and SELECT on ``audit``. The application
  connects as ``celltrial_app``; it then cannot disable the triggers, switch
  ``session_replication_role`` or drop the audit table. Otherwise a warning says to run the
  commands of docs/store.md as a DBA.
"""

from __future__ import annotations

import warnings

import sqlalchemy as sa
from alembic import op

from celltrial.store.audit import GENESIS, chain_hash

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DOMAIN_TABLES = ("dm", "sc", "ex", "ae", "lb", "vs", "xc", "rs", "tu", "tr", "pc", "is", "pr",
                 "ds")
CLINICAL_TABLES = (*DOMAIN_TABLES, "study", "site", "user")
CHAINED = ("at", "user", "study_id", "table", "record_key", "field", "old_value", "new_value",
           "reason", "action", "source")

_SQLITE_NO_REPLACE = (
    "CREATE TRIGGER audit_no_replace BEFORE INSERT ON audit "
    "WHEN EXISTS (SELECT 1 FROM audit WHERE id = NEW.id) BEGIN "
    "SELECT RAISE(ABORT, 'audit is append-only: an audit id cannot be reused'); END")
_SQLITE_NO_UPDATE = ("CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN "
                     "SELECT RAISE(ABORT, 'audit is append-only'); END")

_POSTGRES_ROLES = """
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'celltrial_owner') THEN
    CREATE ROLE celltrial_owner NOLOGIN;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'celltrial_app') THEN
    CREATE ROLE celltrial_app LOGIN;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
"""


def _quoted(name: str) -> str:
    return f'"{name}"'


def _chain_existing(bind: sa.Connection) -> None:
    audit = sa.table("audit", sa.column("id"), sa.column("hash"),
                     *[sa.column(name) for name in CHAINED])
    rows = bind.execute(sa.select(audit.c.id, *[audit.c[n] for n in CHAINED]).order_by(
        audit.c.id)).all()
    previous = GENESIS
    for row in rows:
        previous = chain_hash(previous, row._mapping)
        bind.execute(audit.update().where(audit.c.id == row.id).values(hash=previous))


def _postgres_roles(bind: sa.Connection) -> None:
    may = bind.exec_driver_sql("SELECT rolsuper OR rolcreaterole FROM pg_roles "
                               "WHERE rolname = current_user").scalar()
    if not may:
        warnings.warn("celltrial: the migrating role may not create roles; run the role "
                      "commands of docs/store.md as a DBA so that the application cannot "
                      "rewrite the audit trail", stacklevel=1)
        return
    op.execute(_POSTGRES_ROLES)
    schema = bind.exec_driver_sql("SELECT current_schema()").scalar()
    op.execute(f"GRANT USAGE ON SCHEMA {_quoted(schema)} TO celltrial_owner, celltrial_app")
    for table in (*CLINICAL_TABLES, "audit", "alembic_version"):
        op.execute(f"ALTER TABLE {_quoted(table)} OWNER TO celltrial_owner")
    op.execute("ALTER FUNCTION audit_append_only() OWNER TO celltrial_owner")
    tables = ", ".join(_quoted(t) for t in CLINICAL_TABLES)
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO celltrial_app")
    op.execute("GRANT SELECT, INSERT ON audit TO celltrial_app")
    op.execute("GRANT SELECT ON alembic_version TO celltrial_app")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {_quoted(schema)} "
               "TO celltrial_app")


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    for table in DOMAIN_TABLES:
        op.add_column(table, sa.Column("version", sa.Integer(), nullable=False,
                                       server_default="1"))
    op.add_column("audit", sa.Column("hash", sa.String(length=64), nullable=True))
    if dialect == "sqlite":
        op.execute("DROP TRIGGER audit_no_update")
        _chain_existing(bind)
        op.execute(_SQLITE_NO_UPDATE)
        op.execute(_SQLITE_NO_REPLACE)
    elif dialect == "postgresql":
        op.execute("ALTER TABLE audit DISABLE TRIGGER audit_no_update_delete")
        _chain_existing(bind)
        op.execute("ALTER TABLE audit ENABLE TRIGGER audit_no_update_delete")
        _postgres_roles(bind)
    else:
        _chain_existing(bind)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER audit_no_replace")
    for table in DOMAIN_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("version")
    if dialect == "sqlite":
        # Dropping a column of audit would rebuild the table and lose its triggers.
        op.execute("ALTER TABLE audit DROP COLUMN hash")
    else:
        op.drop_column("audit", "hash")
