"""Who may raise and settle queries, verify source data and lock data: one table of data.

The store checks these rules itself (every caller, the web app, the API, a script, is held to
them): the acting user is read from the ``user`` table with role and site, the action must be
one the role may take (:data:`PERMISSIONS`), and a user bound to a site may act only on
subjects of that site (:func:`in_scope`, the same scope as ``celltrial.web.access``).

Sources for the division of duties: ICH E6(R3) section 3.11.4 (monitoring: the monitor
verifies source data and raises queries; the investigator's site answers and corrects) and
section 3.16 / 4.2 (data handling: data management locks the database when data are final);
21 CFR 11.10(g) (authority checks: only authorised individuals may alter records).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from celltrial.errors import StoreError
from celltrial.store.schema import TABLES, User

PERMISSIONS: dict[str, tuple[str, ...]] = {
    "query.raise": ("monitor",),
    "query.answer": ("investigator", "coordinator"),
    "query.close": ("monitor",),
    "query.reopen": ("monitor",),
    "sdv": ("monitor",),
    "lock": ("data_manager", "admin"),
    # electronic signatures and the dose-escalation committee (celltrial.store.signatures,
    # celltrial.store.committee; ICH E6(R3) 2.12: the investigator signs off the data; the
    # committee's decision is taken and signed by its physician members, not site staff)
    "sign.record": ("investigator", "coordinator"),
    "sign.casebook": ("investigator",),
    "sign.decision": ("investigator",),
    "enrol": ("investigator", "coordinator"),
}
"""Action -> the roles that may take it."""

SITE_BOUND = {"investigator": "own", "coordinator": "own", "monitor": "own_or_all_when_no_site"}
"""Roles limited to their site's subjects (a monitor without a site sees every site); the
others (admin, data_manager, statistician) see every site."""

ACTIONS_IN_WORDS = {
    "query.raise": "raise a query", "query.answer": "answer a query",
    "query.close": "close a query", "query.reopen": "re-open a query",
    "sdv": "set or clear source-data verification", "lock": "lock or unlock data",
    "sign.record": "sign a record", "sign.casebook": "sign a subject's casebook",
    "sign.decision": "record or sign a dose-escalation committee decision",
    "enrol": "enrol a subject",
}


class NotPermitted(StoreError):
    """The acting user's role may not take the action, or the subject is not of their site
    (HTTP 403 in the web app; nothing was written)."""

    code = "CT320"


@dataclass(frozen=True)
class Actor:
    """The user taking an action, as stored."""

    username: str
    role: str
    site_id: str | None


def may(role: str, action: str) -> bool:
    """Whether ``role`` may take ``action`` (a key of :data:`PERMISSIONS`)."""
    return role in PERMISSIONS.get(action, ())


def in_scope(actor: Actor, site_id: str | None) -> bool:
    """Whether ``actor`` may act on a subject of ``site_id``."""
    scope = SITE_BOUND.get(actor.role)
    if scope is None or (scope == "own_or_all_when_no_site" and actor.site_id is None):
        return True
    return actor.site_id is not None and site_id == actor.site_id


def actor_of(connection: sa.Connection, username: str, action: str) -> Actor:
    """The stored user ``username`` if their role may take ``action``; NotPermitted
    otherwise (unknown or disabled accounts included)."""
    table = User.__table__
    row = connection.execute(sa.select(table.c.username, table.c.role, table.c.site_id,
                                       table.c.disabled_at).where(
        table.c.username == username)).first()
    if row is None or row.disabled_at is not None:
        raise NotPermitted(f"Invalid `user`: got `{username!r}`, must be an active user "
                           f"allowed to {ACTIONS_IN_WORDS[action]}")
    actor = Actor(row.username, row.role, row.site_id)
    if not may(actor.role, action):
        roles = " or ".join(PERMISSIONS[action])
        raise NotPermitted(f"Role {actor.role} may not {ACTIONS_IN_WORDS[action]} (only "
                           f"{roles}); nothing was written")
    return actor


def subject_site(connection: sa.Connection, study_id: str, usubjid: str) -> str | None:
    """DM.SITEID of a subject; StoreError when the study has no such subject."""
    dm = TABLES["DM"]
    row = connection.execute(sa.select(dm.c.SITEID).where(
        dm.c.STUDYID == study_id, dm.c.USUBJID == usubjid)).first()
    if row is None:
        raise StoreError(f"Invalid `subject`: got `{usubjid!r}`, must be a subject of study "
                         f"{study_id}")
    return row[0]


def require_scope(connection: sa.Connection, actor: Actor, study_id: str,
                  usubjid: str) -> str | None:
    """The subject's site when ``actor`` may act on it; NotPermitted otherwise."""
    site = subject_site(connection, study_id, usubjid)
    if not in_scope(actor, site):
        raise NotPermitted(f"Subject {usubjid} is not of site {actor.site_id}: {actor.username} "
                           "may act only on their own site's subjects; nothing was written")
    return site
