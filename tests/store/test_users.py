"""Users: roles, argon2 hashes that verify, never a plain password in the database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from celltrial.errors import StoreError
from celltrial.store import add_user, audit_trail, get_user, verify_password
from celltrial.store.schema import User


def test_argon2_hash_verifies_and_plain_password_is_not_stored(store):
    info = add_user(store, "inv1", "investigator", "correct horse battery", site="101",
                    by="admin")
    assert (info.role, info.site_id) == ("investigator", "101")
    assert verify_password(store, "inv1", "correct horse battery")
    assert not verify_password(store, "inv1", "correct horse battery!")
    assert not verify_password(store, "nobody", "correct horse battery")
    with store.engine.connect() as connection:
        stored = connection.execute(sa.select(User.__table__.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert "argon2" not in audit_trail(store, table="user")["new_value"].iloc[0]
    assert get_user(store, "inv1") == info


@pytest.mark.parametrize(("username", "role", "password", "message"), [
    ("x", "sponsor", "long enough pass", r"Invalid `role`: got `'sponsor'`"),
    ("x", "monitor", "short", r"Invalid `password`: got `5 characters`, must have at least 12"),
    ("x", "monitor", "eleven char", r"Invalid `password`: got `11 characters`"),
    ("", "monitor", "long enough pass", r"Invalid `username`"),
    ("jdoe.monitor", "monitor", "JDOE.Monitor", r"Invalid `password`: got the user name"),
    ("x", "monitor", "Qwerty123456", r"Invalid `password`: got one of the most common"),
    ("x", "monitor", "PASSWORD1234", r"Invalid `password`: got one of the most common"),
])
def test_bad_users_are_refused(store, username, role, password, message):
    with pytest.raises(StoreError, match=message):
        add_user(store, username, role, password)


def test_usernames_are_unique(store):
    add_user(store, "stat", "statistician", "long enough pass")
    with pytest.raises(StoreError, match="must be new"):
        add_user(store, "stat", "monitor", "long enough pass")


def test_the_shipped_common_password_list_is_read_lower_cased():
    from celltrial.store.users import common_passwords

    listed = common_passwords()
    assert len(listed) >= 9_000
    assert {"123456", "password", "qwerty123456"} <= listed
    assert all(p == p.lower() and not p.startswith("## ") for p in listed)
