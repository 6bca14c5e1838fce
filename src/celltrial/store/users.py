"""Users and passwords: roles, sites and argon2id hashes (argon2-cffi); plain passwords are
never stored (OWASP Password Storage Cheat Sheet: argon2id)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from celltrial.errors import StoreError
from celltrial.store.audit import append_audit, audit_row, now, record_json
from celltrial.store.engine import Store, write_transaction
from celltrial.store.schema import ROLES, User

MIN_PASSWORD = 8


@dataclass(frozen=True)
class UserInfo:
    """A user as others see it (no hash)."""

    username: str
    role: str
    site_id: str | None


def hash_password(password: str) -> str:
    """argon2id hash of ``password`` (argon2-cffi defaults, RFC 9106 low-memory profile)."""
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


def add_user(store: Store, username: str, role: str, password: str, *,
             site: str | None = None, by: str = "system") -> UserInfo:
    """Create a user with an argon2 hash of ``password``; audited (without the hash)."""
    if role not in ROLES:
        raise StoreError(f"Invalid `role`: got `{role!r}`, must be one of {', '.join(ROLES)}")
    if not username or not username.strip():
        raise StoreError(f"Invalid `username`: got `{username!r}`, must not be empty")
    if len(password) < MIN_PASSWORD:
        raise StoreError(f"Invalid `password`: got `{len(password)} characters`, must have at "
                         f"least {MIN_PASSWORD}")
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
    """True when ``password`` matches the stored argon2 hash of ``username``."""
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    table = User.__table__
    with store.engine.connect() as connection:
        stored = connection.execute(sa.select(table.c.password_hash).where(
            table.c.username == username)).scalar_one_or_none()
    if stored is None:
        return False
    try:
        return PasswordHasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def get_user(store: Store, username: str) -> UserInfo | None:
    """The user ``username`` or None."""
    table = User.__table__
    with store.engine.connect() as connection:
        row = connection.execute(sa.select(table).where(table.c.username == username)).first()
    return None if row is None else UserInfo(row.username, row.role, row.site_id)
