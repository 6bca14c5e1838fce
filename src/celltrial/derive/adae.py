"""ADAE: adverse events with study days, treatment emergence, category and worst-grade flags.

Rules:
- Treatment-emergent (TRTEMFL = Y): onset on or after the first CAR-T infusion (ICH E9 / ADaM
  ADAE "treatment-emergent" = on or after first dose; the lymphodepletion period before day 0
  is not treatment-emergent for the CAR-T product).
- ACAT (the DLT categories of the protocol contract): ``crs`` for "Cytokine release syndrome",
  ``icans`` for "Immune effector cell-associated neurotoxicity syndrome" (ASTCT 2019 terms,
  AETOXSCL ``ASTCT 2019``), ``hematologic`` for the CTCAE v5.0 "Blood and lymphatic system
  disorders" and "Investigations" count terms in ``HEMATOLOGIC_TERMS``, else
  ``non_hematologic``.
- AMAXGRFL = Y on one record per subject and term holding the subject's worst grade of that
  term (earliest onset on ties), so "max grade per term" tables count patients once.
- ADURN: duration in days, end - start + 1 (an event starting and ending the same day lasts 1
  day); missing when ongoing.
Each CRS or ICANS record is one episode (onset ASTDY, duration ADURN, grade ATOXGRN).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd

from celltrial.derive.timeline import (
    DAY, Domains, attach_subject, days_between, domain, flag, has_clock_time, to_date,
    to_datetime,
)

CRS_TERM = "cytokine release syndrome"
ICANS_TERM = "immune effector cell-associated neurotoxicity syndrome"

HEMATOLOGIC_TERMS: frozenset[str] = frozenset({
    "anemia", "neutrophil count decreased", "platelet count decreased",
    "white blood cell decreased", "lymphocyte count decreased", "febrile neutropenia",
    "lymphocyte count increased", "bone marrow hypocellular", "hemolysis",
    "disseminated intravascular coagulation", "fibrinogen decreased",
})
"""CTCAE v5.0 terms counted as hematologic toxicity for DLT rules (protocol category
``hematologic``); every other term is ``non_hematologic`` unless CRS or ICANS."""

AE_COLUMNS = ("AESEQ", "AETERM", "AEDECOD", "AETOXGR", "AETOXSCL", "AESTDTC", "AEENDTC",
              "AESER", "AEREL", "AEOUT")


def ae_category(term: object) -> str:
    """The DLT category of an AE term: crs, icans, hematologic or non_hematologic."""
    text = str(term).strip().lower() if isinstance(term, str) else ""
    if text == CRS_TERM or text == "crs":
        return "crs"
    if text == ICANS_TERM or text == "icans":
        return "icans"
    if text in HEMATOLOGIC_TERMS:
        return "hematologic"
    return "non_hematologic"


def build_adae(domains: Domains, adsl: pd.DataFrame) -> pd.DataFrame:
    """ADAE from the AE domain and ADSL (dose level, first infusion date)."""
    ae = domain(domains, "AE", AE_COLUMNS)
    ae = attach_subject(ae, adsl)
    decod = ae["AEDECOD"].where(ae["AEDECOD"].notna() & (ae["AEDECOD"].astype(str) != ""),
                                ae["AETERM"])
    start, end = to_date(ae["AESTDTC"]), to_date(ae["AEENDTC"])
    trtsdt = pd.to_datetime(ae["TRTSDT"]).astype("datetime64[us]")
    out = ae.assign(
        AEDECOD=decod,
        ACAT=decod.map(ae_category).astype(object),
        ATOXGRN=pd.to_numeric(ae["AETOXGR"], errors="coerce").astype(float),
        ASTDT=start, AENDT=end,
        ASTDY=days_between(start, trtsdt),
        AENDY=days_between(end, trtsdt),
    )
    out = out.assign(
        ADURN=(out["AENDY"] - out["ASTDY"] + 1).astype(float),
        TRTEMFL=flag((out["SAFFL"] == "Y") & (out["ASTDY"] >= 0)),
        AESER=out["AESER"].astype(object).fillna("N"),
    )
    if out.empty:
        return out.assign(AMAXGRFL=pd.Series([], dtype=object))
    order = out.sort_values(["USUBJID", "AEDECOD", "ATOXGRN", "ASTDY"],
                            ascending=[True, True, False, True], na_position="last")
    first = ~order.duplicated(["USUBJID", "AEDECOD"])
    worst = pd.Series(np.where(first, "Y", "N"), index=order.index, dtype=object)
    out = out.assign(AMAXGRFL=worst.reindex(out.index))
    return out.sort_values(["USUBJID", "ASTDY", "AEDECOD"], na_position="last",
                           ignore_index=True)


XC_GRADES: dict[str, str] = {"XCCRSGR": CRS_TERM, "XCICAGR": ICANS_TERM}
"""XC grade variable -> the AE term (lower case) whose daily grade it is (ASTCT 2019 grades
computed at capture by ``celltrial.clinical.grade_crs`` / ``grade_icans``)."""

COURSE_COLUMNS = ("USUBJID", "TERM", "ADY", "DAY", "GRADE")


def xc_grade_courses(domains: Domains, adsl: pd.DataFrame) -> pd.DataFrame:
    """The daily CRS and ICANS grades of XC in long form (``COURSE_COLUMNS``): TERM the AE term
    in lower case, ADY the study day of XCDTC's date, DAY the study day plus the clock time
    (hours / 24) where XCDTC carries one, else ADY, GRADE the ASTCT 2019 grade.

    DAY counts from midnight of the first infusion date, not from its clock time, so that
    ``floor(DAY)`` is the study day every other record uses (AE onset, LB, the DLT window)
    while the hours between two observations stay exact (71 h and 73 h are told apart)."""
    xc = domain(domains, "XC", ("XCDTC", *XC_GRADES))
    if xc.empty:
        return pd.DataFrame({c: pd.Series([], dtype=object if c in ("USUBJID", "TERM")
                                           else float) for c in COURSE_COLUMNS})
    xc = attach_subject(xc, adsl, ("TRTSDT",))
    when = to_datetime(xc["XCDTC"])
    trtsdt = pd.to_datetime(xc["TRTSDT"]).astype("datetime64[us]")
    ady = days_between(when, trtsdt)
    exact = ((when - trtsdt.dt.normalize()) / DAY).astype(float)
    day = exact.where(has_clock_time(xc["XCDTC"]), ady)
    parts = [pd.DataFrame({"USUBJID": xc["USUBJID"], "TERM": term, "ADY": ady, "DAY": day,
                           "GRADE": pd.to_numeric(xc[var], errors="coerce").astype(float)})
             for var, term in XC_GRADES.items()]
    out = pd.concat(parts, ignore_index=True)
    return out[out["GRADE"].notna() & out["ADY"].notna()].reset_index(drop=True)


def lab_grade_courses(adlb: pd.DataFrame) -> pd.DataFrame:
    """ADLB's CTCAE v5.0 grades in long form (``COURSE_COLUMNS``): TERM = ATOXDSC in lower
    case, ADY = DAY = the study day of the sample."""
    graded = adlb[adlb["ATOXGRN"].notna() & adlb["ADY"].notna()]
    return pd.DataFrame({"USUBJID": graded["USUBJID"],
                         "TERM": graded["ATOXDSC"].astype(str).str.lower(),
                         "ADY": graded["ADY"].astype(float), "DAY": graded["ADY"].astype(float),
                         "GRADE": graded["ATOXGRN"].astype(float)})


def toxicities(adae: pd.DataFrame, adlb: pd.DataFrame | None = None,
               courses: pd.DataFrame | None = None) -> dict[str, list[dict[str, object]]]:
    """Per subject, the treatment-emergent AEs as toxicities for
    ``celltrial.clinical.evaluate_dlt``: mappings with term, category, grade, onset_day,
    resolution_day (None when ongoing) and, where observations exist, grade_course.

    The grade course of an AE is the (DAY, grade) of that subject's observations of the same
    term dated from the AE's onset day to its end day (or on, when ongoing):
    - with ``adlb``, a laboratory term (e.g. "Neutrophil count decreased") gets the CTCAE v5.0
      grades of its blood counts, so that "grade 4 cytopenia persisting beyond day 28" and the
      day grade 4 was first reached are read from the counts, not from the AE's dates;
    - with ``courses`` (:func:`xc_grade_courses`), CRS and ICANS get their daily ASTCT 2019
      grades, so that "grade 3 CRS improving to grade <= 2 within 72 h" is read from them."""
    if adae.empty:
        return {}
    rows = adae[(adae["TRTEMFL"] == "Y") & adae["ATOXGRN"].notna()]
    term = rows["AEDECOD"].astype(str).str.lower()
    term = term.mask(rows["ACAT"] == "crs", CRS_TERM).mask(rows["ACAT"] == "icans", ICANS_TERM)
    ae = pd.DataFrame({"USUBJID": rows["USUBJID"].to_numpy(), "TERM": term.to_numpy(),
                       "ASTDY": rows["ASTDY"].astype(float).to_numpy(),
                       "AENDY": rows["AENDY"].astype(float).to_numpy(),
                       "AE": np.arange(len(rows))})
    parts = [c for c in (None if adlb is None or adlb.empty else lab_grade_courses(adlb),
                         courses) if c is not None and not c.empty]
    course_of: dict[int, tuple[tuple[float, int], ...]] = {}
    if parts and not ae.empty:
        obs = pd.concat(parts, ignore_index=True)
        joined = ae.merge(obs, on=["USUBJID", "TERM"], how="inner")
        joined = joined[(joined["ADY"] >= joined["ASTDY"])
                        & (joined["AENDY"].isna() | (joined["ADY"] <= joined["AENDY"]))]
        joined = joined.sort_values(["AE", "DAY"], kind="stable")
        ids = joined["AE"].to_numpy()
        days = joined["DAY"].to_numpy(float).tolist()
        grades = joined["GRADE"].to_numpy(float).astype(int).tolist()
        bounds = [0, *(np.flatnonzero(np.diff(ids)) + 1).tolist(), len(ids)]
        for lo, hi in pairwise(bounds):
            if hi > lo:
                course_of[int(ids[lo])] = tuple(zip(days[lo:hi], grades[lo:hi]))
    result: dict[str, list[dict[str, object]]] = {}
    for i, (subject, term, cat, grade, onset, end) in enumerate(zip(
            rows["USUBJID"], rows["AEDECOD"], rows["ACAT"], rows["ATOXGRN"],
            ae["ASTDY"], ae["AENDY"])):
        tox: dict[str, object] = {"term": term, "category": cat, "grade": int(grade),
                                  "onset_day": float(onset),
                                  "resolution_day": None if np.isnan(end) else float(end)}
        if i in course_of:
            tox["grade_course"] = course_of[i]
        result.setdefault(subject, []).append(tox)
    return result
