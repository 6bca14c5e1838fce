"""Initial schema: study, site, user, append-only audit, and one table per SDTM domain.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

The domain tables are spelled out below as this revision's own frozen data (table, --SEQ,
"VARIABLE:type" with t text, d ISO 8601 date text, i integer, f double), so that later edits to
celltrial.store.domains need a new revision and never change what 0001 creates. Triggers make
``audit`` append-only on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TYPES = {"t": sa.Text, "d": sa.Text, "i": sa.Integer, "f": sa.Double}

DOMAIN_TABLES: list[tuple[str, str | None, str]] = [
    ("dm", None,
        "SUBJID:t SITEID:t AGE:f AGEU:t SEX:t DISEASE:t ARMCD:t ARM:t RFICDTC:d RFSTDTC:d "
        "RFPENDTC:d DTHDTC:d DTHFL:t"),
    ("sc", "SCSEQ",
        "SCSEQ:i SCTESTCD:t SCORRES:t SCORRESU:t SCDTC:d"),
    ("ex", "EXSEQ",
        "EXSEQ:i EXTRT:t EXFRACN:i EXDOSE:f EXDOSU:t EXDOSTOT:f EXVOL:f EXBAGN:i "
        "EXSTDTC:d"),
    ("ae", "AESEQ",
        "AESEQ:i AETERM:t AEDECOD:t AETOXGR:i AETOXSCL:t AESTDTC:d AEENDTC:d AESER:t "
        "AEREL:t AEOUT:t"),
    ("lb", "LBSEQ",
        "LBSEQ:i LBCAT:t LBTESTCD:t LBTEST:t LBSPEC:t LBORRES:t LBORRESU:t LBSTRESN:f "
        "LBSTRESU:t LBORNRLO:f LBORNRHI:f LBTOXGR:i LBDTC:d LBMETHOD:t"),
    ("vs", "VSSEQ",
        "VSSEQ:i VSTESTCD:t VSSTRESN:f VSSTRESU:t VSDTC:d"),
    ("xc", "XCSEQ",
        "XCSEQ:i XCDTC:d XCTEMP:f XCFEVMSK:t XCHYPOT:t XCOXY:t XCICE:i XCLOC:t XCSEIZ:t "
        "XCMOTOR:t XCEDEMA:t XCCRSGR:i XCICAGR:i"),
    ("rs", "RSSEQ",
        "RSSEQ:i RSTESTCD:t RSCAT:t RSORRES:t RSSTRESC:t RSDTC:d RSEVAL:t"),
    ("tu", "TUSEQ",
        "TUSEQ:i TULNKID:t TUTESTCD:t TUORRES:t TULOC:t TUDTC:d"),
    ("tr", "TRSEQ",
        "TRSEQ:i TRLNKID:t TRTESTCD:t TRSTRESN:f TRSTRESU:t TRDTC:d"),
    ("pc", "PCSEQ",
        "PCSEQ:i PCTESTCD:t PCSTRESN:f PCSTRESU:t PCORRES:t PCLLOQ:f PCSPEC:t PCDTC:d"),
    ("is", "ISSEQ",
        "ISSEQ:i ISTESTCD:t ISORRES:t ISSTRESC:t ISSTRESN:f ISDTC:d"),
    ("pr", "PRSEQ",
        "PRSEQ:i PRTRT:t PRSTDTC:d"),
    ("ds", "DSSEQ",
        "DSSEQ:i DSDECOD:t DSTERM:t DSSTDTC:d"),
]

_SQLITE_TRIGGERS = [
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN "
    "SELECT RAISE(ABORT, 'audit is append-only'); END",
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN "
    "SELECT RAISE(ABORT, 'audit is append-only'); END",
]
_POSTGRES_TRIGGERS = [
    "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "RAISE EXCEPTION 'audit is append-only'; END $$",
    "CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON audit "
    "FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
    "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
]


def upgrade() -> None:
    op.create_table(
        "study",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("protocol_version", sa.String(length=32), nullable=True),
        sa.Column("protocol_hash", sa.String(length=64), nullable=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study")),
    )
    op.create_table(
        "site",
        sa.Column("study_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["study_id"], ["study.id"], name=op.f("fk_site_study_id_study")),
        sa.PrimaryKeyConstraint("study_id", "site_id", name=op.f("pk_site")),
    )
    op.create_table(
        "user",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("site_id", sa.String(length=32), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('admin', 'investigator', 'coordinator', 'monitor', "
                           "'statistician')", name=op.f("ck_user_role")),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_user")),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user", sa.String(length=64), nullable=False),
        sa.Column("study_id", sa.String(length=64), nullable=True),
        sa.Column("table", sa.String(length=32), nullable=False),
        sa.Column("record_key", sa.Text(), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=True),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.CheckConstraint("action IN ('insert', 'update', 'delete')",
                           name=op.f("ck_audit_action")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit")),
    )
    op.create_index(op.f("ix_audit_study_id"), "audit", ["study_id"], unique=False)
    for table, seq, spec in DOMAIN_TABLES:
        columns = [sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
                   sa.Column("STUDYID", sa.Text(), nullable=False),
                   sa.Column("USUBJID", sa.Text(), nullable=False)]
        for word in spec.split():
            name, kind = word.split(":")
            columns.append(sa.Column(name, _TYPES[kind](), nullable=name != seq))
        if seq is None:
            keys = [sa.UniqueConstraint("STUDYID", "USUBJID",
                                        name=op.f(f"uq_{table}_STUDYID_USUBJID")),
                    sa.ForeignKeyConstraint(["STUDYID"], ["study.id"],
                                            name=op.f(f"fk_{table}_STUDYID_study")),
                    sa.ForeignKeyConstraint(["STUDYID", "SITEID"],
                                            ["site.study_id", "site.site_id"],
                                            name=op.f(f"fk_{table}_STUDYID_SITEID_site"))]
        else:
            keys = [sa.UniqueConstraint("STUDYID", "USUBJID", seq,
                                        name=op.f(f"uq_{table}_STUDYID_USUBJID_{seq}")),
                    sa.ForeignKeyConstraint(["STUDYID", "USUBJID"], ["dm.STUDYID", "dm.USUBJID"],
                                            name=op.f(f"fk_{table}_STUDYID_USUBJID_dm"))]
        op.create_table(table, *columns, sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
                        *keys)
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": _SQLITE_TRIGGERS, "postgresql": _POSTGRES_TRIGGERS}.get(dialect,
                                                                                       []):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_no_truncate ON audit")
        op.execute("DROP TRIGGER IF EXISTS audit_no_update_delete ON audit")
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
    elif dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    for table, _seq, _spec in reversed(DOMAIN_TABLES):
        op.drop_table(table)
    op.drop_index(op.f("ix_audit_study_id"), table_name="audit")
    op.drop_table("audit")
    op.drop_table("user")
    op.drop_table("site")
    op.drop_table("study")
