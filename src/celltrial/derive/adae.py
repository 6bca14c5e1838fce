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

import numpy as np
import pandas as pd

from celltrial.derive.timeline import Domains, attach_subject, days_between, domain, flag, to_date

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


def toxicities(adae: pd.DataFrame, adlb: pd.DataFrame | None = None
               ) -> dict[str, list[dict[str, object]]]:
    """Per subject, the treatment-emergent AEs as toxicities for
    ``celltrial.clinical.evaluate_dlt``: mappings with term, category, grade, onset_day,
    resolution_day (None when ongoing).

    With ``adlb``, an AE whose term is a graded laboratory term (e.g. "Neutrophil count
    decreased") gets its ``grade_course``: the (ADY, CTCAE grade) of that subject's lab values of
    the term from onset to resolution, so that rules on how long a grade lasted (e.g. grade 4
    cytopenia persisting beyond day 28) read the laboratory evidence, not only the AE's dates."""
    rows = adae[(adae["TRTEMFL"] == "Y") & adae["ATOXGRN"].notna()] if not adae.empty else adae
    courses: dict[tuple[str, str], pd.DataFrame] = {}
    if adlb is not None and not adlb.empty:
        graded = adlb[adlb["ATOXGRN"].notna() & adlb["ADY"].notna()]
        for (subject, term), labs in graded.groupby(
                [graded["USUBJID"], graded["ATOXDSC"].astype(str).str.lower()]):
            courses[(subject, term)] = labs.sort_values("ADY")[["ADY", "ATOXGRN"]]
    result: dict[str, list[dict[str, object]]] = {}
    for rec in rows.itertuples(index=False):
        onset = float(rec.ASTDY)
        end = None if pd.isna(rec.AENDY) else float(rec.AENDY)
        tox: dict[str, object] = {"term": rec.AEDECOD, "category": rec.ACAT,
                                  "grade": int(rec.ATOXGRN), "onset_day": onset,
                                  "resolution_day": end}
        labs = courses.get((rec.USUBJID, str(rec.AEDECOD).lower()))
        if labs is not None:
            days = labs["ADY"].to_numpy(float)
            inside = (days >= onset) & (days <= (end if end is not None else np.inf))
            tox["grade_course"] = tuple((float(d), int(g)) for d, g in
                                        zip(days[inside], labs["ATOXGRN"].to_numpy()[inside]))
        result.setdefault(rec.USUBJID, []).append(tox)
    return result
