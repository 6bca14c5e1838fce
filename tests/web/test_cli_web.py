"""`celltrial web`: help, add-user (stdin and prompt), serve's options."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from celltrial.cli.main import app
from celltrial.store import get_user, init_db, open_store, verify_password


@pytest.mark.parametrize("args", [["web", "--help"], ["web", "serve", "--help"],
                                  ["web", "add-user", "--help"]])
def test_help(args) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_serve_help_names_its_options() -> None:
    out = CliRunner().invoke(app, ["web", "serve", "--help"]).output
    for option in ("--db", "--host", "--port"):
        assert option in out


def test_main_help_lists_web() -> None:
    assert "web" in CliRunner().invoke(app, ["--help"]).output


def test_add_user_from_stdin_and_prompt(sqlite_url) -> None:
    init_db(sqlite_url)
    runner = CliRunner()
    result = runner.invoke(app, ["web", "add-user", "inv9", "--role", "investigator", "--site",
                                 "09", "--password-stdin", "--db", sqlite_url],
                           input="a long passphrase\n")
    assert result.exit_code == 0, result.output
    store = open_store(sqlite_url)
    try:
        user = get_user(store, "inv9")
        assert (user.role, user.site_id) == ("investigator", "09")
        assert verify_password(store, "inv9", "a long passphrase")
        prompted = runner.invoke(app, ["web", "add-user", "mon9", "--role", "monitor", "--db",
                                       sqlite_url], input="another passphrase\nanother passphrase\n")
        assert prompted.exit_code == 0, prompted.output
        assert "another passphrase" not in prompted.output
        assert verify_password(store, "mon9", "another passphrase")
        bad = runner.invoke(app, ["web", "add-user", "x9", "--role", "nurse",
                                  "--password-stdin", "--db", sqlite_url],
                            input="a long passphrase\n")
        assert bad.exit_code == 1
        assert get_user(store, "x9") is None
    finally:
        store.close()


@pytest.mark.parametrize(("username", "password", "message"), [
    ("inv7", "eleven char", "at least 12"),
    ("inv7", "Password1234", "most common"),
    ("inv7", "qwertyuiop123", "most common"),
    ("investigator.seven", "Investigator.Seven", "user name"),
])
def test_add_user_applies_the_password_policy(sqlite_url, username, password,
                                              message) -> None:
    init_db(sqlite_url)
    result = CliRunner().invoke(app, ["web", "add-user", username, "--role", "investigator",
                                      "--site", "07", "--password-stdin", "--db", sqlite_url],
                                input=f"{password}\n")
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    store = open_store(sqlite_url)
    try:
        assert get_user(store, username) is None
    finally:
        store.close()


def test_set_password_and_unlock_user_from_the_command_line(sqlite_url) -> None:
    import datetime as dt

    from celltrial.store import audit_trail
    from celltrial.store.sessions import LoginPolicy, attempt_login
    from celltrial.store.users import get_account

    init_db(sqlite_url)
    runner = CliRunner()
    assert runner.invoke(app, ["web", "add-user", "admin9", "--role", "admin",
                               "--password-stdin", "--db", sqlite_url],
                         input="a long passphrase\n").exit_code == 0
    weak = runner.invoke(app, ["web", "set-password", "admin9", "--password-stdin", "--db",
                               sqlite_url], input="short\n")
    assert weak.exit_code == 1
    done = runner.invoke(app, ["web", "set-password", "admin9", "--password-stdin", "--db",
                               sqlite_url], input="another long passphrase\n")
    assert done.exit_code == 0, done.output
    store = open_store(sqlite_url)
    try:
        assert verify_password(store, "admin9", "another long passphrase")
        at = dt.datetime.now(dt.UTC)
        for _ in range(3):
            attempt_login(store, "admin9", "wrong guess", address="192.0.2.1", at=at,
                          policy=LoginPolicy(lockout_after=3))
        assert get_account(store, "admin9").status == "locked"
        unlocked = runner.invoke(app, ["web", "unlock-user", "admin9", "--db", sqlite_url])
        assert unlocked.exit_code == 0 and "unlocked" in unlocked.output
        assert get_account(store, "admin9").status == "active"
        trail = audit_trail(store, table="user", record_key="admin9")
        assert trail["field"].tolist() == [None, "password_hash", "locked_at", "locked_at"]
        assert trail["user"].tolist() == ["cli", "cli", "system", "cli"]
    finally:
        store.close()
