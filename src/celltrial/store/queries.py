"""Data queries (data clarification requests): raised by a monitor on a record or one of its
fields, answered by the site (or settled by correcting the record), closed or re-opened by
the monitor.

ICH E6(R3) section 3.11.4 (the monitor communicates data discrepancies to the investigator's
site and follows them to resolution) and 21 CFR 11.10(e) (every step attributable and dated
in the audit trail). Life cycle, as data (:data:`TRANSITIONS`):

====================  ==========  ===================================================
from                  action      to (who)
====================  ==========  ===================================================
(new)                 raise       open (monitor)
open                  answer      answered (investigator, coordinator of the site)
open, answered        close       closed (monitor; an open query closed unanswered when
                                  raised in error, with a note)
answered, closed      reopen      open (monitor; a note saying why is required)
====================  ==========  ===================================================

The site's answer may come with a correction of the record (the web app runs the correction,
``celltrial.store.update_record`` with the version read, and the answer in one transaction).
Each step is one audit row (table ``data_query``, key ``query=<id>;USUBJID=<subject>``: insert
with the query as JSON when raised, then an update of ``status`` whose reason is the answer or
note). The roles and site scope come from :mod:`celltrial.store.permissions`; a locked study
refuses every step (:mod:`celltrial.store.locks`).
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from celltrial.errors import StoreError
from celltrial.store.audit import append_audit, audit_row, audit_trail, now, record_json
from celltrial.store.domains import domain_of
from celltrial.store.engine import Store, read_connection, write_transaction
from celltrial.store.locks import check_study, key_text, record_state, stamp
from celltrial.store.permissions import actor_of, require_scope
from celltrial.store.schema import TABLES, DataQuery
from celltrial.store.spreadsheet import neutralise_frame
from celltrial.store.studies import get_study

TRANSITIONS: dict[tuple[str, str], str] = {
    ("open", "answer"): "answered",
    ("open", "close"): "closed",
    ("answered", "close"): "closed",
    ("answered", "reopen"): "open",
    ("closed", "reopen"): "open",
}
"""(status, action) -> the status after it; any other pair is refused."""

STATUS_LABELS = {"open": "open (awaiting the site)", "answered": "answered (awaiting the monitor)",
                 "closed": "closed"}
MAX_TEXT = 4000


@dataclass(frozen=True)
class Query:
    """A query as stored, with the site of its subject."""

    id: int
    study_id: str
    usubjid: str
    domain: str
    seq: int | None
    field: str | None
    status: str
    text: str
    raised_by: str
    raised_at: dt.datetime
    answer: str | None
    answered_by: str | None
    answered_at: dt.datetime | None
    closed_by: str | None
    closed_at: dt.datetime | None
    note: str | None
    site_id: str | None

    @property
    def record(self) -> str:
        """``LB USUBJID=S1;LBSEQ=2`` (and ``, field LBSTRESN``)."""
        spec = domain_of(self.domain)
        where = f"{self.domain} {key_text(spec, self.usubjid, self.seq)}"
        return where + (f", field {self.field}" if self.field else "")


def next_status(status: str, action: str) -> str:
    """The status after ``action`` on a query in ``status``; StoreError when the life cycle
    does not allow it. Pure."""
    after = TRANSITIONS.get((status, action))
    if after is None:
        allowed = sorted(a for (s, a) in TRANSITIONS if s == status)
        raise StoreError(f"Invalid `action`: got `{action!r}` on a query that is {status}, "
                         f"must be one of {allowed}; nothing was written")
    return after


def _text(value: str | None, what: str, *, required: bool) -> str | None:
    text = (value or "").strip()
    if required and not text:
        raise StoreError(f"Invalid `{what}`: got `{value!r}`, must say something (required)")
    if len(text) > MAX_TEXT:
        raise StoreError(f"Invalid `{what}`: got {len(text)} characters, must be at most "
                         f"{MAX_TEXT}")
    return text or None


def _audit_key(query_id: int, usubjid: str) -> str:
    return f"query={query_id};USUBJID={usubjid}"


def raise_query(store: Store, study_id: str, domain: str, usubjid: str, seq: int | None,
                text: str, *, user: str, field: str | None = None,
                source: str = "api") -> Query:
    """A monitor raises a query on a record (``field`` None) or one of its variables;
    returns it (status open)."""
    spec = domain_of(domain)
    seq = None if spec.seq is None else int(seq or 0)
    body = _text(text, "query", required=True)
    if field is not None and field not in spec.columns:
        raise StoreError(f"Invalid `field`: got `{field!r}`, must be a variable of "
                         f"{spec.name} ({', '.join(spec.columns)})")
    table = DataQuery.__table__
    get_study(store, study_id)
    with write_transaction(store.engine) as connection:
        actor = actor_of(connection, user, "query.raise")
        require_scope(connection, actor, study_id, usubjid)
        check_study(connection, study_id, "raise a query")
        state = record_state(connection, study_id, spec, usubjid, seq)
        if state["voided"] is not None:
            raise StoreError(f"{spec.name} {key_text(spec, usubjid, seq)} was voided as "
                             "entered in error; it cannot be queried")
        at = now()
        values = {"study_id": study_id, "usubjid": usubjid, "domain": spec.name, "seq": seq,
                  "field": field, "status": "open", "text": body, "raised_by": actor.username,
                  "raised_at": at}
        query_id = connection.execute(table.insert().returning(table.c.id), values).scalar_one()
        append_audit(connection, audit_row(
            at=at, user=actor.username, study_id=study_id, table="data_query",
            key=_audit_key(query_id, usubjid), action="insert", reason=body, source=source,
            new=record_json({**values, "raised_at": stamp(at),
                             "record": f"{spec.name} {key_text(spec, usubjid, seq)}",
                             "version": state["version"]})))
    return get_query(store, study_id, query_id)


def _step(store: Store, study_id: str, query_id: int, action: str, *, user: str,
          message: str | None, source: str) -> Query:
    table = DataQuery.__table__
    get_study(store, study_id)
    with write_transaction(store.engine) as connection:
        actor = actor_of(connection, user, f"query.{action}")
        row = connection.execute(sa.select(table).where(
            table.c.id == int(query_id), table.c.study_id == study_id)).first()
        if row is None:
            raise StoreError(f"Invalid `query`: got `{query_id!r}`, must be a query of study "
                             f"{study_id}")
        require_scope(connection, actor, study_id, row.usubjid)
        check_study(connection, study_id, f"{action} a query")
        after = next_status(row.status, action)
        at = now()
        if action == "answer":
            values = {"answer": message, "answered_by": actor.username, "answered_at": at}
        elif action == "close":
            values = {"closed_by": actor.username, "closed_at": at, "note": message}
        else:
            values = {"closed_by": None, "closed_at": None, "note": message}
        connection.execute(table.update().where(table.c.id == row.id),
                           {"status": after, **values})
        append_audit(connection, audit_row(
            at=at, user=actor.username, study_id=study_id, table="data_query",
            key=_audit_key(row.id, row.usubjid), action="update", field="status",
            old=row.status, new=after, source=source,
            reason=message or f"query {'closed' if action == 'close' else action}"))
    return get_query(store, study_id, int(query_id))


def answer_query(store: Store, study_id: str, query_id: int, answer: str, *, user: str,
                 source: str = "api") -> Query:
    """The site (investigator or coordinator of the subject's site) answers an open query."""
    return _step(store, study_id, query_id, "answer", user=user,
                 message=_text(answer, "answer", required=True), source=source)


def close_query(store: Store, study_id: str, query_id: int, *, user: str,
                note: str | None = None, source: str = "api") -> Query:
    """The monitor closes an answered query (or an open one raised in error, with a note
    saying so)."""
    message = _text(note, "note", required=False)
    return _step(store, study_id, query_id, "close", user=user, message=message,
                 source=source)


def reopen_query(store: Store, study_id: str, query_id: int, note: str, *, user: str,
                 source: str = "api") -> Query:
    """The monitor re-opens an answered or closed query, saying why."""
    return _step(store, study_id, query_id, "reopen", user=user,
                 message=_text(note, "note", required=True), source=source)


def _select(study_id: str) -> Any:
    table, dm = DataQuery.__table__, TABLES["DM"]
    return sa.select(table, dm.c.SITEID).join(dm, sa.and_(
        dm.c.STUDYID == table.c.study_id, dm.c.USUBJID == table.c.usubjid)).where(
        table.c.study_id == study_id).order_by(table.c.id)


def _query(row: Any) -> Query:
    data = dict(row._mapping)
    data["site_id"] = data.pop("SITEID")
    return Query(**data)


def get_query(store: Store, study_id: str, query_id: int) -> Query:
    """One query of a study; StoreError when there is none."""
    table = DataQuery.__table__
    with read_connection(store.engine) as connection:
        row = connection.execute(_select(study_id).where(table.c.id == int(query_id))).first()
    if row is None:
        raise StoreError(f"Invalid `query`: got `{query_id!r}`, must be a query of study "
                         f"{study_id}")
    return _query(row)


def list_queries(store: Store, study_id: str, *, usubjid: str | None = None,
                 statuses: tuple[str, ...] | None = None) -> list[Query]:
    """The study's queries, oldest first, optionally of one subject and in some statuses."""
    table = DataQuery.__table__
    query = _select(study_id)
    if usubjid is not None:
        query = query.where(table.c.usubjid == usubjid)
    if statuses is not None:
        query = query.where(table.c.status.in_(statuses))
    with read_connection(store.engine) as connection:
        return [_query(row) for row in connection.execute(query)]


def query_history(store: Store, study_id: str, query: Query) -> list[dict[str, Any]]:
    """The audit rows of one query, oldest first: each step with who, when and what was
    said."""
    frame = audit_trail(store, study_id, table="data_query",
                        record_key=_audit_key(query.id, query.usubjid))
    return frame.to_dict("records")


EXPORT_COLUMNS = ("id", "study_id", "site_id", "usubjid", "domain", "seq", "field", "status",
                  "text", "raised_by", "raised_at", "answer", "answered_by", "answered_at",
                  "closed_by", "closed_at", "note")


def export_queries_csv(store: Store, study_id: str, out_dir: str | Path) -> Path:
    """Write ``queries.csv`` (every query of the study, its current state; times ISO 8601
    UTC; formula-leading text neutralised as in every CSV the package writes)."""
    import pandas as pd

    get_study(store, study_id)
    rows = []
    for q in list_queries(store, study_id):
        data = asdict(q)
        for name in ("raised_at", "answered_at", "closed_at"):
            at = data[name]
            if at is not None:
                at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
                data[name] = at.astimezone(dt.UTC).isoformat(timespec="seconds")
        rows.append({name: data[name] for name in EXPORT_COLUMNS})
    frame = pd.DataFrame(rows, columns=list(EXPORT_COLUMNS), dtype=object)
    frame["seq"] = pd.array(frame["seq"].tolist(), dtype="Int64")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    file = out / "queries.csv"
    neutralise_frame(frame).to_csv(file, index=False, quoting=csv.QUOTE_MINIMAL)
    return file
