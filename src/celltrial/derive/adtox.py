"""ADTOX: CD7 CAR-T haematotoxicity (ICAHT), T/NK-cell aplasia, IEC-HS and acute GVHD per
subject; CM flags.

Why: CD7 is on normal T and NK cells, so a CD7 CAR-T study follows neutrophil recovery, the
loss and recovery of T and NK cells, and the drugs given for CRS/ICANS (issue 13). The
grading rules are the pure functions of ``celltrial.clinical`` (docs/clinical.md); this module
gathers their inputs from the SDTM domains and states the derivation choices.

ADTOX is a BDS dataset: one row per infused subject (ADSL SAFFL = Y) and parameter, only for
subjects with at least one post-infusion value of the test the parameter reads (a patient
without an ANC after the infusion has no ICAHT row: "not assessed" is not grade 0).

======== ============================================================ =========================
PARAMCD  AVAL                                                         source of the rule
======== ============================================================ =========================
EICAHT   early ICAHT grade 0-4, day 0-30 (``early_icaht``); DAYS05 /  Rejeski, Blood 2023;
         DAYS01 days with ANC <= 0.5 / <= 0.1 x 10^9/L                142:865, Table 2
LICAHT   late ICAHT grade 0-4, after day 30 (``late_icaht``)          Rejeski 2023, Table 2
APLCD3   T-cell (CD3+) aplasia duration, days (``assess_aplasia``)    aplasia.THRESHOLDS
APLCD4   CD4+ T-cell aplasia duration, days                           (each with its source)
APLCD8   CD8+ T-cell aplasia duration, days
APLNK    NK-cell (CD56+) aplasia duration, days
IECHS    1 when the IEC-HS criteria 1-3 are met on a post-infusion    Hines, Transplant Cell
         day (``identify_iec_hs(...).met_but_exclusion``), else 0;    Ther 2023;29:438
         ONSETDY the first such day
AGVHD    worst MAGIC overall grade 0-4 (5 fatal) of acute GVHD with   Harris, BBMT 2016;22:4,
         onset from the first infusion and before any allo-HSCT       Tables 1-2
======== ============================================================ =========================

- ANC: LB ``NEUT`` (LBSTRESN in LBSTRESU, converted to 10^9/L), study day from the first
  infusion. ICAHT counting stops at ``CENSDY`` (CENSEVT says which): the first of
  relapse/progression (ADRS), a new anticancer therapy or allogeneic HSCT (PR, the DLT
  censoring sources of :mod:`celltrial.derive.dlt`), or death -- "censoring at the time of
  disease progression, subsequent line of therapy, or death" (T-ICAHT, Blood 2024, Table 1
  legend, stating the N-ICAHT convention).
- Lymphocyte subsets: LB ``CD3ABS``, ``CD4ABS``, ``CD8ABS``, ``NKABS`` in cells/uL
  (10^9/L accepted and converted). Counts on or after an allogeneic HSCT are not read: T and
  NK cells after a transplant come from the graft, so an aplasia ongoing at HSCT is censored
  at the last count before it (CNSR 1). AVAL is the duration (onset to recovery, CNSR 0; or to
  the last count read, CNSR 1); a subject never below the threshold has APLFL N and AVAL NaN.
  ONSETDY, RECOVDY, NADIR, THRESH (cells/uL) and THRSRC (its source) go with each row.
- IEC-HS (IECHS), for every infused subject with a ferritin result (LB ``FERRITIN``, ug/L =
  ng/mL) after the infusion and before CENSDY (the ICAHT censoring): on each such day, the
  observation of ``celltrial.clinical.iec_hs`` is built from the records -- ferritin against
  its LBSTNRHI and the last value on or before day 0; the timing from the daily CRS grades of
  XC (``crs_timing``: before, during/worsening, resolving, after resolution, no CRS; unknown,
  so the criterion unmet, for a subject without XC observations); AST/ALT
  as multiples of their LBSTNRHI, with the baseline multiple (last on or before day 0);
  fibrinogen in mg/dL (``clinical.units``) and its LBSTNRLO; the cytopenia criterion from the
  LBTOXGR of NEUT/PLAT (``new_or_worsening_cytopenia``: a second dip, grade >= 3 again after a
  recovery to <= 2 on two assessments, worse than at the previous count). Haemophagocytosis is not in the records (None). Criterion 4 ("not better
  explained by another cause") is the investigator's judgement and is not in the records
  either, so AVAL 1 means the criteria the data can show are met, not a diagnosis; the IEC-HS
  severity grade (Table 3: symptoms, therapy, organ support) is not derivable and is not
  given. DAYSASS = days assessed.
- Acute GVHD (AGVHD): AE ``Graft versus host disease`` graded by MAGIC (AETOXGR, the overall
  grade of ``celltrial.clinical.gvhd.grade_gvhd`` on the organ stages, as the site or the
  virtual-patient generator recorded it; the store keeps the grade, not the organ stages)
  with onset on or after day 0 and before any allogeneic HSCT (after it GVHD belongs to the
  graft; CENSDY = the HSCT day, CENSEVT ``hsct``). With ``product_origin`` donor-derived or
  ``unknown`` (``protocols.schema.gvhd_assessed``) every infused subject has a row (0 = no
  GVHD); autologous: no row (GVHD is not the product's); not given: rows only for subjects
  with such an AE.

CM flags (:func:`medication_flags`, read by ADSL): TOCIFL = tocilizumab, CORTFL = a
corticosteroid (class CORTICOSTEROID of ``clinical/data/cm_drugs.csv``), given from the day
of the first infusion on (day >= 0; premedication before it is not CAR-T toxicity
management); TOCISTDY / CORTSTDY = study day of the first such dose. A drug is recognised by
CM ``CMDECOD`` (else ``CMTRT``) against the controlled list, and by PR ``PRTRT``
``TOCILIZUMAB`` / ``CORTICOSTEROIDS``, where the virtual-patient generator and sites
recording the treatment of CRS as a procedure write it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from celltrial.derive.timeline import Domains, days_between, domain, flag, lookup, to_date
from celltrial.derive.timeline import to_number

__all__ = ["ADTOX_COLUMNS", "APLASIA_TESTS", "CD7_NEGATIVE_AT_OR_BELOW_PCT", "ICAHT_CENSORING",
           "GVHD_CAUSES", "INFECTION_WINDOWS", "RELAPSE_CD7_WINDOW", "build_adtox",
           "cd7_at_relapse", "gvhd_incidence",
           "icaht_censoring", "infection_density_by_window", "medication_flags", "with_icaht"]

APLASIA_TESTS: dict[str, tuple[str, str, str]] = {
    "CD3ABS": ("APLCD3", "CD3", "T-cell (CD3+) aplasia duration (days)"),
    "CD4ABS": ("APLCD4", "CD4", "CD4+ T-cell aplasia duration (days)"),
    "CD8ABS": ("APLCD8", "CD8", "CD8+ T-cell aplasia duration (days)"),
    "NKABS": ("APLNK", "CD56", "NK-cell (CD56+) aplasia duration (days)"),
}
"""LBTESTCD -> (PARAMCD, marker of ``celltrial.clinical.aplasia.THRESHOLDS``, PARAM)."""

ICAHT_CENSORING = ("hsct", "new_anticancer_therapy")
"""DLT censoring sources (:data:`celltrial.derive.dlt.CENSORING_SOURCES`) that also end ICAHT
counting ("subsequent line of therapy"); relapse/progression and death are added from ADRS
and ADSL."""

ADTOX_COLUMNS = ("STUDYID", "USUBJID", "PARAMCD", "PARAM", "AVAL", "AVALU", "CNSR", "APLFL",
                 "DAYS05", "DAYS01", "DAYSASS", "ONSETDY", "RECOVDY", "NADIR", "THRESH",
                 "THRSRC", "CENSDY", "CENSEVT", "TRT01A", "TRT01AN")

COUNT_FACTORS: dict[str, float] = {"10^9/l": 1.0, "10^3/ul": 1.0, "/ul": 1e-3,
                                   "cells/ul": 1e-3, "/mm3": 1e-3}
"""Unit (normalised) -> factor to 10^9/L for the ANC."""


def _unit_factor(unit: object, to_per_ul: bool) -> float:
    """Factor from ``unit`` to 10^9/L (``to_per_ul`` False) or cells/uL; NaN if unknown."""
    from celltrial.clinical.units import normalise_unit

    try:
        key = normalise_unit(unit)
    except Exception:  # an empty or malformed unit: the value cannot be placed
        return math.nan
    factor = COUNT_FACTORS.get(key, math.nan)
    return factor * 1000.0 if to_per_ul else factor


def _course(lb: pd.DataFrame, test: str, start: pd.Series, to_per_ul: bool) -> pd.DataFrame:
    rows = lb[lb["LBTESTCD"] == test]
    units = rows["LBSTRESU"].map(lambda u: _unit_factor(u, to_per_ul)).astype(float)
    value = to_number(rows["LBSTRESN"]) * units
    ady = days_between(to_date(rows["LBDTC"]), lookup(rows["USUBJID"], start))
    out = pd.DataFrame({"USUBJID": rows["USUBJID"], "ADY": ady, "VALUE": value})
    return out[out["ADY"].notna() & out["VALUE"].notna()]


def icaht_censoring(domains: Domains, adsl: pd.DataFrame, adrs: pd.DataFrame) -> pd.DataFrame:
    """Per infused subject with one: CENSDY and CENSEVT, the first of relapse/progression,
    new anticancer therapy, allogeneic HSCT or death (study days; see module docstring)."""
    from celltrial.derive.adrs import relapse_day
    from celltrial.derive.dlt import censoring

    infused = adsl[adsl["SAFFL"] == "Y"]
    therapy = censoring(domains, None, infused, events=list(ICAHT_CENSORING))
    frames = [therapy.rename(columns={"CENSEVT": "EVENT", "CENSDY": "DAY"})]
    relapse = relapse_day(adrs)
    frames.append(pd.DataFrame({"USUBJID": relapse.index, "DAY": relapse.to_numpy(float),
                                "EVENT": "relapse_or_progression"}))
    death = days_between(infused["DTHDT"], infused["TRTSDT"])
    frames.append(pd.DataFrame({"USUBJID": infused["USUBJID"], "DAY": death.to_numpy(float),
                                "EVENT": "death"}))
    events = pd.concat(frames, ignore_index=True).dropna(subset=["DAY"])
    events = events[events["USUBJID"].isin(infused["USUBJID"])]
    first = events.sort_values(["USUBJID", "DAY"], kind="stable").drop_duplicates("USUBJID")
    return first.rename(columns={"DAY": "CENSDY", "EVENT": "CENSEVT"})[
        ["USUBJID", "CENSDY", "CENSEVT"]].reset_index(drop=True)


def _row(meta: pd.Series, paramcd: str, param: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {c: None for c in ADTOX_COLUMNS}
    row.update(STUDYID=meta["STUDYID"], USUBJID=meta["USUBJID"], PARAMCD=paramcd, PARAM=param,
               TRT01A=meta["TRT01A"], TRT01AN=meta["TRT01AN"], **values)
    return row


def build_adtox(domains: Domains, adsl: pd.DataFrame, adrs: pd.DataFrame, *,
                product_origin: str | None = None) -> pd.DataFrame:
    """ADTOX (module docstring) from LB, XC, AE, PR, ADSL and ADRS; ``product_origin`` (the
    protocol's ``intervention.product_origin``) decides who has an AGVHD row (None: only
    patients with a product-attributable GVHD AE)."""
    from celltrial.clinical.aplasia import THRESHOLDS, assess_aplasia
    from celltrial.clinical.icaht import early_icaht, late_icaht

    infused = adsl[adsl["SAFFL"] == "Y"].reset_index(drop=True)
    start = pd.Series(pd.to_datetime(infused["TRTSDT"]).astype("datetime64[us]").to_numpy(),
                      index=infused["USUBJID"].to_numpy())
    lb = domain(domains, "LB", ("LBTESTCD", "LBSTRESN", "LBSTRESU", "LBDTC", "LBSTNRLO",
                                "LBSTNRHI", "LBTOXGR"))
    lb = lb[lb["USUBJID"].isin(infused["USUBJID"])]
    cens = icaht_censoring(domains, infused, adrs).set_index("USUBJID")
    hsct = days_between(infused["HSCTDT"], infused["TRTSDT"])
    hsct_day = dict(zip(infused["USUBJID"], hsct.to_numpy(float)))
    rows: list[dict[str, Any]] = []
    anc = _course(lb, "NEUT", start, to_per_ul=False)
    anc_by = {u: g for u, g in anc.groupby("USUBJID")}
    subsets = {test: {u: g for u, g in _course(lb, test, start, to_per_ul=True)
                      .groupby("USUBJID")} for test in APLASIA_TESTS}
    for _, meta in infused.iterrows():
        u = meta["USUBJID"]
        censday = float(cens["CENSDY"].get(u, math.nan))
        censevt = cens["CENSEVT"].get(u, "")
        course = anc_by.get(u)
        if course is not None and (course["ADY"] >= 0).any():
            pairs = list(zip(course["ADY"], course["VALUE"]))
            cday = None if math.isnan(censday) else censday
            early = early_icaht(pairs, censor_day=cday)
            late = late_icaht(pairs, censor_day=cday)
            rows.append(_row(meta, "EICAHT", "Early ICAHT grade (day 0-30)",
                             AVAL=float(early.grade), AVALU="grade", DAYS05=early.days_le_0_5,
                             DAYS01=early.days_le_0_1, DAYSASS=early.days_assessed,
                             CENSDY=censday, CENSEVT=censevt))
            if late.measurements:
                rows.append(_row(meta, "LICAHT", "Late ICAHT grade (after day 30)",
                                 AVAL=float(late.grade), AVALU="grade",
                                 DAYSASS=late.measurements, CENSDY=censday, CENSEVT=censevt))
        for test, (paramcd, marker, param) in APLASIA_TESTS.items():
            counts = subsets[test].get(u)
            if counts is None:
                continue
            stop = hsct_day.get(u, math.nan)
            if not math.isnan(stop):
                counts = counts[counts["ADY"] < stop]
            counts = counts[counts["ADY"] >= 0]
            if counts.empty:
                continue
            r = assess_aplasia(marker, list(zip(counts["ADY"], counts["VALUE"])))
            rows.append(_row(
                meta, paramcd, param,
                AVAL=r.duration_days if r.aplastic else math.nan, AVALU="days",
                CNSR=(0 if r.recovered else 1) if r.aplastic else None,
                APLFL="Y" if r.aplastic else "N", ONSETDY=r.onset_day, RECOVDY=r.recovery_day,
                NADIR=r.nadir_per_ul, THRESH=THRESHOLDS[marker].below_per_ul,
                THRSRC=THRESHOLDS[marker].source,
                CENSDY=stop if (r.aplastic and not r.recovered and not math.isnan(stop))
                else math.nan,
                CENSEVT="hsct" if (r.aplastic and not r.recovered and not math.isnan(stop))
                else ""))
    rows += _iechs_rows(domains, infused, lb, start, cens)
    rows += _gvhd_rows(domains, infused, start, hsct_day, product_origin)
    frame = pd.DataFrame(rows, columns=list(ADTOX_COLUMNS))
    numeric = ("AVAL", "DAYS05", "DAYS01", "DAYSASS", "ONSETDY", "RECOVDY", "NADIR", "THRESH",
               "CENSDY", "TRT01AN")
    return frame.astype({c: float for c in numeric})


IECHS_SOURCE = ("Hines MR et al., Transplant Cell Ther 2023;29:438 (ASTCT IEC-HS); "
                "celltrial.clinical.iec_hs")


def _by_day(lb: pd.DataFrame, test: str, start: pd.Series, how: str,
            convert: Any = None) -> dict[str, dict[float, tuple[float, float]]]:
    """Per subject: study day -> (the day's ``how`` (max/min) value of LB ``test``, its
    reference bound: LBSTNRHI for max, LBSTNRLO for min), both through ``convert(value,
    unit)`` when given (NaN for a unit it does not know: the row is not read)."""
    rows = lb[lb["LBTESTCD"] == test]
    if rows.empty:
        return {}
    bound = "LBSTNRHI" if how == "max" else "LBSTNRLO"
    value, ref = to_number(rows["LBSTRESN"]), to_number(rows[bound])
    if convert is not None:
        value = pd.Series([convert(v, u) for v, u in zip(value, rows["LBSTRESU"], strict=True)],
                          index=rows.index, dtype=float)
        ref = pd.Series([convert(v, u) for v, u in zip(ref, rows["LBSTRESU"], strict=True)],
                        index=rows.index, dtype=float)
    frame = pd.DataFrame({
        "USUBJID": rows["USUBJID"], "VALUE": value, "REF": ref,
        "ADY": days_between(to_date(rows["LBDTC"]), lookup(rows["USUBJID"], start))}).dropna(
        subset=["ADY", "VALUE"])
    frame = frame.sort_values("VALUE", ascending=how == "min", kind="stable")
    first = frame.drop_duplicates(["USUBJID", "ADY"])
    out: dict[str, dict[float, tuple[float, float]]] = {}
    for u, d, v, r in zip(first["USUBJID"], first["ADY"], first["VALUE"], first["REF"],
                          strict=True):
        out.setdefault(u, {})[float(d)] = (float(v), float(r))
    return out


FERRITIN_UNITS = {"ug/l": 1.0, "ng/ml": 1.0, "mg/l": 1000.0}
"""Ferritin units read (normalised) -> factor to ng/mL."""


def _ferritin_ng_ml(value: float, unit: object) -> float:
    from celltrial.clinical.units import normalise_unit

    try:
        return float(value) * FERRITIN_UNITS.get(normalise_unit(unit), math.nan)
    except Exception:  # an empty or malformed unit: the value cannot be placed
        return math.nan


def _fibrinogen_mg_dl(value: float, unit: object) -> float:
    from celltrial.clinical.units import convert

    try:
        return convert("fibrinogen", float(value), str(unit), "mg/dL")
    except Exception:  # a missing value or a unit that is not a fibrinogen unit
        return math.nan


def _iechs_rows(domains: Domains, infused: pd.DataFrame, lb: pd.DataFrame, start: pd.Series,
                cens: pd.DataFrame) -> list[dict[str, Any]]:
    """IECHS rows (module docstring): ``identify_iec_hs`` on each post-infusion day with a
    ferritin result before CENSDY."""
    from celltrial.clinical.iec_hs import (
        crs_timing, identify_iec_hs, new_or_worsening_cytopenia,
    )

    ferritin = _by_day(lb, "FERRITIN", start, "max", _ferritin_ng_ml)
    if not ferritin:
        return []
    fib = _by_day(lb, "FIBRINO", start, "min", _fibrinogen_mg_dl)
    enzymes = {name: _by_day(lb, name, start, "max") for name in ("AST", "ALT")}
    cyto = lb[lb["LBTESTCD"].isin(["NEUT", "PLAT"])]
    cyto = pd.DataFrame({"USUBJID": cyto["USUBJID"], "GRADE": to_number(cyto["LBTOXGR"]),
                         "ADY": days_between(to_date(cyto["LBDTC"]),
                                             lookup(cyto["USUBJID"], start))}).dropna()
    cyto = cyto[cyto["ADY"] >= 0].groupby(["USUBJID", "ADY"])["GRADE"].max()
    cyto_by = {u: list(g.droplevel(0).items()) for u, g in cyto.groupby(level=0)}
    xc = domain(domains, "XC", ("XCDTC", "XCCRSGR"))
    xc = pd.DataFrame({"USUBJID": xc["USUBJID"], "GRADE": to_number(xc["XCCRSGR"]),
                       "ADY": days_between(to_date(xc["XCDTC"]),
                                           lookup(xc["USUBJID"], start))}).dropna()
    crs = {u: list(zip(g["ADY"], g["GRADE"], strict=True)) for u, g in xc.groupby("USUBJID")}
    rows: list[dict[str, Any]] = []
    for _, meta in infused.iterrows():
        u = meta["USUBJID"]
        days = ferritin.get(u, {})
        censday = float(cens["CENSDY"].get(u, math.nan))
        post = sorted(d for d in days if d >= 0 and (math.isnan(censday) or d < censday))
        if not post:
            continue
        at_infusion = [v for d, (v, _) in sorted(days.items()) if d <= 0]
        grades = cyto_by.get(u, [])
        base = {name: [v / r for d, (v, r) in sorted(enzymes[name].get(u, {}).items())
                       if d <= 0 and r > 0] for name in enzymes}
        onset = None
        for d in post:
            value, uln = days[d]
            obs: dict[str, Any] = {"ferritin_ng_ml": value}
            if u in crs:  # without daily CRS observations the timing is unknown
                obs["timing"] = crs_timing(d, crs[u])
            if uln > 0:
                obs["ferritin_uln_ng_ml"] = uln
            if at_infusion:
                obs["ferritin_at_infusion_ng_ml"] = at_infusion[-1]
            for name in enzymes:
                v, r = enzymes[name].get(u, {}).get(d, (math.nan, math.nan))
                if r > 0 and not math.isnan(v):
                    obs[f"{name.lower()}_x_uln"] = v / r
                    if base[name]:
                        obs[f"{name.lower()}_baseline_x_uln"] = base[name][-1]
            f, lln = fib.get(u, {}).get(d, (math.nan, math.nan))
            if not math.isnan(f):
                obs["fibrinogen_mg_dl"] = f
                if lln > 0:
                    obs["fibrinogen_lln_mg_dl"] = lln
            if grades:
                obs["cytopenia"] = new_or_worsening_cytopenia(d, grades)
            if identify_iec_hs(obs).met_but_exclusion:
                onset = d
                break
        rows.append(_row(meta, "IECHS", IECHS_PARAM, AVAL=float(onset is not None),
                         AVALU="flag", ONSETDY=onset, DAYSASS=len(post), THRSRC=IECHS_SOURCE,
                         CENSDY=censday, CENSEVT=cens["CENSEVT"].get(u, "")))
    return rows


IECHS_PARAM = "IEC-HS criteria met, other causes not excluded (ASTCT 2023)"

GVHD_PARAM = "Acute GVHD of the product, worst MAGIC grade"


def _gvhd_rows(domains: Domains, infused: pd.DataFrame, start: pd.Series,
               hsct_day: dict[str, float], origin: str | None) -> list[dict[str, Any]]:
    """AGVHD rows (module docstring): the worst MAGIC overall grade of the GVHD AEs with onset
    from the first infusion and before any allogeneic HSCT."""
    from celltrial.protocols.schema import gvhd_assessed

    every = origin is not None and gvhd_assessed(origin)
    if origin is not None and not every:
        return []
    ae = domain(domains, "AE", ("AEDECOD", "AETOXGR", "AESTDTC"))
    ae = ae[ae["AEDECOD"].astype(str).str.strip().str.lower() == GVHD_TERM]
    events = pd.DataFrame({"USUBJID": ae["USUBJID"], "GRADE": to_number(ae["AETOXGR"]),
                           "ADY": days_between(to_date(ae["AESTDTC"]),
                                               lookup(ae["USUBJID"], start))}).dropna()
    events = events[events["ADY"] >= 0]
    rows: list[dict[str, Any]] = []
    for _, meta in infused.iterrows():
        u = meta["USUBJID"]
        stop = hsct_day.get(u, math.nan)
        mine = events[(events["USUBJID"] == u) & ~(events["ADY"] >= stop)]
        if mine.empty and not every:
            continue
        rows.append(_row(
            meta, "AGVHD", GVHD_PARAM, AVAL=float(mine["GRADE"].max()) if len(mine) else 0.0,
            AVALU="grade", ONSETDY=float(mine["ADY"].min()) if len(mine) else None,
            THRSRC=GVHD_SOURCE, CENSDY=stop, CENSEVT="" if math.isnan(stop) else "hsct"))
    return rows


GVHD_SOURCE = ("Harris AC et al., Biol Blood Marrow Transplant 2016;22:4-10 (MAGIC); "
               "celltrial.clinical.gvhd")


def _first_day(frame: pd.DataFrame, date_col: str, hit: pd.Series, start: pd.Series
               ) -> pd.Series:
    rows = frame[hit.to_numpy(bool)]
    ady = days_between(to_date(rows[date_col]), lookup(rows["USUBJID"], start))
    ady = ady[ady >= 0]
    return ady.groupby(rows.loc[ady.index, "USUBJID"]).min()


def medication_flags(domains: Domains, adsl: pd.DataFrame) -> pd.DataFrame:
    """Per ADSL subject: TOCIFL, TOCISTDY, CORTFL, CORTSTDY (module docstring)."""
    from celltrial.clinical.medications import drug_class

    start = pd.Series(pd.to_datetime(adsl["TRTSDT"]).astype("datetime64[us]").to_numpy(),
                      index=adsl["USUBJID"].to_numpy())
    cm = domain(domains, "CM", ("CMTRT", "CMDECOD", "CMSTDTC"))
    name = cm["CMDECOD"].where(cm["CMDECOD"].notna(), cm["CMTRT"]).astype(object)
    name = name.map(lambda v: v.strip().upper() if isinstance(v, str) else None)
    klass = name.map(drug_class)
    pr = domain(domains, "PR", ("PRTRT", "PRSTDTC"))
    pr_name = pr["PRTRT"].astype(str).str.strip().str.upper()
    out = pd.DataFrame({"USUBJID": adsl["USUBJID"]})
    for prefix, cm_hit, pr_term in (("TOCI", name == "TOCILIZUMAB", "TOCILIZUMAB"),
                                    ("CORT", klass == "CORTICOSTEROID", "CORTICOSTEROIDS")):
        first = pd.concat([_first_day(cm, "CMSTDTC", cm_hit, start),
                           _first_day(pr, "PRSTDTC", pr_name == pr_term, start)])
        first = first.groupby(level=0).min() if len(first) else first
        day = adsl["USUBJID"].map(first).astype(float)
        out[f"{prefix}FL"] = flag(day.notna() & (adsl["SAFFL"] == "Y"))
        out[f"{prefix}STDY"] = day.where(adsl["SAFFL"] == "Y")
    return out


INFECTION_SOC = "Infections and infestations"
INFECTION_WINDOWS: tuple[tuple[int, int], ...] = ((0, 28), (29, 90))
"""Study-day windows of the infection density (Hill JA et al., Blood 2018;131:121-130: days
0-28 and 29-90 after CAR-T infusion)."""


def infection_density_by_window(adae: pd.DataFrame, adsl: pd.DataFrame
                                ) -> list[dict[str, Any]]:
    """Infections per 100 patient-days at risk in each of :data:`INFECTION_WINDOWS` for the
    infused set: treatment-emergent AEs whose CTCAE v5.0 term belongs to the SOC "Infections
    and infestations" (``celltrial.clinical.ae_terms``) with onset in the window; days at risk
    of a patient in a window = days from its start to the earlier of its end and the last day
    known alive (death day included), 0 when that comes before the window."""
    from celltrial.clinical.ae_terms import ctcae_terms
    from celltrial.clinical.infection import infection_density

    infused = adsl[adsl["SAFFL"] == "Y"]
    last = days_between(infused["LSTALVDT"].fillna(infused["DTHDT"]), infused["TRTSDT"])
    soc = {term.lower(): t.soc for term, t in ctcae_terms().items()}
    if adae.empty:
        infections = adae
    else:
        term = adae["AEDECOD"].astype(object).map(
            lambda v: soc.get(v.strip().lower()) if isinstance(v, str) else None)
        infections = adae[(term == INFECTION_SOC).to_numpy()
                          & (adae["TRTEMFL"] == "Y").to_numpy()
                          & adae["USUBJID"].isin(infused["USUBJID"]).to_numpy()]
    out = []
    for lo, hi in INFECTION_WINDOWS:
        days = [max(0.0, min(float(hi), d) - lo + 1) for d in last.fillna(-1).to_numpy(float)]
        n = int(((infections["ASTDY"] >= lo) & (infections["ASTDY"] <= hi)).sum()) \
            if len(infections) else 0
        entry: dict[str, Any] = {"window": [lo, hi], "infections": n,
                                 "patient_days": float(sum(days))}
        entry["per_100_patient_days"] = (infection_density(n, days) if sum(days) > 0
                                         else None)
        out.append(entry)
    return out


CD7_NEGATIVE_AT_OR_BELOW_PCT = 30.0
"""CD7-negative relapse (antigen escape): CD7+ fraction of marrow blasts at relapse at or below
30%, i.e. the relapse would not meet the CD7-positivity inclusion criterion of the five
shipped protocols ("CD7 positive ... >30%", rule ``cd7_blast_pct > 30``) for CD7-directed
therapy again. Project convention: the CD7 CAR-T series report CD7-negative escape as the main
relapse mechanism (Tan Y et al., 2-year follow-up of the Pan 2021 J Clin Oncol cohort: 4 of 6
relapses CD7-negative; the CD7+ AML phase I: 7 CD7-negative relapses; CLINICAL_REFERENCE.md
section 6, [D2], [D8]) without a numeric cut-off."""

RELAPSE_CD7_WINDOW = (-7, 14)
"""Days around the relapse day within which a marrow LB CD7BLAST result counts as "at
relapse" (project convention: the relapse marrow and its flow panel, reported up to two
weeks later); the nearest sample wins, the earlier one on a tie."""


def cd7_at_relapse(domains: Domains, adsl: pd.DataFrame, adrs: pd.DataFrame) -> pd.DataFrame:
    """Per infused subject: RLCD7PCT (CD7+ % of marrow blasts at relapse/progression, LB
    CD7BLAST in :data:`RELAPSE_CD7_WINDOW` around the first RELAPSE/PD of ADRS) and CD7NRLFL
    (Y when at or below :data:`CD7_NEGATIVE_AT_OR_BELOW_PCT`, N above it, empty without a
    relapse or without a CD7 result at relapse)."""
    from celltrial.derive.adrs import relapse_day

    infused = adsl[adsl["SAFFL"] == "Y"]
    start = pd.Series(pd.to_datetime(infused["TRTSDT"]).astype("datetime64[us]").to_numpy(),
                      index=infused["USUBJID"].to_numpy())
    lb = domain(domains, "LB", ("LBTESTCD", "LBSTRESN", "LBDTC"))
    rows = lb[(lb["LBTESTCD"] == "CD7BLAST") & lb["USUBJID"].isin(infused["USUBJID"])]
    cd7 = pd.DataFrame({"USUBJID": rows["USUBJID"], "VALUE": to_number(rows["LBSTRESN"]),
                        "ADY": days_between(to_date(rows["LBDTC"]),
                                            lookup(rows["USUBJID"], start))}).dropna()
    relapse = relapse_day(adrs)
    pct, negative = {}, {}
    lo, hi = RELAPSE_CD7_WINDOW
    for u, day in relapse.items():
        near = cd7[(cd7["USUBJID"] == u) & (cd7["ADY"] >= day + lo) & (cd7["ADY"] <= day + hi)]
        if near.empty:
            continue
        near = near.assign(DIST=(near["ADY"] - day).abs()).sort_values(["DIST", "ADY"])
        pct[u] = float(near["VALUE"].iloc[0])
        negative[u] = "Y" if pct[u] <= CD7_NEGATIVE_AT_OR_BELOW_PCT else "N"
    return pd.DataFrame({"USUBJID": infused["USUBJID"],
                         "RLCD7PCT": infused["USUBJID"].map(pct).astype(float),
                         "CD7NRLFL": [negative.get(u, "") for u in infused["USUBJID"]]})


GVHD_TERM = "graft versus host disease"
"""AEDECOD of acute GVHD (MAGIC 2016 overall grade in AETOXGR; clinical/ae_terms.py)."""

GVHD_CAUSES = {1: "GVHD", 2: "RELAPSE/PROGRESSION", 3: "DEATH", 4: "ALLOGENEIC HSCT"}
"""Cause codes of the GVHD cumulative incidence: 1 the event, the others competing."""


def gvhd_incidence(adae: pd.DataFrame, adsl: pd.DataFrame, adrs: pd.DataFrame, *,
                   day: float = 100.0, min_grade: int = 1) -> dict[str, Any]:
    """Cumulative incidence of acute GVHD after a donor-derived CAR-T product (Aalen-Johansen,
    ``celltrial.stats.cumulative_incidence`` = R cmprsk::cuminc) at ``day``, among the infused:
    the event is the first treatment-emergent AE "Graft versus host disease" of MAGIC overall
    grade >= ``min_grade``; relapse/progression (ADRS), death and an allogeneic HSCT (after which
    GVHD belongs to the graft, not the CAR-T product) compete, whichever comes first; censored
    at the last day known alive. The estimate is read at ``day`` when someone was followed that
    long, else at the longest follow-up (``landmark_day`` says which)."""
    from celltrial.derive.adrs import relapse_day
    from celltrial.stats import cumulative_incidence

    infused = adsl[adsl["SAFFL"] == "Y"].set_index("USUBJID")
    if infused.empty:
        return {"n": 0, "reason": "no infused patient"}
    gvhd = adae[(adae["AEDECOD"].astype(str).str.strip().str.lower() == GVHD_TERM)
                & (adae["TRTEMFL"] == "Y")
                & (pd.to_numeric(adae["AETOXGR"], errors="coerce") >= min_grade)] \
        if len(adae) else adae
    first_gvhd = gvhd.groupby("USUBJID")["ASTDY"].min() if len(gvhd) else pd.Series(
        dtype=float)
    relapse = relapse_day(adrs)
    death = days_between(infused["DTHDT"], infused["TRTSDT"])
    hsct = days_between(infused["HSCTDT"], infused["TRTSDT"])
    last = days_between(infused["LSTALVDT"], infused["TRTSDT"])
    times, causes = [], []
    for u in infused.index:
        candidates = [(float(first_gvhd.get(u, math.nan)), 1),
                      (float(relapse.get(u, math.nan)), 2), (float(death[u]), 3),
                      (float(hsct[u]), 4)]
        candidates = [(t, c) for t, c in candidates if not math.isnan(t)]
        if candidates:
            t, c = min(candidates)
        else:
            t, c = float(last[u]) if not math.isnan(last[u]) else 0.0, 0
        times.append(max(t, 0.0))
        causes.append(c)
    t_arr, c_arr = np.asarray(times), np.asarray(causes)
    landmark = min(float(day), float(t_arr.max()))
    out: dict[str, Any] = {"n": len(t_arr), "min_grade": min_grade, "day": day,
                           "landmark_day": landmark,
                           "events": {GVHD_CAUSES[k]: int((c_arr == k).sum()) for k in GVHD_CAUSES},
                           "censored": int((c_arr == 0).sum())}
    if not (c_arr == 1).any():
        out.update(estimate=0.0)
        return out
    fit = cumulative_incidence(t_arr, c_arr)
    at = fit.at([landmark])
    row = at[at["cause"] == 1]
    out.update(estimate=float(row["est"].iloc[0]), variance=float(row["var"].iloc[0]))
    return out


def _icaht_grade(adtox: pd.DataFrame, paramcd: str, subjects: pd.Series) -> pd.Series:
    rows = adtox[adtox["PARAMCD"] == paramcd].set_index("USUBJID")["AVAL"]
    return subjects.map(rows).astype(float) if len(rows) else pd.Series(
        np.nan, index=subjects.index)


def with_icaht(adsl: pd.DataFrame, adtox: pd.DataFrame,
               relapse_cd7: pd.DataFrame | None = None) -> pd.DataFrame:
    """ADSL with EICAHTGR / LICAHTGR (early / late ICAHT grade, NaN when not assessed) from
    ADTOX, and RLCD7PCT / CD7NRLFL from :func:`cd7_at_relapse` when given."""
    out = adsl.assign(EICAHTGR=_icaht_grade(adtox, "EICAHT", adsl["USUBJID"]),
                      LICAHTGR=_icaht_grade(adtox, "LICAHT", adsl["USUBJID"]))
    if relapse_cd7 is not None:
        table = relapse_cd7.set_index("USUBJID")
        out["RLCD7PCT"] = out["USUBJID"].map(table["RLCD7PCT"]).astype(float)
        flags = table["CD7NRLFL"].to_dict()
        out["CD7NRLFL"] = [flags.get(u, "") for u in out["USUBJID"]]
    return out
