"""The append-only audit trail: building its rows, chaining them, guarding it, reading it.

What keeps it append-only (21 CFR 11.10(e); ICH E6(R3) section 4.2 on audit trails):

- an ORM guard here refuses any update or delete of :class:`AuditRecord` through a session
  (flushes and bulk ``update()``/``delete()`` statements alike), and any insert that does not
  go through :func:`append_audit`;
- database triggers (migrations 0001 and 0003) refuse UPDATE and DELETE on ``audit`` on SQLite
  and PostgreSQL, TRUNCATE on PostgreSQL, and on SQLite an INSERT that reuses an existing id
  (``REPLACE INTO`` / ``INSERT OR REPLACE`` would otherwise rewrite a row without firing the
  delete trigger: sqlite.org/lang_conflict.html);
- on PostgreSQL the application connects as ``celltrial_app``, a role that owns nothing and
  may only INSERT and SELECT on ``audit`` (migration 0003; docs/store.md);
- every row carries ``hash`` = SHA-256 over the previous row's hash and the row's own fields
  (:func:`chain_hash`), so an edited, deleted or forged row breaks the chain and
  :func:`verify_audit` (``celltrial db verify-audit``) names the first broken row.

Rows are appended only by :func:`append_audit`, inside a :func:`write_transaction
<celltrial.store.engine.write_transaction>` (which serializes writers), so the chain follows
the id order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from celltrial.errors import StoreError
from celltrial.store.schema import AuditRecord

APPEND_ONLY = "the audit trail is append-only: audit rows cannot be updated or deleted"


def _refuse_changes(session: Session, _context: Any, _instances: Any) -> None:
    if any(isinstance(obj, AuditRecord) for obj in session.new):
        raise StoreError("audit rows are appended only by celltrial.store.audit.append_audit "
                         "(inside write_transaction), which chains them")
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


def number_ranges(numbers: Sequence[int]) -> str:
    """Whole numbers as sorted ranges: ``[1, 2, 3, 5, 9, 10]`` -> ``"1-3,5,9-10"``.

    A NumPy integer array is taken by array operations (the same text)."""
    if isinstance(numbers, np.ndarray):
        if not len(numbers):
            return ""
        unique = np.sort(numbers.astype(np.int64))
        unique = unique[np.concatenate(([True], np.diff(unique) != 0))]
        cut = np.flatnonzero(np.diff(unique) != 1) + 1
        starts = unique[np.concatenate(([0], cut))].tolist()
        ends = unique[np.concatenate((cut - 1, [len(unique) - 1]))].tolist()
        return ",".join(str(a) if a == b else f"{a}-{b}"
                        for a, b in zip(starts, ends, strict=True))
    values = sorted(set(numbers))
    parts: list[str] = []
    start = previous = None
    for value in values:
        if previous is not None and value == previous + 1:
            previous = value
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = value
    if start is not None:
        parts.append(str(start) if start == previous else f"{start}-{previous}")
    return ",".join(parts)


_RANGES = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def in_ranges(text: str, number: int) -> bool:
    """Whether ``number`` is in ranges written by :func:`number_ranges` (False for other
    text)."""
    if not _RANGES.match(text):
        return False
    for part in text.split(","):
        low, _, high = part.partition("-")
        if int(low) <= number <= int(high or low):
            return True
    return False


RECORDS_HASH = "records-v1"
"""Format of :func:`records_hash` (frozen: stored audit rows depend on it)."""


def records_hash(variables: Sequence[tuple[str, str]], columns: Mapping[str, Sequence[Any]],
                 positions: Sequence[int]) -> str:
    """SHA-256 (hex) of the records at ``positions`` of ``columns`` (format ``records-v1``).

    ``variables`` gives (name, type) of every variable of the domain in SDTM order; for each
    one the hash takes the name in UTF-8, a NUL byte, the payload's length (8 bytes, big
    endian) and the payload: for ``float`` variables the values as IEEE 754 binary64, big
    endian, NaN for a missing value (stored numbers are finite); for the others the values as
    a compact JSON array (ASCII, ``null`` for missing). Values are the stored Python values
    (``str``, ``int``, ``float`` or None), in the order of ``positions``. Column-wise, so that
    a 25,000-row chunk hashes in milliseconds.
    """
    import operator

    digest = hashlib.sha256()
    picked = list(positions)
    take = operator.itemgetter(*picked) if picked else None
    for name, kind in variables:
        column = columns[name]
        values: Any = () if take is None else take(column)
        if len(picked) == 1:
            values = (values,)
        if kind == "float":
            payload = np.array(values, dtype=">f8").tobytes()
        else:
            payload = json.dumps(list(values), separators=(",", ":")).encode("ascii")
        digest.update(name.encode("utf-8") + b"\x00" + len(payload).to_bytes(8, "big")
                      + payload)
    return digest.hexdigest()


class RecordsHasher:
    """:func:`records_hash` of many sets of positions of the same columns (one per subject of
    an import chunk): each column is turned into an array once (binary64 for ``float``
    variables, Python objects for the others), so each set costs array takes, not a pass
    over the whole column. Gives exactly :func:`records_hash`'s digest."""

    def __init__(self, variables: Sequence[tuple[str, str]],
                 columns: Mapping[str, Sequence[Any]]) -> None:
        self._columns: list[tuple[bytes, str, np.ndarray]] = []
        for name, kind in variables:
            values = columns[name]
            if kind == "float":
                array = np.array(values, dtype=">f8")
                form = "binary64"
            else:
                array = np.empty(len(values), dtype=object)
                array[:] = values
                form = _plain_form(values, kind)
            self._columns.append((name.encode("utf-8") + b"\x00", form, array))

    def __call__(self, positions: np.ndarray) -> str:
        digest = hashlib.sha256()
        some = len(positions) > 0
        for label, form, array in self._columns:
            if form == "binary64":
                payload = array[positions].tobytes()
            elif form == "text" and some:  # the JSON of strings that need no escape
                payload = ('["' + '","'.join(array[positions].tolist()) + '"]').encode("ascii")
            elif form == "int" and some:
                payload = ("[" + ",".join(map(str, array[positions].tolist())) + "]").encode(
                    "ascii")
            else:
                payload = json.dumps(array[positions].tolist(),
                                     separators=(",", ":")).encode("ascii")
            digest.update(label + len(payload).to_bytes(8, "big") + payload)
        return digest.hexdigest()


def _plain_form(values: Sequence[Any], kind: str) -> str:
    """``"text"`` when every value is a ``str`` JSON writes as is between quotes (printable
    ASCII but ``"`` and ``\\``: what ``json.dumps`` escapes), ``"int"`` for an ``int``
    variable without a missing value, else ``"json"``."""
    if kind == "int":
        return "json" if None in values or any(type(v) is not int for v in values) else "int"
    try:
        joined = "".join(values)
    except TypeError:  # a missing value (None)
        return "json"
    plain = (joined.isascii() and joined.isprintable() and '"' not in joined
             and "\\" not in joined)
    return "text" if plain else "json"


CHAINED = ("at", "user", "study_id", "table", "record_key", "field", "old_value",
           "new_value", "reason", "action", "source")
"""The fields of an audit row that its hash covers, in hashing order (format v1: frozen)."""
GENESIS = "0" * 64
"""The 'previous hash' of the first audit row."""


def _canonical(name: str, value: Any) -> Any:
    if name == "at" and isinstance(value, dt.datetime):
        # SQLite gives back naive UTC, PostgreSQL aware: hash both as naive UTC, microseconds.
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ", timespec="microseconds")
    return value


def chain_hash(previous: str, row: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the previous row's hash and this row's :data:`CHAINED` fields.

    The fields are hashed as one compact JSON array ``[previous, at, user, ...]`` with ``at``
    as naive UTC ``YYYY-MM-DD hh:mm:ss.ffffff`` (format v1; never change it: stored hashes
    depend on it).
    """
    data = [previous, *(_canonical(name, row.get(name)) for name in CHAINED)]
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _head(connection: sa.Connection) -> str:
    audit = AuditRecord.__table__
    last = connection.execute(sa.select(audit.c.hash).order_by(audit.c.id.desc()).limit(1)
                              ).scalar_one_or_none()
    return last or GENESIS


def append_audit(connection: sa.Connection, rows: Mapping[str, Any] | Sequence[Mapping[str, Any]]
                 ) -> int:
    """Append audit rows (from :func:`audit_row`) to the chain; returns how many.

    Must run inside :func:`celltrial.store.engine.write_transaction`, which holds the store's
    write lock, so that no other transaction appends between reading the chain's head and
    committing.
    """
    batch = [rows] if isinstance(rows, Mapping) else list(rows)
    if not batch:
        return 0
    previous = _head(connection)
    chained: list[tuple[Any, ...]] = []
    for row in batch:
        at = row["at"]
        if isinstance(at, dt.datetime) and at.tzinfo is not None:
            at = at.astimezone(dt.UTC)
        # Microsecond precision is what both backends store, so the hash reads back the same.
        full = {**row, "at": at}
        previous = chain_hash(previous, full)
        chained.append((*(full.get(name) for name in CHAINED), previous))
    _insert_rows(connection, chained)
    return len(chained)


def _insert_rows(connection: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Audit rows (values in CHAINED order, then the hash) into ``audit``: ``COPY FROM STDIN``
    on PostgreSQL, one prepared executemany on SQLite (``at`` in SQLAlchemy's SQLite text
    form, naive UTC), a Core insert elsewhere."""
    names = (*CHAINED, "hash")
    dialect = connection.dialect.name
    if dialect == "postgresql":
        columns = ", ".join(f'"{n}"' for n in names)
        import psycopg

        cursor = connection.connection.driver_connection.cursor()
        try:
            with cursor.copy(f"COPY audit ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as exc:
            # the primary message only: a DETAIL line would quote the row (patient data)
            raise StoreError(f"The database refused the audit rows: "
                             f"{exc.diag.message_primary}; nothing was written") from None
        finally:
            cursor.close()
    elif dialect == "sqlite":
        columns = ", ".join(f'"{n}"' for n in names)
        marks = ", ".join("?" for _ in names)
        text = [(_sqlite_time(row[0]), *row[1:]) for row in rows]
        connection.exec_driver_sql(f"INSERT INTO audit ({columns}) VALUES ({marks})", text)
    else:
        connection.execute(AuditRecord.__table__.insert(),
                           [dict(zip(names, row, strict=True)) for row in rows])


def _sqlite_time(at: Any) -> Any:
    if isinstance(at, dt.datetime):
        if at.tzinfo is not None:
            at = at.astimezone(dt.UTC).replace(tzinfo=None)
        return at.strftime("%Y-%m-%d %H:%M:%S.%f")
    return at


@dataclass(frozen=True)
class AuditCheck:
    """What :func:`verify_audit` found: rows checked and the first broken row, if any."""

    rows: int
    broken_id: int | None = None
    problem: str | None = None
    head: str = GENESIS

    @property
    def intact(self) -> bool:
        """True when every row's hash matches its fields and its predecessor."""
        return self.broken_id is None


def verify_audit(store: Any) -> AuditCheck:
    """Recompute the hash chain over every audit row, in id order (streamed).

    Names the first row whose stored hash differs from the recomputed one: that row was
    edited, or a row before it was deleted or inserted out of the application's path. Keep
    the printed ``head`` hash elsewhere (e.g. with each data cut) to also detect a rewrite of
    the whole chain from some row on.
    """
    audit = AuditRecord.__table__
    query = sa.select(audit.c.id, audit.c.hash, *[audit.c[n] for n in CHAINED]).order_by(
        audit.c.id)
    previous, count = GENESIS, 0
    with store.engine.connect() as connection:
        for row in connection.execution_options(yield_per=5000).execute(query):
            count += 1
            mapping = row._mapping
            expected = chain_hash(previous, mapping)
            if mapping["hash"] != expected:
                problem = ("no hash" if mapping["hash"] is None else
                           "its fields or its place in the chain do not match its hash")
                return AuditCheck(count, int(mapping["id"]), problem, previous)
            previous = expected
    return AuditCheck(count, head=previous)


_SEQ_KEY = re.compile(r"^(USUBJID=.*;[A-Z]{2}SEQ=)(\d+)$")
"""A record key with --SEQ: (everything up to the number, the number)."""

AUDIT_COLUMNS = ("id", "at", "user", "study_id", "table", "record_key", "field", "old_value",
                 "new_value", "reason", "action", "source")


def audit_trail(store: Any, study_id: str | None = None, *, table: str | None = None,
                record_key: str | None = None, user: str | None = None) -> pd.DataFrame:
    """The audit trail, oldest first, optionally filtered by study, table, record or user.

    Columns: id, at (UTC datetime), user, study_id, table, record_key, field, old_value,
    new_value, reason, action, source.

    ``record_key`` of one record (``USUBJID=S1;LBSEQ=7``) also finds the import's row that
    wrote it with the subject's other records of a chunk (``USUBJID=S1;LBSEQ=1-500``; see
    :func:`celltrial.store.records.write_chunks`), so the record's history starts with the
    import that created it.
    """
    audit = AuditRecord.__table__
    query = sa.select(*[audit.c[name] for name in AUDIT_COLUMNS]).order_by(audit.c.id)
    grouped = _SEQ_KEY.match(record_key) if record_key is not None else None
    for column, value in (("study_id", study_id), ("table", table),
                          ("record_key", record_key), ("user", user)):
        if value is not None:
            if column == "record_key" and grouped is not None:
                query = query.where(audit.c.record_key.startswith(grouped.group(1),
                                                                   autoescape=True))
                continue
            query = query.where(audit.c[column] == (value.lower() if column == "table"
                                                     else value))
    with store.engine.connect() as connection:
        rows = connection.execute(query).all()
    if grouped is not None:
        prefix, number = grouped.group(1), int(grouped.group(2))
        rows = [r for r in rows if r.record_key == record_key or (
            r.record_key.startswith(prefix) and r.action == "insert"
            and in_ranges(r.record_key[len(prefix):], number))]
    frame = pd.DataFrame([tuple(r) for r in rows], columns=list(AUDIT_COLUMNS), dtype=object)
    frame["id"] = frame["id"].astype("int64")
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame
