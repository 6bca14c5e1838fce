"""Data capture: form/JSON input -> graded SDTM record -> one audited write.

Each entry is parsed field by field, graded with :mod:`celltrial.clinical` and written with
:func:`celltrial.store.write_record` (one transaction, validated, audited, at most once per
idempotency key). Problems are
collected per input field in a :class:`FieldErrors` (nothing is written then): parsing errors,
the graders' ``InvalidValue``/``NotComputable`` and the store's validation messages, each
mapped back to the field the user typed it in.

Labs (LB): ``test`` (LBTESTCD with a CTCAE term), ``value``, ``unit`` (default the standard
unit), ``lln``, ``uln``, ``date``; graded with ``grade_lab`` (tests with two directions, e.g.
potassium, graded both ways and the worse kept, as ADLB does). Stored: LBORRES/LBORRESU as
typed, LBSTRESN/LBSTRESU in the standard unit, the reference range as typed in LBORNRLO/LBORNRHI
(the unit entered) and converted to the standard unit in LBSTNRLO/LBSTNRHI (SDTMIG 3.4 LB; so
that ADLB grades the stored row as it was graded here), LBTOXGR the grade.

CRS/ICANS observations (XC): the vocabulary of ``grade_crs``/``grade_icans``; the ICE score
is given whole (``ice_score``) or by its five items. XCCRSGR and XCICAGR are the grades.

Adverse events (AE): ``term``, ``decod``, ``grade``, ``start``, ``end``, ``serious``,
``related``, ``outcome``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from celltrial.clinical import grade_crs, grade_icans, grade_lab, ice_score
from celltrial.clinical.crs_icans import CRS_LEVELS, ICANS_LEVELS, ICE_ITEMS, assessed
from celltrial.clinical.ctcae import lookup_term
from celltrial.clinical.units import convert
from celltrial.derive.adlb import CTCAE_TERMS
from celltrial.errors import CelltrialError, StoreError
from celltrial.store import (StaleRecord, Store, Written, update_record, void_record,
                             write_record)
from celltrial.store.consistency import end_before_start
from celltrial.store.locks import Locked
from celltrial.store.plausibility import test_ranges, vocabularies
from celltrial.store.schema import TABLES

SOURCE = "web"


class FieldErrors(CelltrialError):
    """Input refused, by field (``{"value": "Invalid `value`: got ..."}``); nothing written."""

    code = "CT500"

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


@dataclass(frozen=True)
class LabTest:
    """A lab test the web form grades: SDTM code and name, category, CTCAE term(s)."""

    code: str
    name: str
    category: str
    terms: tuple[str, ...]

    @property
    def unit(self) -> str:
        """Standard unit (the store's plausibility table)."""
        return test_ranges("LB")[self.code].unit

    @property
    def analyte(self) -> str:
        return lookup_term(self.terms[0]).analyte


_H, _C = "HEMATOLOGY", "CHEMISTRY"
_LAB_NAMES: dict[str, tuple[str, str]] = {
    "NEUT": ("Neutrophils", _H), "PLAT": ("Platelets", _H), "HGB": ("Hemoglobin", _H),
    "LYM": ("Lymphocytes", _H), "WBC": ("Leukocytes", _H), "FIBRINO": ("Fibrinogen", _H),
    "ALT": ("Alanine Aminotransferase", _C), "AST": ("Aspartate Aminotransferase", _C),
    "BILI": ("Bilirubin", _C), "CREAT": ("Creatinine", _C), "K": ("Potassium", _C),
    "SODIUM": ("Sodium", _C), "CACORR": ("Corrected Calcium", _C),
    "CAION": ("Ionized Calcium", _C), "ALB": ("Albumin", _C),
}
LAB_TESTS: dict[str, LabTest] = {code: LabTest(code, name, category, CTCAE_TERMS[code])
                                 for code, (name, category) in _LAB_NAMES.items()}
"""LBTESTCD -> the CTCAE v5.0 term(s) ``grade_lab`` grades it by: ADLB's ``CTCAE_TERMS``, so
that the web form and the analysis datasets grade a value by the same terms."""

CRS_FIELDS = ("temperature_c", "fever_masked", *CRS_LEVELS)
ICANS_FIELDS = ("ice_score", *ICANS_LEVELS)
ICE_FIELDS = tuple(ICE_ITEMS)

# input field <-> SDTM variable, per domain (store messages are mapped back with these)
FIELDS: dict[str, dict[str, str]] = {
    "LB": {"test": "LBTESTCD", "value": "LBSTRESN", "unit": "LBORRESU", "lln": "LBORNRLO",
           "uln": "LBORNRHI", "date": "LBDTC", "specimen": "LBSPEC"},
    "XC": {"date": "XCDTC", "temperature_c": "XCTEMP", "fever_masked": "XCFEVMSK",
           "hypotension": "XCHYPOT", "oxygen": "XCOXY", "ice_score": "XCICE",
           "consciousness": "XCLOC", "seizure": "XCSEIZ", "motor": "XCMOTOR",
           "edema": "XCEDEMA"},
    "AE": {"term": "AETERM", "decod": "AEDECOD", "grade": "AETOXGR", "scale": "AETOXSCL",
           "start": "AESTDTC", "end": "AEENDTC", "serious": "AESER", "related": "AEREL",
           "outcome": "AEOUT"},
}
_EXTRA_COLUMNS = {"LBSTRESU": "unit", "LBORRES": "value", "LBTOXGR": "value",
                  "LBSTNRLO": "lln", "LBSTNRHI": "uln",
                  "XCCRSGR": "date", "XCICAGR": "date"}

CORRECTABLE: dict[str, tuple[str, ...]] = {
    "LB": ("LBDTC", "LBSTRESN", "LBORNRLO", "LBORNRHI"),
    "XC": ("XCDTC", "XCTEMP", "XCFEVMSK", "XCHYPOT", "XCOXY", "XCICE", "XCLOC", "XCSEIZ",
           "XCMOTOR", "XCEDEMA"),
    "AE": ("AETERM", "AEDECOD", "AETOXGR", "AETOXSCL", "AESTDTC", "AEENDTC", "AESER", "AEREL",
           "AEOUT"),
}
"""Fields a correction may change; LB and XC grades are recomputed, never typed."""

ASTCT_TERMS = ("Cytokine release syndrome",
               "Immune effector cell-associated neurotoxicity syndrome")


# ---------------------------------------------------------------- parsing one field
class _Collector:
    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.errors: dict[str, str] = {}

    def fail(self, name: str, got: Any, rule: str) -> None:
        self.errors.setdefault(name, f"Invalid `{name}`: got `{got!r}`, must be {rule}")

    def raw(self, name: str) -> Any:
        value = self.data.get(name)
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    def text(self, name: str, *, required: bool = False,
             choices: tuple[str, ...] | None = None) -> str | None:
        value = self.raw(name)
        if value is None:
            if required:
                self.fail(name, value, "given")
            return None
        if not isinstance(value, str):
            self.fail(name, value, "text")
            return None
        if choices is not None and value not in choices:
            self.fail(name, value, f"one of {list(choices)}")
            return None
        return value

    def number(self, name: str, *, required: bool = False, integer: bool = False
               ) -> float | int | None:
        value = self.raw(name)
        if value is None:
            if required:
                self.fail(name, value, "given")
            return None
        rule = "a whole number" if integer else "a number"
        if isinstance(value, bool):
            self.fail(name, value, rule)
            return None
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(name, value, rule)
            return None
        if not math.isfinite(number) or (integer and not number.is_integer()):
            self.fail(name, value, rule)
            return None
        return int(number) if integer else number

    def flag(self, name: str) -> bool | None:
        value = self.raw(name)
        if value is None or isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("y", "yes", "true", "on", "1"):
            return True
        if text in ("n", "no", "false", "off", "0"):
            return False
        self.fail(name, value, "yes or no (Y/N, true/false)")
        return None

    def raise_if_any(self) -> None:
        if self.errors:
            raise FieldErrors(self.errors)


_BACKTICK = re.compile(r"Invalid `([^`]+)`")


def _grader_field(exc: CelltrialError, fields: tuple[str, ...], default: str) -> str:
    """The input field a grader's message names (``Invalid `lln``` -> lln)."""
    found = _BACKTICK.search(exc.message)
    if found:
        if found.group(1) in fields:
            return found.group(1)
    for name in fields:
        if f"`{name}`" in exc.message:
            return name
    for name in fields:
        if re.search(rf"\b(needs|give)\b.*\b{name}\b", exc.message):
            return name
    return default


_STORE_LINE = re.compile(r"column (\w+): Invalid `\w+`: (.*?)(?:; nothing was written)?$")


def store_errors(domain: str, exc: StoreError) -> dict[str, str]:
    """The store's validation message split by input field (unmapped lines under ``_form``)."""
    names = {v: k for k, v in FIELDS.get(domain, {}).items()} | _EXTRA_COLUMNS
    errors: dict[str, str] = {}
    for line in exc.message.splitlines():
        found = _STORE_LINE.search(line)
        if found:
            column, rest = found.groups()
            field = names.get(column, column)
            errors.setdefault(field, f"Invalid `{field}` ({column}): {rest}")
        elif line.strip() and not line.strip().endswith("nothing was written:"):
            errors.setdefault("_form", line.strip().lstrip("- "))
    return errors or {"_form": exc.message}


# ---------------------------------------------------------------- grading
@dataclass(frozen=True)
class LabResult:
    grade: int
    term: str
    rule: str
    assumed: str | None


def grade_lab_test(test: LabTest, value: float, unit: str, lln: float | None,
                   uln: float | None) -> LabResult:
    """Worst CTCAE grade over ``test``'s terms (raises the first error if none grades)."""
    best: LabResult | None = None
    first: CelltrialError | None = None
    for term in test.terms:
        try:
            grade = grade_lab(term, value, unit, lln=lln, uln=uln)
        except CelltrialError as exc:
            first = first or exc
            continue
        if best is None or int(grade) > best.grade:
            best = LabResult(int(grade), grade.term, grade.rule, grade.assumed)
    if best is None:
        assert first is not None
        raise first
    return best


def _fmt(value: float) -> str:
    return f"{value:g}"


def build_lab(data: Mapping[str, Any]) -> tuple[dict[str, Any], LabResult]:
    """An LB record (without USUBJID) and its grade from the input fields."""
    c = _Collector(data)
    code = c.text("test", required=True, choices=tuple(LAB_TESTS))
    value = c.number("value", required=True)
    lln, uln = c.number("lln"), c.number("uln")
    date = c.text("date", required=True)
    specimen = c.text("specimen", choices=vocabularies("LB").get("LBSPEC", ("BLOOD",
                                                                           "BONE MARROW")))
    test = LAB_TESTS.get(code or "")
    unit = c.text("unit") or (test.unit if test else None)
    if value is not None and value < 0:
        c.fail("value", data.get("value"), "a finite number >= 0")
    for name, limit in (("lln", lln), ("uln", uln)):
        if limit is not None and limit <= 0:
            c.fail(name, data.get(name), "a finite number > 0")
    c.raise_if_any()
    assert test is not None and value is not None and unit is not None
    fields = ("value", "unit", "lln", "uln")
    try:
        result = grade_lab_test(test, value, unit, lln, uln)
        std = [None if v is None else convert(test.analyte, v, unit, test.unit)
               for v in (value, lln, uln)]
    except CelltrialError as exc:
        raise FieldErrors({_grader_field(exc, fields, "value"): exc.message}) from exc
    record = {"LBCAT": test.category, "LBTESTCD": test.code, "LBTEST": test.name,
              "LBSPEC": specimen or "BLOOD", "LBORRES": _fmt(value), "LBORRESU": unit,
              "LBSTRESN": std[0], "LBSTRESU": test.unit, "LBORNRLO": lln, "LBORNRHI": uln,
              "LBSTNRLO": std[1], "LBSTNRHI": std[2], "LBTOXGR": result.grade, "LBDTC": date}
    return record, result


def _observation(c: _Collector) -> dict[str, Any]:
    obs: dict[str, Any] = {}
    temperature = c.number("temperature_c")
    if temperature is not None:
        obs["temperature_c"] = temperature
    masked = c.flag("fever_masked")
    if masked is not None:
        obs["fever_masked"] = masked
    for name in (*CRS_LEVELS, *ICANS_LEVELS):
        value = c.text(name)
        if value is not None:
            obs[name] = value
    score = c.number("ice_score", integer=True)
    items = {k: c.number(k, integer=True) for k in ICE_FIELDS}
    given = {k: v for k, v in items.items() if v is not None}
    if given and not any(k in c.errors for k in ICE_FIELDS):
        try:
            total = ice_score(items)
        except CelltrialError as exc:
            c.errors.setdefault(_grader_field(exc, ICE_FIELDS, "ice_score"), exc.message)
        else:
            if score is not None and score != total:
                c.fail("ice_score", score, f"the sum of the ICE items ({total}) or left empty")
            score = total
    if score is not None:
        obs["ice_score"] = score
    return obs


def grade_observation(obs: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(CRS grade, ICANS grade) of one observation, None for a syndrome not assessed
    (``celltrial.clinical.crs_icans.assessed``: missing, never grade 0); FieldErrors naming
    the field if refused, or when nothing at all was assessed."""
    crs_seen, icans_seen = assessed(obs)
    if not (crs_seen or icans_seen):
        raise FieldErrors({"_form": "Nothing was assessed: give the temperature, hypotension "
                                    "or oxygen for CRS, or the ICE score, consciousness, "
                                    "seizure, motor or edema for ICANS (an empty observation "
                                    "is not grade 0)"})
    try:
        return (grade_crs(obs) if crs_seen else None,
                grade_icans(obs) if icans_seen else None)
    except CelltrialError as exc:
        raise FieldErrors({_grader_field(exc, (*CRS_FIELDS, *ICANS_FIELDS), "_form"):
                           exc.message}) from exc


def build_observation(data: Mapping[str, Any]
                      ) -> tuple[dict[str, Any], dict[str, int | None]]:
    """An XC record (without USUBJID) and its CRS/ICANS grades."""
    c = _Collector(data)
    date = c.text("date", required=True)
    obs = _observation(c)
    c.raise_if_any()
    crs, icans = grade_observation(obs)
    masked = obs.get("fever_masked")
    record = {"XCDTC": date, "XCTEMP": obs.get("temperature_c"),
              "XCFEVMSK": None if masked is None else ("Y" if masked else "N"),
              "XCHYPOT": obs.get("hypotension"), "XCOXY": obs.get("oxygen"),
              "XCICE": obs.get("ice_score"), "XCLOC": obs.get("consciousness"),
              "XCSEIZ": obs.get("seizure"), "XCMOTOR": obs.get("motor"),
              "XCEDEMA": obs.get("edema"), "XCCRSGR": crs, "XCICAGR": icans}
    return record, {"crs": crs, "icans": icans}


def build_adverse_event(data: Mapping[str, Any]) -> dict[str, Any]:
    """An AE record (without USUBJID)."""
    c = _Collector(data)
    vocab = vocabularies("AE")
    term = c.text("term", required=True)
    decod = c.text("decod") or term
    grade = c.number("grade", required=True, integer=True)
    scale = c.text("scale", choices=vocab["AETOXSCL"])
    start = c.text("start", required=True)
    end = c.text("end")
    serious = c.flag("serious")
    if serious is None and "serious" not in c.errors:
        c.fail("serious", data.get("serious"), "given (Y or N)")
    related = c.text("related", required=True, choices=vocab["AEREL"])
    outcome = c.text("outcome")
    if grade is not None and not 1 <= grade <= 5:
        c.fail("grade", data.get("grade"), "a CTCAE grade 1-5")
    if start and end and end[:10] < start[:10]:
        c.fail("end", end, f"on or after the start date {start}")
    c.raise_if_any()
    if scale is None:
        scale = "ASTCT 2019" if decod in ASTCT_TERMS else "CTCAE v5.0"
    return {"AETERM": term, "AEDECOD": decod, "AETOXGR": grade, "AETOXSCL": scale,
            "AESTDTC": start, "AEENDTC": end, "AESER": "Y" if serious else "N",
            "AEREL": related, "AEOUT": outcome}


# ---------------------------------------------------------------- writing
def write_one(store: Store, study_id: str, domain: str, usubjid: str,
              record: Mapping[str, Any], *, user: str, reason: str = "data entry (web)",
              submission: str | None = None) -> Written:
    """Write one record through ``write_record`` (validated, audited, at most once per
    ``submission`` key); the record as stored and whether an earlier submission stored it."""
    row = {"USUBJID": usubjid, **{k: v for k, v in record.items() if v is not None}}
    try:
        return write_record(store, study_id, domain, row, user=user, reason=reason,
                            source=SOURCE, idempotency_key=submission)
    except Locked:
        raise  # 423, not a field's problem
    except StoreError as exc:
        if "idempotency key" in exc.message:
            raise FieldErrors({"_form": exc.message}) from exc
        raise FieldErrors(store_errors(domain, exc)) from exc


ENTRY_DATES = {"LB": (("LBDTC", "date"),), "XC": (("XCDTC", "date"),),
               "AE": (("AESTDTC", "start"), ("AEENDTC", "end"))}
"""Per domain, the dates a site enters: (SDTM variable, form field)."""


def entry_date_problems(domain: str, record: Mapping[str, Any], *, today: dt.date,
                        consent: str | None, screen_failed: str | None = None
                        ) -> dict[str, str]:
    """Form field -> message for an entered date after ``today`` (a record of something that
    has not happened yet), before the subject's informed consent ``consent`` (DM.RFICDTC;
    ICH E6(R3) 2.8: no trial data are collected before consent), or after the day the subject
    failed screening ``screen_failed`` (DS SCREEN FAILURE: not enrolled, so only the screening
    data up to that day belong to the trial). Dates compare at the precision both give
    (``2024-01-10`` vs ``2024-01-10T08:00`` as dates)."""
    problems: dict[str, str] = {}
    for variable, field in ENTRY_DATES.get(domain, ()):
        value = record.get(variable)
        if not value:
            continue
        if str(value)[:10] > today.isoformat():
            problems[field] = (f"Invalid `{field}`: got `{value!r}`, must be on or before "
                               f"today ({today.isoformat()}): a record of something that "
                               "has already happened")
        elif consent and end_before_start(str(consent), str(value)):
            problems[field] = (f"Invalid `{field}`: got `{value!r}`, must be on or after the "
                               f"subject's informed consent ({consent}): no trial data "
                               "before consent")
        elif screen_failed and end_before_start(str(value), str(screen_failed)):
            problems[field] = (f"Invalid `{field}`: got `{value!r}`, must be on or before "
                               f"{screen_failed}, the day the subject failed screening: a "
                               "subject not enrolled has only screening data")
    return problems


def _earliest(store: Store, study_id: str, usubjid: str, domain: str, column: str,
              *where: Any) -> str | None:
    """The subject's earliest ``column`` in ``domain`` (records entered in error left out),
    read for that subject alone: a web entry must not read a whole study."""
    table = TABLES[domain]
    with store.engine.connect() as connection:
        value = connection.execute(sa.select(sa.func.min(table.c[column])).where(
            table.c.STUDYID == study_id, table.c.USUBJID == usubjid,
            table.c.voided.is_(None), *where)).scalar()
    return None if value is None else str(value)


def _consent_date(store: Store, study_id: str, usubjid: str) -> str | None:
    return _earliest(store, study_id, usubjid, "DM", "RFICDTC")


def _screen_failure_date(store: Store, study_id: str, usubjid: str) -> str | None:
    return _earliest(store, study_id, usubjid, "DS", "DSSTDTC",
                     TABLES["DS"].c.DSDECOD == "SCREEN FAILURE")


def enter(store: Store, study_id: str, kind: str, usubjid: str, data: Mapping[str, Any], *,
          user: str, submission: str | None = None
          ) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """Parse, grade and write one entry of ``kind`` (labs, observations, adverse-events).

    Returns (stored record, grading, replayed); FieldErrors (nothing written) when refused.
    ``submission`` is the entry's idempotency key: the same key again writes nothing and
    returns what the first submission stored (``replayed`` True).
    """
    if kind == "labs":
        record, lab = build_lab(data)
        grading: dict[str, Any] = {"grade": lab.grade, "term": lab.term, "rule": lab.rule,
                                   "assumed": lab.assumed}
        domain = "LB"
    elif kind == "observations":
        record, grades = build_observation(data)
        grading, domain = dict(grades), "XC"
    elif kind == "adverse-events":
        record = build_adverse_event(data)
        grading, domain = {"grade": record["AETOXGR"], "scale": record["AETOXSCL"]}, "AE"
    else:
        raise FieldErrors({"_form": f"Invalid `kind`: got `{kind!r}`, must be one of "
                                    f"{list(ENTRY_DOMAINS)}"})
    dates = entry_date_problems(domain, record, today=dt.datetime.now(dt.timezone.utc).date(),
                                consent=_consent_date(store, study_id, usubjid),
                                screen_failed=_screen_failure_date(store, study_id, usubjid))
    if dates:
        raise FieldErrors(dates)
    written = write_one(store, study_id, domain, usubjid, record, user=user,
                        submission=submission)
    return written.record, grading, written.replayed


ENTRY_DOMAINS = {"labs": "LB", "observations": "XC", "adverse-events": "AE"}


# ---------------------------------------------------------------- corrections
def _regrade_lab(record: dict[str, Any]) -> dict[str, Any]:
    """The derived fields of a corrected LB record: the grade of LBSTRESN with the range in
    the standard unit, LBORRES as LBSTRESN expressed in the unit entered (LBORRESU), and
    LBSTNRLO/HI as LBORNRLO/HI (the unit entered) converted to the standard unit."""
    test = LAB_TESTS.get(record.get("LBTESTCD") or "")
    value = record.get("LBSTRESN")
    if test is None or value is None:
        return {}
    for name in ("LBSTRESN", "LBORNRLO", "LBORNRHI"):
        given = record.get(name)
        if given is not None and (isinstance(given, bool) or not isinstance(given, int | float)
                                  or not math.isfinite(given)):
            raise FieldErrors({name: f"Invalid `{name}`: got `{given!r}`, must be a number"})
    unit = record.get("LBSTRESU") or test.unit
    entered = record.get("LBORRESU") or unit
    try:
        original, lln, uln = (None if v is None else convert(test.analyte, float(v), a, b)
                              for v, a, b in ((value, unit, entered),
                                              (_opt(record.get("LBORNRLO")), entered, unit),
                                              (_opt(record.get("LBORNRHI")), entered, unit)))
        result = grade_lab_test(test, float(value), unit, lln, uln)
    except CelltrialError as exc:
        field = {"lln": "LBORNRLO", "uln": "LBORNRHI"}.get(
            _grader_field(exc, ("value", "lln", "uln"), "value"), "LBSTRESN")
        raise FieldErrors({field: exc.message}) from exc
    assert original is not None
    return {"LBTOXGR": result.grade, "LBORRES": _fmt(original), "LBORRESU": entered,
            "LBSTNRLO": lln, "LBSTNRHI": uln}


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def _regrade_observation(record: dict[str, Any]) -> dict[str, Any]:
    names = {v: k for k, v in FIELDS["XC"].items() if k != "date"}
    data = {names[k]: v for k, v in record.items() if k in names and v is not None}
    if "fever_masked" in data:
        data["fever_masked"] = data["fever_masked"] == "Y"
    c = _Collector(data)
    obs = _observation(c)
    if c.errors:
        raise FieldErrors({FIELDS["XC"].get(k, k): v for k, v in c.errors.items()})
    try:
        crs, icans = grade_observation(obs)
    except FieldErrors as exc:
        raise FieldErrors({FIELDS["XC"].get(k, k): v for k, v in exc.errors.items()}) from exc
    return {"XCCRSGR": crs, "XCICAGR": icans}


REGRADE: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "LB": _regrade_lab, "XC": _regrade_observation}


def _typed(domain: str, column: str, value: Any) -> Any:
    from celltrial.store import DOMAINS

    var = next(v for v in DOMAINS[domain].variables if v.name == column)
    if isinstance(value, str):
        value = value.strip() or None
    if value is None or var.type in ("text", "date"):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value  # the store names it
    if var.type == "int" and number.is_integer():
        return int(number)
    return number


def _version(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 1 <= number < 2**31 else None


def correct(store: Store, study_id: str, domain: str, key: tuple[str, int],
            changes: Mapping[str, Any], *, user: str, reason: str | None,
            version: Any) -> dict[str, Any]:
    """Change fields of one LB, XC or AE record through ``update_record`` (reason required).

    ``version`` is the record's version as the person read it; when someone else changed the
    record since, :class:`celltrial.store.StaleRecord` is raised (nothing written; it carries
    the current record). LB and XC grades are recomputed from the changed record inside the
    store's write transaction. Returns the stored record with its new version.
    """
    errors: dict[str, str] = {}
    if domain not in CORRECTABLE:
        raise FieldErrors({"_form": f"Invalid `domain`: got `{domain!r}`, must be one of "
                                    f"{list(CORRECTABLE)}"})
    if not reason or not str(reason).strip():
        errors["reason"] = (f"Invalid `reason`: got `{reason!r}`, must say why the data "
                            "change (21 CFR 11.10(e))")
    seen = _version(version)
    if seen is None:
        errors["version"] = (f"Invalid `version`: got `{version!r}`, must be the version of "
                             "the record you read (a whole number from 1)")
    unknown = [c for c in changes if c not in CORRECTABLE[domain]]
    if unknown:
        errors["_form"] = (f"Invalid `changes`: got `{unknown!r}`, must be among "
                           f"{list(CORRECTABLE[domain])}")
    usubjid, seq = key
    table = TABLES[domain]
    with store.engine.connect() as connection:
        row = connection.execute(sa.select(table).where(
            table.c.STUDYID == study_id, table.c.USUBJID == usubjid,
            table.c[f"{domain}SEQ"] == int(seq))).first()
    if row is None:
        raise LookupError(f"{domain} record {usubjid}/{seq}")
    stored = dict(row._mapping)
    stored.pop("id")
    if seen is not None and seen != stored["version"]:
        raise StaleRecord(domain, f"USUBJID={usubjid};{domain}SEQ={seq}", seen, stored)
    typed = {c: _typed(domain, c, v) for c, v in changes.items() if c in CORRECTABLE[domain]}
    if not errors and all(v == stored.get(c) for c, v in typed.items()):
        errors["_form"] = "Nothing to change: every field equals the stored value"
    if errors:
        raise FieldErrors(errors)
    try:
        return update_record(store, domain, (study_id, usubjid, int(seq)), typed, user=user,
                             reason=str(reason), source=SOURCE, version=seen,
                             derive=REGRADE.get(domain))
    except (StaleRecord, Locked):
        raise
    except StoreError as exc:
        raise FieldErrors(_correction_errors(exc)) from exc


def void(store: Store, study_id: str, domain: str, key: tuple[str, int], *, user: str,
         reason: str | None, version: Any) -> dict[str, Any]:
    """Mark one LB, XC or AE record "entered in error" through ``void_record`` (reason and
    the version read required); StaleRecord when someone changed it since."""
    errors: dict[str, str] = {}
    if domain not in CORRECTABLE:
        raise FieldErrors({"_form": f"Invalid `domain`: got `{domain!r}`, must be one of "
                                    f"{list(CORRECTABLE)}"})
    if not reason or not str(reason).strip():
        errors["reason"] = (f"Invalid `reason`: got `{reason!r}`, must say why the record "
                            "was entered in error (21 CFR 11.10(e))")
    seen = _version(version)
    if seen is None:
        errors["version"] = (f"Invalid `version`: got `{version!r}`, must be the version of "
                             "the record you read (a whole number from 1)")
    if errors:
        raise FieldErrors(errors)
    usubjid, seq = key
    try:
        return void_record(store, domain, (study_id, usubjid, int(seq)), user=user,
                           reason=str(reason), source=SOURCE, version=seen)
    except (StaleRecord, Locked):
        raise
    except StoreError as exc:
        if "must be a stored" in exc.message:
            raise LookupError(f"{domain} record {usubjid}/{seq}") from exc
        raise FieldErrors({"_form": exc.message}) from exc


def _correction_errors(exc: StoreError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for line in exc.message.splitlines():
        found = re.search(r"column (\w+): (Invalid .*?)(?:; nothing was written)?$", line)
        if found:
            errors.setdefault(found.group(1), found.group(2))
    return errors or {"_form": exc.message}
