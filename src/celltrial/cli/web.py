"""`celltrial web`: serve the web app for sites, add users, set passwords, unlock accounts."""

from __future__ import annotations

import sys

import typer

from celltrial.cli.common import DB_OPTION, console, user_errors

web_app = typer.Typer(help="The web app for sites: serve it, add users, set passwords, "
                      "unlock accounts.", no_args_is_help=True)


@web_app.command("serve")
def serve(
    db: str | None = DB_OPTION,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
) -> None:
    """Serve the web app and JSON API with uvicorn (sessions live in the store; set
    CELLTRIAL_SECRET_KEY so that login forms survive a restart, and CELLTRIAL_SECURE_COOKIES=1
    behind TLS: docs/web.md)."""
    import uvicorn

    from celltrial.store import get_user  # noqa: F401 - fail early on a broken install
    from celltrial.web import create_app

    with user_errors():
        app = create_app(db)
    console.print(f"celltrial web on http://{host}:{port} (database {app.state.store.url})")
    uvicorn.run(app, host=host, port=port, log_level="info")


@web_app.command("add-user")
def add_user(
    username: str = typer.Argument(..., help="User name (login)."),
    role: str = typer.Option(..., "--role", help="admin, investigator, coordinator, monitor, "
                             "statistician or data_manager (locks records, subjects, the "
                             "study database)."),
    site: str | None = typer.Option(None, "--site", help="Site id the user belongs to "
                                    "(investigator, coordinator; monitor: none = all sites)."),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="Read the password from the first line of stdin."),
    full_name: str | None = typer.Option(
        None, "--full-name", help="The person's printed name, shown with their electronic "
                                  "signatures (21 CFR 11.50); needed to sign."),
    db: str | None = DB_OPTION,
) -> None:
    """Add a user; the password is prompted twice (hidden) or read from stdin.

    Password policy: at least 12 characters, not the user name, not a common password."""
    from celltrial.store import add_user as store_add_user
    from celltrial.store import open_store
    from celltrial.store.signatures import set_full_name

    password = _read_password(password_stdin)
    with user_errors():
        store = open_store(db)
        try:
            user = store_add_user(store, username, role, password, site=site, by="cli")
            if full_name is not None:
                set_full_name(store, username, full_name, by="cli", source="cli")
        finally:
            store.close()
    console.print(f"User [bold]{user.username}[/] added: role {user.role}"
                  + (f", site {user.site_id}" if user.site_id else ", all sites")
                  + (f", full name {' '.join(full_name.split())}" if full_name else ""))


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@web_app.command("set-password")
def set_password(
    username: str = typer.Argument(..., help="User name (login)."),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="Read the password from the first line of stdin."),
    db: str | None = DB_OPTION,
) -> None:
    """Set a user's password (policy as add-user); ends the user's sessions; audited."""
    from celltrial.store import open_store
    from celltrial.store.users import set_password as store_set_password

    password = _read_password(password_stdin)
    with user_errors():
        store = open_store(db)
        try:
            revoked = store_set_password(store, username, password, by="cli",
                                         reason="password set with celltrial web set-password")
        finally:
            store.close()
    console.print(f"Password of [bold]{username}[/] set; {revoked} session(s) ended")


@web_app.command("unlock-user")
def unlock_user(
    username: str = typer.Argument(..., help="User name (login)."),
    db: str | None = DB_OPTION,
) -> None:
    """Unlock an account locked by failed logins (as the admin page does); audited."""
    from celltrial.store import open_store
    from celltrial.store.users import unlock_user as store_unlock

    with user_errors():
        store = open_store(db)
        try:
            done = store_unlock(store, username, by="cli",
                                reason="unlocked with celltrial web unlock-user")
        finally:
            store.close()
    console.print(f"[bold]{username}[/] " + ("unlocked" if done else "was not locked"))


def register(app: typer.Typer) -> None:
    """Add the `web` group to the root app."""
    app.add_typer(web_app, name="web")
