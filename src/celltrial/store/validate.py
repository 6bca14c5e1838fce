"""Validation at the door: every frame is checked in full before anything is written.

Checks, in this order, each problem named by source (file or domain), row, column and value in
the project's grammar (``Invalid `AGE`: got `'thirty'`, must be a number``):

1. the domain is known and every column is one of its SDTM variables (docs/data-model.md);
2. each value has its variable's type (text, ISO 8601 date, whole number, number);
3. closed code lists, possible ranges and, for findings (LB, VS, PC), the standard unit and
   possible range of each test code (:mod:`celltrial.store.plausibility`);
4. keys: USUBJID present, --SEQ whole and unique per subject (within the batch and against the
   store); DM one row per subject;
5. every non-DM row refers to a DM subject of the same study (in the batch or in the store);
6. within each row (:mod:`celltrial.store.consistency`): required variables given, end not
   before start, test codes case-sensitive, LBORRES vs LBSTRESN vs LBTOXGR, controlled CM
   medication names.

Rows are numbered from 1 (the first data row; in a CSV file that is line 2).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from celltrial.errors import StoreError
from celltrial.store import consistency
from celltrial.store.domains import DOMAINS, Domain, VarType
from celltrial.store.plausibility import (
    FINDINGS,
    column_ranges,
    required,
    test_ranges,
    vocabularies,
)

MAX_PROBLEMS = 20
_DTC = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?$")
_RULES: dict[VarType, str] = {
    "text": "text",
    "date": "an ISO 8601 date YYYY-MM-DD or date-time YYYY-MM-DDThh:mm[:ss]",
    "int": "a whole number",
    "float": "a finite number",
}


@dataclass(frozen=True)
class Source:
    """Where a frame came from, for messages: a label (``AE.csv`` or ``domain AE``) and
    how many lines precede the first data row in the file (0 for frames)."""

    label: str
    header_lines: int = 0
    rows_before: int = 0
    """Rows of the same file in earlier chunks (a file read in chunks counts on)."""

    def number(self, row: int) -> int:
        """The row number in the file of row ``row`` (from 1) of this chunk."""
        return row + self.rows_before

    def after(self, rows: int) -> Source:
        """This source for the chunk that follows ``rows`` more rows."""
        return replace(self, rows_before=self.rows_before + rows)

    def at(self, row: int | None) -> str:
        """``AE.csv row 3 (line 4)``, ``domain AE row 3`` or the label alone (header)."""
        if row is None:
            return f"{self.label} header"
        row = self.number(row)
        if self.header_lines:
            return f"{self.label} row {row} (line {row + self.header_lines})"
        return f"{self.label} row {row}"


@dataclass
class Problems:
    """Problems found so far (kept up to :data:`MAX_PROBLEMS`, all counted)."""

    lines: list[str] = field(default_factory=list)
    count: int = 0

    def add(self, source: Source, row: int | None, column: str, value: Any, rule: str) -> None:
        """Record one problem in the project's message grammar."""
        self.count += 1
        if len(self.lines) < MAX_PROBLEMS:
            self.lines.append(f"{source.at(row)}, column {column}: Invalid `{column}`: "
                              f"got `{_show(value)}`, must be {rule}")

    def raise_if_any(self) -> None:
        """Raise one :class:`StoreError` listing the problems; nothing has been written."""
        if not self.count:
            return
        if self.count == 1:
            raise StoreError(f"{self.lines[0]}; nothing was written")
        more = f"\n- ... and {self.count - len(self.lines)} more" if self.count > len(
            self.lines) else ""
        raise StoreError(f"{self.count} problems; nothing was written:\n- "
                         + "\n- ".join(self.lines) + more)


def _show(value: Any) -> str:
    if isinstance(value, (np.generic,)):
        value = value.item()
    return repr(value)


def is_missing(value: Any) -> bool:
    """None, NaN, NA, NaT and blank text are missing."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    if isinstance(value, str):
        return not value.strip()
    return False


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ValueError


def _as_int(value: Any) -> int:
    if isinstance(value, bool | np.bool_):
        raise ValueError
    if isinstance(value, int | np.integer):
        return int(value)
    number = float(value.strip()) if isinstance(value, str) else float(value)
    if not math.isfinite(number) or not number.is_integer():
        raise ValueError
    return int(number)


def _as_float(value: Any) -> float:
    if isinstance(value, bool | np.bool_):
        raise ValueError
    number = float(value.strip()) if isinstance(value, str) else float(value)
    if not math.isfinite(number):
        raise ValueError
    return number


def _as_date(value: Any) -> str:
    if isinstance(value, str):
        text = value.strip()
        if not _DTC.match(text):
            raise ValueError
        dt.datetime.fromisoformat(text)  # rejects 2024-02-30, 25:00
        return text
    if isinstance(value, pd.Timestamp | dt.datetime):
        if value.tzinfo is not None:
            raise ValueError
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            return value.date().isoformat()
        spec = "minutes" if value.second == 0 and value.microsecond == 0 else "seconds"
        return value.isoformat(timespec=spec)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return _as_date(pd.Timestamp(value))
    raise ValueError


_CONVERT = {"text": _as_text, "date": _as_date, "int": _as_int, "float": _as_float}


def _convert_column(values: pd.Series, kind: VarType, source: Source, column: str,
                    problems: Problems) -> list[Any]:
    """Python values of one column (None where missing); problems for values of the wrong type."""
    if kind == "float" and pd.api.types.is_float_dtype(values.dtype):
        array = values.to_numpy(dtype=float, na_value=np.nan)
        bad = np.isinf(array)
        for position in np.flatnonzero(bad):
            problems.add(source, int(position) + 1, column, array[position], _RULES[kind])
        return [None if math.isnan(v) else float(v) for v in array.tolist()]
    if kind in ("int", "float") and pd.api.types.is_integer_dtype(values.dtype) \
            and not pd.api.types.is_bool_dtype(values.dtype):
        cast = int if kind == "int" else float
        return [None if v is pd.NA else cast(v) for v in values.astype(object).tolist()]
    convert = _CONVERT[kind]
    if len(values) > 1000 and pd.api.types.infer_dtype(values, skipna=False) == "string":
        return _convert_text(values, convert, kind, source, column, problems)
    out: list[Any] = []
    for position, value in enumerate(values.astype(object).tolist()):
        if is_missing(value):
            out.append(None)
            continue
        try:
            out.append(convert(value))
        except (ValueError, TypeError, OverflowError):
            problems.add(source, position + 1, column, value, _RULES[kind])
            out.append(None)
    return out


def _convert_text(values: pd.Series, convert: Any, kind: VarType, source: Source, column: str,
                  problems: Problems) -> list[Any]:
    """:func:`_convert_column` for a column of text only (CSV): each distinct text is
    converted once by the same rule, then spread to its rows (same values, same problems)."""
    array = values.to_numpy(dtype=object)
    quick = _quick_column(array, kind)
    if quick is not None:
        return quick
    codes, uniques = pd.factorize(array, use_na_sentinel=False)
    converted: list[Any] = []
    bad: list[int] = []
    same = True
    for index, value in enumerate(uniques.tolist()):
        if is_missing(value):
            converted.append(None)
            same = False
            continue
        try:
            new = convert(value)
        except (ValueError, TypeError, OverflowError):
            converted.append(None)
            bad.append(index)
            same = False
            continue
        converted.append(new)
        same = same and new is value
    if bad:
        for position in np.flatnonzero(np.isin(codes, bad)).tolist():
            problems.add(source, position + 1, column, uniques[codes[position]], _RULES[kind])
    if same:  # text kept as read (no blank cell): the column itself
        return array.tolist()
    table = np.empty(len(converted), dtype=object)
    table[:] = converted
    return table[codes].tolist()


def _quick_column(array: np.ndarray, kind: VarType) -> list[Any] | None:
    """The values :func:`_convert_text` gives a column of text, by whole-column operations,
    when it has no bad cell; None when unsure (then each distinct text is converted by its
    rule and the bad ones reported).

    - text: the cells themselves when no distinct cell is blank;
    - int/float: ``float()`` of every cell at once (what :func:`_as_float` does to each),
      all finite and, for ``int``, whole; empty cells missing (``None``).
    """
    if kind == "text":
        distinct = dict.fromkeys(array.tolist())
        # a missing cell (pandas' str dtype reads it as NaN) or a blank one: cell by cell
        if any(not isinstance(value, str) or not value.strip() for value in distinct):
            return None
        return array.tolist()
    if kind not in ("int", "float"):
        return None
    empty = array == ""
    texts = np.where(empty, "nan", array) if empty.any() else array
    try:
        numbers = texts.astype(np.float64)  # float(text) of each, as _as_float
    except (ValueError, TypeError, OverflowError):
        return None
    finite = np.isfinite(numbers)
    if not np.array_equal(~finite, empty):  # a "nan" or "inf" text, refused as a value
        return None
    if kind == "int":
        whole = numbers[finite]
        if (np.abs(whole) > 2.0**53).any() or (whole != np.floor(whole)).any():
            return None
        out = numbers.astype(object)
        out[finite] = whole.astype(np.int64).astype(object)
    else:
        out = numbers.astype(object)
    out[empty] = None
    return out.tolist()


def _fmt(number: float) -> str:
    return f"{number:g}"


@dataclass(frozen=True)
class Checked:
    """One domain's rows after validation: column lists of Python values, in frame order."""

    domain: Domain
    columns: dict[str, list[Any]]
    n: int

    def records(self) -> list[dict[str, Any]]:
        """Rows as dicts (all variables of the domain; None where missing)."""
        names = list(self.columns)
        return [dict(zip(names, values, strict=True))
                for values in zip(*self.columns.values(), strict=True)] if self.n else []


def _within(values: list[Any], low: float, high: float) -> bool:
    """Whether every number of ``values`` (None = missing) is in [low, high] (False when
    unsure: the caller then checks value by value)."""
    try:
        array = np.array(values, dtype=float)
    except (TypeError, ValueError, OverflowError):
        return False
    return not bool(np.any((array < low) | (array > high)))


Memo = dict[str, set[tuple[Any, ...]]]
"""Row-wise checks' value combinations already found clean, by check (see
:func:`by_distinct_rows`): one per domain of an import, carried from chunk to chunk."""


def check_frame(domain: Domain, frame: pd.DataFrame, study_id: str, source: Source,
                problems: Problems, *, next_seq: Mapping[str, int] | None = None,
                memo: Memo | None = None) -> Checked:
    """Validate one frame of ``domain`` (steps 1-4 above, keys within the frame).

    ``memo`` (one per domain of an import, kept across its chunks) lets the row-wise checks
    skip value combinations an earlier chunk already passed (:func:`by_distinct_rows`)."""
    known = set(domain.columns)
    for column in frame.columns:
        if column not in known:
            present = [(i, v) for i, v in enumerate(frame[column].astype(object).tolist(), 1)
                       if not is_missing(v)]
            held = f"; row {present[0][0]} holds `{_show(present[0][1])}`" if present else ""
            problems.add(source, None, str(column), column,
                         f"one of the {domain.name} variables ({', '.join(domain.columns)})"
                         + held)
    frame = frame.reset_index(drop=True)
    n = len(frame)
    columns: dict[str, list[Any]] = {}
    for var in domain.variables:
        if var.name in frame.columns:
            columns[var.name] = _convert_column(frame[var.name], var.type, source, var.name,
                                                problems)
        else:
            columns[var.name] = [None] * n
    # Each loop below runs only where a set or array test of the whole column finds a value
    # it would report (the same problems, in the same order, at the cost of C loops).
    # study
    studies = columns["STUDYID"]
    if set(studies) - {None, study_id}:
        for row, value in enumerate(studies, start=1):
            if value is not None and value != study_id:
                problems.add(source, row, "STUDYID", value, f"the study being written "
                             f"(`{study_id}`)")
    columns["STUDYID"] = [study_id] * n
    # subject
    if None in columns["USUBJID"]:
        for row, value in enumerate(columns["USUBJID"], start=1):
            if value is None:
                problems.add(source, row, "USUBJID", None, "a subject identifier (not empty)")
    # vocabularies and ranges
    for name, allowed in vocabularies(domain.name).items():
        if set(columns[name]) <= {None, *allowed}:
            continue
        for row, value in enumerate(columns[name], start=1):
            if value is not None and value not in allowed:
                problems.add(source, row, name, value,
                             f"one of {', '.join(repr(a) for a in allowed)}")
    for name, bound in column_ranges(domain.name).items():
        if _within(columns[name], bound.low, bound.high):
            continue
        for row, value in enumerate(columns[name], start=1):
            if value is not None and not bound.low <= value <= bound.high:
                problems.add(source, row, name, value,
                             f"in [{_fmt(bound.low)}, {_fmt(bound.high)}] {bound.unit}")
    if domain.name in FINDINGS:
        _check_findings(domain, columns, source, problems)
    check_rows(domain, columns, source, problems, memo=memo)
    # keys
    if domain.seq is not None:
        if domain.seq not in frame.columns:
            counters = dict(next_seq or {})
            seqs = []
            for subject in columns["USUBJID"]:
                counters[subject] = counters.get(subject, 0) + 1
                seqs.append(counters[subject])
            columns[domain.seq] = seqs
        elif None in columns[domain.seq]:
            for row, value in enumerate(columns[domain.seq], start=1):
                if value is None:
                    problems.add(source, row, domain.seq, None, "a whole number (not empty)")
    seen: dict[tuple[Any, ...], int] = {}
    keys = list(zip(*(columns[k] for k in domain.key), strict=True))
    if len(set(keys)) == len(keys):  # no key repeats
        return Checked(domain, columns, n)
    for row, key in enumerate(keys, start=1):
        if any(part is None for part in key):
            continue
        if key in seen:
            problems.add(source, row, domain.key[-1], key[-1],
                         f"unique per subject ({'+'.join(domain.key)} {key!r} repeats row "
                         f"{source.number(seen[key])})")
        else:
            seen[key] = row
    return Checked(domain, columns, n)


def _check_findings(domain: Domain, columns: dict[str, list[Any]], source: Source,
                    problems: Problems) -> None:
    testcd, result, unit = FINDINGS[domain.name]
    ranges = test_ranges(domain.name)
    if _findings_clean(columns[testcd], columns[result], columns[unit], ranges):
        return
    for row, (code, value, given) in enumerate(
            zip(columns[testcd], columns[result], columns[unit], strict=True), start=1):
        expected = ranges.get(code)
        if expected is None or value is None:
            continue
        if given != expected.unit:
            problems.add(source, row, unit, given,
                         f"`{expected.unit}` for {code} (the standard unit of "
                         f"docs/data-model.md; convert {code} {_fmt(value)} to "
                         f"{expected.unit})")
        elif not expected.low <= value <= expected.high:
            problems.add(source, row, result, value,
                         f"in [{_fmt(expected.low)}, {_fmt(expected.high)}] {expected.unit} "
                         f"for {code} (a possible value in the standard unit)")


def _findings_clean(codes: list[Any], values: list[Any], units: list[Any],
                    ranges: Mapping[str, Any]) -> bool:
    """Whether no row of a findings frame has a known test code with a result in another
    unit than the test's standard one or outside its possible range (a set of the distinct
    code-unit pairs and array bounds per row; False sends :func:`_check_findings` through
    the rows)."""
    if any(code in ranges and unit != ranges[code].unit
           for code, unit in set(zip(codes, units, strict=True))):
        return False
    try:
        numbers = np.array(values, dtype=float)  # None -> NaN: no result, nothing to check
    except (TypeError, ValueError, OverflowError):
        return False
    bounds = {code: (r.low, r.high) for code, r in ranges.items()}
    limits = np.array([bounds.get(code, (-np.inf, np.inf)) for code in codes],
                      dtype=float).reshape(-1, 2)
    return not bool(np.any((numbers < limits[:, 0]) | (numbers > limits[:, 1])))


def check_rows(domain: Domain, columns: dict[str, list[Any]], source: Source,
               problems: Problems, *, memo: Memo | None = None) -> None:
    """Step 6: the cross-field checks of :mod:`celltrial.store.consistency`."""
    def add(row: int | None, column: str, value: Any, rule: str) -> None:
        problems.add(source, row, column, value, rule)

    memo = {} if memo is None else memo
    if any(None in columns[name] for name in required(domain.name)):
        consistency.check_required(domain, columns, add)
    consistency.check_date_order(domain, columns, add)
    testcd = FINDINGS.get(domain.name, (None,))[0]
    if testcd is not None:
        by_distinct_rows(lambda cols, found: consistency.check_test_code_case(
            domain, cols, found), (testcd,), columns, add, memo=memo.setdefault(testcd, set()))
    else:
        consistency.check_test_code_case(domain, columns, add)
    if domain.name == "LB":
        by_distinct_rows(consistency.check_lab_results, consistency.LAB_COLUMNS, columns, add,
                         memo=memo.setdefault("LB", set()))
    if domain.name == "AE":
        by_distinct_rows(consistency.check_adverse_events, consistency.AE_COLUMNS, columns,
                         add, memo=memo.setdefault("AE", set()))
    if domain.name == "CM":
        consistency.check_medications(columns, add)


Check = Any
"""A row-wise check of :mod:`celltrial.store.consistency`: ``check(columns, add)``."""


MEMO_LIMIT = 200_000
"""Most value combinations one check remembers as clean (bounds an import's memory)."""


def by_distinct_rows(check: Check, names: tuple[str, ...], columns: dict[str, list[Any]],
                     add: Any, *, memo: set[tuple[Any, ...]] | None = None) -> None:
    """Run a row-wise ``check`` that reads only ``names`` once per distinct combination of
    their values, then report each problem on every row holding that combination, in row
    order, with the row's own value: the same problems as ``check(columns, add)``, at the
    cost of the distinct rows (a lab chunk repeats its tests, units, limits and values).
    The rule functions are the check's own; nothing is re-implemented here.

    ``memo`` holds combinations found clean before (earlier chunks of the same import): they
    are not checked again, and this call adds the clean ones it checks (up to
    :data:`MEMO_LIMIT`). A check is a function of its row's values alone, so a combination
    clean once is clean in every row that holds it.
    """
    n = len(columns[names[0]]) if names else 0
    if n < 64 and memo is None:
        check(columns, add)
        return
    keys = list(zip(*(columns[name] for name in names), strict=True))
    distinct = list(dict.fromkeys(keys))  # each combination once, in order of first row
    if len(distinct) == n and memo is None:
        check(columns, add)
        return
    todo = [combo for combo in distinct if combo not in memo] if memo else distinct
    if not todo:
        return
    sub = {name: [combo[i] for combo in todo] for i, name in enumerate(names)}
    found: list[tuple[int, tuple[Any, ...], str, str]] = []

    def collect(row: int | None, column: str, _value: Any, rule: str) -> None:
        found.append((len(found), todo[(row or 1) - 1], column, rule))

    check(sub, collect)
    flagged = {combo for _, combo, _, _ in found}
    if memo is not None and len(memo) < MEMO_LIMIT:
        memo.update(combo for combo in todo if combo not in flagged)
    if not found:
        return
    rows_of: dict[tuple[Any, ...], list[int]] = {combo: [] for combo in flagged}
    for row, key in enumerate(keys):
        if key in flagged:
            rows_of[key].append(row)
    spread = [(r, index, column, rule)
              for index, combo, column, rule in found for r in rows_of[combo]]
    for r, _index, column, rule in sorted(spread, key=lambda item: (item[0], item[1])):
        add(r + 1, column, columns[column][r] if column in columns else None, rule)


def check_subjects(checked: Checked, subjects: set[str], source: Source,
                   problems: Problems) -> None:
    """Step 5: every row of a non-DM domain refers to a known DM subject."""
    for row, subject in enumerate(checked.columns["USUBJID"], start=1):
        if subject is not None and subject not in subjects:
            problems.add(source, row, "USUBJID", subject,
                         "a subject of DM in this study (in this import or already stored)")


def check_existing(checked: Checked, existing: set[tuple[Any, ...]], source: Source,
                   problems: Problems) -> None:
    """Keys already stored for this study are duplicates."""
    key_names = checked.domain.key
    keys = list(zip(*(checked.columns[k] for k in key_names), strict=True))
    if not existing or existing.isdisjoint(keys):
        return
    for row, key in enumerate(keys, start=1):
        if key in existing:
            problems.add(source, row, key_names[-1], key[-1],
                         f"a new record ({'+'.join(key_names)} {key!r} is already stored)")


def known_domain(name: str, source: Source, problems: Problems) -> Domain | None:
    """The domain called ``name`` or a problem naming the known ones."""
    found = DOMAINS.get(str(name).upper())
    if found is None:
        problems.add(source, None, "domain", name, f"one of {', '.join(DOMAINS)}")
    return found


def iter_rows(columns: Mapping[str, list[Any]]) -> Iterable[dict[str, Any]]:
    """Rows of a column mapping."""
    names = list(columns)
    for values in zip(*columns.values(), strict=True):
        yield dict(zip(names, values, strict=True))
