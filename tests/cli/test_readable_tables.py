"""Tables at 80 columns (issue 10, part 4): a table that cannot keep every word whole on the
terminal is stacked one row per block instead of being cut into 3-character columns."""

from __future__ import annotations

import pytest
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from celltrial.cli import common
from celltrial.cli.common import StackedTable, readable
from celltrial.cli.main import app
from celltrial.protocols import list_ids, load


@pytest.fixture
def narrow(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(common.console, "width", 80)
    monkeypatch.setattr(common.err_console, "width", 80)
    return 80


def _table(*words: str) -> Table:
    table = Table(title="t")
    for i, _ in enumerate(words):
        table.add_column(f"c{i}", overflow="fold")
    table.add_row(*words)
    return table


def test_a_table_that_fits_is_printed_as_a_table():
    console = Console(width=80)
    table = _table("a", "b", "c")
    assert readable(table, console) is table


def test_a_table_too_wide_for_its_longest_words_is_stacked():
    console = Console(width=40)
    table = _table("x" * 15, "y" * 15, "z" * 15)  # 45 characters of words alone
    assert isinstance(readable(table, console), StackedTable)
    assert readable(table, Console(width=120)) is table


def test_protocol_list_keeps_every_title_word_whole_at_80_columns(narrow):
    result = CliRunner().invoke(app, ["protocol", "list"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert max(len(line.rstrip()) for line in result.output.splitlines()) <= narrow
    text = " ".join(result.output.split())
    for protocol in (load(i) for i in list_ids()):
        for word in protocol.title.split():
            assert word in text, word
        assert f"id: {protocol.id}" in text
