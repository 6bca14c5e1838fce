"""The console script starts and answers --help and --version."""

from typer.testing import CliRunner

from celltrial import __version__
from celltrial.cli.main import app


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_help_lists_groups() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
