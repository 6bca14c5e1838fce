"""Record, subject and study (database) locks: setting them, and refusing writes they forbid.

- A **record lock** freezes one clinical record: corrections, voids and deletes are refused.
- A **subject lock** freezes a subject's casebook: no new record, correction, void or delete
  for that subject.
- A **study (database) lock** makes the study read-only: every write path (imports, entries
  through the web forms and the API, corrections, voids, deletes, queries, source-data
  verification, record and subject locks) is refused until it is unlocked. A study is locked
  only when it has no open or answered query (ICH E6(R3) 3.16.1 / CDISC CDASH practice:
  database lock follows the resolution of every data query).

Locks are set and cleared by a data manager or an administrator
(:data:`celltrial.store.permissions.PERMISSIONS`); unlocking needs a reason; each change is
an audit row (21 CFR 11.10(e)). The refusal is checked inside the write transaction of every
write (:func:`check_study`, :func:`check_subject_locks`, :func:`check_record`, called by
``celltrial.store.records``), so no caller can get around it; it raises :class:`Locked`
(HTTP 423 in the web app) naming what is locked, by whom, when and why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from celltrial.errors import StoreError
from celltrial.store.audit import append_audit, audit_row, now, record_json
from celltrial.store.domains import Domain, domain_of
from celltrial.store.engine import Store, read_connection, write_transaction
from celltrial.store.permissions import actor_of, require_scope
from celltrial.store.schema import TABLES, DataQuery, RecordStatus, StudyLock, SubjectLock
from celltrial.store.studies import get_study


class Locked(StoreError):
    """A write refused because the record, its subject or its study is locked (HTTP 423);
    nothing was written."""

    code = "CT310"


@dataclass(frozen=True)
class LockInfo:
    """Who locked what, when (UTC) and why."""

    by: str
    at: dt.datetime
    reason: str | None


def stamp(at: dt.datetime) -> str:
    """``YYYY-MM-DD hh:mm UTC``."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def refusal(what: str, *, study: LockInfo | None = None, subject: LockInfo | None = None,
            record: LockInfo | None = None, study_id: str = "", usubjid: str = "",
            key: str = "") -> str | None:
    """The message refusing ``what`` (e.g. ``"correct LB USUBJID=S1;LBSEQ=2"``) under the
    locks given, the widest first; None when nothing is locked. Pure."""
    for level, lock, name in (("study", study, f"Study {study_id} (database lock)"),
                              ("subject", subject, f"Subject {usubjid}"),
                              ("record", record, f"Record {key}")):
        if lock is not None:
            why = f": {lock.reason}" if lock.reason else ""
            undo = ("the study is read-only until a data manager unlocks it"
                    if level == "study" else "a data manager must unlock it first")
            return (f"{name} is locked (by {lock.by}, {stamp(lock.at)}{why}); cannot {what}: "
                    f"{undo}; nothing was written")
    return None


def key_text(spec: Domain, usubjid: str, seq: int | None) -> str:
    """The audit key of a record: ``USUBJID=S1`` (DM) or ``USUBJID=S1;LBSEQ=2``."""
    return f"USUBJID={usubjid}" if spec.seq is None else f"USUBJID={usubjid};{spec.seq}={seq}"


# ---------------------------------------------------------------- reading
def study_lock(connection: sa.Connection, study_id: str) -> LockInfo | None:
    """The study's database lock, or None."""
    table = StudyLock.__table__
    row = connection.execute(sa.select(table).where(table.c.study_id == study_id)).first()
    return None if row is None else LockInfo(row.locked_by, row.locked_at, row.reason)


def subject_locks(connection: sa.Connection, study_id: str) -> dict[str, LockInfo]:
    """Locked subjects of a study by USUBJID."""
    table = SubjectLock.__table__
    return {row.usubjid: LockInfo(row.locked_by, row.locked_at, row.reason)
            for row in connection.execute(sa.select(table).where(
                table.c.study_id == study_id))}


def record_lock(connection: sa.Connection, study_id: str, domain: str, usubjid: str,
                seq: int | None) -> LockInfo | None:
    """The lock of one record, or None."""
    table = RecordStatus.__table__
    row = connection.execute(sa.select(table).where(
        table.c.study_id == study_id, table.c.domain == domain, table.c.usubjid == usubjid,
        table.c.seq == (seq or 0), table.c.locked_at.is_not(None))).first()
    return None if row is None else LockInfo(row.locked_by, row.locked_at, row.lock_reason)


def locks_of(store: Store, study_id: str) -> dict[str, Any]:
    """The study's locks: ``{"study": LockInfo | None, "subjects": {usubjid: LockInfo},
    "records": {(domain, usubjid, seq): LockInfo}}`` (seq 0 for DM)."""
    table = RecordStatus.__table__
    with read_connection(store.engine) as connection:
        records = {(r.domain, r.usubjid, r.seq): LockInfo(r.locked_by, r.locked_at,
                                                           r.lock_reason)
                   for r in connection.execute(sa.select(table).where(
                       table.c.study_id == study_id, table.c.locked_at.is_not(None)))}
        return {"study": study_lock(connection, study_id),
                "subjects": subject_locks(connection, study_id), "records": records}


# ---------------------------------------------------------------- refusing writes
def check_study(connection: sa.Connection, study_id: str, what: str) -> None:
    """Locked when the study's database is locked."""
    message = refusal(what, study=study_lock(connection, study_id), study_id=study_id)
    if message:
        raise Locked(message)


def check_subject_locks(connection: sa.Connection, study_id: str, subjects: Iterable[Any],
                   what: str, locked: dict[str, LockInfo] | None = None) -> None:
    """Locked when any of ``subjects`` is locked (``locked``: the study's subject locks,
    read once by a caller that checks many frames)."""
    locked = subject_locks(connection, study_id) if locked is None else locked
    if not locked:
        return
    for usubjid in sorted({s for s in subjects if s in locked}):
        raise Locked(refusal(what, subject=locked[usubjid], usubjid=usubjid) or "")


def check_record(connection: sa.Connection, study_id: str, spec: Domain, usubjid: str,
                 seq: int | None, what: str) -> None:
    """Locked when the study, the subject or the record is locked."""
    key = key_text(spec, usubjid, seq)
    message = refusal(f"{what} {spec.name} {key}", study=study_lock(connection, study_id),
                      subject=subject_locks(connection, study_id).get(usubjid),
                      record=record_lock(connection, study_id, spec.name, usubjid, seq),
                      study_id=study_id, usubjid=usubjid, key=f"{spec.name} {key}")
    if message:
        raise Locked(message)


# ---------------------------------------------------------------- locking
def _reason(reason: str | None, required: bool, what: str) -> str | None:
    text = (reason or "").strip()
    if required and not text:
        raise StoreError(f"Invalid `reason`: got `{reason!r}`, must say why the {what} is "
                         "unlocked (21 CFR 11.10(e))")
    return text or None


def record_state(connection: sa.Connection, study_id: str, spec: Domain, usubjid: str,
                   seq: int | None) -> dict[str, Any]:
    table = TABLES[spec.name]
    where = [table.c.STUDYID == study_id, table.c.USUBJID == usubjid]
    if spec.seq is not None:
        where.append(table.c[spec.seq] == int(seq or 0))
    row = connection.execute(sa.select(table.c.version, table.c.voided).where(*where)).first()
    if row is None:
        raise StoreError(f"Invalid `record`: got `{spec.name} {key_text(spec, usubjid, seq)}`"
                         f", must be a stored record of study {study_id}")
    return {"version": int(row.version), "voided": row.voided}


def set_record_lock(store: Store, study_id: str, domain: str, usubjid: str,
                    seq: int | None, *, locked: bool, user: str, reason: str | None = None,
                    source: str = "api") -> bool:
    """Lock (``locked=True``) or unlock one record; returns False when it already was so.
    Unlocking needs a reason. Refused while the study is locked."""
    spec = domain_of(domain)
    seq = None if spec.seq is None else int(seq or 0)
    text = _reason(reason, not locked, "record")
    table = RecordStatus.__table__
    get_study(store, study_id)
    with write_transaction(store.engine) as connection:
        actor = actor_of(connection, user, "lock")
        require_scope(connection, actor, study_id, usubjid)
        key = key_text(spec, usubjid, seq)
        check_study(connection, study_id, f"{'lock' if locked else 'unlock'} {spec.name} {key}")
        record_state(connection, study_id, spec, usubjid, seq)
        where = [table.c.study_id == study_id, table.c.domain == spec.name,
                 table.c.usubjid == usubjid, table.c.seq == (seq or 0)]
        row = connection.execute(sa.select(table).where(*where)).first()
        before = None if row is None else row.locked_at
        if (before is not None) == locked:
            return False
        at = now()
        values = ({"locked_at": at, "locked_by": actor.username, "lock_reason": text}
                  if locked else {"locked_at": None, "locked_by": None, "lock_reason": None})
        if row is None:
            connection.execute(table.insert(), {"study_id": study_id, "domain": spec.name,
                                                "usubjid": usubjid, "seq": seq or 0, **values})
        else:
            connection.execute(table.update().where(*where), values)
        append_audit(connection, audit_row(
            at=at, user=actor.username, study_id=study_id, table="record_status", key=key,
            action="update", field=f"{spec.name} locked", reason=text or "record locked",
            source=source, old=None if locked else stamp(before),
            new=stamp(at) if locked else None))
    return True


def set_subject_lock(store: Store, study_id: str, usubjid: str, *, locked: bool, user: str,
                     reason: str | None = None, source: str = "api") -> bool:
    """Lock or unlock a subject's casebook; returns False when it already was so. Unlocking
    needs a reason. Refused while the study is locked."""
    text = _reason(reason, not locked, "subject")
    table = SubjectLock.__table__
    get_study(store, study_id)
    with write_transaction(store.engine) as connection:
        actor = actor_of(connection, user, "lock")
        require_scope(connection, actor, study_id, usubjid)
        check_study(connection, study_id, f"{'lock' if locked else 'unlock'} subject {usubjid}")
        where = [table.c.study_id == study_id, table.c.usubjid == usubjid]
        row = connection.execute(sa.select(table).where(*where)).first()
        if (row is not None) == locked:
            return False
        at = now()
        key = f"USUBJID={usubjid}"
        if locked:
            connection.execute(table.insert(), {"study_id": study_id, "usubjid": usubjid,
                                                "locked_at": at, "locked_by": actor.username,
                                                "reason": text})
            append_audit(connection, audit_row(
                at=at, user=actor.username, study_id=study_id, table="subject_lock", key=key,
                action="insert", reason=text or "subject locked", source=source,
                new=record_json({"locked_by": actor.username, "locked_at": stamp(at)})))
        else:
            connection.execute(table.delete().where(*where))
            append_audit(connection, audit_row(
                at=at, user=actor.username, study_id=study_id, table="subject_lock", key=key,
                action="delete", reason=text, source=source,
                old=record_json({"locked_by": row.locked_by,
                                 "locked_at": stamp(row.locked_at), "reason": row.reason})))
    return True


def open_query_count(connection: sa.Connection, study_id: str) -> int:
    """Queries of the study not closed (open or answered)."""
    table = DataQuery.__table__
    return connection.execute(sa.select(sa.func.count()).select_from(table).where(
        table.c.study_id == study_id, table.c.status != "closed")).scalar_one()


def set_study_lock(store: Store, study_id: str, *, locked: bool, user: str,
                   reason: str | None = None, source: str = "api") -> bool:
    """Lock the study's database (read-only for every write path) or unlock it; returns
    False when it already was so. Locking is refused while a query is open or answered;
    unlocking needs a reason."""
    text = _reason(reason, not locked, "study database")
    table = StudyLock.__table__
    get_study(store, study_id)
    with write_transaction(store.engine) as connection:
        actor = actor_of(connection, user, "lock")
        row = connection.execute(sa.select(table).where(table.c.study_id == study_id)).first()
        if (row is not None) == locked:
            return False
        at = now()
        if locked:
            pending = open_query_count(connection, study_id)
            if pending:
                raise StoreError(f"Study {study_id} has {pending} query(ies) not closed: the "
                                 "monitor must close every query before the database is "
                                 "locked; nothing was written")
            connection.execute(table.insert(), {"study_id": study_id, "locked_at": at,
                                                "locked_by": actor.username, "reason": text})
            append_audit(connection, audit_row(
                at=at, user=actor.username, study_id=study_id, table="study_lock",
                key=study_id, action="insert", reason=text or "database lock",
                source=source,
                new=record_json({"locked_by": actor.username, "locked_at": stamp(at)})))
        else:
            connection.execute(table.delete().where(table.c.study_id == study_id))
            append_audit(connection, audit_row(
                at=at, user=actor.username, study_id=study_id, table="study_lock",
                key=study_id, action="delete", reason=text, source=source,
                old=record_json({"locked_by": row.locked_by,
                                 "locked_at": stamp(row.locked_at), "reason": row.reason})))
    return True
