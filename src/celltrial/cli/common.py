"""Shared CLI plumbing: the --db option, error-to-exit-code mapping, the rich console."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from rich.console import Console

from celltrial.errors import CelltrialError

console = Console()
err_console = Console(stderr=True)

DB_OPTION = typer.Option(None, "--db", help="Database URL (default: $CELLTRIAL_DATABASE_URL "
                         "or sqlite:///celltrial-data/celltrial.db).")


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn a :class:`CelltrialError` into a red message and exit code 1."""
    try:
        yield
    except CelltrialError as exc:
        err_console.print(f"[bold red]error[/] [{exc.code}] {exc.message}")
        raise typer.Exit(1) from exc
