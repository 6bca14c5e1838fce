"""Users for the tests of queries, SDV and locks: one per role and site, written as rows
with one argon2 hash made once (the password is not what these tests check; hashing it per
user per test would take most of their time)."""

from __future__ import annotations

import functools

from celltrial.store import Store
from celltrial.store.audit import now
from celltrial.store.engine import write_transaction
from celltrial.store.schema import User
from celltrial.store.users import hash_password

PASSWORD = "correct horse battery"
USERS = {"mon101": ("monitor", "101"), "mon102": ("monitor", "102"),
         "monall": ("monitor", None), "inv101": ("investigator", "101"),
         "coord102": ("coordinator", "102"), "dm1": ("data_manager", None),
         "admin": ("admin", None)}


@functools.cache
def _hash() -> str:
    return hash_password(PASSWORD)


def add_users(store: Store) -> Store:
    """Store :data:`USERS` (role constraint of the database applies)."""
    with write_transaction(store.engine) as connection:
        connection.execute(User.__table__.insert(), [
            {"username": name, "role": role, "site_id": site, "password_hash": _hash(),
             "created_at": now()} for name, (role, site) in USERS.items()])
    return store
