"""Conformance checks of exported SDTM datasets against SDTMIG 3.4 and the CT subset.

Each finding names its rule, dataset, row (from 1), variable and value. Rules:

- ``SD0001`` a Req variable is missing from the dataset or null in a row (SDTMIG 3.4 2.5);
- ``SD0002`` an Exp variable is absent from the dataset (SDTMIG 3.4 2.5);
- ``SD0003`` DOMAIN/RDOMAIN differs from the dataset's name (SDTMIG 3.4 2.2);
- ``SD0004`` a value of a variable with a codelist is not in CDISC CT (release
  :data:`celltrial.store.sdtm.ct.CT_RELEASE`) nor a declared sponsor extension;
- ``SD0005`` a --TESTCD or QNAM is longer than 8, not upper case letters, digits and ``_``, or
  starts with a digit (SDTMIG 3.4 4.5.3.1 and 8.4.1);
- ``SD0006`` a --TEST, TSPARM or QLABEL is longer than 40 characters, IETEST or TSVAL longer
  than 200 (SDTMIG 3.4 4.5.3.1, sections 7.4 and 7.6);
- ``SD0007`` --SEQ is not unique within a subject (SDTMIG 3.4 4.1.5), or TSSEQ within a
  TS parameter (SDTMIG 3.4 section 7.6);
- ``SD0008`` a --DTC value is not ISO 8601 (SDTMIG 3.4 4.4.1);
- ``SD0009`` a Num variable holds a non-number, or a Char variable a non-text value;
- ``SD0010`` DM arm coding (SDTMIG 3.4 section 5.2, the DM assumptions on ARMNRS): ARMCD
  and ARM null together, ACTARMCD and ACTARM null together, and ARMNRS given exactly when
  ARMCD or ACTARMCD is null.
- ``SD0011`` TS values (SDTMIG 3.4 section 7.6, TS assumptions): TSVAL null exactly when
  TSVALNF gives the null flavour; a parameter answered from CDISC CT
  (:data:`celltrial.store.sdtm.design.TS_RESPONSES`) has a TSVAL of its codelist, TSVALCD the
  NCI code of that term and TSVCDREF ``CDISC CT``.
- ``SD0012`` a Char value is longer (UTF-8 bytes) than the length the spec declares for its
  variable (:data:`celltrial.store.sdtm.spec.MAX_LENGTHS`: 8 for codes, 20 for ARMCD, 200 for
  any other text, the SAS XPORT v5 limit of the FDA Study Data Technical Conformance Guide
  3.3.2); the variables of SD0005/SD0006 are left to those rules. define.xml declares each
  variable's Length as its longest value, so a dataset that passes stays within it.
- ``SD0013`` XPT v5 names and labels (FDA Study Data Technical Conformance Guide 3.3.2): a
  dataset or variable name is not a SAS name of at most 8 characters (upper-case letter, then
  letters, digits, ``_``), or a dataset or variable label is longer than 40 characters.
- ``SD0014`` ARMNRS consistent with the arms and the data (SDTMIG 3.4 section 5.2, DM
  assumptions on ARMNRS; :data:`ARMNRS_BY_ARMS`): SCREEN FAILURE or NOT ASSIGNED when no
  arm was assigned, ASSIGNED, NOT TREATED when assigned and not treated, null when treated;
  SCREEN FAILURE exactly for the subjects DS gives a ``SCREEN FAILURE`` disposition; an
  actual arm (ACTARMCD) exactly for the subjects EX shows infused (EXDOSE > 0).
- ``SD0015`` DM arms are arms of the trial design (SDTMIG 3.4 sections 5.2 and 7.2.1: ARMCD
  and ACTARMCD take the values of TA.ARMCD, ARM and ACTARM the TA.ARM of that code); only
  when TA is among the datasets.
- ``SD0016`` every EX subject is in DM with an assigned arm (SDTMIG 3.4 section 5.2: DM
  holds every subject; an exposed subject was assigned to an arm, ARMCD not null).
- ``SD0017`` EXDOSU of a given dose is the unit of the protocol's dose levels (CAR+ cells/kg,
  CDISC CT UNIT ``10^6/kg``: :data:`celltrial.store.sdtm.recode.EXDOSE_UNIT`); needs the
  protocol.
- ``SD0018`` EXDOSE of a given fraction against the protocol (warning: a dose deviation is a
  finding for the reviewer, not a data error): the dose level of the subject's actual arm
  (ACTARMCD, else ARMCD) in cells/kg times the share of the fraction in the protocol's split
  (fraction number from SUPPEX ``EXFRACN``, else the order of EXSTDTC), within the protocol's
  ``dose_tolerance``; with a weight cap only the upper limit (a capped dose is lower per kg);
  a fraction number beyond the protocol's split is a finding too. Needs the protocol
  (``celltrial.clinical.dosing`` states the same tolerance for planning).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from celltrial.store.sdtm import ct
from celltrial.store.sdtm.spec import (
    XPT_MAX_LABEL, XPT_MAX_NAME, SdtmDataset, dataset_spec,
)

_TESTCD = re.compile(r"^[A-Z_][A-Z0-9_]{0,7}$")
_SAS_NAME = re.compile(rf"^[A-Z][A-Z0-9_]{{0,{XPT_MAX_NAME - 1}}}$")
_DTC = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?)?)?$")

ARMNRS_BY_ARMS: dict[tuple[bool, bool], frozenset[str | None]] = {
    (False, False): frozenset({"SCREEN FAILURE", "NOT ASSIGNED"}),
    (True, False): frozenset({"ASSIGNED, NOT TREATED"}),
    (True, True): frozenset({None}),
    (False, True): frozenset({"UNPLANNED TREATMENT"}),
}
"""(ARMCD given, ACTARMCD given) -> the ARMNRS values SDTMIG 3.4 section 5.2 allows (CT
ARMNULRS, C142179): a subject never assigned is a screen failure or not assigned; assigned
and never treated is ``ASSIGNED, NOT TREATED``; treated without an assigned arm is
``UNPLANNED TREATMENT`` (outside the CT subset shipped, so SD0004 also reports it)."""


@dataclass(frozen=True)
class Finding:
    """One conformance problem."""

    rule: str
    dataset: str
    row: int | None
    variable: str
    value: Any
    message: str


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and not value.strip())


def _own_length_rule(name: str) -> bool:
    """Whether SD0005/SD0006 check the length of variable ``name`` (SD0012 leaves it)."""
    return name.endswith(("TESTCD", "TEST")) or name in ("QNAM", "QLABEL", "TSPARM", "TSVAL")


def check_dataset(name: str, frame: pd.DataFrame, spec: SdtmDataset | None = None
                  ) -> list[Finding]:
    """Findings of one exported dataset (rules of one dataset alone); ``spec`` defaults to the
    dataset's SDTMIG spec (:func:`celltrial.store.sdtm.spec.dataset_spec`)."""
    spec = spec or dataset_spec(name)
    found: list[Finding] = []

    def add(rule: str, row: int | None, var: str, value: Any, message: str) -> None:
        found.append(Finding(rule, name, row, var, value, message))

    found += _names_and_labels(name, frame, spec)
    for var in spec.variables:
        if var.name not in frame.columns:
            if var.core in ("Req", "Exp"):
                add("SD0001" if var.core == "Req" else "SD0002", None, var.name, None,
                    f"{var.core} variable {var.name} absent")
            continue
        values = frame[var.name].tolist()
        for row, value in enumerate(values, start=1):
            if _missing(value):
                if var.core == "Req":
                    add("SD0001", row, var.name, value, f"Req variable {var.name} is null")
                continue
            if var.type == "Num" and not isinstance(value, (int, float)):
                add("SD0009", row, var.name, value, f"{var.name} is Num")
                continue
            if var.type == "Char" and not isinstance(value, str):
                add("SD0009", row, var.name, value, f"{var.name} is Char")
                continue
            if var.name in ("DOMAIN", "RDOMAIN"):
                expected = name if var.name == "DOMAIN" else name[4:]
                if value != expected:
                    add("SD0003", row, var.name, value, f"must be {expected}")
            if var.codelist and not ct.is_ct(var.codelist, value):
                add("SD0004", row, var.name, value,
                    f"not in codelist {var.codelist} (CT {ct.CT_RELEASE} or declared "
                    "extension)")
            if (var.name.endswith("TESTCD") or var.name == "QNAM") and not _TESTCD.match(value):
                add("SD0005", row, var.name, value, "at most 8 upper-case letters, digits, _")
            limit = 200 if var.name in ("IETEST", "TSVAL") else 40
            if (var.name.endswith("TEST") or var.name in ("QLABEL", "TSPARM", "TSVAL")
                    ) and len(value) > limit:
                add("SD0006", row, var.name, value, f"at most {limit} characters")
            if var.name.endswith("DTC") and not _DTC.match(value):
                add("SD0008", row, var.name, value, "ISO 8601 date/time")
            if (var.length is not None and not _own_length_rule(var.name)
                    and len(value.encode("utf-8")) > var.length):
                add("SD0012", row, var.name, value,
                    f"{len(value.encode('utf-8'))} bytes, declared length {var.length}")
    seq = next((v.name for v in spec.variables if v.name.endswith("SEQ")), None)
    within = [k for k in spec.key if k not in ("STUDYID", seq)]
    if seq and set(within) | {seq} <= set(frame.columns) and len(frame):
        twice = frame.duplicated(subset=[*within, seq], keep="first").to_numpy()
        for row in (twice.nonzero()[0] + 1).tolist():
            add("SD0007", row, seq, frame[seq].iloc[row - 1],
                f"unique within {'/'.join(within)}")
    arms = ("ARMCD", "ARM", "ACTARMCD", "ACTARM", "ARMNRS")
    if name == "DM" and set(arms) <= set(frame.columns):
        for row, values in enumerate(frame[list(arms)].itertuples(index=False), start=1):
            cd, arm, act_cd, act, nrs = (_missing(v) for v in values)
            if cd != arm or act_cd != act or (cd or act_cd) == nrs:
                add("SD0010", row, "ARMNRS", values[4], "ARMCD/ARM and ACTARMCD/ACTARM null "
                    "in pairs; ARMNRS given exactly when one pair is null")
    if name == "TS":
        found += _check_ts(frame)
    return found


def _names_and_labels(name: str, frame: pd.DataFrame, spec: SdtmDataset) -> list[Finding]:
    """SD0013: XPT v5 dataset/variable names and labels."""
    found = []
    if not _SAS_NAME.match(name):
        found.append(Finding("SD0013", name, None, "", name,
                             f"dataset name: a SAS name of at most {XPT_MAX_NAME} characters"))
    if len(spec.label) > XPT_MAX_LABEL:
        found.append(Finding("SD0013", name, None, "", spec.label,
                             f"dataset label: at most {XPT_MAX_LABEL} characters"))
    for column in frame.columns:
        if not _SAS_NAME.match(str(column)):
            found.append(Finding("SD0013", name, None, str(column), column,
                                 f"variable name: a SAS name of at most {XPT_MAX_NAME} "
                                 "characters"))
    for var in spec.variables:
        if var.name in frame.columns and len(var.label) > XPT_MAX_LABEL:
            found.append(Finding("SD0013", name, None, var.name, var.label,
                                 f"variable label: at most {XPT_MAX_LABEL} characters"))
    return found


def _check_ts(frame: pd.DataFrame) -> list[Finding]:
    from celltrial.store.sdtm.design import TS_RESPONSES

    found = []
    columns = ("TSPARMCD", "TSVAL", "TSVALNF", "TSVALCD", "TSVCDREF")
    if not set(columns) <= set(frame.columns):
        return found
    for row, values in enumerate(frame[list(columns)].itertuples(index=False), start=1):
        parmcd, value, null_flavor, code, ref = (None if _missing(v) else v for v in values)
        if (value is None) == (null_flavor is None):
            found.append(Finding("SD0011", "TS", row, "TSVALNF", null_flavor,
                                 "TSVAL null exactly when TSVALNF gives its null flavour"))
        codelist = TS_RESPONSES.get(parmcd)
        if codelist is None or value is None:
            continue
        term = next((t for t in ct.terms() if t.codelist == codelist and t.value == value), None)
        if term is None:
            found.append(Finding("SD0011", "TS", row, "TSVAL", value,
                                 f"{parmcd} is answered from CT codelist {codelist}"))
        elif code != term.code or ref != "CDISC CT":
            found.append(Finding("SD0011", "TS", row, "TSVALCD", code,
                                 f"must be {term.code}, the NCI code of {value!r}, with "
                                 "TSVCDREF CDISC CT"))
    return found


# --- rules across datasets: DM, DS, EX, TA and the protocol -----------------------------------

def _text(value: Any) -> str | None:
    return None if _missing(value) else str(value)


def _column(frame: pd.DataFrame, name: str) -> list[Any]:
    return frame[name].tolist() if name in frame.columns else [None] * len(frame)


def _number(value: Any) -> float | None:
    """``value`` as a number (text too), None when missing or not a number."""
    if _missing(value) or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _given(ex: pd.DataFrame) -> list[bool]:
    """Per EX row: a dose was given (EXDOSE > 0; a withheld fraction has EXDOSE 0)."""
    return [isinstance(v, (int, float)) and not _missing(v) and v > 0
            for v in _column(ex, "EXDOSE")]


def _check_arms(datasets: Mapping[str, pd.DataFrame]) -> list[Finding]:
    """SD0014, SD0015, SD0016 (module docstring)."""
    found: list[Finding] = []
    dm = datasets.get("DM")
    if dm is None or "USUBJID" not in dm.columns:
        return found
    ds, ex, ta = (datasets.get(n) for n in ("DS", "EX", "TA"))
    failed = None if ds is None else {
        u for u, d in zip(_column(ds, "USUBJID"), _column(ds, "DSDECOD"), strict=True)
        if d == "SCREEN FAILURE"}
    treated = None if ex is None else {
        u for u, g in zip(_column(ex, "USUBJID"), _given(ex), strict=True) if g}
    arms = None if ta is None else {
        _text(c): _text(a) for c, a in zip(_column(ta, "ARMCD"), _column(ta, "ARM"),
                                           strict=True)}
    columns = [_column(dm, v) for v in ("USUBJID", "ARMCD", "ARM", "ACTARMCD", "ACTARM",
                                         "ARMNRS")]
    for row, (usubjid, cd, arm, act_cd, act, nrs) in enumerate(zip(*columns, strict=True),
                                                               start=1):
        cd, arm, act_cd, act, nrs = (_text(v) for v in (cd, arm, act_cd, act, nrs))
        allowed = ARMNRS_BY_ARMS[(cd is not None, act_cd is not None)]
        if "ARMNRS" in dm.columns and nrs not in allowed:
            wanted = " or ".join(sorted("null" if a is None else a for a in allowed))
            found.append(Finding("SD0014", "DM", row, "ARMNRS", nrs,
                                 f"must be {wanted} with ARMCD {cd!r}, ACTARMCD {act_cd!r}"))
        elif failed is not None and (nrs == "SCREEN FAILURE") != (usubjid in failed):
            found.append(Finding("SD0014", "DM", row, "ARMNRS", nrs,
                                 "SCREEN FAILURE exactly when DS has a SCREEN FAILURE "
                                 f"disposition (DS: {'yes' if usubjid in failed else 'no'})"))
        if treated is not None and "ACTARMCD" in dm.columns and (
                act_cd is not None) != (usubjid in treated):
            found.append(Finding("SD0014", "DM", row, "ACTARMCD", act_cd,
                                 "an actual arm exactly when EX has a dose given (EX: "
                                 f"{'given' if usubjid in treated else 'none given'})"))
        if arms is None:
            continue
        for code_var, code, arm_var, text in (("ARMCD", cd, "ARM", arm),
                                              ("ACTARMCD", act_cd, "ACTARM", act)):
            if code is None:
                continue
            if code not in arms:
                found.append(Finding("SD0015", "DM", row, code_var, code,
                                     f"not an arm of TA ({', '.join(sorted(map(str, arms)))})"))
            elif text != arms[code]:
                found.append(Finding("SD0015", "DM", row, arm_var, text,
                                     f"must be {arms[code]!r}, the TA.ARM of {code}"))
    if ex is not None and "USUBJID" in ex.columns:
        assigned = {u: _text(c) for u, c in zip(_column(dm, "USUBJID"), _column(dm, "ARMCD"),
                                                strict=True)}
        for row, usubjid in enumerate(_column(ex, "USUBJID"), start=1):
            if usubjid not in assigned:
                found.append(Finding("SD0016", "EX", row, "USUBJID", usubjid, "not in DM"))
            elif assigned[usubjid] is None:
                found.append(Finding("SD0016", "EX", row, "USUBJID", usubjid,
                                     "exposed, but DM.ARMCD is null (no arm assigned)"))
    return found


def _fractions(datasets: Mapping[str, pd.DataFrame], ex: pd.DataFrame) -> list[int]:
    """The fraction number (from 1) of each EX row: SUPPEX EXFRACN of the row's EXSEQ, else
    the order of EXSTDTC within the subject."""
    from celltrial.store.sdtm.convert import num_text

    supp = datasets.get("SUPPEX")
    numbers: dict[tuple[str, str], int] = {}
    if supp is not None and {"USUBJID", "IDVARVAL", "QNAM", "QVAL"} <= set(supp.columns):
        for u, idval, qnam, qval in supp[["USUBJID", "IDVARVAL", "QNAM", "QVAL"]].itertuples(
                index=False):
            number = _number(qval)
            if qnam == "EXFRACN" and number is not None and not _missing(idval):
                numbers[(u, str(idval))] = int(number)
    order = ex.assign(_row=range(len(ex))).sort_values(["USUBJID", "EXSTDTC"], kind="stable") \
        if {"USUBJID", "EXSTDTC"} <= set(ex.columns) else ex.assign(_row=range(len(ex)))
    by_order = dict(zip(order["_row"], order.groupby("USUBJID").cumcount() + 1, strict=True)) \
        if "USUBJID" in order.columns else {}
    out = []
    for i, (u, seq) in enumerate(zip(_column(ex, "USUBJID"), _column(ex, "EXSEQ"),
                                     strict=True)):
        key = (u, "" if _number(seq) is None else num_text(seq))
        out.append(numbers.get(key, by_order.get(i, 1)))
    return out


def _check_doses(datasets: Mapping[str, pd.DataFrame], protocol: Any) -> list[Finding]:
    """SD0017, SD0018 (module docstring)."""
    from celltrial.store.sdtm.recode import EXDOSE_UNIT

    found: list[Finding] = []
    ex, dm = datasets.get("EX"), datasets.get("DM")
    if ex is None or dm is None or not {"USUBJID", "EXDOSE"} <= set(ex.columns):
        return found
    _, unit, digits = EXDOSE_UNIT
    iv = protocol.intervention
    levels = {level.id: level.cells_per_kg / 10 ** digits for level in iv.dose_levels}
    split = [s.fraction for s in sorted(iv.split, key=lambda s: s.day)]
    arm_of = {u: _text(a) or _text(p) for u, a, p in zip(
        _column(dm, "USUBJID"), _column(dm, "ACTARMCD"), _column(dm, "ARMCD"), strict=True)}
    fractions = _fractions(datasets, ex)
    rows = zip(_column(ex, "USUBJID"), _column(ex, "EXDOSE"), _column(ex, "EXDOSU"),
               _given(ex), fractions, strict=True)
    for row, (usubjid, dose, dosu, given, number) in enumerate(rows, start=1):
        if not given:
            continue
        if dosu != unit:
            found.append(Finding("SD0017", "EX", row, "EXDOSU", dosu,
                                 f"must be {unit}, the unit of the protocol's dose levels"))
            continue
        level = levels.get(arm_of.get(usubjid) or "")
        if level is None:  # no arm, or not a dose level: SD0015/SD0016 report it
            continue
        if not 1 <= number <= len(split):
            found.append(Finding("SD0018", "EX", row, "EXDOSE", dose,
                                 f"fraction {number} is not in the protocol's split "
                                 f"({len(split)} fraction(s))"))
            continue
        planned = level * split[number - 1]
        low = 0.0 if iv.weight_cap_kg else planned * (1 - iv.dose_tolerance)
        high = planned * (1 + iv.dose_tolerance)
        if not low <= float(dose) <= high:
            found.append(Finding("SD0018", "EX", row, "EXDOSE", dose,
                                 f"fraction {number} of {arm_of[usubjid]}: planned "
                                 f"{planned:g} {unit} +-{iv.dose_tolerance:.0%}"))
    return found


def check(datasets: Mapping[str, pd.DataFrame], protocol: Any | None = None
          ) -> list[Finding]:
    """Findings of every dataset, then of the rules across datasets (SD0014-SD0016) and, given
    the study's protocol (:class:`celltrial.protocols.Protocol`), of its dose levels
    (SD0017, SD0018)."""
    found = [f for name, frame in datasets.items() for f in check_dataset(name, frame)]
    found += _check_arms(datasets)
    if protocol is not None:
        found += _check_doses(datasets, protocol)
    return found


RULES: dict[str, tuple[str, str]] = {
    "SD0001": ("error", "Req variable missing or null (SDTMIG 3.4 2.5)"),
    "SD0002": ("warning", "Exp variable absent (SDTMIG 3.4 2.5)"),
    "SD0003": ("error", "DOMAIN/RDOMAIN differs from the dataset (SDTMIG 3.4 2.2)"),
    "SD0004": ("error", "value outside CDISC CT and the declared extensions"),
    "SD0005": ("error", "--TESTCD/QNAM not 8 upper-case characters (SDTMIG 3.4 4.5.3.1, 8.4.1)"),
    "SD0006": ("error", "--TEST/TSPARM/QLABEL over 40, IETEST/TSVAL over 200 characters"),
    "SD0007": ("error", "--SEQ not unique within a subject, TSSEQ within a parameter"),
    "SD0008": ("error", "--DTC not ISO 8601 (SDTMIG 3.4 4.4.1)"),
    "SD0009": ("error", "value of the wrong type for its variable"),
    "SD0010": ("error", "DM arm coding: ARMCD/ARM/ACTARMCD/ACTARM/ARMNRS (SDTMIG 3.4 5.2)"),
    "SD0011": ("error", "TS value, null flavour or CT code (SDTMIG 3.4 7.6)"),
    "SD0012": ("error", "Char value longer than its declared length (spec, XPT v5 200 bytes)"),
    "SD0013": ("error", "XPT v5 name over 8 or not a SAS name, label over 40 (FDA TCG 3.3.2)"),
    "SD0014": ("error", "ARMNRS/ACTARMCD inconsistent with the arms, DS screen failures, EX"),
    "SD0015": ("error", "DM ARMCD/ACTARMCD not a TA arm, or ARM/ACTARM not its TA.ARM"),
    "SD0016": ("error", "EX subject not in DM, or in DM without an arm (SDTMIG 3.4 5.2)"),
    "SD0017": ("error", "EXDOSU of a given dose not the protocol's dose unit (10^6/kg)"),
    "SD0018": ("warning", "EXDOSE outside the protocol dose level x split share +- tolerance"),
}
"""Rule id -> (severity, what it checks) of the rules in the module docstring. An absent
Expected variable is a warning: SDTMIG 3.4 2.5 lets it be left out when not collected,
with the reason in the reviewer's guide; a dose outside the protocol's tolerance is a
warning: a protocol deviation the reviewer is told of, not a data error; every other rule is
an error."""


def severity(rule: str) -> str:
    """``error`` or ``warning`` of a rule id (:data:`RULES`)."""
    return RULES[rule][0]
