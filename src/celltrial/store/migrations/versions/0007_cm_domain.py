"""CM: concomitant and prior medications (SDTMIG 3.4, section 6.1, CM).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

- ``cm``: one row per medication record of a subject (tocilizumab, corticosteroids, anakinra,
  IVIG, antimicrobials, prior anticancer therapy...), with the columns every domain table has
  (``id``, ``STUDYID``, ``USUBJID``, the --SEQ key, ``version`` since 0003, ``voided`` since
  0004) and the foreign key to its subject's DM row. The variables are spelled out below as
  this revision's own frozen data, as 0001 does, so that a later edit to
  celltrial.store.domains needs a new revision.

On PostgreSQL, where migration 0003 created the roles, ``celltrial_owner`` owns the new table
and ``celltrial_app`` may read and write it (and use ``cm_id_seq``), as for every other
domain table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TYPES = {"t": sa.Text, "d": sa.Text, "i": sa.Integer, "f": sa.Double}

TABLE, SEQ = "cm", "CMSEQ"
VARIABLES = ("CMSEQ:i CMTRT:t CMDECOD:t CMCAT:t CMINDC:t CMDOSE:f CMDOSU:t CMROUTE:t "
             "CMSTDTC:d CMENDTC:d")


def upgrade() -> None:
    columns = [sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
               sa.Column("STUDYID", sa.Text(), nullable=False),
               sa.Column("USUBJID", sa.Text(), nullable=False)]
    for word in VARIABLES.split():
        name, kind = word.split(":")
        columns.append(sa.Column(name, _TYPES[kind](), nullable=name != SEQ))
    columns += [sa.Column("version", sa.Integer(), server_default="1", nullable=False),
                sa.Column("voided", sa.Text(), nullable=True)]
    op.create_table(
        TABLE, *columns,
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
        sa.UniqueConstraint("STUDYID", "USUBJID", SEQ,
                            name=op.f(f"uq_{TABLE}_STUDYID_USUBJID_{SEQ}")),
        sa.ForeignKeyConstraint(["STUDYID", "USUBJID"], ["dm.STUDYID", "dm.USUBJID"],
                                name=op.f(f"fk_{TABLE}_STUDYID_USUBJID_dm")),
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
            op.execute(f'ALTER TABLE "{TABLE}" OWNER TO celltrial_owner')
            op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON "{TABLE}" TO celltrial_app')
            op.execute(f"GRANT USAGE, SELECT ON SEQUENCE {TABLE}_id_seq TO celltrial_app")


def downgrade() -> None:
    op.drop_table(TABLE)
