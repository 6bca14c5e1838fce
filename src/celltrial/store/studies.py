"""Studies and sites: registering a protocol in the store."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from celltrial.errors import StoreError
from celltrial.store.audit import append_audit, audit_row, now, record_json
from celltrial.store.engine import Store, read_connection, write_transaction
from celltrial.store.schema import Site, Study


@dataclass(frozen=True)
class StudyInfo:
    """A registered study: protocol id, title, protocol version and content hash."""

    id: str
    title: str
    protocol_version: str | None
    protocol_hash: str | None


def protocol_hash(protocol: Any) -> str:
    """SHA-256 of the protocol's canonical JSON (changes whenever any protocol value does)."""
    return hashlib.sha256(protocol.model_dump_json().encode("utf-8")).hexdigest()


def register_study(store: Store, protocol: Any, title: str | None = None, *,
                   user: str = "system") -> StudyInfo:
    """Register a study from a :class:`~celltrial.protocols.Protocol` (or an id and a title).

    Idempotent: registering the same protocol again changes nothing; a changed protocol updates
    the stored version and hash, with an audit row for each changed field.
    """
    if isinstance(protocol, str):
        if not title:
            raise StoreError(f"Invalid `title`: got `{title!r}`, must be given with a study id")
        study = {"id": protocol, "title": title, "protocol_version": None,
                 "protocol_hash": None}
    else:
        study = {"id": protocol.id, "title": title or protocol.title,
                 "protocol_version": str(getattr(protocol, "version", "") or "") or None,
                 "protocol_hash": protocol_hash(protocol)}
    table = Study.__table__
    at = now()
    with write_transaction(store.engine) as connection:
        row = connection.execute(sa.select(table).where(table.c.id == study["id"])).first()
        if row is None:
            connection.execute(table.insert(), {**study, "registered_at": at})
            append_audit(connection, audit_row(
                at=at, user=user, study_id=study["id"], table="study", key=study["id"],
                action="insert", reason="study registered", source="protocol",
                new=record_json(study)))
        else:
            changes = {k: v for k, v in study.items() if k != "id" and row._mapping[k] != v}
            if changes:
                connection.execute(table.update().where(table.c.id == study["id"]), changes)
                append_audit(connection, [audit_row(
                    at=at, user=user, study_id=study["id"], table="study", key=study["id"],
                    action="update", reason="protocol changed", source="protocol", field=k,
                    old=row._mapping[k], new=v) for k, v in changes.items()])
    return StudyInfo(**study)


def get_study(store: Store, study_id: str) -> StudyInfo:
    """The registered study ``study_id`` (StoreError listing the registered ones if absent)."""
    table = Study.__table__
    try:
        with read_connection(store.engine) as connection:
            row = connection.execute(sa.select(table).where(table.c.id == study_id)).first()
            if row is None:
                ids = connection.execute(sa.select(table.c.id).order_by(
                    table.c.id)).scalars().all()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        raise StoreError(f"The database {store.url} has no celltrial schema or cannot be "
                         f"read ({exc.orig}); run `celltrial db init --db URL` first") from exc
    if row is None:
        raise StoreError(f"Invalid `study`: got `{study_id!r}`, must be a registered study ("
                         f"{', '.join(ids) or 'none registered: run `celltrial db init`'})")
    m = row._mapping
    return StudyInfo(m["id"], m["title"], m["protocol_version"], m["protocol_hash"])


def list_studies(store: Store) -> list[StudyInfo]:
    """All registered studies, by id."""
    table = Study.__table__
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(table).order_by(table.c.id)).all()
    return [StudyInfo(r.id, r.title, r.protocol_version, r.protocol_hash) for r in rows]


def add_site(store: Store, study_id: str, site_id: str, name: str | None = None, *,
             user: str = "system") -> None:
    """Add a site to a study (no-op when it exists)."""
    get_study(store, study_id)
    table = Site.__table__
    with write_transaction(store.engine) as connection:
        exists = connection.execute(sa.select(table.c.site_id).where(
            table.c.study_id == study_id, table.c.site_id == site_id)).first()
        if exists is None:
            connection.execute(table.insert(), {"study_id": study_id, "site_id": site_id,
                                                "name": name})
            append_audit(connection, audit_row(
                at=now(), user=user, study_id=study_id, table="site", key=site_id,
                action="insert", reason="site added", source="api",
                new=record_json({"site_id": site_id, "name": name})))
