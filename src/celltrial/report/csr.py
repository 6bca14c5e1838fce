"""A small table layer printing tables as a clinical study report does (ICH E3, section 14).

A :class:`CsrTable` carries its number ("Table 14.3.1"), title, analysis population,
column headers with their N ("DL1<br>N = 8"), labelled rows (indented under group rows) and
footnotes. Cells are already formatted text: the helpers below give the conventions a CSR
uses (ICH E3 section 14; PhUSE "Analysis and Display White Papers", Central Tendency and
Demographics tables):

- counts as ``n (%)`` with the percentage of the column N to one decimal, ``0`` alone when zero;
- continuous values as ``median (min, max)`` with n reported in its own row;
- estimates with their 95% CI as ``0.45 (0.23, 0.68)``; an open limit is written ``NE``
  (not estimable), never ``NA-NA``;
- numbers to a stated number of significant digits, integers without ``.0``.

Rendering is HTML (the same HTML is printed to PDF by WeasyPrint): long tables repeat their
header row on every page through ``<thead>``; a ``landscape`` table is printed on landscape
pages (CSS named page ``landscape``). Column widths are declared (``<colgroup>``, CSS
``table-layout: fixed``) from the length of the longest text of each column
(:func:`column_widths`), so the printer lays each table out once instead of measuring the
minimum and maximum width of every cell first (the largest single cost of printing the
report).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

NE = "NE"
"""Written for a limit or estimate that cannot be estimated (e.g. a median not reached)."""


def is_missing(value: Any) -> bool:
    """None, NaN, NaT or pandas NA."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, NaT
    except (TypeError, ValueError):
        return False


def num(value: Any, digits: int = 3) -> str:
    """A number for a table: ``digits`` significant digits, integers without a decimal point,
    thousands without exponent up to 10^6, ``NE`` when missing or infinite."""
    if is_missing(value):
        return NE
    value = float(value)
    if not math.isfinite(value):
        return NE
    if value == int(value) and abs(value) < 1e6:
        return f"{int(value)}"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.{digits - 1}e}"
    magnitude = int(math.floor(math.log10(abs(value)))) if value else 0
    decimals = max(digits - 1 - magnitude, 0)
    return f"{value:,.{decimals}f}" if abs(value) >= 1e4 else f"{value:.{decimals}f}"


def n_pct(n: int, total: int) -> str:
    """``n (%)`` of ``total`` to one decimal; ``0`` alone when ``n`` is 0 (CSR convention)."""
    if total <= 0:
        return "-"
    if n == 0:
        return "0"
    return f"{n} ({100.0 * n / total:.1f})"


def median_range(values: Iterable[Any], digits: int = 3) -> str:
    """``median (min, max)`` of the non-missing values; ``-`` when there are none."""
    data = sorted(float(v) for v in values if not is_missing(v))
    if not data:
        return "-"
    k = len(data)
    median = data[k // 2] if k % 2 else (data[k // 2 - 1] + data[k // 2]) / 2
    return f"{num(median, digits)} ({num(data[0], digits)}, {num(data[-1], digits)})"


def est_ci(estimate: Any, ci: Sequence[Any] | None, digits: int = 3, *,
           percent: bool = False) -> str:
    """``estimate (lower, upper)``; a proportion times 100 when ``percent``; ``NE`` for an open
    limit (e.g. the upper limit of a median not reached)."""
    scale = 100.0 if percent else 1.0

    def f(v: Any) -> str:
        return NE if is_missing(v) else num(float(v) * scale, digits)

    text = f(estimate)
    if ci is not None and len(ci) == 2:
        text += f" ({f(ci[0])}, {f(ci[1])})"
    return text


@dataclass(frozen=True)
class Row:
    """A table row: its label, one formatted cell per data column, indent level and whether it
    is a group heading (label only, bold)."""

    label: str
    cells: tuple[str, ...] = ()
    indent: int = 0
    group: bool = False


@dataclass(frozen=True)
class CsrTable:
    """One numbered CSR table (or listing): number, title, population, header, rows, notes.

    ``wide``: printed in a smaller font; ``landscape``: printed on landscape pages (the same
    paper size turned); ``text_cells``: cells of text, left-aligned (numbers are centred under
    their header).
    """

    number: str
    title: str
    population: str
    stub: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    footnotes: tuple[str, ...] = ()
    empty_reason: str = ""
    wide: bool = False
    text_cells: bool = False
    landscape: bool = False
    id: str = field(default="")

    @property
    def caption(self) -> str:
        return f"Table {self.number}: {self.title}"

    @property
    def anchor(self) -> str:
        return "t" + self.number.replace(".", "-")

    def text(self) -> str:
        """Plain text of the table (title, headers, cells, notes) for tests and search."""
        parts = [self.caption, self.population, self.stub, *self.columns]
        for row in self.rows:
            parts += [row.label, *row.cells]
        return "\n".join([*parts, *self.footnotes, self.empty_reason])

    def to_html(self) -> str:
        """The table as HTML: caption with number and title, population line, ``<thead>`` with
        the column headers (repeated on every page when printed), body, footnotes."""
        e = html.escape
        classes = "".join((" wide" if self.wide else "", " text" if self.text_cells else "",
                           " landscape" if self.landscape else ""))
        out = [f'<div class="csr-table{classes}" '
               f'id="{self.anchor}">',
               f'<h3 class="table-title">{e(self.caption)}</h3>',
               f'<p class="population">{e(self.population)}</p>']
        if not self.rows:
            out.append(f'<p class="no-data">{e(self.empty_reason or "No data.")}</p>')
        else:
            head = "".join(f"<th>{_header(c)}</th>" for c in self.columns)
            cols = "".join(f'<col style="width:{w:.1f}%">' for w in column_widths(self))
            out.append(f'<table><colgroup>{cols}</colgroup><thead><tr><th class="stub">'
                       f'{e(self.stub)}</th>{head}</tr></thead><tbody>')
            for row in self.rows:
                cls = ' class="group"' if row.group else ""
                pad = f' style="padding-left:{0.3 + 1.0 * row.indent:.1f}em"' if row.indent else ""
                cells = "".join(f"<td>{e(c)}</td>" for c in row.cells)
                if row.group and not row.cells:
                    cells = "".join("<td></td>" for _ in self.columns)
                out.append(f"<tr{cls}><td class=\"stub\"{pad}>{e(row.label)}</td>{cells}</tr>")
            out.append("</tbody></table>")
        if self.footnotes:
            out.append('<ul class="footnotes">' + "".join(f"<li>{e(n)}</li>"
                                                          for n in self.footnotes) + "</ul>")
        out.append("</div>")
        return "\n".join(out)


#: bounds of a column's width, in characters of its longest text (a longer text wraps); every
#: column gets ``PAD_CHARS`` more for its cell padding, header characters (bold) count
#: ``HEADER_WEIGHT`` times
MIN_CHARS, MAX_CHARS, PAD_CHARS, HEADER_WEIGHT = 5, 48, 2, 1.15


def _longest(text: str) -> int:
    """Characters of the longest line of a cell or header (headers break before ``N = ``)."""
    return max((len(line) for line in text.split("\n")), default=0)


def column_widths(table: CsrTable) -> list[float]:
    """Width of each column (stub first) in % of the table: proportional to the characters of
    the column's longest text (header line, cell, or row label with its indent), each bounded
    to ``MIN_CHARS``..``MAX_CHARS`` so that a long text wraps rather than starving the others."""
    stub = max([HEADER_WEIGHT * _longest(table.stub)]
               + [_longest(r.label) + 2 * r.indent for r in table.rows])
    chars = [stub]
    for j, header in enumerate(table.columns):
        cells = [r.cells[j] for r in table.rows if j < len(r.cells)]
        chars.append(max([HEADER_WEIGHT * _longest(header)] + [_longest(c) for c in cells]))
    bounded = [min(max(c, MIN_CHARS), MAX_CHARS) + PAD_CHARS for c in chars]
    total = float(sum(bounded))
    return [100.0 * c / total for c in bounded]


def _header(text: str) -> str:
    """Column header text; a line break before ``N = ``."""
    return "<br>".join(html.escape(part) for part in text.split("\n"))


def column(label: str, n: int | None) -> str:
    """A column header with its N on a second line (``DL1\\nN = 8``)."""
    return label if n is None else f"{label}\nN = {n}"
