"""Entry point of the ``celltrial`` console script.

Each sub-command module exposes ``register(app)``; heavy imports happen inside the
command functions so that ``celltrial --help`` starts fast. Exit codes: 0 ok, 1 the input
or data is wrong (the message names it), 2 usage.
"""

from __future__ import annotations

import typer

from celltrial import __version__
from celltrial.cli import analyze, clinical, db, demo, design, dlt, kinetics, protocol, report, web
from celltrial.cli import rp2d as rp2d_cli

app = typer.Typer(
    name="celltrial",
    help="Run and analyse CAR-T cell therapy trials: protocols, data capture, endpoints, "
    "dose escalation, kinetics and virtual patients.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"celltrial {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """celltrial: CAR-T trial platform."""


for _module in (protocol, db, clinical, analyze, design, dlt, kinetics, report, demo, web,
                rp2d_cli):
    _module.register(app)


def main() -> None:  # pragma: no cover - console entry
    app()
