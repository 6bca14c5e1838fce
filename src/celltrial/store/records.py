"""Clinical records: writing whole batches, reading domains, changing one record — all audited.

Every write is one transaction holding the store's write lock
(:func:`celltrial.store.engine.write_transaction`): it reads what it needs (stored keys, the
next --SEQ, the record it corrects), validates the whole batch
(:mod:`celltrial.store.validate`), writes the rows and appends their audit rows; on any problem
nothing is written. Each record carries a ``version`` (1 when written, +1 per correction); a
correction that names a version other than the stored one is refused with
:class:`StaleRecord`, which carries the current values (optimistic concurrency: two people
correcting the same record never overwrite each other unseen). A locked study, subject or
record refuses the writes its lock forbids (:mod:`celltrial.store.locks`, checked inside the
same transaction). Reading returns every domain as a DataFrame with the SDTM variable names:

- text variables: ``object`` dtype holding ``str`` or ``None``;
- dates (``--DTC``): ISO 8601 **strings** exactly as captured (``YYYY-MM-DD`` or
  ``YYYY-MM-DDThh:mm``), ``None`` when missing — convert with ``pd.to_datetime(...,
  format="ISO8601")`` where needed;
- numbers (including --SEQ, grades and counts): ``float64``, NaN when missing.

Rows come in the order they were written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa

from celltrial.errors import StoreError
from celltrial.store.audit import (
    RECORDS_HASH,
    RecordsHasher,
    append_audit,
    audit_row,
    now,
    number_ranges,
    record_json,
    text_of,
)
from celltrial.store.domains import DOMAINS, Domain, domain_of
from celltrial.store.engine import Store, bulk_cache, write_transaction
from celltrial.store.locks import check_record, check_study, check_subject_locks, subject_locks
from celltrial.store.schema import TABLES, Site
from celltrial.store.studies import get_study
from celltrial.store.validate import (
    Checked,
    Memo,
    Problems,
    Source,
    check_existing,
    check_frame,
    check_subjects,
    known_domain,
)


@dataclass(frozen=True)
class WriteSummary:
    """What one write stored: records per domain, audit rows, sites added."""

    study_id: str
    records: dict[str, int]
    audit_rows: int
    sites_added: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        """Records written over all domains."""
        return sum(self.records.values())


def record_key(domain: Domain, record: Mapping[str, Any]) -> str:
    """Audit key of a record: ``USUBJID=S1`` (DM) or ``USUBJID=S1;AESEQ=3``."""
    return ";".join(f"{name}={text_of(record[name])}" for name in domain.key)


def _stored_keys(connection: sa.Connection, domain: Domain, study_id: str
                 ) -> set[tuple[Any, ...]]:
    table = TABLES[domain.name]
    query = sa.select(*[table.c[k] for k in domain.key]).where(table.c.STUDYID == study_id)
    return {tuple(row) for row in connection.execute(query)}


def _next_seq(keys: set[tuple[Any, ...]]) -> dict[str, int]:
    top: dict[str, int] = {}
    for subject, seq in keys:
        top[subject] = max(top.get(subject, 0), int(seq))
    return top


def write_domains(store: Store, study_id: str, frames: Mapping[str, pd.DataFrame], *,
                  user: str, reason: str, source: str = "api",
                  sources: Mapping[str, Source] | None = None,
                  audit: AuditForm = "record") -> WriteSummary:
    """Validate every frame, then write them all with audit rows in ONE transaction.

    ``frames`` maps domain names (``"DM"``, ``"AE"``, ...) to DataFrames with SDTM variable
    names. ``STUDYID`` may be omitted (it is ``study_id``); a missing ``--SEQ`` column is
    numbered 1, 2, ... per subject after the highest already stored. ``sources`` names where
    each frame came from for messages (default ``domain AE``). Raises :class:`StoreError`
    naming source, row, column and value of every problem (up to 20); nothing is written then.
    ``audit`` as for :func:`write_chunks`.
    """
    return write_chunks(store, study_id, {name: [frame] for name, frame in frames.items()},
                        user=user, reason=reason, source=source, sources=sources, audit=audit)


AuditForm = Literal["record", "subject"]
"""How inserted records are audited: one row per record holding it as JSON (``"record"``:
entry, API), or one row per subject and chunk (``"subject"``: file imports)."""

Chunks = Mapping[str, Iterable[pd.DataFrame]]
"""Domain name -> its rows as successive frames (a file read in chunks, or one frame)."""


def write_chunks(store: Store, study_id: str, chunks: Chunks, *, user: str, reason: str,
                 source: str = "api", sources: Mapping[str, Source] | None = None,
                 audit: AuditForm = "record") -> WriteSummary:
    """:func:`write_domains` for domains given as successive frames, in ONE transaction.

    Each frame is validated as it comes (keys, subjects and --SEQ numbering carry over from
    frame to frame; rows are numbered on within a domain), then written with its audit rows
    (PostgreSQL: ``COPY``), so a large import never holds its whole input. DM is taken first
    (other domains refer to its subjects). On the first problem writing stops; validation
    goes on to list every problem (up to 20), then the transaction is rolled back: nothing is
    written.

    Audit rows of inserted records (``audit``):

    - ``"record"``: one row per record, ``new_value`` the record as JSON;
    - ``"subject"`` (file imports): for domains with --SEQ, one row per subject and chunk,
      ``record_key`` the subject and its --SEQ numbers as ranges (``USUBJID=S1;LBSEQ=1-500``)
      and ``new_value`` JSON ``{"records": n, "rows": "LB.csv rows 1-500", "sha256": ...,
      "hash": "records-v1"}``: the file rows read and the SHA-256 of the records as written
      (:func:`celltrial.store.audit.records_hash`). Who, when, why and from which file rows
      stays traceable for every record (:func:`~celltrial.store.audit.audit_trail` of one
      record finds the row); the values as inserted are the stored ones with later
      corrections undone from their own audit rows, and their hash is on the chain. DM keeps
      one row per record.
    """
    if not user or not str(user).strip():
        raise StoreError(f"Invalid `user`: got `{user!r}`, must name who writes the data")
    get_study(store, study_id)
    sources = dict(sources or {})
    at = now()
    problems = Problems()
    named: dict[str, tuple[Domain, Iterable[pd.DataFrame], Source]] = {}
    for name, frames in chunks.items():
        src = sources.get(str(name).upper(), Source(f"domain {name}"))
        domain = known_domain(name, src, problems)
        if domain is None:
            continue
        if domain.name in named:
            raise StoreError("Invalid `frames`: got a domain twice, must name each domain once")
        named[domain.name] = (domain, frames, src)
    order = sorted(named.values(), key=lambda item: item[0].name != "DM")
    counts: dict[str, int] = {}
    sites: list[str] = []
    audit_rows = 0
    with write_transaction(store.engine) as connection:
        bulk_cache(connection)
        subjects = {s for (s,) in _stored_keys(connection, DOMAINS["DM"], study_id)}
        # Locks (celltrial.store.locks): a locked study takes no write, a locked subject no
        # new record.
        check_study(connection, study_id, "write records")
        locked = subject_locks(connection, study_id)
        for domain, frames, src in order:
            existing = _stored_keys(connection, domain, study_id)
            counters = _next_seq(existing) if domain.seq else None
            seen: dict[tuple[Any, ...], int] = {}
            memo: Memo = {}
            counts[domain.name] = 0
            # DM's frames add sites between their inserts, so DM is not streamed.
            with _RecordSink(connection, domain, stream=domain.name != "DM") as sink:
                for frame in frames:
                    result = check_frame(domain, frame, study_id, src, problems,
                                         next_seq=counters, memo=memo)
                    check_existing(result, existing, src, problems)
                    check_subject_locks(connection, study_id, result.columns["USUBJID"],
                                        f"add {domain.name} records", locked=locked)
                    _check_earlier_chunks(result, seen, src, problems)
                    if domain.name == "DM":
                        subjects |= {s for s in result.columns["USUBJID"] if s is not None}
                    else:
                        check_subjects(result, subjects, src, problems)
                    if counters is not None:
                        _count_on(counters, result)
                    if not problems.count and result.n:
                        if domain.name == "DM":
                            added = _add_sites(connection, study_id, [result], user, at,
                                               source)
                            sites += added
                            audit_rows += len(added)
                        sink.write(result, _audit_rows(
                            result, study_id, at=at, user=user, reason=reason, source=source,
                            src=src, grouped=audit == "subject"))
                    counts[domain.name] += result.n
                    src = src.after(result.n)
            audit_rows += sink.audited
        problems.raise_if_any()
    return WriteSummary(study_id, counts, audit_rows, tuple(sites))


def _check_earlier_chunks(result: Checked, seen: dict[tuple[Any, ...], int], source: Source,
                          problems: Problems) -> None:
    """Keys repeating a key of an earlier frame of the same domain (within a frame,
    :func:`check_frame` reports them); records this frame's keys in ``seen``."""
    names = result.domain.key
    keys = list(zip(*(result.columns[k] for k in names), strict=True))
    overlap = bool(seen) and not seen.keys().isdisjoint(keys)
    if overlap:
        for row, key in enumerate(keys, start=1):
            if key in seen and None not in key:
                problems.add(source, row, names[-1], key[-1],
                             f"unique per subject ({'+'.join(names)} {key!r} repeats row "
                             f"{seen[key]})")
    # the file row of each key's first row in this frame (a dict built from the last row to
    # the first keeps the first; check_frame reports repeats within the frame)
    first = dict(zip(reversed(keys), range(source.number(len(keys)), source.number(0), -1),
                     strict=True))
    if any(None in result.columns[k] for k in names):
        first = {key: row for key, row in first.items() if None not in key}
    if overlap:
        first = {key: row for key, row in first.items() if key not in seen}
    seen.update(first)


def _count_on(counters: dict[str, int], result: Checked) -> None:
    """Raise the per-subject --SEQ counters past this frame's numbers."""
    seq = result.domain.seq
    assert seq is not None
    subjects, numbers = result.columns["USUBJID"], result.columns[seq]
    if result.n and None not in subjects and None not in numbers:
        try:
            highest = pd.Series(np.asarray(numbers, dtype=np.int64)).groupby(
                np.asarray(subjects, dtype=object), sort=False).max()
        except (OverflowError, TypeError, ValueError):
            pass
        else:
            for subject, number in zip(highest.index.tolist(), highest.tolist(), strict=True):
                if number > counters.get(subject, 0):
                    counters[subject] = number
            return
    top: dict[str, int] = {}
    for subject, number in zip(subjects, numbers, strict=True):
        if subject is not None and isinstance(number, int) and number > top.get(subject, 0):
            top[subject] = number
    for subject, number in top.items():
        if number > counters.get(subject, 0):
            counters[subject] = number


def _audit_rows(result: Checked, study_id: str, *, at: Any, user: str, reason: str,
                source: str, src: Source | None = None, grouped: bool = False
                ) -> list[dict[str, Any]]:
    """The audit rows of one validated frame's inserted records: one per record, or with
    ``grouped`` one per subject (see :func:`write_chunks`)."""
    domain = result.domain
    if grouped and domain.seq is not None:
        return [audit_row(at=at, user=user, study_id=study_id, table=domain.table, key=key,
                          action="insert", reason=reason or None, source=source, new=new)
                for key, new in _subject_groups(result, src or Source(f"domain {domain.name}"))]
    names = list(result.columns)
    return [audit_row(
        at=at, user=user, study_id=study_id, table=domain.table,
        key=record_key(domain, record), action="insert", reason=reason or None,
        source=source, new=record_json(record))
        for record in (dict(zip(names, row, strict=True))
                       for row in zip(*result.columns.values(), strict=True))]


class _RecordSink:
    """Writes one domain's validated frames and then their audit rows.

    On PostgreSQL with ``stream``, one ``COPY ... FROM STDIN`` stays open across frames, so
    that the server stores a frame's rows (unique-key index, foreign key to DM) while this
    process reads and checks the next frame; the audit rows follow when the COPY ends (at the
    end of the domain, or every :attr:`AUDIT_BATCH` pending audit rows, which bounds memory).
    Elsewhere each frame is inserted at once (one ``executemany``). Either way all of it is
    inside the caller's write transaction: a refusal anywhere rolls all of it back.
    """

    AUDIT_BATCH = 50_000

    def __init__(self, connection: sa.Connection, domain: Domain, *, stream: bool) -> None:
        self.connection, self.domain = connection, domain
        self.stream = stream and connection.dialect.name == "postgresql"
        self.names: list[str] | None = None
        self.context: Any = None  # psycopg's COPY context manager
        self.copy: Any = None  # the Copy object it opened
        self.cursor: Any = None
        self.pending: list[dict[str, Any]] = []
        self.audited = 0

    def __enter__(self) -> _RecordSink:
        return self

    def write(self, result: Checked, audit: list[dict[str, Any]]) -> None:
        names = list(result.columns)
        rows = zip(*result.columns.values(), strict=True)
        if not self.stream:
            _insert_checked(self.connection, self.domain, names, list(rows))
            self.audited += append_audit(self.connection, audit)
            return
        if self.copy is not None and names != self.names:
            self._end_copy()
        if self.copy is None:
            self._begin_copy(names)
        try:
            for row in rows:
                self.copy.write_row(row)
        except Exception as exc:
            self._abort(exc)
            raise self._refusal(exc) from exc
        self.pending += audit
        if len(self.pending) >= self.AUDIT_BATCH:
            self._end_copy()

    def _begin_copy(self, names: list[str]) -> None:
        columns = ", ".join(f'"{n}"' for n in names)
        self.cursor = self.connection.connection.driver_connection.cursor()
        self.context = self.cursor.copy(f'COPY "{self.domain.table}" ({columns}) FROM STDIN')
        self.copy = self.context.__enter__()
        self.names = names

    def _end_copy(self) -> None:
        """Finish the open COPY (the server reports a refused row here), then append the
        audit rows of what it stored."""
        if self.copy is not None:
            self.copy = None
            try:
                self.context.__exit__(None, None, None)
            except Exception as exc:
                self._close_cursor()
                raise self._refusal(exc) from exc
            self._close_cursor()
        pending, self.pending = self.pending, []
        self.audited += append_audit(self.connection, pending)

    def _abort(self, exc: BaseException) -> None:
        if self.copy is not None:
            self.copy = None
            try:
                self.context.__exit__(type(exc), exc, exc.__traceback__)
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
        self._close_cursor()

    def _close_cursor(self) -> None:
        if self.cursor is not None:
            self.cursor.close()
            self.cursor = None

    def _refusal(self, exc: BaseException) -> BaseException:
        import psycopg

        if isinstance(exc, psycopg.errors.IntegrityError):
            # the primary message only: a DETAIL line would quote patient data
            return StoreError(f"The database refused {self.domain.name}: "
                              f"{exc.diag.message_primary}; nothing was written")
        return exc

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            self._abort(exc)
            return
        self._end_copy()


def _insert_checked(connection: sa.Connection, domain: Domain, names: list[str],
                    rows: list[tuple[Any, ...]]) -> None:
    """:func:`_insert_rows` with the database's refusal as a StoreError."""
    try:
        _insert_rows(connection, domain, names, rows)
    except sa.exc.IntegrityError as exc:
        raise StoreError(f"The database refused {domain.name}: {exc.orig}; "
                         "nothing was written") from exc


def _subject_groups(result: Checked, src: Source) -> list[tuple[str, str]]:
    """(record key, new_value) of each subject's records in one frame, subjects in order of
    first appearance, records by --SEQ (see :func:`write_chunks`)."""
    domain = result.domain
    seq = domain.seq
    assert seq is not None
    codes, subjects = pd.factorize(np.asarray(result.columns["USUBJID"], dtype=object))
    numbers = np.asarray(result.columns[seq], dtype=np.int64)
    order = np.lexsort((numbers, codes))
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    digest = RecordsHasher([(v.name, v.type) for v in domain.variables], result.columns)
    out = []
    for positions in np.split(order, bounds):
        key = (f"USUBJID={subjects[codes[positions[0]]]};{seq}="
               f"{number_ranges(numbers[positions])}")
        new = json.dumps({"records": len(positions),
                          "rows": f"{src.label} rows "
                                  f"{number_ranges(positions + 1 + src.rows_before)}",
                          "sha256": digest(positions),
                          "hash": RECORDS_HASH}, separators=(",", ":"))
        out.append((key, new))
    return out


def _insert_rows(connection: sa.Connection, domain: Domain, names: list[str],
                 rows: list[tuple[Any, ...]]) -> None:
    """Rows (values in ``names`` order, validated) into the domain's table: ``COPY ... FROM
    STDIN`` on PostgreSQL (psycopg 3), one prepared ``executemany`` elsewhere."""
    columns = ", ".join(f'"{n}"' for n in names)
    if connection.dialect.name == "postgresql":
        import psycopg

        cursor = connection.connection.driver_connection.cursor()
        try:
            with cursor.copy(f'COPY "{domain.table}" ({columns}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
        except psycopg.errors.IntegrityError as exc:
            # the primary message only: a DETAIL line would quote patient data
            raise StoreError(f"The database refused {domain.name}: "
                             f"{exc.diag.message_primary}; nothing was written") from exc
        finally:
            cursor.close()
        return
    marks = ", ".join("?" for _ in names)
    connection.exec_driver_sql(f'INSERT INTO "{domain.table}" ({columns}) VALUES ({marks})',
                               rows)


def _add_sites(connection: sa.Connection, study_id: str, checked: list[Checked], user: str,
               at: Any, source: str) -> list[str]:
    wanted = {s for c in checked if c.domain.name == "DM" for s in c.columns["SITEID"]
              if s is not None}
    if not wanted:
        return []
    table = Site.__table__
    have = set(connection.execute(sa.select(table.c.site_id).where(
        table.c.study_id == study_id)).scalars())
    new = sorted(wanted - have)
    if new:
        connection.execute(table.insert(), [{"study_id": study_id, "site_id": s, "name": None}
                                            for s in new])
        append_audit(connection, [audit_row(
            at=at, user=user, study_id=study_id, table="site", key=s, action="insert",
            reason="site first seen in DM", source=source, new=record_json({"site_id": s}))
            for s in new])
    return new


def frame_of(domain: Domain, rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """A typed DataFrame of ``domain`` from rows in variable order (text/dates object with
    None; numbers float64)."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(domain.variables)
    data = {}
    for var, values in zip(domain.variables, columns, strict=True):
        if var.type in ("int", "float"):
            data[var.name] = pd.Series(
                [float("nan") if v is None else float(v) for v in values], dtype="float64")
        else:
            data[var.name] = pd.Series(list(values), dtype=object)
    return pd.DataFrame(data, columns=list(domain.columns))


def _read(connection: sa.Connection, domain: Domain, study_id: str) -> pd.DataFrame:
    table = TABLES[domain.name]
    query = sa.select(*[table.c[c] for c in domain.columns]).where(
        table.c.STUDYID == study_id, table.c.voided.is_(None)).order_by(table.c.id)
    return frame_of(domain, [tuple(r) for r in connection.execute(query)])


def read_domain(store: Store, study_id: str, name: str) -> pd.DataFrame:
    """One domain of a study (see the module docstring for types)."""
    domain = domain_of(name)
    with store.engine.connect() as connection:
        return _read(connection, domain, study_id)


def read_domains(store: Store, study_id: str) -> dict[str, pd.DataFrame]:
    """Every domain of a registered study, by domain name (empty frames where none)."""
    get_study(store, study_id)
    with store.engine.connect() as connection:
        return {name: _read(connection, domain, study_id) for name, domain in DOMAINS.items()}


def count_records(store: Store, study_id: str) -> dict[str, int]:
    """Rows per domain for a study."""
    out = {}
    with store.engine.connect() as connection:
        for domain in DOMAINS.values():
            table = TABLES[domain.name]
            out[domain.name] = connection.execute(sa.select(sa.func.count()).select_from(
                table).where(table.c.STUDYID == study_id)).scalar_one()
    return out


def _key_filter(domain: Domain, key: Mapping[str, Any] | tuple[Any, ...]
                ) -> tuple[str, dict[str, Any]]:
    names = ("STUDYID", *domain.key)
    if not isinstance(key, Mapping):
        key = dict(zip(names, key, strict=False))
    missing = [n for n in names if key.get(n) is None]
    if missing:
        raise StoreError(f"Invalid `key`: got `{dict(key)!r}`, must give "
                         f"{', '.join(names)} of the {domain.name} record")
    values = {n: key[n] for n in names}
    if domain.seq:
        values[domain.seq] = int(values[domain.seq])
    return str(values["STUDYID"]), values


def _one(connection: sa.Connection, domain: Domain, values: Mapping[str, Any]
         ) -> dict[str, Any]:
    table = TABLES[domain.name]
    query = sa.select(table).where(*[table.c[n] == v for n, v in values.items()])
    row = connection.execute(query).first()
    if row is None:
        raise StoreError(f"Invalid `key`: got `{dict(values)!r}`, must be a stored "
                         f"{domain.name} record")
    return dict(row._mapping)


def _require(user: str, reason: str) -> None:
    if not user or not str(user).strip():
        raise StoreError(f"Invalid `user`: got `{user!r}`, must name who changes the data")
    if not reason or not str(reason).strip():
        raise StoreError(f"Invalid `reason`: got `{reason!r}`, must say why the data change "
                         "(21 CFR 11.10(e))")


class StaleRecord(StoreError):
    """A correction named a version of the record that is no longer the stored one.

    ``current`` is the record as stored now (with its ``version``): show it and let the person
    decide again. Nothing was written.
    """

    def __init__(self, domain: str, key: str, seen: int, current: dict[str, Any]) -> None:
        super().__init__(f"{domain} {key} was changed by someone else since you read it "
                         f"(you saw version {seen}, it is now version {current['version']}); "
                         "nothing was written: review the current values and correct again")
        self.current = current


Derive = Callable[[dict[str, Any]], Mapping[str, Any]]
"""Fields computed from a record (e.g. a grade from a value), applied inside the transaction."""


def update_record(store: Store, domain: str, key: Mapping[str, Any] | tuple[Any, ...],
                  changes: Mapping[str, Any], *, user: str, reason: str,
                  source: str = "api", version: int | None = None,
                  derive: Derive | None = None) -> dict[str, Any]:
    """Change fields of one record; one audit row per changed field (old, new, reason).

    ``key`` gives STUDYID, USUBJID and --SEQ (not for DM), as a mapping or in that order.
    Key variables cannot change. ``version``, when given, must be the stored version (else
    :class:`StaleRecord`, nothing written); ``derive`` recomputes dependent fields (grades)
    from the changed record. Reading, deriving, validating and writing happen in one
    transaction under the store's write lock, so the stored grade always belongs to the
    stored values. The changed record passes the same checks as an import. Returns the record
    as stored after the change, with its new ``version``.
    """
    _require(user, reason)
    spec = domain_of(domain)
    study_id, values = _key_filter(spec, key)
    locked = [c for c in changes if c in ("STUDYID", *spec.key, "version")]
    if locked:
        raise StoreError(f"Invalid `changes`: got `{locked!r}`, must not change key variables "
                         "or the version (delete the record and write a new one)")
    table = TABLES[spec.name]
    at = now()
    with write_transaction(store.engine) as connection:
        old = _one(connection, spec, values)
        check_record(connection, study_id, spec, old["USUBJID"],
                     old[spec.seq] if spec.seq else None, "correct")
        row_id, stored_version = old.pop("id"), int(old.pop("version"))
        if old.pop("voided") is not None:
            raise StoreError(f"{spec.name} {record_key(spec, old)} was voided as entered in "
                             "error; it cannot be corrected (enter the right record anew)")
        if version is not None and int(version) != stored_version:
            raise StaleRecord(spec.name, record_key(spec, old), int(version),
                              {**old, "version": stored_version})
        merged = {**old, **changes}
        if derive is not None:
            merged |= dict(derive(dict(merged)))
        problems = Problems()
        checked = check_frame(spec, pd.DataFrame([merged], dtype=object).astype(object),
                              study_id, Source(f"{spec.name} record {record_key(spec, old)}"),
                              problems)
        problems.raise_if_any()
        new = checked.records()[0]
        diff = {c: new[c] for c in spec.columns if new[c] != old[c]}
        if diff:
            if spec.name == "DM" and "SITEID" in diff:
                _add_sites(connection, study_id, [checked], user, at, source)
            stored_version += 1
            done = connection.execute(table.update().where(
                table.c.id == row_id, table.c.version == stored_version - 1),
                {**diff, "version": stored_version})
            if done.rowcount != 1:  # the write lock makes this unreachable; never ignore it
                raise StoreError(f"{spec.name} {record_key(spec, old)} changed during the "
                                 "correction; nothing was written")
            append_audit(connection, [audit_row(
                at=at, user=user, study_id=study_id, table=spec.table,
                key=record_key(spec, old), action="update", reason=reason, source=source,
                field=c, old=text_of(old[c]), new=text_of(v)) for c, v in diff.items()])
    return {**new, "version": stored_version}


def delete_record(store: Store, domain: str, key: Mapping[str, Any] | tuple[Any, ...], *,
                  user: str, reason: str, source: str = "api",
                  version: int | None = None) -> None:
    """Delete one record, keeping it whole in the audit row (``old_value`` as JSON).

    A DM subject can only be deleted after its records in every other domain. ``version``,
    when given, must be the stored version (else :class:`StaleRecord`).
    """
    _require(user, reason)
    spec = domain_of(domain)
    study_id, values = _key_filter(spec, key)
    table = TABLES[spec.name]
    with write_transaction(store.engine) as connection:
        old = _one(connection, spec, values)
        check_record(connection, study_id, spec, old["USUBJID"],
                     old[spec.seq] if spec.seq else None, "delete")
        row_id, stored_version = old.pop("id"), int(old.pop("version"))
        old.pop("voided")
        if version is not None and int(version) != stored_version:
            raise StaleRecord(spec.name, record_key(spec, old), int(version),
                              {**old, "version": stored_version})
        try:
            connection.execute(table.delete().where(table.c.id == row_id))
        except sa.exc.IntegrityError as exc:
            raise StoreError(f"Cannot delete {spec.name} {record_key(spec, old)}: other "
                             f"domains still refer to it ({exc.orig})") from exc
        append_audit(connection, audit_row(
            at=now(), user=user, study_id=study_id, table=spec.table,
            key=record_key(spec, old), action="delete", reason=reason, source=source,
            old=record_json(old)))


def void_record(store: Store, domain: str, key: Mapping[str, Any] | tuple[Any, ...], *,
                user: str, reason: str, source: str = "api",
                version: int | None = None) -> dict[str, Any]:
    """Mark one record "entered in error": it stays stored, with the reason in ``voided`` and
    an audit row, but :func:`read_domains` (and so every analysis) leaves it out, and its
    --SEQ is never given again. The alternative to deleting a record a site entered by
    mistake (ICH E6(R3) 4.2: changes must not obscure the original entry).

    ``version``, when given, must be the stored version (else :class:`StaleRecord`). A DM
    subject cannot be voided (record a screen failure or withdrawal in DS instead). Returns
    the record as stored, with ``version`` and ``voided``.
    """
    _require(user, reason)
    spec = domain_of(domain)
    if spec.name == "DM":
        raise StoreError("Invalid `domain`: got `'DM'`, must not be DM: a subject is not "
                         "voided (record a screen failure or withdrawal in DS)")
    study_id, values = _key_filter(spec, key)
    table = TABLES[spec.name]
    with write_transaction(store.engine) as connection:
        old = _one(connection, spec, values)
        check_record(connection, study_id, spec, old["USUBJID"],
                     old[spec.seq] if spec.seq else None, "void")
        row_id, stored_version = old.pop("id"), int(old.pop("version"))
        if version is not None and int(version) != stored_version:
            raise StaleRecord(spec.name, record_key(spec, old), int(version),
                              {**old, "version": stored_version})
        if old["voided"] is not None:
            raise StoreError(f"{spec.name} {record_key(spec, old)} is already voided "
                             f"({old['voided']})")
        connection.execute(table.update().where(table.c.id == row_id),
                           {"voided": str(reason).strip(), "version": stored_version + 1})
        append_audit(connection, audit_row(
            at=now(), user=user, study_id=study_id, table=spec.table,
            key=record_key(spec, old), action="update", reason=reason, source=source,
            field="voided", old=None, new=str(reason).strip()))
    return {**old, "voided": str(reason).strip(), "version": stored_version + 1}
