"""Migrations build the schema the ORM declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from celltrial.errors import StoreError
from celltrial.store import DOMAINS, init_db, open_store
from celltrial.store.schema import metadata


def test_init_db_creates_every_table(db_url):
    assert init_db(db_url) == "0009"
    store = open_store(db_url)
    try:
        tables = set(sa.inspect(store.engine).get_table_names())
    finally:
        store.close()
    expected = {d.table for d in DOMAINS.values()} | {"study", "site", "user", "audit",
                                                      "alembic_version"}
    assert expected <= tables


def test_migrated_schema_equals_orm_metadata(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    init_db(db_url)
    store = open_store(db_url)
    try:
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, metadata)
    finally:
        store.close()
    assert diff == []


def test_init_db_twice_is_a_no_op(db_url):
    assert init_db(db_url) == init_db(db_url) == "0009"


def test_sqlite_folder_is_created_and_foreign_keys_are_on(tmp_path):
    url = f"sqlite:///{tmp_path / 'new' / 'deeper' / 'ct.db'}"
    init_db(url)
    store = open_store(url)
    try:
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.close()
    assert (tmp_path / "new" / "deeper" / "ct.db").exists()


def test_default_url_comes_from_the_environment(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("CELLTRIAL_DATABASE_URL", url)
    init_db()
    store = open_store()
    try:
        assert store.url == url
    finally:
        store.close()


@pytest.mark.parametrize("url", ["not a url", "foo://bar", "mysql://root@localhost/test"])
def test_bad_url_is_one_line_naming_the_forms_accepted(url):
    with pytest.raises(StoreError, match="Invalid `database URL`") as caught:
        open_store(url)
    assert "sqlite:///" in caught.value.message and "postgresql://" in caught.value.message


def test_a_database_without_schema_asks_for_init(tmp_path):
    from celltrial.store import read_domains

    store = open_store(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(StoreError, match=r"no celltrial schema.*celltrial db init"):
            read_domains(store, "cd7-zz-phase1")
    finally:
        store.close()


def test_sqlite_file_is_private_and_serves_readers_beside_a_writer(tmp_path):
    """0600 file; WAL journal (readers go on while one writes); writers wait, not fail."""
    from celltrial.store.engine import SQLITE_BUSY_TIMEOUT_S

    path = tmp_path / "private" / "ct.db"
    init_db(f"sqlite:///{path}")
    assert path.stat().st_mode & 0o777 == 0o600
    store = open_store(f"sqlite:///{path}")
    try:
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            timeout = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
            assert timeout == SQLITE_BUSY_TIMEOUT_S * 1000 >= 30_000
    finally:
        store.close()
    wal = path.with_name("ct.db-wal")
    assert not wal.exists() or wal.stat().st_mode & 0o777 == 0o600


def test_database_errors_never_print_the_patient_values(db_url):
    """SQL parameters are patient data: errors (and the logs that print them) hide them."""
    init_db(db_url)
    store = open_store(db_url)
    try:
        with pytest.raises(sa.exc.DBAPIError) as caught:
            with store.engine.begin() as connection:
                connection.execute(sa.text("INSERT INTO study (id, title) VALUES (:i, :t)"),
                                   {"i": "NEUT 0.2 of 01-001", "t": None})
    finally:
        store.close()
    assert "NEUT 0.2 of 01-001" not in str(caught.value)
    assert "hidden" in str(caught.value)


def test_bulk_cache_is_given_back_with_the_connection(tmp_path):
    """An import's larger SQLite page cache (store.engine.bulk_cache) lasts for its
    transaction only: the pooled connection comes back with SQLite's default."""
    from celltrial.store import init_db, open_store
    from celltrial.store.engine import BULK_CACHE_KIB, bulk_cache, write_transaction

    url = f"sqlite:///{tmp_path / 'c.db'}"
    init_db(url)
    store = open_store(url)
    try:
        with store.engine.connect() as connection:
            default = connection.exec_driver_sql("PRAGMA cache_size").scalar()
        with write_transaction(store.engine) as connection:
            bulk_cache(connection)
            assert connection.exec_driver_sql("PRAGMA cache_size").scalar() == -BULK_CACHE_KIB
        for _ in range(3):  # whichever pooled connection comes next
            with store.engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA cache_size").scalar() == default
    finally:
        store.close()
