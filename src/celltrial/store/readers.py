"""Reading transport files whole or not at all: every row complete, every file readable.

A file is refused, with one line naming it (and the row where there is one), when it is:

- empty, not UTF-8, or not parseable (a quote never closed, invalid JSON);
- CSV (RFC 4180): a row with more or fewer fields than the header (a short row is a record
  cut or mis-entered, never filled with nulls), a header naming a column twice, or a last row
  without its line break (the file was cut; RFC 4180 allows it, but every writer we know ends
  with one, and a cut inside the last field cannot be told apart otherwise);
- Dataset-JSON v1.1 (CDISC 2024): a row that is not an array of as many items as ``columns``,
  or ``records`` differing from the number of rows;
- SAS XPT v5 (SAS TS-140): a data area whose size is not that of the rows read (the file
  was cut: pyreadstat reads what is there without complaint).

CSV files are read in chunks of ``chunk_rows`` rows as text frames (cells as written, empty =
missing), so a large file is never held whole.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from celltrial.errors import StoreError

CHUNK_ROWS = 25_000
_UNREADABLE = "nothing was written"


def refuse(file: Path, what: str, got: str, rule: str, *, row: int | None = None,
           line: int | None = None) -> StoreError:
    """One-line StoreError naming the file (and row/line) in the project's grammar."""
    where = file.name
    if row is not None:
        where += f" row {row}" + (f" (line {line})" if line is not None else "")
    elif line is not None:
        where += f" line {line}"
    return StoreError(f"{where}: Invalid `{what}`: got {got}, must be {rule}; {_UNREADABLE}")


def _not_utf8(file: Path, exc: UnicodeDecodeError) -> StoreError:
    """The first line of ``file`` that is not UTF-8, named with its first bad byte."""
    line, byte = None, exc.object[exc.start:exc.start + 1].hex()
    with open(file, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as bad:
                line, byte = number, raw[bad.start:bad.start + 1].hex()
                break
    return refuse(file, "encoding", f"byte 0x{byte}", "UTF-8 text (save the file as UTF-8)",
                  line=line)


def iter_csv(file: Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Text frames of ``chunk_rows`` rows of a CSV file with a header row; StoreError naming
    file, row and line for a short or long row, a cut last row, a bad encoding or quoting.

    Row numbers count data rows from 1; line numbers count physical lines from 1 (header = 1).

    A file without quotes, NUL bytes or lone carriage returns (most exports) is parsed by
    pandas' C parser (:func:`_fast_chunks`), whose rows are then exactly the fields between
    commas; every row having the header's width is checked by counting the commas of the
    whole file. Anything else, and any problem, goes through :func:`_strict_chunks`
    (Python's csv module, RFC 4180), which names the row and line.
    """
    if file.stat().st_size == 0:
        raise refuse(file, "file", "an empty file", "a CSV file with a header row of SDTM "
                     "variable names")
    scan = _scan(file)
    done = 0
    if scan.plain:
        try:
            for frame in _fast_chunks(file, chunk_rows, scan):
                done += len(frame)
                yield frame
            return
        except _Fallback:
            pass
    yield from _strict_chunks(file, chunk_rows, skip=done)


class _Fallback(Exception):
    """The fast reader met something only the strict reader can name (or read)."""


@dataclass(frozen=True)
class _Scan:
    """Byte counts of a whole CSV file (one pass, C speed)."""

    commas: int
    plain: bool
    """No double quote, NUL byte or carriage return other than in CR LF."""


def _scan(file: Path) -> _Scan:
    commas, plain, last = 0, True, b""
    with open(file, "rb") as handle:
        while block := handle.read(1 << 24):
            commas += block.count(b",")
            if plain and (b'"' in block or b"\x00" in block or
                          block.count(b"\r") != block.count(b"\r\n")
                          or (last == b"\r" and not block.startswith(b"\n"))):
                plain = False
            last = block[-1:]
    return _Scan(commas, plain and last != b"\r")


def _header(file: Path) -> list[str]:
    """The header's column names (stripped), refused when missing or naming a column twice."""
    with open(file, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader, None)
            while header == []:
                header = next(reader, None)
        except UnicodeDecodeError as exc:
            raise _not_utf8(file, exc) from exc
        except csv.Error as exc:
            raise refuse(file, "CSV", f"`{exc}`", "RFC 4180 CSV (every quote closed)",
                         line=reader.line_num) from exc
        if header is None:
            raise refuse(file, "file", "no header row", "a CSV file with a header row of "
                         "SDTM variable names")
        names = [h.strip() for h in header]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise refuse(file, "header", f"`{twice[0]!r}` twice", "each column named once",
                         line=reader.line_num)
    return names


def _fast_chunks(file: Path, chunk_rows: int, scan: _Scan) -> Iterator[pd.DataFrame]:
    """Chunks of a file without quotes by pandas' C parser, as :func:`_strict_chunks` reads
    them: a long row stops the parser, and the file's commas must be the header's width
    minus one per row (so no row is short; a blank or whitespace-only line is not a row
    here and makes the count differ). Raises :class:`_Fallback` on any doubt."""
    names = _header(file)
    width = len(names)
    if width < 2:  # a whitespace-only line would be a row of one blank field
        raise _Fallback
    rows = 0
    try:
        reader = pd.read_csv(file, dtype=object, header=0, names=names, encoding="utf-8-sig",
                             keep_default_na=False, na_values=[], skip_blank_lines=True,
                             chunksize=chunk_rows, engine="c", quoting=csv.QUOTE_NONE)
        with reader:
            pending: pd.DataFrame | None = None
            for frame in reader:
                if frame.shape[1] != width:
                    raise _Fallback
                rows += len(frame)
                if pending is not None:
                    yield pending
                pending = frame
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise _Fallback from exc
    if scan.commas != (width - 1) * (rows + 1):
        # A short (or whitespace-only) row: the strict reader names it.
        for _ in _strict_chunks(file, chunk_rows, skip=sys.maxsize):
            pass
        raise refuse(file, "rows", "rows of differing widths", f"{width} fields in every row "
                     "as the header names")
    if not rows:
        pending = pd.DataFrame([], columns=names, dtype=object)
    elif not _ends_with_line_break(file):
        raise _Fallback
    assert pending is not None
    yield pending.reset_index(drop=True)


def _strict_chunks(file: Path, chunk_rows: int, skip: int = 0) -> Iterator[pd.DataFrame]:
    """:func:`iter_csv` by Python's csv module (RFC 4180, strict), leaving out the first
    ``skip`` rows (already read by :func:`_fast_chunks`; still checked)."""
    with open(file, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        row = 0
        try:
            header = next(reader, None)
            while header == []:
                header = next(reader, None)
            if header is None:
                raise refuse(file, "file", "no header row", "a CSV file with a header row of "
                             "SDTM variable names")
            names = [h.strip() for h in header]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise refuse(file, "header", f"`{twice[0]!r}` twice", "each column named once",
                             line=reader.line_num)
            width = len(names)
            chunk: list[list[str]] = []
            for fields in reader:
                if not fields:
                    continue
                row += 1
                if len(fields) != width:
                    raise refuse(file, "row", f"{len(fields)} fields",
                                 f"{width} fields as the header names (a short row is a "
                                 "record cut or mis-entered)", row=row, line=reader.line_num)
                if row <= skip:
                    continue
                chunk.append(fields)
                if len(chunk) >= chunk_rows:
                    yield pd.DataFrame(chunk, columns=names, dtype=object)
                    chunk = []
        except UnicodeDecodeError as exc:
            raise _not_utf8(file, exc) from exc
        except csv.Error as exc:
            raise refuse(file, "CSV", f"`{exc}`", "RFC 4180 CSV (every quote closed)",
                         row=row + 1, line=reader.line_num) from exc
    if row and not _ends_with_line_break(file):
        raise refuse(file, "row", "a last row without its line break",
                     "a complete row ending the file (the file looks cut)", row=row,
                     line=reader.line_num)
    yield pd.DataFrame(chunk, columns=names, dtype=object)


def _ends_with_line_break(file: Path) -> bool:
    with open(file, "rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) in (b"\n", b"\r")


def read_csv_file(file: Path) -> pd.DataFrame:
    """The whole CSV file as one text frame (see :func:`iter_csv`)."""
    chunks = list(iter_csv(file))
    return chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)


def read_dataset_json_file(file: Path) -> tuple[str, pd.DataFrame]:
    """(dataset name, rows as an object frame) of a Dataset-JSON v1.1 file, every row checked
    against ``columns``."""
    if file.stat().st_size == 0:
        raise refuse(file, "file", "an empty file", "a Dataset-JSON v1.1 document")
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise _not_utf8(file, exc) from exc
    except json.JSONDecodeError as exc:
        raise refuse(file, "JSON", f"`{exc.msg}` at character {exc.pos}",
                     "a complete JSON document (the file looks cut)", line=exc.lineno) from exc
    try:
        names = [str(c["name"]) for c in document["columns"]]
        name = str(document["name"]).upper()
        rows = document["rows"]
    except (KeyError, TypeError) as exc:
        raise refuse(file, "Dataset-JSON", f"no `{exc}`" if isinstance(exc, KeyError) else
                     "a document of another shape", "a Dataset-JSON v1.1 document with "
                     "`name`, `columns` and `rows`") from exc
    if not isinstance(rows, list):
        raise refuse(file, "rows", f"`{type(rows).__name__}`", "an array of rows")
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, list) or len(row) != len(names):
            got = f"{len(row)} items" if isinstance(row, list) else f"`{row!r:.40}`"
            raise refuse(file, "row", got, f"an array of {len(names)} items, one per column "
                         "(a short row is a record cut or mis-entered)", row=number)
    declared = document.get("records")
    if declared is not None and declared != len(rows):
        raise refuse(file, "records", f"`{declared!r}`", f"the number of rows ({len(rows)}); "
                     "the file looks cut or was edited")
    return name, pd.DataFrame(rows, columns=names, dtype=object)


_OBS_HEADER = b"HEADER RECORD*******OBS     HEADER RECORD!!!!!!!"


def read_xpt_file(file: Path) -> tuple[str, pd.DataFrame]:
    """(dataset name, frame) of a SAS XPT v5 file whose data area holds exactly the rows read
    (observation length x rows, padded with blanks to 80-byte records)."""
    import pyreadstat

    if file.stat().st_size == 0:
        raise refuse(file, "file", "an empty file", "a SAS XPT v5 transport file")
    try:
        frame, meta = pyreadstat.read_xport(str(file))
    except Exception as exc:  # pyreadstat raises its own ReadstatError and others
        raise refuse(file, "XPT", f"`{exc}`", "a SAS XPT v5 transport file") from exc
    data = file.read_bytes()
    start = data.find(_OBS_HEADER)
    if start < 0:
        raise refuse(file, "XPT", "no observation header", "a SAS XPT v5 transport file")
    start += 80
    width = sum(int(w) for w in meta.variable_storage_width.values())
    rows = len(frame)
    expected = math.ceil(rows * width / 80) * 80
    area = len(data) - start
    rest = len(data[start + rows * width:].rstrip(b" "))
    if area != expected or rest:
        got = f"{area} bytes of observations" + (f", {rest} of them after row {rows} not "
                                                  "blank padding" if rest else "")
        raise refuse(file, "XPT size", got, f"{expected} bytes holding exactly the {rows} "
                     f"rows of {width} bytes read, padded with blanks (the file was cut "
                     "or altered)")
    return (meta.table_name or file.stem).upper(), frame


def blank_to_none(frame: pd.DataFrame) -> pd.DataFrame:
    """XPT text cells that are blank (SAS has no character null) as None."""
    out = frame.astype(object)
    for column in out.columns:
        values: list[Any] = out[column].tolist()
        if any(isinstance(v, str) for v in values):
            out[column] = [None if isinstance(v, str) and not v.strip() else v for v in values]
    return out
