"""Shared CLI plumbing: the --db option, error-to-exit-code mapping, the rich console.

Tables stay readable on a narrow terminal: the console prints a :class:`rich.table.Table`
as it is when every column can keep its longest word (rich's minimum width), and otherwise
stacks it, one block per row with ``column: value`` lines (:class:`StackedTable`), instead of
letting rich cut columns down to a few characters.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import typer
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from celltrial.errors import CelltrialError


class StackedTable:
    """A table printed one row at a time: a rule naming the row (its first cell), then one
    ``column: value`` line per other column, wrapped under the value."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = self.table
        if table.title:
            yield Text.from_markup(table.title, style="bold") if isinstance(
                table.title, str) else table.title
        columns = list(table.columns)
        cells = [list(c.cells) for c in columns]
        headers = [c.header if isinstance(c.header, str) else str(c.header) for c in columns]
        width = max((len(Text.from_markup(h)) for h in headers[1:]), default=0)
        for r in range(table.row_count):
            first = cells[0][r] if cells and r < len(cells[0]) else ""
            label = Text.from_markup(first) if isinstance(first, str) else first
            yield Rule(Text(f"{Text.from_markup(headers[0]).plain}: ") + label
                       if headers[0] else label, align="left", style="dim")
            for header, column in zip(headers[1:], cells[1:], strict=True):
                value = column[r] if r < len(column) else ""
                grid = Table.grid(padding=(0, 1))
                grid.add_column(width=width, no_wrap=True, style="bold")
                grid.add_column(overflow="fold")
                grid.add_row(Text.from_markup(header), value)
                yield Padding(grid, (0, 0, 0, 1))
        if table.caption:
            yield Text.from_markup(table.caption, style="dim") if isinstance(
                table.caption, str) else table.caption


def readable(renderable: Any, console: Console) -> Any:
    """``renderable`` itself, or a :class:`StackedTable` when it is a table too wide for the
    console even at rich's minimum (each column as wide as its longest word)."""
    if isinstance(renderable, Table) and renderable.columns:
        wide = console.options.update(max_width=10_000)  # measure unclamped by the terminal
        minimum = Measurement.get(console, wide, renderable).minimum
        if minimum > console.width:
            return StackedTable(renderable)
    return renderable


class ReadableConsole(Console):
    """A console that stacks tables too wide for the terminal (see :func:`readable`)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:  # noqa: D102 - as rich's
        super().print(*(readable(o, self) for o in objects), **kwargs)


console = ReadableConsole()
err_console = ReadableConsole(stderr=True)

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
