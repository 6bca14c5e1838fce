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
