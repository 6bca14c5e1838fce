"""Cross-field checks of one row: fields that must agree with each other.

Each check reads the columns of a validated frame (Python values, None where missing) and adds
one problem per disagreeing row, naming the column to correct:

- required variables hold a value (:data:`celltrial.store.plausibility.REQUIRED`: SDTMIG 3.4
  "Req" topic variables; for AE the fields the web form requires);
- an end date is not before its start date (``AEENDTC`` >= ``AESTDTC``; SDTMIG 3.4 section
  4.4), compared at the precision both dates share;
- test codes are case-sensitive: ``neut`` is not ``NEUT`` (SDTM controlled terminology is
  case-sensitive; a code differing only in case would skip the unit and range table);
- LB original vs standard result: a numeric ``LBORRES`` in ``LBORRESU`` and ``LBSTRESN`` in
  ``LBSTRESU`` are the same value: ``LBSTRESN`` expressed in ``LBORRESU`` rounds to
  ``LBORRES`` at the digits ``LBORRES`` gives (conversion factors of
  :mod:`celltrial.clinical.units`, the ones the web form and ADLB use);
- LB grade: ``LBTOXGR`` is the CTCAE v5.0 grade of ``LBSTRESN`` (``LBSTRESU``) with
  ``LBORNRLO``/``LBORNRHI`` as LLN/ULN, by :func:`celltrial.clinical.grade_lab` over the test's
  terms of :data:`celltrial.derive.adlb.CTCAE_TERMS` (the worse of two directions, as ADLB and
  the web form grade), or a grade a clinical qualifier of the term gives for that value
  (symptomatic, transfusion indicated, hospitalization, life-threatening, death). Terms whose
  grade depends on the subject's baseline (ALT, AST, bilirubin, creatinine, fibrinogen) cannot
  be graded from one row and are not checked here; ADLB grades them with the baseline.
- AE coding: ``AEDECOD`` (or ``AETERM`` when no dictionary term is given) is a term of
  ``AETOXSCL`` spelled exactly (CTCAE v5.0's 837 terms; ASTCT 2019 for CRS and ICANS),
  ``AETOXGR`` is a grade that term has (no grade 5 "Neutrophil count decreased", no grade 4
  "Headache"), grade 5 is serious with outcome FATAL and FATAL is grade 5, ``AEOUT`` is from
  CDISC CT code list OUT (:func:`celltrial.clinical.ae_terms.ae_problems`).
- CM names: in the categories the analysis reads (CRS/ICANS management, antimicrobial,
  immunoglobulin) ``CMDECOD`` (else ``CMTRT``) is a controlled name of that category
  (:func:`celltrial.clinical.medications.medication_problems`, ``data/cm_drugs.csv``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from celltrial.errors import CelltrialError
from celltrial.store.domains import Domain
from celltrial.store.plausibility import date_order, required, test_ranges

Columns = dict[str, list[Any]]
Add = Callable[[int | None, str, Any, str], None]
"""``add(row, column, value, rule)``: report one problem (rows counted from 1)."""

_TESTCD = {"LB": "LBTESTCD", "VS": "VSTESTCD", "PC": "PCTESTCD"}


def check_required(domain: Domain, columns: Columns, add: Add) -> None:
    """Every required variable of ``domain`` holds a value in every row."""
    for name, source in required(domain.name).items():
        for row, value in enumerate(columns[name], start=1):
            if value is None:
                add(row, name, None, f"given (required in every {domain.name} record: "
                                     f"{source})")


def end_before_start(start: str, end: str) -> bool:
    """Whether ISO 8601 ``end`` is before ``start`` at the precision both give
    (``2024-01-10`` vs ``2024-01-10T08:00`` compare as dates)."""
    n = min(len(start), len(end))
    return end[:n] < start[:n]


def check_date_order(domain: Domain, columns: Columns, add: Add) -> None:
    """``end`` on or after ``start`` for each start/end pair of ``domain``."""
    for pair in date_order(domain.name):
        for row, (start, end) in enumerate(zip(columns[pair.start], columns[pair.end],
                                               strict=True), start=1):
            if start is not None and end is not None and end_before_start(start, end):
                add(row, pair.end, end, f"on or after {pair.start} `{start}` (an event cannot "
                                        "end before it starts; SDTMIG 3.4)")


def known_test_codes(domain: str) -> frozenset[str]:
    """Test codes the store knows for ``domain``: the unit table and, for LB, the CTCAE
    terms table."""
    codes = set(test_ranges(domain))
    if domain == "LB":
        codes |= set(_ctcae_terms())
    return frozenset(codes)


def check_test_code_case(domain: Domain, columns: Columns, add: Add) -> None:
    """A test code equal to a known one but for case is refused, naming the known code."""
    name = _TESTCD.get(domain.name)
    if name is None:
        return
    known = known_test_codes(domain.name)
    folded = {code.upper(): code for code in known}
    for row, code in enumerate(columns[name], start=1):
        if code is not None and code not in known and code.upper() in folded:
            add(row, name, code, f"`{folded[code.upper()]}` (test codes are case-sensitive, "
                                 "as SDTM controlled terminology; the unit and range table of "
                                 "celltrial/store/plausibility.py knows "
                                 f"`{folded[code.upper()]}`)")


AE_COLUMNS = ("AETERM", "AEDECOD", "AETOXGR", "AETOXSCL", "AESER", "AEOUT")
"""The columns :func:`check_adverse_events` reads."""


def check_adverse_events(columns: Columns, add: Add) -> None:
    """Each AE's term, grade, seriousness and outcome agree with the grading scale
    (:func:`celltrial.clinical.ae_terms.ae_problems`)."""
    from celltrial.clinical.ae_terms import ae_problems

    n = len(columns["AETERM"])
    for row in range(n):
        decod, verbatim = columns["AEDECOD"][row], columns["AETERM"][row]
        term = decod if decod is not None else verbatim
        grade = columns["AETOXGR"][row]
        problems = ae_problems(term=term, grade=grade, scale=columns["AETOXSCL"][row],
                               serious=columns["AESER"][row], outcome=columns["AEOUT"][row])
        for field, message in problems:
            if field == "AEDECOD" and decod is None:
                field = "AETERM"
            value = {"AEDECOD": decod, "AETERM": verbatim, "AETOXGR": grade,
                     "AESER": columns["AESER"][row], "AEOUT": columns["AEOUT"][row]}[field]
            add(row + 1, field, value, message)


def check_medications(columns: Columns, add: Add) -> None:
    """Each CM record of a controlled category names a controlled medication of it."""
    from celltrial.clinical.medications import medication_problems

    rows = zip(columns["CMCAT"], columns["CMDECOD"], columns["CMTRT"], strict=True)
    for row, (category, decod, trt) in enumerate(rows, start=1):
        for field, rule in medication_problems(category, decod, trt):
            add(row, field, decod if field == "CMDECOD" else trt, rule)


# ------------------------------------------------------------------ LB results and grades

def _ctcae_terms() -> dict[str, tuple[str, ...]]:
    from celltrial.derive.adlb import CTCAE_TERMS

    return CTCAE_TERMS


@lru_cache(maxsize=64)
def _analyte(code: str) -> str | None:
    """The analyte of :mod:`celltrial.clinical.units` a test code is converted by."""
    from celltrial.clinical.ctcae import lookup_term

    terms = _ctcae_terms().get(code)
    return lookup_term(terms[0]).analyte if terms else None


@lru_cache(maxsize=256)
def _same_unit(a: str, b: str) -> bool:
    from celltrial.clinical.units import normalise_unit

    try:
        return normalise_unit(a) == normalise_unit(b)
    except CelltrialError:
        return a == b


def _decimal(text: str) -> Decimal | None:
    try:
        number = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def result_in_original_unit(code: str, stresn: float, stresu: str | None,
                            orresu: str | None) -> float | None:
    """``LBSTRESN`` expressed in ``LBORRESU`` (None when the units cannot be related);
    raises :class:`~celltrial.errors.InvalidValue` for a unit the analyte does not have."""
    if (orresu is None) != (stresu is None):
        return None
    if orresu is None or stresu is None or _same_unit(orresu, stresu):
        return stresn
    analyte = _analyte(code)
    if analyte is None:
        return None
    from celltrial.clinical.units import convert

    return convert(analyte, stresn, stresu, orresu)


def _in_unit(code: str, value: float | None, unit: str | None, to_unit: str | None
             ) -> float | None:
    """``value`` of test ``code`` in ``unit`` expressed in ``to_unit`` (None when either is
    missing or the units cannot be related)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if unit is None or to_unit is None or _same_unit(unit, to_unit):
        return float(value)
    analyte = _analyte(code)
    if analyte is None:
        return None
    from celltrial.clinical.units import convert

    try:
        return convert(analyte, float(value), unit, to_unit)
    except CelltrialError:
        return None


def _given(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def standard_range(code: str, orresu: str | None, stresu: str | None,
                   ornrlo: float | None, ornrhi: float | None,
                   stnrlo: float | None = None, stnrhi: float | None = None
                   ) -> tuple[float | None, float | None]:
    """The reference range of one LB row in its standard unit (``LBSTRESU``), as LLN/ULN for
    grading ``LBSTRESN``: ``LBSTNRLO``/``LBSTNRHI`` where given, else ``LBORNRLO``/``LBORNRHI``
    converted from ``LBORRESU`` (SDTMIG 3.4 LB: --ORNRLO/--ORNRHI are in the original unit,
    --STNRLO/--STNRHI in the standard unit; conversion factors of
    :mod:`celltrial.clinical.units`). None for a limit not given or not convertible."""
    lo = float(stnrlo) if _given(stnrlo) else _in_unit(code, ornrlo, orresu or stresu, stresu)
    hi = float(stnrhi) if _given(stnrhi) else _in_unit(code, ornrhi, orresu or stresu, stresu)
    return lo, hi


def results_agree(orres: Decimal, in_original: float) -> bool:
    """``in_original`` rounds to ``orres`` at the digits ``orres`` gives (half a unit of its
    last digit, plus a relative 1e-9 for binary floating point)."""
    exponent = orres.as_tuple().exponent
    half = 0.5 * 10.0 ** int(exponent) if isinstance(exponent, int) else 0.0
    target = float(orres)
    return abs(in_original - target) <= half + 1e-9 * max(abs(target), abs(in_original))


def _fmt(number: float) -> str:
    return f"{number:g}"


LAB_COLUMNS = ("LBTESTCD", "LBORRES", "LBORRESU", "LBSTRESN", "LBSTRESU", "LBORNRLO",
               "LBORNRHI", "LBSTNRLO", "LBSTNRHI", "LBTOXGR")
"""The columns :func:`check_lab_results` reads."""


def _ranges_agree(code: str, orresu: str | None, stresu: str | None, original: Any,
                  standard: Any) -> bool:
    """A limit in LBORRESU and the same limit in LBSTRESU agree (relative 1e-6, the digits
    a converted limit keeps); True when either is missing or the units cannot be related."""
    if not (_given(original) and _given(standard)):
        return True
    converted = _in_unit(code, float(original), orresu or stresu, stresu)
    if converted is None:
        return True
    return abs(converted - float(standard)) <= 1e-6 * max(abs(converted), abs(standard)) + 1e-12


def check_lab_results(columns: Columns, add: Add) -> None:
    """LBORRES vs LBSTRESN (units converted), LBORNRLO/HI vs LBSTNRLO/HI (the same range in
    the two units), and LBTOXGR vs the CTCAE v5.0 grade (with the standard-unit range)."""
    rows = zip(columns["LBTESTCD"], columns["LBORRES"], columns["LBORRESU"],
               columns["LBSTRESN"], columns["LBSTRESU"], columns["LBORNRLO"],
               columns["LBORNRHI"], columns["LBSTNRLO"], columns["LBSTNRHI"],
               columns["LBTOXGR"], strict=True)
    for row, (code, orres, orresu, stresn, stresu, ornrlo, ornrhi, stnrlo, stnrhi,
              grade) in enumerate(rows, 1):
        if code is None:
            continue
        for orig, std, end in ((ornrlo, stnrlo, "LO"), (ornrhi, stnrhi, "HI")):
            if not _ranges_agree(code, orresu, stresu, orig, std):
                converted = _in_unit(code, float(orig), orresu or stresu, stresu)
                add(row, f"LBSTNR{end}", std,
                    f"LBORNR{end} `{_fmt(float(orig))}` {orresu or ''} expressed in "
                    f"{stresu} ({_fmt(converted or 0.0)}; SDTMIG 3.4: LBORNR{end} is in the "
                    f"original unit, LBSTNR{end} the same limit in the standard unit)")
        if stresn is None:
            continue
        lln, uln = standard_range(code, orresu, stresu, ornrlo, ornrhi, stnrlo, stnrhi)
        if orres is not None:
            original = _decimal(orres)
            if original is not None:
                try:
                    expected = result_in_original_unit(code, stresn, stresu, orresu)
                except CelltrialError:
                    add(row, "LBORRESU", orresu, f"a unit of {code} that converts to "
                                                 f"{stresu} (celltrial.clinical.units)")
                    expected = None
                if expected is not None and not results_agree(original, expected):
                    add(row, "LBSTRESN", stresn,
                        f"LBORRES `{orres}` {orresu or ''} expressed in {stresu or 'no unit'} "
                        f"(LBSTRESN is {_fmt(expected)} {orresu or ''} in the original unit; "
                        "SDTMIG 3.4: --STRESN is --ORRES in the standard unit)")
        if grade is not None and stresu is not None:
            allowed = lab_grades(code, stresn, stresu, lln, uln)
            if allowed is not None and grade not in allowed[1]:
                base, _rule = allowed[0]
                options = sorted(allowed[1])
                rule = (f"{base}" if len(options) == 1 else
                        f"{base}, or one of {', '.join(map(str, options))} by a clinical "
                        "qualifier of the term")
                add(row, "LBTOXGR", grade,
                    f"{rule}: the CTCAE v5.0 grade of {code} {_fmt(stresn)} {stresu}"
                    f"{_limits(lln, uln)} ({allowed[0][1]}; celltrial.clinical.grade_lab)")


def _limits(lln: float | None, uln: float | None) -> str:
    parts = [f"LLN {_fmt(v)}" for v in (lln,) if v] + [f"ULN {_fmt(v)}" for v in (uln,) if v]
    return f" with {', '.join(parts)}" if parts else ""


def _baseline_dependent(term: Any) -> bool:
    return term.baseline_abnormal is not None or any(b.when != "always" for b in term.bands)


def _qualifiers(term: Any) -> set[str]:
    return set(term.clinical) | (set(term.symptom.qualifiers) if term.symptom else set())


@lru_cache(maxsize=200_000)
def lab_grades(code: str, value: float, unit: str, lln: float | None, uln: float | None
               ) -> tuple[tuple[int, str], frozenset[int]] | None:
    """((grade without qualifier, its CTCAE rule), every grade a qualifier can give) of one
    LB value, or None when the row alone cannot grade it (no CTCAE term, a baseline-dependent
    term, or a reference limit the grade needs is missing)."""
    from celltrial.clinical import grade_lab
    from celltrial.clinical.ctcae import lookup_term

    names = _ctcae_terms().get(code)
    if not names:
        return None
    terms = [lookup_term(n) for n in names]
    if any(_baseline_dependent(t) for t in terms):
        return None
    limits = {"lln": lln if lln and lln > 0 else None, "uln": uln if uln and uln > 0 else None}

    def worst(qualifier: str | None) -> tuple[int, str] | None:
        best: tuple[int, str] | None = None
        for t in terms:
            given = qualifier if qualifier in _qualifiers(t) else None
            try:
                g = grade_lab(t.name, value, unit, qualifier=given, **limits)
            except CelltrialError:
                continue
            if best is None or int(g) > best[0]:
                best = (int(g), g.rule)
        return best

    base = worst(None)
    if base is None or not math.isfinite(value):
        return None
    grades = {base[0]}
    for qualifier in sorted(set().union(*(_qualifiers(t) for t in terms))):
        found = worst(qualifier)
        if found is not None:
            grades.add(found[0])
    return base, frozenset(grades)
