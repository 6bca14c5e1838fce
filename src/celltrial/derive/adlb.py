"""ADLB: laboratory results with study day, baseline, change, and CTCAE v5.0 grade.

Rules: PARAMCD = LBTESTCD, AVAL = LBSTRESN (standard unit LBSTRESU); ADY = days from the first
infusion; baseline (ABLFL = Y) = the last non-missing value on or before day 0 per subject,
test and specimen; CHG = AVAL - BASE; R2BASE = AVAL / BASE (fold change, for cytokines).
ATOXGRN = ``celltrial.clinical.grade_lab`` (CTCAE v5.0, CLINICAL_REFERENCE.md section 2) for the
tests in ``CTCAE_TERMS``; a test with two directions (e.g. potassium) is graded both ways and the
worse grade kept, its term in ATOXDSC; a value the grader refuses (unknown unit or term) has
no grade and its reason in ATOXRSN. A reference limit of 0 (e.g. ALT "0-40 U/L") means no
such limit and is not passed to the grader. Tests without a CTCAE term (CD7+ cells, cytokines, MRD,
blasts) have no grade.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from celltrial.derive.timeline import Domains, attach_subject, days_between, domain, flag
from celltrial.derive.timeline import to_date, to_number
from celltrial.errors import CelltrialError

CTCAE_TERMS: dict[str, tuple[str, ...]] = {
    "NEUT": ("Neutrophil count decreased",),
    "PLAT": ("Platelet count decreased",),
    "HGB": ("Anemia",),
    "LYM": ("Lymphocyte count decreased",),
    "WBC": ("White blood cell decreased",),
    "ALT": ("Alanine aminotransferase increased",),
    "AST": ("Aspartate aminotransferase increased",),
    "BILI": ("Blood bilirubin increased",),
    "CREAT": ("Creatinine increased",),
    "FIBRINO": ("Fibrinogen decreased",),
    "K": ("Hyperkalemia", "Hypokalemia"),
    "SODIUM": ("Hypernatremia", "Hyponatremia"),
    "CACORR": ("Hypercalcemia", "Hypocalcemia"),
    "CAION": ("Hypocalcemia (ionized)",),
    "ALB": ("Hypoalbuminemia",),
}
"""LBTESTCD -> CTCAE v5.0 term(s) graded by ``celltrial.clinical.grade_lab``.

CTCAE v5.0 defines hypo- and hypercalcemia on corrected serum calcium (or ionized calcium),
so uncorrected total calcium (``CA``) is not graded; ``CACORR`` and ``CAION`` are.
"""

HEMATOLOGIC_TESTS: tuple[str, ...] = ("NEUT", "PLAT", "HGB", "LYM", "WBC")
"""Blood counts whose CTCAE grade course ADSL reads for the DLT rules on cytopenias."""


def _grade(grade_lab: Callable[..., Any], test: str, value: float, unit: str, lln: float,
           uln: float, base: float) -> tuple[float, str, str]:
    """Worst grade over the test's CTCAE terms, the term, and why a term could not be graded."""
    best, term_used, reasons = math.nan, "", []
    kwargs = {"lln": lln if lln > 0 else None, "uln": uln if uln > 0 else None,
              "baseline": None if math.isnan(base) else base}
    for term in CTCAE_TERMS.get(test, ()):
        try:
            grade = float(int(grade_lab(term, value, unit, **kwargs)))
        except CelltrialError as exc:
            reasons.append(f"{term}: {exc.message}")
            continue
        if math.isnan(best) or grade > best:
            best, term_used = grade, term
    return best, term_used, "; ".join(reasons) if math.isnan(best) else ""


def standard_ranges(lb: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """ANRLO/ANRHI: each row's reference range in the standard unit of AVAL (LBSTRESU):
    LBSTNRLO/HI where given, else LBORNRLO/HI converted from LBORRESU
    (:func:`celltrial.store.consistency.standard_range`; SDTMIG 3.4 LB: --ORNRLO/HI in the
    original unit, --STNRLO/HI in the standard unit). Rows in one unit take LBORNRLO/HI as
    they are; only rows entered in another unit are converted, one distinct row at a time."""
    from celltrial.store.consistency import standard_range

    orresu, stresu = lb["LBORRESU"].astype(object), lb["LBSTRESU"].astype(object)
    same = (orresu.isna() | stresu.isna()
            | (orresu.astype(str) == stresu.astype(str))).to_numpy()
    limits = []
    for end in ("LO", "HI"):
        std, orig = to_number(lb[f"LBSTNR{end}"]), to_number(lb[f"LBORNR{end}"])
        limits.append(std.where(std.notna(), orig.where(same)).astype(float))
    lo, hi = limits
    other = ~same & (lo.isna() | hi.isna()).to_numpy()
    if other.any():
        cols = ["LBTESTCD", "LBORRESU", "LBSTRESU", "LBORNRLO", "LBORNRHI", "LBSTNRLO",
                "LBSTNRHI"]
        found: dict[tuple[Any, ...], tuple[float | None, float | None]] = {}
        for index, row in lb.loc[other, cols].iterrows():
            key = tuple(None if pd.isna(v) else v for v in row)
            if key not in found:
                found[key] = standard_range(str(key[0]), *key[1:])
            lo.loc[index], hi.loc[index] = (np.nan if v is None else v for v in found[key])
    return lo.astype(float), hi.astype(float)


def build_adlb(domains: Domains, adsl: pd.DataFrame) -> pd.DataFrame:
    """ADLB from the LB domain and ADSL."""
    from celltrial.clinical import grade_lab

    lb = domain(domains, "LB", ("LBSEQ", "LBCAT", "LBTESTCD", "LBTEST", "LBSPEC", "LBSTRESN",
                                "LBSTRESU", "LBORRESU", "LBORNRLO", "LBORNRHI", "LBSTNRLO",
                                "LBSTNRHI", "LBDTC", "LBMETHOD"))
    anrlo, anrhi = standard_ranges(lb)
    lb = attach_subject(lb.assign(ANRLO=anrlo, ANRHI=anrhi), adsl)
    adt = to_date(lb["LBDTC"])
    trtsdt = pd.to_datetime(lb["TRTSDT"]).astype("datetime64[us]")
    out = lb.assign(PARAMCD=lb["LBTESTCD"], PARAM=lb["LBTEST"], AVAL=to_number(lb["LBSTRESN"]),
                    AVALU=lb["LBSTRESU"], ADT=adt, ADY=days_between(adt, trtsdt))
    out = out.sort_values(["USUBJID", "PARAMCD", "ADY"], ignore_index=True)
    out = out.assign(SPECKEY=out["LBSPEC"].astype(object).fillna("").astype(str))
    key = ["USUBJID", "PARAMCD", "SPECKEY"]
    pre = out["AVAL"].notna() & ((out["ADY"] <= 0) | out["TRTSDT"].isna())
    base_row = out.index.isin(out[pre].groupby(key).tail(1).index)
    base_row = pd.Series(base_row, index=out.index)
    base = out["AVAL"].where(base_row).groupby([out[k] for k in key]).transform("max")
    out = out.assign(ABLFL=flag(base_row), BASE=base, CHG=out["AVAL"] - base,
                     R2BASE=(out["AVAL"] / base.where(base != 0)).astype(float))
    out = out.drop(columns="SPECKEY")
    graded: dict[tuple[Any, ...], tuple[float, str, str]] = {}
    grades, terms, reasons = [], [], []
    for rec in out[["PARAMCD", "AVAL", "AVALU", "ANRLO", "ANRHI", "BASE"]].itertuples(index=False):
        if rec.PARAMCD in CTCAE_TERMS and not pd.isna(rec.AVAL):
            key = (rec.PARAMCD, float(rec.AVAL), str(rec.AVALU), float(rec.ANRLO),
                   float(rec.ANRHI), float(rec.BASE))
            if key not in graded:
                graded[key] = _grade(grade_lab, *key)
            g, t, why = graded[key]
        else:
            g, t, why = np.nan, "", ""
        grades.append(g)
        terms.append(t)
        reasons.append(why)
    return out.assign(ATOXGRN=np.asarray(grades, dtype=float),
                      ATOXDSC=pd.Series(terms, index=out.index, dtype=object),
                      ATOXRSN=pd.Series(reasons, index=out.index, dtype=object))
