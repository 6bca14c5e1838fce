"""Server-side sessions of the web app and login throttling, kept in the store (migration 0005)
so that every worker process of the app sees the same sessions and counts the same failures.

Sessions (table ``session``): a login makes a random token (:func:`new_token`, 256 bits) that
the browser's cookie carries; the table keeps only its SHA-256 (:func:`token_hash`), the user,
when it was made and last used, the client's address and user agent, and the session's small
state as JSON. :func:`find_session` answers the session of a token, or None when the token is
unknown, revoked (logout, account disabled, password set), idle longer than the idle timeout,
older than the absolute lifetime, or its user is disabled. ``last_seen_at`` is written at most
every :data:`TOUCH_EVERY` (a quarter of the idle timeout when that is shorter), so reading
pages does not write on every request.

Logins (:func:`attempt_login`): a client address with :attr:`LoginPolicy.address_limit`
failed logins in the current window (:attr:`LoginPolicy.address_window`, counted from its
first failure) is refused without the password being checked, with the seconds to wait; an
account with :attr:`LoginPolicy.lockout_after` consecutive failures is locked until an
administrator unlocks it (:func:`celltrial.store.users.unlock_user`), the lock audited. The
answer never says which of user name, password, lock or disabled account was wrong.

Session bookkeeping that writes no audit row (``last_seen_at``, the session's state) runs in
its own short transaction, not under the store's write lock, so that reading pages never
waits for an import on PostgreSQL; logins, logouts and revocations run in
:func:`~celltrial.store.engine.write_transaction` like every other write.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import logging
import math
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from celltrial.store.audit import append_audit, audit_row
from celltrial.store.engine import Store, write_transaction
from celltrial.store.schema import LoginThrottle, User, UserSession
from celltrial.store.users import UserInfo, password_matches, utc

log = logging.getLogger("celltrial.store.sessions")

TOUCH_EVERY = dt.timedelta(seconds=60)
"""Longest time between two writes of a session's ``last_seen_at``."""
PURGE_AFTER = dt.timedelta(days=30)
"""Session rows are deleted this long after the session's absolute lifetime ended."""
_SQLITE_TOUCH_WAIT_MS = 250


def new_token() -> str:
    """A new random session token (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """SHA-256 (hex) of a session token: the key of its row."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class ActiveSession:
    """A valid session: its key (the token's hash), its user as the store has it now, and
    its state."""

    key: str
    user: UserInfo
    created_at: dt.datetime
    last_seen_at: dt.datetime
    data: dict[str, Any] = field(default_factory=dict)


def _data(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def create_session(store: Store, user: UserInfo, *, at: dt.datetime,
                   data: dict[str, Any] | None = None, address: str | None = None,
                   user_agent: str | None = None,
                   lifetime: dt.timedelta = dt.timedelta(hours=12)) -> tuple[str, ActiveSession]:
    """A new session for ``user``: returns the token (for the cookie, never stored) and the
    session. Rows of sessions that ended more than :data:`PURGE_AFTER` ago are deleted."""
    token = new_token()
    key = token_hash(token)
    table = UserSession.__table__
    state = dict(data or {})
    with write_transaction(store.engine) as connection:
        connection.execute(table.delete().where(
            table.c.created_at < at - lifetime - PURGE_AFTER))
        connection.execute(table.insert(), {
            "token_hash": key, "username": user.username, "created_at": at,
            "last_seen_at": at, "revoked_at": None, "revoked_reason": None,
            "address": (address or "")[:64] or None,
            "user_agent": (user_agent or "")[:256] or None,
            "data": json.dumps(state, separators=(",", ":"))})
    return token, ActiveSession(key, user, at, at, state)


@contextlib.contextmanager
def _bookkeeping(store: Store) -> Iterator[sa.Connection]:
    """A short transaction for session bookkeeping; on SQLite it waits for the database's
    write lock only briefly (the write is skipped, not the request, when it is busy)."""
    with store.engine.begin() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={_SQLITE_TOUCH_WAIT_MS}")
        try:
            yield connection
        finally:
            if sqlite:
                from celltrial.store.engine import SQLITE_BUSY_TIMEOUT_S

                connection.exec_driver_sql(
                    f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")


def find_session(store: Store, token: str | None, *, at: dt.datetime, idle: dt.timedelta,
                 lifetime: dt.timedelta) -> ActiveSession | None:
    """The valid session of ``token``, or None (unknown, revoked, idle longer than ``idle``,
    older than ``lifetime``, or its user disabled or gone). Updates ``last_seen_at``."""
    if not token or len(token) > 128:
        return None
    key = token_hash(token)
    sessions, users = UserSession.__table__, User.__table__
    query = (sa.select(sessions, users.c.role, users.c.site_id, users.c.disabled_at)
             .join(users, users.c.username == sessions.c.username)
             .where(sessions.c.token_hash == key))
    with store.engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None or row.revoked_at is not None or row.disabled_at is not None:
        return None
    created, seen = utc(row.created_at), utc(row.last_seen_at)
    assert created is not None and seen is not None
    if at - seen > idle or at - created > lifetime:
        return None
    if at - seen >= min(TOUCH_EVERY, idle / 4):
        try:
            with _bookkeeping(store) as connection:
                connection.execute(sessions.update().where(
                    sessions.c.token_hash == key, sessions.c.revoked_at.is_(None),
                    sessions.c.last_seen_at < at).values(last_seen_at=at))
            seen = at
        except sa.exc.OperationalError as exc:  # SQLite busy: the next request touches it
            log.info("session last_seen_at not updated (database busy): %s", exc.orig)
    return ActiveSession(key, UserInfo(row.username, row.role, row.site_id), created, seen,
                         _data(row.data))


def save_session_data(store: Store, key: str, data: dict[str, Any]) -> None:
    """Store a session's state (JSON); nothing when the session was revoked meanwhile."""
    table = UserSession.__table__
    with _bookkeeping(store) as connection:
        connection.execute(table.update().where(
            table.c.token_hash == key, table.c.revoked_at.is_(None)).values(
            data=json.dumps(data, separators=(",", ":"), default=str)))


def revoke_session(store: Store, key: str, *, at: dt.datetime, reason: str = "logout") -> bool:
    """Revoke the session ``key`` (a token's hash); False when it was not active."""
    table = UserSession.__table__
    with write_transaction(store.engine) as connection:
        done = connection.execute(table.update().where(
            table.c.token_hash == key, table.c.revoked_at.is_(None)).values(
            revoked_at=at, revoked_reason=reason[:32]))
    return bool(done.rowcount)


def revoke_user_sessions(connection: sa.Connection, username: str, *, at: dt.datetime,
                         reason: str, keep: str | None = None) -> int:
    """Revoke every active session of ``username`` (but ``keep``) inside the caller's write
    transaction; returns how many."""
    table = UserSession.__table__
    query = table.update().where(table.c.username == username, table.c.revoked_at.is_(None))
    if keep is not None:
        query = query.where(table.c.token_hash != keep)
    return int(connection.execute(query.values(revoked_at=at,
                                               revoked_reason=reason[:32])).rowcount or 0)


def active_sessions(store: Store, username: str) -> int:
    """How many unrevoked session rows ``username`` has (expired ones included)."""
    table = UserSession.__table__
    with store.engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table).where(
            table.c.username == username, table.c.revoked_at.is_(None))).scalar_one())


# --- logins -------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoginPolicy:
    """Lockout and throttling limits (docs/web.md: settings ``CELLTRIAL_LOGIN_*``)."""

    lockout_after: int = 10
    """Consecutive failed logins that lock an account."""
    address_limit: int = 50
    """Failed logins from one client address per window before it is refused (429)."""
    address_window: dt.timedelta = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class LoginOutcome:
    """What a login attempt gave: the user when it succeeded; ``retry_after`` (seconds) when
    the address was refused before the password was checked; ``locked_now`` when this failure
    locked the account."""

    user: UserInfo | None
    retry_after: int | None = None
    locked_now: bool = False


def address_key(address: str | None) -> str:
    """The throttling key of a client address: the address, or its /64 network for IPv6
    (one host usually holds a whole /64)."""
    text = (address or "unknown").strip() or "unknown"
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return text[:64]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def address_retry_after(store: Store, address: str | None, *, at: dt.datetime,
                        policy: LoginPolicy) -> int | None:
    """Seconds until ``address`` may try to log in again, or None when it may now."""
    table = LoginThrottle.__table__
    with store.engine.connect() as connection:
        row = connection.execute(sa.select(table).where(
            table.c.address == address_key(address))).first()
    if row is None or row.failures < policy.address_limit:
        return None
    start = utc(row.window_start)
    assert start is not None
    left = policy.address_window - (at - start)
    if left <= dt.timedelta(0):
        return None
    return max(1, math.ceil(left.total_seconds()))


def _count_address_failure(connection: sa.Connection, key: str, at: dt.datetime,
                           policy: LoginPolicy) -> None:
    table = LoginThrottle.__table__
    connection.execute(table.delete().where(table.c.window_start <= at - policy.address_window))
    found = connection.execute(sa.select(table.c.failures).where(
        table.c.address == key)).scalar_one_or_none()
    if found is None:
        connection.execute(table.insert(), {"address": key, "window_start": at, "failures": 1})
    else:
        connection.execute(table.update().where(table.c.address == key).values(
            failures=table.c.failures + 1))


def _stamp(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="seconds")


def attempt_login(store: Store, username: str, password: str, *, address: str | None,
                  at: dt.datetime, policy: LoginPolicy = LoginPolicy()) -> LoginOutcome:
    """Check a login: throttled address (refused unchecked), password (argon2, the same work
    for an unknown user), disabled or locked account. Success resets the account's failure
    count; a failure counts for the address and the account, and locks the account at
    ``policy.lockout_after`` consecutive failures (audited, user ``system``)."""
    retry = address_retry_after(store, address, at=at, policy=policy)
    if retry is not None:
        return LoginOutcome(None, retry)
    users = User.__table__
    with store.engine.connect() as connection:
        row = connection.execute(sa.select(users).where(users.c.username == username)).first()
    ok = password_matches(None if row is None else row.password_hash, password)
    key = address_key(address)
    with write_transaction(store.engine) as connection:
        current = None if row is None else connection.execute(
            sa.select(users).where(users.c.username == username)).first()
        if (ok and current is not None and current.password_hash == row.password_hash
                and current.disabled_at is None and current.locked_at is None):
            connection.execute(users.update().where(users.c.username == username).values(
                failed_logins=0, last_login_at=at))
            return LoginOutcome(UserInfo(current.username, current.role, current.site_id))
        _count_address_failure(connection, key, at, policy)
        if current is None:
            return LoginOutcome(None)
        failures = int(current.failed_logins or 0) + 1
        values: dict[str, Any] = {"failed_logins": failures}
        locked_now = (failures >= policy.lockout_after and current.locked_at is None
                      and current.disabled_at is None)
        if locked_now:
            values["locked_at"] = at
            append_audit(connection, audit_row(
                at=at, user="system", study_id=None, table="user", key=username,
                action="update", field="locked_at", old=None, new=_stamp(at),
                reason=f"account locked after {failures} consecutive failed logins (the last "
                       f"from {key})", source="web"))
        connection.execute(users.update().where(users.c.username == username).values(**values))
    return LoginOutcome(None, locked_now=locked_now)
