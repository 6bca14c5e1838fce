"""Users and passwords: roles, sites and argon2id hashes (argon2-cffi); plain passwords are
never stored (OWASP Password Storage Cheat Sheet: argon2id).

Password policy (:func:`password_problem`, NIST SP 800-63B section 5.1.1.2): at least
:data:`MIN_PASSWORD` characters, not the user name, and not one of the 10,000 most common
passwords (``common-passwords.txt`` beside this module, compared case-insensitively). It
applies wherever a password is set: :func:`add_user` (``celltrial web add-user``),
:func:`set_password` (an administrator's reset, a user's own change).

Account state (migration 0005): an administrator may disable an account
(:func:`set_disabled`) and unlock one that too many failed logins locked (:func:`unlock_user`;
the lock itself is set by :func:`celltrial.store.sessions.attempt_login`). Disabling an
account or setting its password revokes its sessions. Every change is audited through
:func:`~celltrial.store.audit.append_audit` (table ``user``; never a hash).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from celltrial.errors import StoreError
from celltrial.store.audit import append_audit, audit_row, now, record_json
from celltrial.store.engine import Store, read_connection, write_transaction
from celltrial.store.schema import ROLES, User

MIN_PASSWORD = 12
"""Fewest characters of a password (NIST SP 800-63B asks for at least 8; OWASP ASVS 12)."""
COMMON_PASSWORDS = Path(__file__).with_name("common-passwords.txt")
"""The breached/common password list shipped with the package (its source is in its header)."""


@dataclass(frozen=True)
class UserInfo:
    """A user as others see it (no hash)."""

    username: str
    role: str
    site_id: str | None


@dataclass(frozen=True)
class AccountInfo:
    """A user with the account's state, for the administrators' page."""

    username: str
    role: str
    site_id: str | None
    created_at: dt.datetime | None
    last_login_at: dt.datetime | None
    disabled_at: dt.datetime | None
    locked_at: dt.datetime | None
    failed_logins: int

    @property
    def status(self) -> str:
        """``disabled``, ``locked`` or ``active``."""
        if self.disabled_at is not None:
            return "disabled"
        return "locked" if self.locked_at is not None else "active"


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lower-cased."""
    try:
        text = COMMON_PASSWORDS.read_text(encoding="utf-8")
    except OSError as exc:  # a broken install must not silently accept every password
        raise StoreError(f"The common-password list {COMMON_PASSWORDS} cannot be read "
                         f"({exc.strerror}): reinstall celltrial") from exc
    return frozenset(line.strip().lower() for line in text.splitlines()
                     if line.strip() and not line.startswith("## "))


def password_problem(password: str, username: str | None = None) -> str | None:
    """What makes ``password`` unacceptable, or None (the policy above)."""
    if len(password) < MIN_PASSWORD:
        return (f"Invalid `password`: got `{len(password)} characters`, must have at least "
                f"{MIN_PASSWORD}")
    if username is not None and password.strip().casefold() == username.strip().casefold():
        return "Invalid `password`: got the user name, must differ from it"
    if password.strip().lower() in common_passwords():
        return ("Invalid `password`: got one of the most common (breached) passwords, must "
                "not be guessable: use a passphrase of several words")
    return None


def check_password(password: str, username: str | None = None) -> None:
    """StoreError unless ``password`` meets the policy."""
    problem = password_problem(password, username)
    if problem:
        raise StoreError(problem)


def hash_password(password: str) -> str:
    """argon2id hash of ``password`` (argon2-cffi defaults, RFC 9106 low-memory profile)."""
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


@functools.cache
def _dummy_hash() -> str:
    return hash_password("celltrial: no such user, same work as a real one")


def password_matches(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches the argon2 hash ``stored``; for ``None`` (no such user) a
    dummy hash is verified, so that the answer takes as long either way."""
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        ok = PasswordHasher().verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return ok and stored is not None


def add_user(store: Store, username: str, role: str, password: str, *,
             site: str | None = None, by: str = "system") -> UserInfo:
    """Create a user with an argon2 hash of ``password``; audited (without the hash)."""
    if role not in ROLES:
        raise StoreError(f"Invalid `role`: got `{role!r}`, must be one of {', '.join(ROLES)}")
    if not username or not username.strip():
        raise StoreError(f"Invalid `username`: got `{username!r}`, must not be empty")
    check_password(password, username)
    table = User.__table__
    at = now()
    with write_transaction(store.engine) as connection:
        if connection.execute(sa.select(table.c.username).where(
                table.c.username == username)).first() is not None:
            raise StoreError(f"Invalid `username`: got `{username!r}`, must be new (it exists)")
        connection.execute(table.insert(), {"username": username, "role": role,
                                            "site_id": site, "created_at": at,
                                            "password_hash": hash_password(password)})
        append_audit(connection, audit_row(
            at=at, user=by, study_id=None, table="user", key=username, action="insert",
            reason="user added", source="api",
            new=record_json({"username": username, "role": role, "site_id": site})))
    return UserInfo(username, role, site)


def verify_password(store: Store, username: str, password: str) -> bool:
    """True when ``password`` matches the stored argon2 hash of ``username`` (the hash only:
    whether the account may log in is :func:`celltrial.store.sessions.attempt_login`'s)."""
    table = User.__table__
    with store.engine.connect() as connection:
        stored = connection.execute(sa.select(table.c.password_hash).where(
            table.c.username == username)).scalar_one_or_none()
    if stored is None:
        return False
    return password_matches(stored, password)


def get_user(store: Store, username: str) -> UserInfo | None:
    """The user ``username`` or None."""
    table = User.__table__
    with store.engine.connect() as connection:
        row = connection.execute(sa.select(table).where(table.c.username == username)).first()
    return None if row is None else UserInfo(row.username, row.role, row.site_id)


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """A stored time as an aware UTC datetime (SQLite gives back naive UTC, PostgreSQL
    aware)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _account(row: sa.Row) -> AccountInfo:
    return AccountInfo(row.username, row.role, row.site_id, utc(row.created_at),
                       utc(row.last_login_at), utc(row.disabled_at), utc(row.locked_at),
                       int(row.failed_logins or 0))


def list_users(store: Store) -> list[AccountInfo]:
    """Every user with the account's state, by user name."""
    table = User.__table__
    with read_connection(store.engine) as connection:
        rows = connection.execute(sa.select(table).order_by(table.c.username)).all()
    return [_account(row) for row in rows]


def get_account(store: Store, username: str) -> AccountInfo | None:
    """The account ``username`` with its state, or None."""
    table = User.__table__
    with read_connection(store.engine) as connection:
        row = connection.execute(sa.select(table).where(table.c.username == username)).first()
    return None if row is None else _account(row)


def _stamp(at: dt.datetime | None) -> str | None:
    at = utc(at)
    return None if at is None else at.isoformat(timespec="seconds")


def _row_for_update(connection: sa.Connection, username: str) -> sa.Row:
    table = User.__table__
    row = connection.execute(sa.select(table).where(table.c.username == username)).first()
    if row is None:
        raise StoreError(f"Invalid `username`: got `{username!r}`, must name a user")
    return row


def set_password(store: Store, username: str, password: str, *, by: str,
                 reason: str = "password reset by an administrator",
                 keep_session: str | None = None) -> int:
    """Set a new password (the policy applies) and revoke the user's sessions (all but
    ``keep_session``, a session's token hash); audited without any hash. Returns how many
    sessions were revoked."""
    from celltrial.store.sessions import revoke_user_sessions

    check_password(password, username)
    hashed = hash_password(password)
    table = User.__table__
    at = now()
    with write_transaction(store.engine) as connection:
        _row_for_update(connection, username)
        connection.execute(table.update().where(table.c.username == username).values(
            password_hash=hashed))
        revoked = revoke_user_sessions(connection, username, at=at, reason="password set",
                                       keep=keep_session)
        append_audit(connection, audit_row(
            at=at, user=by, study_id=None, table="user", key=username, action="update",
            field="password_hash", old="(not recorded)", new="(not recorded)", reason=reason,
            source="web"))
    return revoked


def set_disabled(store: Store, username: str, disabled: bool, *, by: str,
                 reason: str | None = None) -> bool:
    """Disable (revoking every session) or enable ``username``; audited. Returns False when
    the account was already in that state (nothing written)."""
    from celltrial.store.sessions import revoke_user_sessions

    table = User.__table__
    at = now()
    with write_transaction(store.engine) as connection:
        row = _row_for_update(connection, username)
        if (row.disabled_at is not None) == disabled:
            return False
        connection.execute(table.update().where(table.c.username == username).values(
            disabled_at=at if disabled else None))
        if disabled:
            revoke_user_sessions(connection, username, at=at, reason="account disabled")
        append_audit(connection, audit_row(
            at=at, user=by, study_id=None, table="user", key=username, action="update",
            field="disabled_at", old=None if disabled else _stamp(row.disabled_at),
            new=_stamp(at) if disabled else None,
            reason=reason or ("account disabled" if disabled else "account enabled"),
            source="web"))
    return True


def unlock_user(store: Store, username: str, *, by: str, reason: str | None = None) -> bool:
    """Unlock an account locked by failed logins (and reset its failure count); audited.
    Returns False when it was not locked (nothing written)."""
    table = User.__table__
    at = now()
    with write_transaction(store.engine) as connection:
        row = _row_for_update(connection, username)
        if row.locked_at is None:
            if row.failed_logins:
                connection.execute(table.update().where(table.c.username == username).values(
                    failed_logins=0))
            return False
        connection.execute(table.update().where(table.c.username == username).values(
            locked_at=None, failed_logins=0))
        append_audit(connection, audit_row(
            at=at, user=by, study_id=None, table="user", key=username, action="update",
            field="locked_at", old=_stamp(row.locked_at), new=None,
            reason=reason or "account unlocked", source="web"))
    return True
