"""Opening a store (engine + sessions) and migrating its schema with Alembic.

``open_store(url)`` builds the engine explicitly (no global engine at import time).
``init_db(url)`` runs ``alembic upgrade head`` programmatically from the migrations shipped in
the package, so no ``alembic.ini`` is needed on the user's side.

Writers are serialized per store, on both backends, by :func:`write_transaction`: SQLite
writers open ``BEGIN IMMEDIATE`` (the database write lock, waited for up to
:data:`SQLITE_BUSY_TIMEOUT_S`), PostgreSQL writers take a transaction-level advisory lock on
the store's schema. Everything a write reads (the next --SEQ, the record it corrects, the head
of the audit chain) is therefore read under the same lock as it is written: no lost update, no
duplicate --SEQ, one audit chain. Readers never wait (SQLite in WAL mode; PostgreSQL MVCC).

SQLite files are created with mode 0600, their folder created, and every connection has
foreign keys on, WAL journaling and a busy timeout. SQL parameters never appear in error
messages or logs (``hide_parameters``), nor PostgreSQL's DETAIL lines that quote a row
(:class:`RedactedDetail`): they are patient data.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from celltrial.errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_S = 60.0
"""How long a SQLite writer waits for the write lock before the write fails."""
WRITE = "celltrial_write"
"""Execution option marking a connection whose transaction writes (see write_transaction)."""


@dataclass(frozen=True)
class Store:
    """An open store: the database URL, its engine and a session factory."""

    url: str
    engine: sa.Engine
    sessions: sessionmaker[Session]

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()


URL_FORMS = ("sqlite:///relative/path.db, sqlite:////absolute/path.db, "
             "postgresql://user@host:5432/db (psycopg 3)")


def _normalise(url: str | None) -> str:
    from celltrial.config import default_database_url

    text = url or default_database_url()
    try:
        parsed = make_url(text)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"Invalid `database URL`: got `{text!r}`, must be a SQLite or "
                         f"PostgreSQL URL: {URL_FORMS}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(f"Invalid `database URL`: got `{text!r}`, must be a SQLite or "
                         f"PostgreSQL URL: {URL_FORMS}")
    return parsed.render_as_string(hide_password=False)


def _sqlite_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # Foreign keys on; and let SQLAlchemy, not pysqlite, open transactions, so that DDL
    # (migrations) is transactional too (SQLAlchemy docs, "Serializable isolation /
    # Savepoints / Transactional DDL" for pysqlite).
    # WAL lets readers go on while one writer writes (sqlite.org/wal.html); the busy timeout
    # makes a second writer wait for the lock instead of failing at once.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    # A writer takes the write lock when it begins, not when it first writes: a deferred
    # transaction that read and then writes fails with SQLITE_BUSY (no wait) when another
    # writer committed in between (sqlite.org/lang_transaction.html, sqlite.org/wal.html).
    write = connection.get_execution_options().get(WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _postgres_begin(connection: sa.Connection) -> None:
    if connection.get_execution_options().get(WRITE, False):
        connection.exec_driver_sql(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.celltrial-write'))")


class RedactedDetail(Exception):
    """A PostgreSQL error without its DETAIL line, which may quote a row's values
    ("Failing row contains (...)", "Key (...)=(...)"); ``sqlstate`` is kept."""

    def __init__(self, original: BaseException) -> None:
        diag = getattr(original, "diag", None)
        primary = getattr(diag, "message_primary", None) or type(original).__name__
        super().__init__(f"{primary} (the server's detail is hidden: it may quote patient "
                         "data)")
        self.sqlstate = getattr(original, "sqlstate", None)


def _redact_detail(context: sa.engine.ExceptionContext) -> BaseException | None:
    original = context.original_exception
    wrapped = context.sqlalchemy_exception
    if wrapped is None or not getattr(getattr(original, "diag", None), "message_detail", None):
        return None
    return type(wrapped)(wrapped.statement, None, RedactedDetail(original),
                         hide_parameters=True,
                         connection_invalidated=wrapped.connection_invalidated)


@contextlib.contextmanager
def write_transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One write transaction holding the store's write lock until commit or rollback.

    Every write of the store goes through here (records, corrections, deletes, audit rows,
    studies, sites, users): on SQLite ``BEGIN IMMEDIATE``; on PostgreSQL
    ``pg_advisory_xact_lock`` keyed on the schema, taken before anything is read.

    Re-entrant: a write made while the same thread (context) already holds a write
    transaction of the same engine joins it, so that several store functions can form one
    all-or-nothing write (e.g. an entry and its idempotency key).
    """
    held = _HELD.get()
    if held is not None and held[0] is engine:
        yield held[1]  # joined: the enclosing write transaction commits or rolls back
        return
    with engine.execution_options(**{WRITE: True}).begin() as connection:
        token = _HELD.set((engine, connection))
        try:
            yield connection
        finally:
            _HELD.reset(token)


_HELD: contextvars.ContextVar[tuple[sa.Engine, sa.Connection] | None] = contextvars.ContextVar(
    "celltrial_write_transaction", default=None)


@contextlib.contextmanager
def read_connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection to read with: the write transaction this context holds on ``engine``, if
    any (so that a writer never waits for a second pooled connection while it holds the
    write lock), else a fresh one."""
    held = _HELD.get()
    if held is not None and held[0] is engine:
        yield held[1]
        return
    with engine.connect() as connection:
        yield connection


#: SQLite page cache of a connection while it writes a bulk import, in KiB (PRAGMA cache_size
#: takes a negative number as KiB; SQLite's default is 2,000 KiB). An import of 1e6 LB rows
#: inserts into the table's unique-key index across far more pages than the default cache
#: holds; a larger cache for that one transaction cuts its time by about a third and costs at
#: most this much memory (sqlite.org/pragma.html#pragma_cache_size).
BULK_CACHE_KIB = 65536


def bulk_cache(connection: sa.Connection) -> None:
    """On SQLite, give ``connection`` a page cache of :data:`BULK_CACHE_KIB` for the rest of
    its transaction; the pool puts the default back when the connection is returned, after
    the commit (shrinking the cache before the commit would first spill the dirty pages, which
    costs about as much as the larger cache saves). Nothing on other backends."""
    if connection.dialect.name != "sqlite":
        return
    info = connection.connection.info
    if "cache_size" not in info:
        info["cache_size"] = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")


def _sqlite_checkin(dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
    # A connection given a bulk cache (bulk_cache) goes back to the pool with its default.
    before = record.info.pop("cache_size", None)
    if before is not None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA cache_size={int(before)}")
        cursor.close()


def _create_private(path: Path) -> None:
    """Create an empty SQLite file readable by its owner only (0600); WAL and shared-memory
    files inherit its mode (sqlite.org/tempfiles.html)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


def create_engine(url: str | None = None) -> sa.Engine:
    """Engine for ``url`` (default: ``celltrial.config.default_database_url()``)."""
    text = _normalise(url)
    parsed = make_url(text)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(path)
        engine = sa.create_engine(text, hide_parameters=True,
                                  connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        sa.event.listen(engine, "checkin", _sqlite_checkin)
        return engine
    engine = sa.create_engine(text, pool_pre_ping=True, hide_parameters=True)
    sa.event.listen(engine, "begin", _postgres_begin)
    sa.event.listen(engine, "handle_error", _redact_detail)
    return engine


def open_store(url: str | None = None) -> Store:
    """Open the store at ``url`` (default: ``$CELLTRIAL_DATABASE_URL`` or the SQLite file).

    Does not create tables: run :func:`init_db` once (``celltrial db init``).
    """
    from celltrial.store.audit import guard_sessions

    engine = create_engine(url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    guard_sessions(sessions)
    return Store(url=engine.url.render_as_string(hide_password=True), engine=engine,
                 sessions=sessions)


def alembic_config(url: str | None = None):  # type: ignore[no-untyped-def]
    """Alembic configuration pointing at the migrations shipped in the package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", _normalise(url).replace("%", "%%"))
    return config


def init_db(url: str | None = None) -> str:
    """Create or upgrade the schema to the newest migration; returns the revision id."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        with engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
    except sa.exc.OperationalError as exc:
        raise StoreError(f"Cannot open the database `{engine.url!r}`: {exc.orig}") from exc
    finally:
        engine.dispose()
    return revision or ""
