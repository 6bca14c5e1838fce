"""The append-only audit trail: building its rows, guarding it, reading it.

Two locks keep it append-only (21 CFR 11.10(e); ICH E6(R3) section 4.2 on audit trails):
an ORM guard here refuses any update or delete of :class:`AuditRecord` through a session
(flushes and bulk ``update()``/``delete()`` statements alike), and database triggers created by
migration 0001 refuse UPDATE and DELETE on ``audit`` on SQLite and PostgreSQL (and TRUNCATE on
PostgreSQL), whatever client connects.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from celltrial.errors import StoreError
from celltrial.store.schema import AuditRecord

APPEND_ONLY = "the audit trail is append-only: audit rows cannot be updated or deleted"


def _refuse_changes(session: Session, _context: Any, _instances: Any) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditRecord) and (obj in session.deleted
                                             or session.is_modified(obj)):
            raise StoreError(APPEND_ONLY)


def _refuse_bulk(state: Any) -> None:
    if (state.is_update or state.is_delete) and state.statement.table.name == "audit":
        raise StoreError(APPEND_ONLY)


def guard_sessions(sessions: sessionmaker[Session]) -> None:
    """Attach the append-only guard to every session ``sessions`` makes."""
    sa.event.listen(sessions, "before_flush", _refuse_changes)
    sa.event.listen(sessions, "do_orm_execute", _refuse_bulk)


def now() -> dt.datetime:
    """The current instant in UTC (audit times are UTC)."""
    return dt.datetime.now(dt.UTC)


def text_of(value: Any) -> str | None:
    """A stored value as audit text (None stays None; whole floats print without ``.0``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def record_json(record: Mapping[str, Any]) -> str:
    """A record as compact JSON for insert/delete audit rows (missing values dropped)."""
    return json.dumps({k: v for k, v in record.items() if v is not None},
                      separators=(",", ":"), default=str)


def audit_row(*, at: dt.datetime, user: str, study_id: str | None, table: str, key: str,
              action: str, reason: str | None, source: str | None, field: str | None = None,
              old: Any = None, new: Any = None) -> dict[str, Any]:
    """One audit row as a mapping for a Core insert."""
    return {"at": at, "user": user, "study_id": study_id, "table": table, "record_key": key,
            "field": field, "old_value": old, "new_value": new, "reason": reason,
            "action": action, "source": source}


AUDIT_COLUMNS = ("id", "at", "user", "study_id", "table", "record_key", "field", "old_value",
                 "new_value", "reason", "action", "source")


def audit_trail(store: Any, study_id: str | None = None, *, table: str | None = None,
                record_key: str | None = None, user: str | None = None) -> pd.DataFrame:
    """The audit trail, oldest first, optionally filtered by study, table, record or user.

    Columns: id, at (UTC datetime), user, study_id, table, record_key, field, old_value,
    new_value, reason, action, source.
    """
    audit = AuditRecord.__table__
    query = sa.select(*[audit.c[name] for name in AUDIT_COLUMNS]).order_by(audit.c.id)
    for column, value in (("study_id", study_id), ("table", table),
                          ("record_key", record_key), ("user", user)):
        if value is not None:
            query = query.where(audit.c[column] == (value.lower() if column == "table"
                                                     else value))
    with store.engine.connect() as connection:
        rows = connection.execute(query).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=list(AUDIT_COLUMNS), dtype=object)
    frame["id"] = frame["id"].astype("int64")
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame
