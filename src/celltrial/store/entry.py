"""One data-entry record written at most once: the stored record back, and idempotency keys.

A site's form (or an API client) writes one record at a time. :func:`write_record` writes it
through :func:`celltrial.store.write_domains` (same validation and audit trail) and, in the
same transaction, reads back exactly the record it stored (its --SEQ and version, not the
subject's latest record, which another writer may have added in between) and keeps the
submission's idempotency key: the same key submitted again (a refreshed page, a client's
retry) writes nothing and returns the record the first submission stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from celltrial.errors import StoreError
from celltrial.store.audit import now
from celltrial.store.domains import domain_of
from celltrial.store.engine import Store, write_transaction
from celltrial.store.records import record_key, write_domains
from celltrial.store.schema import TABLES, Submission

KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
"""An idempotency key: 16-64 letters, digits, '-' or '_' (a UUID in hex or text form fits)."""


@dataclass(frozen=True)
class Written:
    """The stored record (with ``version``) and whether it was stored by an earlier
    submission of the same key (``replayed``: nothing was written now)."""

    record: dict[str, Any]
    replayed: bool = False


def _stored(connection: sa.Connection, domain: str, study_id: str, where: Any) -> dict[str, Any]:
    table = TABLES[domain]
    row = connection.execute(sa.select(table).where(table.c.STUDYID == study_id, *where)
                             .order_by(table.c.id.desc()).limit(1)).first()
    if row is None:
        raise StoreError(f"The {domain} record just written could not be read back")
    record = dict(row._mapping)
    record.pop("id")
    return record


def write_record(store: Store, study_id: str, domain: str, record: Mapping[str, Any], *,
                 user: str, reason: str, source: str = "api",
                 idempotency_key: str | None = None) -> Written:
    """Write one record (``USUBJID`` required, --SEQ given next) and return it as stored.

    With ``idempotency_key``, a key already used by ``user`` in ``study_id`` returns the
    record that submission stored and writes nothing; a key used by someone else, or for
    another study or domain, is refused.
    """
    spec = domain_of(domain)
    if idempotency_key is not None and not KEY_PATTERN.fullmatch(str(idempotency_key)):
        raise StoreError(f"Invalid `idempotency key`: got `{idempotency_key!r}`, must be "
                         "16-64 letters, digits, '-' or '_' (e.g. a UUID)")
    submissions = Submission.__table__
    table = TABLES[spec.name]
    with write_transaction(store.engine) as connection:
        if idempotency_key is not None:
            earlier = connection.execute(sa.select(submissions).where(
                submissions.c.key == idempotency_key)).first()
            if earlier is not None:
                if (earlier.user, earlier.study_id, earlier.domain) != (user, study_id,
                                                                          spec.name):
                    raise StoreError(f"Invalid `idempotency key`: got `{idempotency_key}`, "
                                     "must be new (another submission used it)")
                key = dict(part.split("=", 1) for part in earlier.record_key.split(";"))
                where = [table.c[name] == (int(value) if name == spec.seq else value)
                         for name, value in key.items()]
                return Written(_stored(connection, spec.name, study_id, where), replayed=True)
        write_domains(store, study_id, {spec.name: pd.DataFrame([dict(record)], dtype=object)},
                      user=user, reason=reason, source=source)
        # Under the write lock, the subject's newest row is the one just written.
        stored = _stored(connection, spec.name, study_id,
                         [table.c.USUBJID == record.get("USUBJID")])
        if idempotency_key is not None:
            connection.execute(submissions.insert(), {
                "key": idempotency_key, "user": user, "study_id": study_id,
                "domain": spec.name, "record_key": record_key(spec, stored), "at": now()})
    return Written(stored)
