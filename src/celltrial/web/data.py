"""Reading for the web app: studies, the subjects a user may see, one subject's records and
the audit trail, all through the store and filtered by :mod:`celltrial.web.access`."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import sqlalchemy as sa

from celltrial.errors import StoreError
from celltrial.store import DOMAINS, Store, StudyInfo, UserInfo, audit_trail, get_study
from celltrial.store.records import frame_of
from celltrial.store.schema import TABLES
from celltrial.web.access import rule_of, sees_site

SUBJECT_DOMAINS = ("DM", "EX", "AE", "XC", "LB", "RS", "VS", "PC", "PR", "DS", "SC", "TU",
                   "TR", "IS")


class NotFound(LookupError):
    """Absent or outside the user's scope (answered 404 either way)."""


def study_or_404(store: Store, study_id: str) -> StudyInfo:
    try:
        return get_study(store, study_id)
    except StoreError as exc:
        raise NotFound(f"study {study_id}") from exc


def plain(value: Any) -> Any:
    """A JSON-friendly value (NaN -> None, whole floats of int variables stay floats)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return plain(value.item())
    return value


def stored_value(value: Any, kind: str) -> Any:
    """One stored cell as the API shows it: missing (None, NaN) as None; an ``int`` variable's
    whole number as int; other numbers as float; text as stored."""
    value = plain(value)
    if value is None or kind not in ("int", "float"):
        return value
    number = float(value)
    if math.isnan(number):
        return None
    return int(number) if kind == "int" and number.is_integer() else number


def records(frame: pd.DataFrame, domain: str, hidden: tuple[str, ...] = ()
            ) -> list[dict[str, Any]]:
    """Rows of a typed domain frame as dicts (ints as int, missing as None)."""
    types = {v.name: v.type for v in DOMAINS[domain].variables}
    return [{k: stored_value(v, types.get(k, "text")) for k, v in row.items() if k not in hidden}
            for row in frame.to_dict("records")]


def _status(dm: dict[str, Any], ds: list[dict[str, Any]]) -> str:
    if ds:
        return str(ds[-1].get("DSDECOD") or "")
    if dm.get("DTHFL") == "Y":
        return "DEATH"
    if dm.get("RFSTDTC"):
        return "INFUSED"
    return "ENROLLED" if dm.get("ARMCD") else "SCREENED"  # consented, no dose level yet


def subjects(store: Store, study_id: str, user: UserInfo) -> list[dict[str, Any]]:
    """DM rows of the subjects ``user`` may see, with dose level and status."""
    study_or_404(store, study_id)
    hidden = rule_of(user).hidden
    dm_table, ds_table = TABLES["DM"], TABLES["DS"]
    with store.engine.connect() as connection:
        dm = frame_of(DOMAINS["DM"], [tuple(r) for r in connection.execute(
            sa.select(*[dm_table.c[c] for c in DOMAINS["DM"].columns]).where(
                dm_table.c.STUDYID == study_id).order_by(dm_table.c.USUBJID))])
        ds = frame_of(DOMAINS["DS"], [tuple(r) for r in connection.execute(
            sa.select(*[ds_table.c[c] for c in DOMAINS["DS"].columns]).where(
                ds_table.c.STUDYID == study_id, ds_table.c.voided.is_(None)).order_by(
                ds_table.c.id))])
    ds_rows = records(ds, "DS")
    out = []
    for rec in records(dm, "DM"):
        if not sees_site(user, rec.get("SITEID")):
            continue
        mine = [d for d in ds_rows if d["USUBJID"] == rec["USUBJID"]]
        status = _status(rec, mine)
        out.append({**{k: v for k, v in rec.items() if k not in hidden},
                    "DOSE_LEVEL": rec.get("ARMCD"), "STATUS": status})
    return out


def subject_site(store: Store, study_id: str, usubjid: str) -> str | None:
    """SITEID of a subject; NotFound when the study has no such subject."""
    table = TABLES["DM"]
    with store.engine.connect() as connection:
        row = connection.execute(sa.select(table.c.SITEID).where(
            table.c.STUDYID == study_id, table.c.USUBJID == usubjid)).first()
    if row is None:
        raise NotFound(f"subject {usubjid}")
    return row[0]


def subject_or_404(store: Store, study_id: str, usubjid: str, user: UserInfo) -> str | None:
    """The subject's site when ``user`` may see it; NotFound otherwise (no leak)."""
    study_or_404(store, study_id)
    site = subject_site(store, study_id, usubjid)
    if not sees_site(user, site):
        raise NotFound(f"subject {usubjid}")
    return site


def subject_domains(store: Store, study_id: str, usubjid: str, user: UserInfo
                    ) -> dict[str, list[dict[str, Any]]]:
    """Every domain's records of one subject (the subject must be in scope), each with its
    ``version`` (what a correction must name) and ``voided`` (the reason it was marked
    entered in error, else None; voided records are shown, never analysed)."""
    subject_or_404(store, study_id, usubjid, user)
    hidden = rule_of(user).hidden
    out = {}
    with store.engine.connect() as connection:
        for name in SUBJECT_DOMAINS:
            domain, table = DOMAINS[name], TABLES[name]
            rows = connection.execute(sa.select(
                *[table.c[c] for c in domain.columns], table.c.version, table.c.voided).where(
                table.c.STUDYID == study_id, table.c.USUBJID == usubjid).order_by(
                table.c.id)).all()
            shown = [(v.name, v.type) for v in domain.variables
                     if not (name == "DM" and v.name in hidden)]
            index = {c: i for i, c in enumerate(domain.columns)}
            out[name] = [{**{k: stored_value(row[index[k]], kind) for k, kind in shown},
                          "version": int(row[-2]), "voided": row[-1]} for row in rows]
    return out


def _key_subject(key: str | None) -> str | None:
    for part in (key or "").split(";"):
        if part.startswith("USUBJID="):
            return part[len("USUBJID="):]
    return None


def audit(store: Store, study_id: str, user: UserInfo) -> list[dict[str, Any]]:
    """The study's audit trail, limited to records of subjects in ``user``'s scope (rows
    that belong to no subject, e.g. the study or a site, only for all-site users)."""
    from celltrial.web.access import all_sites

    study_or_404(store, study_id)
    frame = audit_trail(store, study_id)
    everything = all_sites(user)
    visible = None
    if not everything:
        visible = {s["USUBJID"] for s in subjects(store, study_id, user)}
    out = []
    for row in frame.to_dict("records"):
        if visible is not None and _key_subject(row["record_key"]) not in visible:
            continue
        row["at"] = row["at"].isoformat()
        out.append({k: plain(v) for k, v in row.items()})
    return out


def records_one(record: dict[str, Any]) -> dict[str, Any]:
    """One stored record (from the store) as JSON-friendly values."""
    out = {}
    for k, v in record.items():
        if k == "id":
            continue
        v = plain(v)
        if hasattr(v, "isoformat"):
            v = v.isoformat()
        out[k] = v
    return out
