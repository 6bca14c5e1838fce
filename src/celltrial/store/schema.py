"""SQLAlchemy 2 models: study, site, user, session, login_throttle, audit, the monitoring
tables (data_query, record_status, subject_lock, study_lock; migration 0006), electronic
signatures and committee decisions (signature, committee_decision; migration 0008) and one
table per SDTM domain.

The domain tables are built from :data:`celltrial.store.domains.DOMAINS` (one column per SDTM
variable, upper-case names as in SDTM, ``id`` surrogate key, unique record key per study,
foreign key from every subject-level row to its DM row, ``version`` counting the record's
changes). The Alembic migrations ``versions/`` create the same schema; a test checks that
autogenerate finds no difference.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from celltrial.store.domains import DOMAINS, Domain, VarType

ROLES = ("admin", "investigator", "coordinator", "monitor", "statistician", "data_manager")
ACTIONS = ("insert", "update", "delete")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base; one MetaData for ORM classes and domain tables."""

    metadata = sa.MetaData(naming_convention=NAMING)


class Study(Base):
    """A study: id = protocol id, its title and the hash of the protocol version loaded."""

    __tablename__ = "study"
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    title: Mapped[str] = mapped_column(sa.Text)
    protocol_version: Mapped[str | None] = mapped_column(sa.String(32))
    protocol_hash: Mapped[str | None] = mapped_column(sa.String(64))
    registered_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))


class Site(Base):
    """A study site (SITEID within a study)."""

    __tablename__ = "site"
    study_id: Mapped[str] = mapped_column(sa.ForeignKey("study.id"), primary_key=True)
    site_id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(sa.Text)


class User(Base):
    """A person who may read or change data; the password is kept only as an argon2 hash."""

    __tablename__ = "user"
    username: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    site_id: Mapped[str | None] = mapped_column(sa.String(32))
    password_hash: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    # Migration 0005: account state for the web app (docs/web.md, "Sessions and logins").
    disabled_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    """Set while an administrator has disabled the account: no login, no session."""
    locked_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    """Set when too many consecutive logins failed; cleared by an administrator's unlock."""
    failed_logins: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    """Consecutive failed logins (0 after a successful login or an unlock)."""
    last_login_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # Migration 0008: the signer's printed name on electronic signatures (21 CFR 11.50(a)(1)).
    full_name: Mapped[str | None] = mapped_column(sa.Text)
    __table_args__ = (
        sa.CheckConstraint("role IN ('admin', 'investigator', 'coordinator', 'monitor', "
                           "'statistician', 'data_manager')", name="role"),
    )


class UserSession(Base):
    """A login session of the web app (migration 0005). The browser's cookie carries a random
    token; only its SHA-256 is stored here, so a copy of the table logs nobody in. A session
    is valid while not revoked (logout, account disabled, password reset), used within the
    idle timeout and younger than the absolute lifetime (celltrial.store.sessions)."""

    __tablename__ = "session"
    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    username: Mapped[str] = mapped_column(sa.ForeignKey("user.username"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    last_seen_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(sa.String(32))
    address: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(256))
    data: Mapped[str | None] = mapped_column(sa.Text)
    """The session's own small state as JSON (its CSRF token, the last entry saved)."""


class LoginThrottle(Base):
    """Failed logins per client address in the current window (migration 0005), kept in the
    store so that every worker process counts the same failures."""

    __tablename__ = "login_throttle"
    address: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    window_start: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    failures: Mapped[int] = mapped_column(sa.Integer)


class AuditRecord(Base):
    """One line of the append-only audit trail (who, when, table, record, field, old, new, why).

    Inserts keep one row per record (``field`` empty, ``new_value`` the record as JSON);
    updates keep one row per changed field; deletes one row per record (``old_value`` the
    record as JSON). Rows are never updated or deleted: an ORM guard and a database trigger
    refuse it (21 CFR 11.10(e), ICH E6(R3) 4.2: audit trails must not obscure prior values).
    """

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    user: Mapped[str] = mapped_column(sa.String(64))
    study_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    table: Mapped[str] = mapped_column(sa.String(32))
    record_key: Mapped[str] = mapped_column(sa.Text)
    field: Mapped[str | None] = mapped_column(sa.String(32))
    old_value: Mapped[str | None] = mapped_column(sa.Text)
    new_value: Mapped[str | None] = mapped_column(sa.Text)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    action: Mapped[str] = mapped_column(sa.String(8))
    source: Mapped[str | None] = mapped_column(sa.Text)
    hash: Mapped[str | None] = mapped_column(sa.String(64))
    """SHA-256 chaining this row to the one before (celltrial.store.audit.chain_hash)."""
    __table_args__ = (
        sa.CheckConstraint("action IN ('insert', 'update', 'delete')", name="action"),
    )


class Submission(Base):
    """One accepted data-entry submission, by its idempotency key (a form's hidden field or
    the API's ``Idempotency-Key`` header): a repeated submit finds it and writes nothing."""

    __tablename__ = "submission"
    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user: Mapped[str] = mapped_column(sa.String(64))
    study_id: Mapped[str] = mapped_column(sa.String(64))
    domain: Mapped[str] = mapped_column(sa.String(8))
    record_key: Mapped[str] = mapped_column(sa.Text)
    at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))


QUERY_STATUSES = ("open", "answered", "closed")


class DataQuery(Base):
    """A monitor's query on a record or one of its fields (migration 0006;
    celltrial.store.queries). Its current state is kept here; every step (raised, answered,
    closed, re-opened) is an audit row of table ``data_query``, key
    ``query=<id>;USUBJID=<subject>``."""

    __tablename__ = "data_query"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[str] = mapped_column(sa.ForeignKey("study.id"), index=True)
    usubjid: Mapped[str] = mapped_column(sa.String(64))
    domain: Mapped[str] = mapped_column(sa.String(8))
    seq: Mapped[int | None] = mapped_column(sa.Integer)
    """The record's --SEQ (None for DM)."""
    field: Mapped[str | None] = mapped_column(sa.String(32))
    """The queried variable, or None for the whole record."""
    status: Mapped[str] = mapped_column(sa.String(16))
    text: Mapped[str] = mapped_column(sa.Text)
    raised_by: Mapped[str] = mapped_column(sa.String(64))
    raised_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    answer: Mapped[str | None] = mapped_column(sa.Text)
    answered_by: Mapped[str | None] = mapped_column(sa.String(64))
    answered_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    closed_by: Mapped[str | None] = mapped_column(sa.String(64))
    closed_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(sa.Text)
    """The monitor's last word: why it was closed or re-opened."""
    __table_args__ = (
        sa.CheckConstraint("status IN ('open', 'answered', 'closed')", name="status"),
    )


class RecordStatus(Base):
    """Source-data verification and lock of one clinical record (migration 0006;
    celltrial.store.sdv, celltrial.store.locks). ``seq`` is 0 for a DM record."""

    __tablename__ = "record_status"
    study_id: Mapped[str] = mapped_column(sa.ForeignKey("study.id"), primary_key=True)
    domain: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    usubjid: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    sdv_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    sdv_by: Mapped[str | None] = mapped_column(sa.String(64))
    sdv_version: Mapped[int | None] = mapped_column(sa.Integer)
    """The record version the monitor verified (a later correction makes it stale)."""
    locked_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    locked_by: Mapped[str | None] = mapped_column(sa.String(64))
    lock_reason: Mapped[str | None] = mapped_column(sa.Text)


class SubjectLock(Base):
    """A subject whose records may no longer change (migration 0006)."""

    __tablename__ = "subject_lock"
    study_id: Mapped[str] = mapped_column(sa.ForeignKey("study.id"), primary_key=True)
    usubjid: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    locked_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    locked_by: Mapped[str] = mapped_column(sa.String(64))
    reason: Mapped[str | None] = mapped_column(sa.Text)


class StudyLock(Base):
    """A study whose database is locked: read-only for every write path (migration 0006)."""

    __tablename__ = "study_lock"
    study_id: Mapped[str] = mapped_column(sa.ForeignKey("study.id"), primary_key=True)
    locked_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    locked_by: Mapped[str] = mapped_column(sa.String(64))
    reason: Mapped[str | None] = mapped_column(sa.Text)


SIGNED_OBJECTS = ("record", "casebook", "decision")
SIGNATURE_MEANINGS = ("authored", "reviewed", "approved")
COMMITTEE_ACTIONS = ("escalate", "stay", "de-escalate", "stop")


class Signature(Base):
    """An electronic signature (migration 0008; celltrial.store.signatures; 21 CFR 11.50 and
    11.200): who signed (user name, printed full name, role), when (UTC), what it means, and
    the SHA-256 of the signed object's content at signing. The object is a clinical record
    (``object_key`` ``LB USUBJID=S1;LBSEQ=2``), a subject's casebook (``USUBJID=S1``) or a
    committee decision (``decision=3``). A signature whose object no longer has that hash is
    shown as broken. Rows are only ever inserted (each with an audit row)."""

    __tablename__ = "signature"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[str] = mapped_column(sa.ForeignKey("study.id"), index=True)
    object_type: Mapped[str] = mapped_column(sa.String(16))
    object_key: Mapped[str] = mapped_column(sa.Text)
    usubjid: Mapped[str | None] = mapped_column(sa.String(64))
    meaning: Mapped[str] = mapped_column(sa.String(16))
    username: Mapped[str] = mapped_column(sa.String(64))
    full_name: Mapped[str] = mapped_column(sa.Text)
    role: Mapped[str] = mapped_column(sa.String(16))
    signed_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    __table_args__ = (
        sa.CheckConstraint("object_type IN ('record', 'casebook', 'decision')",
                           name="object_type"),
        sa.CheckConstraint("meaning IN ('authored', 'reviewed', 'approved')", name="meaning"),
    )


class CommitteeDecision(Base):
    """A dose-escalation committee decision (migration 0008; celltrial.store.committee): the
    cohort reviewed, the design's recommendation at that moment, the committee's action and
    the dose level it opens (none for stop), the reason when it differs from the
    recommendation, the data it was taken on (``basis``, JSON) and the SHA-256 of all that
    (what its members' signatures bind to). Rows are only ever inserted."""

    __tablename__ = "committee_decision"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[str] = mapped_column(sa.ForeignKey("study.id"), index=True)
    cohort: Mapped[int | None] = mapped_column(sa.Integer)
    current_dose: Mapped[int | None] = mapped_column(sa.Integer)
    recommended_action: Mapped[str] = mapped_column(sa.String(16))
    recommended_dose: Mapped[int | None] = mapped_column(sa.Integer)
    recommended_reason: Mapped[str] = mapped_column(sa.Text)
    action: Mapped[str] = mapped_column(sa.String(16))
    dose: Mapped[int | None] = mapped_column(sa.Integer)
    dose_level: Mapped[str | None] = mapped_column(sa.String(32))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    basis: Mapped[str] = mapped_column(sa.Text)
    enrolled_before: Mapped[int] = mapped_column(sa.Integer)
    """Subjects enrolled (DM.ARMCD set) when the decision was recorded: the cohort it opens
    is counted from there."""
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    recorded_by: Mapped[str] = mapped_column(sa.String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))
    __table_args__ = (
        sa.CheckConstraint("action IN ('escalate', 'stay', 'de-escalate', 'stop')",
                           name="action"),
    )


SQL_TYPES: dict[VarType, type[sa.types.TypeEngine]] = {
    "text": sa.Text, "date": sa.Text, "int": sa.Integer, "float": sa.Double,
}


def _domain_table(domain: Domain) -> sa.Table:
    columns: list[sa.SchemaItem] = [sa.Column("id", sa.Integer, primary_key=True,
                                              autoincrement=True)]
    for var in domain.variables:
        nullable = var.name not in ("STUDYID", "USUBJID", domain.seq)
        columns.append(sa.Column(var.name, SQL_TYPES[var.type](), nullable=nullable))
    # Optimistic concurrency: a correction names the version it saw (records.update_record).
    columns.append(sa.Column("version", sa.Integer, nullable=False, server_default="1"))
    # "Entered in error": the reason a record was voided (kept, audited, left out of reads).
    columns.append(sa.Column("voided", sa.Text, nullable=True))
    if domain.seq is None:
        columns += [sa.UniqueConstraint("STUDYID", "USUBJID"),
                    sa.ForeignKeyConstraint(["STUDYID"], ["study.id"]),
                    sa.ForeignKeyConstraint(["STUDYID", "SITEID"],
                                            ["site.study_id", "site.site_id"])]
    else:
        columns += [sa.UniqueConstraint("STUDYID", "USUBJID", domain.seq),
                    sa.ForeignKeyConstraint(["STUDYID", "USUBJID"],
                                            ["dm.STUDYID", "dm.USUBJID"])]
    return sa.Table(domain.table, Base.metadata, *columns)


TABLES: dict[str, sa.Table] = {name: _domain_table(d) for name, d in DOMAINS.items()}
"""SQL table of each domain, by domain name."""

metadata = Base.metadata
