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
import re
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


#: Cell doses are printed in units of 10^6 cells/kg, as the registrations state them
#: ("(0.5-10)x10^6 CAR-T cells/kg"); the unit goes in the row or column label (:data:`PER_KG`).
MILLION = 1e6
PER_KG = "×10⁶ CAR-T cells/kg"


def per_kg(value: Any) -> str:
    """A cell dose (cells/kg) in units of :data:`PER_KG` (``5e5`` -> ``0.500``)."""
    return NE if is_missing(value) else num(float(value) / MILLION)


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
    """One numbered CSR table or listing: number, title, population, header, rows, notes.

    ``wide``: printed in a smaller font; ``landscape``: printed on landscape pages (the same
    paper size turned); ``text_cells``: cells of text, left-aligned and wrapped at spaces
    (numbers are centred under their header and never wrapped: their column is made wide
    enough, :func:`column_widths`).
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
    kind: str = "Table"
    """"Table" (a summary, ICH E3 section 14) or "Listing" (one row per patient or event,
    ICH E3 section 16.2)."""

    @property
    def caption(self) -> str:
        return f"{self.kind} {self.number}: {self.title}"

    @property
    def anchor(self) -> str:
        return ("l" if self.kind == "Listing" else "t") + self.number.replace(".", "-")

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
            cell_class = ' class="n"' if numbers_fit(self) else ""
            for row in self.rows:
                cls = ' class="group"' if row.group else ""
                pad = f' style="padding-left:{0.3 + 1.0 * row.indent:.1f}em"' if row.indent else ""
                cells = "".join(f"<td{cell_class}>{e(c)}</td>" for c in row.cells)
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

#: characters of the text block's width (A4 or Letter less 2 x 16 mm margins, ~500 pt) at the
#: table font (7.5 pt; 6.8 pt for a wide table), counted as DejaVu Sans digits (0.636 em), the
#: widest characters of most cells
LINE_CHARS, WIDE_LINE_CHARS = 100, 110
#: the same on a landscape page (297 - 2 x 16 mm of A4, 279 - 32 mm of Letter: the narrower)
LANDSCAPE_LINE_CHARS, LANDSCAPE_WIDE_LINE_CHARS = 140, 155


def _longest(text: str) -> int:
    """Characters of the longest line of a cell or header (headers break before ``N = ``)."""
    return max((len(line) for line in text.split("\n")), default=0)


def _longest_word(text: str, header: bool = False) -> int:
    """Characters of the longest run of a cell or header a line may not break: words, and in a
    header also the parts of a hyphenated word ("DLT-evaluable" may break after "DLT-", UAX
    #14); a cell's value (an id such as cd7-aml-mll-001, a date) is kept whole."""
    parts = re.split(r"[ \t\n]+|(?<=-)(?=[A-Za-z])" if header else r"[ \t\n]+", text)
    return max((len(word) for word in parts), default=0)


def _column_chars(table: CsrTable, keep_numbers: bool = True
                  ) -> tuple[list[float], list[float]]:
    """Characters each column (stub first) wants (its longest text, bounded to
    ``MIN_CHARS``..``MAX_CHARS``) and needs (its longest unbreakable run: a word, or a whole
    number cell when ``keep_numbers``), padding included."""
    def measure(texts: list[tuple[str, float, int]]) -> tuple[float, float]:
        want = max([weight * _longest(t) + extra for t, weight, extra in texts] + [0])
        word = max([weight * _longest_word(t, weight != 1.0) + extra
                    for t, weight, extra in texts] + [0])
        want = min(max(want, MIN_CHARS), MAX_CHARS)
        return want + PAD_CHARS, min(max(word, MIN_CHARS), want) + PAD_CHARS

    columns = [measure([(table.stub, HEADER_WEIGHT, 0)]
                       + [(r.label, 1.0, 2 * r.indent) for r in table.rows])]
    for j, header in enumerate(table.columns):
        cells = [r.cells[j] for r in table.rows if j < len(r.cells)]
        if keep_numbers and not table.text_cells:
            cells = [c.replace(" ", "\u00a0") for c in cells]
        columns.append(measure([(header, HEADER_WEIGHT, 0)] + [(c, 1.0, 0) for c in cells]))
    return [w for w, _ in columns], [n for _, n in columns]


def _line(table: CsrTable) -> int:
    if table.landscape:
        return LANDSCAPE_WIDE_LINE_CHARS if table.wide else LANDSCAPE_LINE_CHARS
    return WIDE_LINE_CHARS if table.wide else LINE_CHARS


def numbers_fit(table: CsrTable) -> bool:
    """Whether every number cell of the table fits its column unwrapped (a count such as
    "15 (100.0) / 6 (40.0)" is then printed on one line); else number cells wrap at spaces."""
    return not table.text_cells and sum(_column_chars(table)[1]) <= _line(table)


def column_widths(table: CsrTable) -> list[float]:
    """Width of each column (stub first) in % of the table.

    Each column wants the characters of its longest text (header line, cell, or row label with
    its indent; bounded so that a long text wraps rather than starving the others) and needs
    at least its longest word, so that no word is broken inside (a header "Serious" printed
    "Seriou / s"), and its longest number cell whole where they all fit (:func:`numbers_fit`).
    When the wanted widths fit the line they are used; otherwise each column gets what it
    needs and the rest of the line is shared in proportion to what each still wants."""
    want, need = _column_chars(table, keep_numbers=numbers_fit(table))
    line = _line(table)
    if sum(want) <= line or sum(need) >= line or sum(want) == sum(need):
        chars = want if sum(need) < line else need
    else:
        share = (line - sum(need)) / (sum(want) - sum(need))
        chars = [n + share * (w - n) for w, n in zip(want, need, strict=True)]
    total = float(sum(chars))
    return [100.0 * c / total for c in chars]


def _header(text: str) -> str:
    """Column header text; a line break before ``N = ``."""
    return "<br>".join(html.escape(part) for part in text.split("\n"))


def column(label: str, n: int | None) -> str:
    """A column header with its N on a second line (``DL1\\nN = 8``)."""
    return label if n is None else f"{label}\nN = {n}"
