"""Source-data verification (SDV) flags per clinical record, set and cleared by a monitor.

ICH E6(R3) section 3.11.4: the monitor verifies that the data reported in the case report
form agree with the source documents. The flag names the record version the monitor
verified; a later correction leaves the flag on an older version, shown as "changed since
verification" (:func:`sdv_current`) until the monitor verifies it again. Setting and clearing
are audit rows (table ``record_status``, field ``<DOMAIN> sdv``; 21 CFR 11.10(e)); clearing
needs a reason. Only a monitor may do either (:data:`celltrial.store.permissions.PERMISSIONS`),
on their site's subjects; a locked study refuses both.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from celltrial.errors import StoreError
from celltrial.store.audit import append_audit, audit_row, now
from celltrial.store.domains import domain_of
from celltrial.store.engine import Store, read_connection, write_transaction
from celltrial.store.locks import record_state, check_study, key_text, stamp
from celltrial.store.permissions import actor_of, require_scope
from celltrial.store.schema import RecordStatus
from celltrial.store.studies import get_study


@dataclass(frozen=True)
class Verification:
    """A record's SDV flag: who verified which version, when (UTC)."""

    by: str
    at: dt.datetime
    version: int


def sdv_current(flag: Verification | None, version: int) -> bool:
    """Whether ``flag`` verifies the record as it is now (its ``version``). Pure."""
    return flag is not None and flag.version == version


def set_sdv(store: Store, study_id: str, domain: str, usubjid: str, seq: int | None, *,
            verified: bool, user: str, reason: str | None = None,
            source: str = "api") -> bool:
    """Mark one record source-data verified at its current version (``verified=True``) or
    clear the flag (a reason required); returns False when there was nothing to change (the
    current version already verified, or no flag to clear). A voided record is not verified.
    """
    spec = domain_of(domain)
    seq = None if spec.seq is None else int(seq or 0)
    text = (reason or "").strip() or None
    if not verified and text is None:
        raise StoreError(f"Invalid `reason`: got `{reason!r}`, must say why the verification "
                         "is withdrawn (21 CFR 11.10(e))")
    table = RecordStatus.__table__
    key = key_text(spec, usubjid, seq)
    get_study(store, study_id)
    with write_transaction(store.engine) as connection:
        actor = actor_of(connection, user, "sdv")
        require_scope(connection, actor, study_id, usubjid)
        check_study(connection, study_id, f"change the verification of {spec.name} {key}")
        record = record_state(connection, study_id, spec, usubjid, seq)
        if verified and record["voided"] is not None:
            raise StoreError(f"{spec.name} {key} was voided as entered in error; there is "
                             "nothing to verify")
        where = [table.c.study_id == study_id, table.c.domain == spec.name,
                 table.c.usubjid == usubjid, table.c.seq == (seq or 0)]
        row = connection.execute(sa.select(table).where(*where)).first()
        before = None if row is None or row.sdv_at is None else int(row.sdv_version)
        if (verified and before == record["version"]) or (not verified and before is None):
            return False
        at = now()
        values = ({"sdv_at": at, "sdv_by": actor.username, "sdv_version": record["version"]}
                  if verified else {"sdv_at": None, "sdv_by": None, "sdv_version": None})
        if row is None:
            connection.execute(table.insert(), {"study_id": study_id, "domain": spec.name,
                                                "usubjid": usubjid, "seq": seq or 0, **values})
        else:
            connection.execute(table.update().where(*where), values)
        append_audit(connection, audit_row(
            at=at, user=actor.username, study_id=study_id, table="record_status", key=key,
            action="update", field=f"{spec.name} sdv",
            reason=text or "source-data verification", source=source,
            old=None if before is None else f"verified version {before}",
            new=f"verified version {record['version']}" if verified else None))
    return True


def verifications(store: Store, study_id: str, usubjid: str | None = None
                  ) -> dict[tuple[str, str, int], Verification]:
    """SDV flags of a study (or one subject) by (domain, USUBJID, seq; 0 for DM)."""
    table = RecordStatus.__table__
    query = sa.select(table).where(table.c.study_id == study_id, table.c.sdv_at.is_not(None))
    if usubjid is not None:
        query = query.where(table.c.usubjid == usubjid)
    with read_connection(store.engine) as connection:
        return {(r.domain, r.usubjid, r.seq): Verification(r.sdv_by, r.sdv_at,
                                                            int(r.sdv_version))
                for r in connection.execute(query)}


def describe(flag: Verification | None, version: int) -> str:
    """Human label of a record's SDV state. Pure."""
    if flag is None:
        return "not verified"
    if sdv_current(flag, version):
        return f"verified by {flag.by}, {stamp(flag.at)}"
    return f"changed since verification (version {flag.version} verified by {flag.by})"
