"""Cells that a spreadsheet would run as formulas, made inert before CSV/XLSX export.

A text cell opened in Excel, LibreOffice or Google Sheets that starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return may be run as a formula (``=cmd|' /C calc'!A0``,
``=HYPERLINK(...)``): "CSV injection" (OWASP, "CSV Injection"). Following OWASP's guidance,
:func:`neutralise_cell` prefixes such a cell with an apostrophe, which spreadsheets show as
text and do not evaluate. Only text is changed: numbers (``-1.5`` as a float) and text that is
exactly a plain number (``"-1.5"``, ``"+2"``, which no spreadsheet runs) stay as they are, as
do missing values.

Every CSV (and any future XLSX) writer of the package passes its frame through
:func:`neutralise_frame`: ``celltrial db export --format csv``, the analysis datasets' CSV
files and ``celltrial simulate-study --csv-out``. Reading such a file back keeps the
apostrophe (it is part of the text now).
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet cell a formula (OWASP)."""
_PLAIN_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def neutralise_cell(value: Any) -> Any:
    """``value`` with a leading apostrophe when it is text a spreadsheet would run as a
    formula; anything else (numbers, plain-number text, None) unchanged."""
    if (isinstance(value, str) and value.startswith(FORMULA_STARTS)
            and not _PLAIN_NUMBER.fullmatch(value)):
        return "'" + value
    return value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells are :func:`neutralise_cell`-ed (numeric, boolean
    and datetime columns untouched); the column names too."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series):
            out[column] = series.map(neutralise_cell, na_action="ignore")
    out.columns = [neutralise_cell(c) for c in out.columns]
    return out
