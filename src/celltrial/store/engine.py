"""Opening a store (engine + sessions) and migrating its schema with Alembic.

``open_store(url)`` builds the engine explicitly (no global engine at import time); SQLite
files get their folder created and foreign keys switched on for every connection.
``init_db(url)`` runs ``alembic upgrade head`` programmatically from the migrations shipped in
the package, so no ``alembic.ini`` is needed on the user's side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from celltrial.errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")


@dataclass(frozen=True)
class Store:
    """An open store: the database URL, its engine and a session factory."""

    url: str
    engine: sa.Engine
    sessions: sessionmaker[Session]

    def close(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()


def _normalise(url: str | None) -> str:
    from celltrial.config import default_database_url

    text = url or default_database_url()
    try:
        parsed = make_url(text)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"Invalid `database URL`: got `{text!r}`, must be an SQLAlchemy URL "
                         "such as sqlite:///celltrial-data/celltrial.db or "
                         "postgresql+psycopg://user@host/db") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # Foreign keys on; and let SQLAlchemy, not pysqlite, open transactions, so that DDL
    # (migrations) is transactional too (SQLAlchemy docs, "Serializable isolation /
    # Savepoints / Transactional DDL" for pysqlite).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def create_engine(url: str | None = None) -> sa.Engine:
    """Engine for ``url`` (default: ``celltrial.config.default_database_url()``)."""
    text = _normalise(url)
    parsed = make_url(text)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(text)
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(text, pool_pre_ping=True)


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
