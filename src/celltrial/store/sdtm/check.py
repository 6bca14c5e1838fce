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
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from celltrial.store.sdtm import ct
from celltrial.store.sdtm.spec import dataset_spec

_TESTCD = re.compile(r"^[A-Z_][A-Z0-9_]{0,7}$")
_DTC = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?)?)?$")


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


def check_dataset(name: str, frame: pd.DataFrame) -> list[Finding]:
    """Findings of one exported dataset."""
    spec = dataset_spec(name)
    found: list[Finding] = []

    def add(rule: str, row: int | None, var: str, value: Any, message: str) -> None:
        found.append(Finding(rule, name, row, var, value, message))

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


def check(datasets: Mapping[str, pd.DataFrame]) -> list[Finding]:
    """Findings of every dataset."""
    return [f for name, frame in datasets.items() for f in check_dataset(name, frame)]


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
}
"""Rule id -> (severity, what it checks) of the rules in the module docstring. An absent
Expected variable is a warning: SDTMIG 3.4 2.5 lets it be left out when not collected,
with the reason in the reviewer's guide; every other rule is an error."""


def severity(rule: str) -> str:
    """``error`` or ``warning`` of a rule id (:data:`RULES`)."""
    return RULES[rule][0]
