"""Shared fixtures: database URLs for the store, on SQLite and on PostgreSQL.

- ``sqlite_url``: a fresh SQLite file under the test's tmp_path.
- ``postgres_url``: a fresh, empty schema on the PostgreSQL server at 127.0.0.1:5432 (trust
  auth, database ``test``, user ``postgres``), selected through ``search_path`` in the URL and
  dropped afterwards, so that parallel workers (pytest-xdist) never share tables. Skips with a
  reason when no server answers.
- ``db_url``: parametrized over both (``[sqlite]`` and ``[postgres]``).

None of these runs migrations: call ``celltrial.store.init_db(url)`` (or use ``store`` fixtures
of the test module).
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import Iterator
from functools import cache

import pytest

PG_HOST, PG_PORT, PG_DB, PG_USER = "127.0.0.1", 5432, "test", "postgres"
PG_ADMIN_URL = f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_DB}"


@cache
def _postgres_answers() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture()
def sqlite_url(tmp_path) -> str:
    """A fresh SQLite database file (its folder is created by the store)."""
    return f"sqlite:///{tmp_path / 'db' / 'celltrial.db'}"


@contextlib.contextmanager
def postgres_schema_url() -> Iterator[str]:
    """URL of a fresh schema on the local PostgreSQL server, dropped on exit (skips the test
    with a reason when no server answers). Usable from fixtures of any scope."""
    if not _postgres_answers():
        pytest.skip(f"PostgreSQL does not answer at {PG_HOST}:{PG_PORT} (trust auth, database "
                    f"`{PG_DB}`); start one to run the PostgreSQL variant")
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL at {PG_HOST}:{PG_PORT} refused a connection as "
                    f"{PG_USER} to `{PG_DB}`: {exc.orig}")
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture()
def postgres_url() -> Iterator[str]:
    """A fresh schema on the local PostgreSQL server, dropped after the test."""
    with postgres_schema_url() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request) -> str:
    """The same test on SQLite and on PostgreSQL (skipped when no server answers)."""
    return request.getfixturevalue(f"{request.param}_url")
