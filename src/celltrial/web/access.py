"""Who may do what, and on which sites: the role rules as one table of data.

Every route asks :func:`rule_of` for the user's rule and :func:`sees_site` for the site of a
subject; a subject outside the user's scope is answered 404 (its existence is not leaked), a
write by a read-only role 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from celltrial.store import UserInfo

Scope = Literal["all", "own", "own_or_all_when_no_site"]


@dataclass(frozen=True)
class Rule:
    """What one role may do: read, write (capture and corrections), read the audit trail,
    on which sites, which DM variables are hidden from it, and whether it administers the
    users (the /admin/users page: reset passwords, disable, enable, unlock)."""

    read: bool
    write: bool
    audit: bool
    scope: Scope
    hidden: tuple[str, ...] = ()
    users: bool = False


RULES: dict[str, Rule] = {
    # role            read  write  audit  sites
    "admin": Rule(True, True, True, "all", users=True),
    "investigator": Rule(True, True, True, "own"),
    "coordinator": Rule(True, True, True, "own"),
    "monitor": Rule(True, False, True, "own_or_all_when_no_site"),
    # no identifying data beyond USUBJID: SUBJID hidden, no audit trail (it holds whole records)
    "statistician": Rule(True, False, False, "all", hidden=("SUBJID",)),
    # locks records, subjects and the study database (celltrial.store.permissions); enters
    # and corrects no site data
    "data_manager": Rule(True, False, True, "all"),
}
"""Role -> :class:`Rule`. A user of an "own" role without a site sees no subject."""


def rule_of(user: UserInfo) -> Rule:
    """The rule of ``user``'s role (an unknown role may do nothing)."""
    return RULES.get(user.role, Rule(False, False, False, "own"))


def all_sites(user: UserInfo) -> bool:
    """Whether ``user`` sees every site."""
    scope = rule_of(user).scope
    return scope == "all" or (scope == "own_or_all_when_no_site" and user.site_id is None)


def sees_site(user: UserInfo, site_id: str | None) -> bool:
    """Whether ``user`` may see (and, with a write role, write) a subject of ``site_id``."""
    if not rule_of(user).read:
        return False
    if all_sites(user):
        return True
    return user.site_id is not None and site_id == user.site_id
