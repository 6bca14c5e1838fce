"""ADSL: one row per subject with analysis sets, dose level received, baseline and key dates.

Analysis sets (docs/derive.md):
- ENRLFL (enrolled): in DM and not a screen failure (DS DSDECOD ``SCREEN FAILURE``).
- SAFFL (safety set = infused): at least one EX record (a CAR-T fraction given).
- DLTEVLFL (DLT-evaluable) and DLTFL: ``celltrial.derive.dlt.adjudicate`` (the protocol's DLT
  rules applied by ``celltrial.clinical.evaluate_dlt`` to the treatment-emergent AEs, with the
  grade courses of blood counts (LB) and of daily CRS/ICANS grades (XC), and censoring at the
  events the protocol lists in ``dlt.censored_by``). Evaluable: infused, and either had a DLT
  or was followed through the whole DLT window (last known alive date >= first infusion +
  window days, or died after it) without being censored inside it. A patient who leaves, dies
  or is censored (e.g. allogeneic HSCT) inside the window without a DLT is not evaluable.
- ITTFL (intention-to-treat): enrolled (ENRLFL) and assigned to one of the protocol's dose
  levels (ARMCD), infused or not: a patient whose product failed, or who died or progressed
  before the infusion, stays in it (ICH E9 intention-to-treat principle; the denominator of
  the ITT rates next to the infused set).
- TOCIFL/TOCISTDY, CORTFL/CORTSTDY: tocilizumab / corticosteroid given from day 0 on and the
  study day of the first dose (``celltrial.derive.adtox.medication_flags``: CM, and PR
  ``TOCILIZUMAB`` / ``CORTICOSTEROIDS``); N for a subject never infused.
- EFFFL (efficacy-evaluable): infused and at least one post-infusion overall response
  assessment (RS OVRLRESP, not ``NE``), or died before the first one (counted as a failure);
  the protocol's ``options.efficacy_evaluable`` text is copied into the dataset metadata.
Dates: TRTSDT first infusion (earliest EX start, else DM.RFSTDTC), DTHDT death (DM.DTHDTC, else
DS ``DEATH``), LSTALVDT last date known alive (latest dated record of the subject, not after
death), HSCTDT first allogeneic HSCT after the first infusion (PR ``ALLOGENEIC HSCT``).
EMDFL: extramedullary disease at baseline (TU lesions identified on or before day 0).
EOSSTT: end-of-study status from DS (COMPLETED, DISCONTINUED) or ONGOING when the subject has
no disposition yet at the data cut.
Baseline: the last value on or before day 0 (BBLAST marrow blast %, blood where no marrow;
BCD7BLST % CD7+ blasts from screening SC ``cd7_blast_pct``; BWEIGHT kg).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from celltrial.derive.adtox import medication_flags
from celltrial.derive.timeline import (
    Domains, domain, flag, lookup, to_date, to_datetime, to_number,
)

DATED_DOMAINS: tuple[tuple[str, str], ...] = (
    ("EX", "EXSTDTC"), ("AE", "AESTDTC"), ("AE", "AEENDTC"), ("LB", "LBDTC"), ("VS", "VSDTC"),
    ("XC", "XCDTC"), ("RS", "RSDTC"), ("TR", "TRDTC"), ("PC", "PCDTC"), ("IS", "ISDTC"),
    ("PR", "PRSTDTC"), ("DS", "DSSTDTC"), ("DM", "RFPENDTC"), ("DM", "RFSTDTC"),
)
"""Where a subject was seen alive: the dated records used for LSTALVDT."""

ADSL_COLUMNS = ("STUDYID", "USUBJID", "SUBJID", "SITEID", "AGE", "SEX", "DISEASE", "ARMCD",
                "TRT01P", "TRT01A", "TRT01AN", "TRTDOSE", "TRTSDT", "TRTSDTM", "ENRLFL",
                "SAFFL", "DLTEVLFL", "DLTFL", "EFFFL", "BBLAST", "BCD7BLST", "BWEIGHT",
                "EMDFL", "DTHFL", "DTHDT", "LSTALVDT", "HSCTFL", "HSCTDT", "RFICDT", "EOSSTT",
                "ITTFL", "TOCIFL", "TOCISTDY", "CORTFL", "CORTSTDY")


def _per_subject(frame: pd.DataFrame, value: pd.Series, how: str) -> pd.Series:
    grouped = value.groupby(frame["USUBJID"])
    return grouped.min() if how == "min" else grouped.max()


def _baseline(values: pd.DataFrame, trtsdt: pd.Series) -> pd.Series:
    """Last non-missing value per subject on or before the first infusion date."""
    if values.empty:
        return pd.Series(dtype=float)
    start = lookup(values["USUBJID"], trtsdt)
    keep = values["VALUE"].notna() & ((values["DATE"] <= start) | start.isna())
    last = values[keep].sort_values("DATE").groupby("USUBJID")["VALUE"].last()
    return last.astype(float)


def _dose_index(protocol: Any) -> dict[str, int]:
    return {level.id: i + 1 for i, level in enumerate(getattr(protocol, "dose_levels", []) or [])}


def _dlt_flags(domains: Domains, base: pd.DataFrame, protocol: Any) -> tuple[pd.Series,
                                                                               pd.Series]:
    """DLTFL (None when not infused) and DLTEVLFL per subject from the DLT adjudication."""
    from celltrial.derive.dlt import adjudicate

    table = adjudicate(domains, protocol, base).set_index("USUBJID")
    dltfl = base["USUBJID"].map(table["DLTFL"]).astype(object)
    evaluable = flag(base["USUBJID"].map(table["DLTEVLFL"]) == "Y")
    return dltfl.where(dltfl.notna(), None), evaluable


def build_adsl(domains: Domains, protocol: Any) -> pd.DataFrame:
    """ADSL from the SDTM domains (DM, EX, DS, LB, SC, VS, RS, PR, AE and all dated domains)."""
    dm = domain(domains, "DM", ("STUDYID", "SUBJID", "SITEID", "AGE", "SEX", "DISEASE", "ARMCD",
                                "RFICDTC", "RFSTDTC", "RFPENDTC", "DTHDTC", "DTHFL"))
    dm = dm.drop_duplicates("USUBJID").reset_index(drop=True)
    ex = domain(domains, "EX", ("EXSTDTC", "EXDOSE"))
    ex = ex[~(to_number(ex["EXDOSE"]) <= 0)]  # a withheld fraction (EXDOSE 0) is no infusion
    ds = domain(domains, "DS", ("DSDECOD", "DSSTDTC"))
    subjects = dm["USUBJID"]

    ex_start = to_datetime(ex["EXSTDTC"])
    first_dose = _per_subject(ex, ex_start, "min")
    infused = subjects.isin(ex.loc[ex_start.notna(), "USUBJID"])
    trtsdtm = lookup(subjects, first_dose)
    trtsdtm = trtsdtm.where(infused, pd.NaT).astype("datetime64[us]")
    trtsdt = trtsdtm.dt.normalize()
    dose = to_number(ex["EXDOSE"]).groupby(ex["USUBJID"]).sum(min_count=1)

    screen_fail = set(ds.loc[ds["DSDECOD"].astype(str).str.upper() == "SCREEN FAILURE",
                             "USUBJID"])
    ds_death = to_date(ds["DSSTDTC"]).where(ds["DSDECOD"].astype(str).str.upper() == "DEATH")
    dthdt = to_date(dm["DTHDTC"]).fillna(lookup(subjects, _per_subject(ds, ds_death, "min")))
    dthdt = dthdt.astype("datetime64[us]")

    seen = []
    for name, col in DATED_DOMAINS:
        frame = domain(domains, name, (col,))
        if not frame.empty:
            seen.append(pd.DataFrame({"USUBJID": frame["USUBJID"], "DATE": to_date(frame[col])}))
    seen_all = pd.concat(seen, ignore_index=True) if seen else pd.DataFrame(
        {"USUBJID": [], "DATE": pd.Series([], dtype="datetime64[us]")})
    last_seen = lookup(subjects, seen_all.groupby("USUBJID")["DATE"].max()).astype(
        "datetime64[us]")
    lstalvdt = last_seen.where(dthdt.isna() | (last_seen <= dthdt), dthdt)

    pr = domain(domains, "PR", ("PRTRT", "PRSTDTC"))
    hsct = pr[pr["PRTRT"].astype(str).str.upper() == "ALLOGENEIC HSCT"]
    hsct_dates = pd.DataFrame({"USUBJID": hsct["USUBJID"], "DATE": to_date(hsct["PRSTDTC"])})
    start_series = pd.Series(trtsdt.to_numpy(), index=subjects.to_numpy(),
                             dtype="datetime64[us]")
    hsct_dates = hsct_dates[hsct_dates["DATE"] > lookup(hsct_dates["USUBJID"], start_series)]
    hsctdt = lookup(subjects, hsct_dates.groupby("USUBJID")["DATE"].min()).astype(
        "datetime64[us]")

    lb = domain(domains, "LB", ("LBTESTCD", "LBSPEC", "LBSTRESN", "LBDTC"))
    blast = lb[lb["LBTESTCD"] == "BLAST"]
    blast_values = pd.DataFrame({"USUBJID": blast["USUBJID"], "DATE": to_date(blast["LBDTC"]),
                                 "VALUE": to_number(blast["LBSTRESN"]),
                                 "MARROW": blast["LBSPEC"].astype(str).str.upper()
                                 == "BONE MARROW"})
    marrow = _baseline(blast_values[blast_values["MARROW"]], start_series)
    blood = _baseline(blast_values[~blast_values["MARROW"]], start_series)
    sc = domain(domains, "SC", ("SCTESTCD", "SCORRES", "SCDTC"))
    vs = domain(domains, "VS", ("VSTESTCD", "VSSTRESN", "VSDTC"))

    def sc_value(code: str) -> pd.Series:
        rows = sc[sc["SCTESTCD"] == code]
        return _baseline(pd.DataFrame({"USUBJID": rows["USUBJID"], "DATE": to_date(rows["SCDTC"]),
                                       "VALUE": to_number(rows["SCORRES"])}), start_series)

    weight_rows = vs[vs["VSTESTCD"] == "WEIGHT"]
    weight = _baseline(pd.DataFrame({"USUBJID": weight_rows["USUBJID"],
                                     "DATE": to_date(weight_rows["VSDTC"]),
                                     "VALUE": to_number(weight_rows["VSSTRESN"])}), start_series)
    sc_weight = sc_value("weight_kg")

    tu = domain(domains, "TU", ("TUORRES", "TUDTC"))
    tu_dates = pd.DataFrame({"USUBJID": tu["USUBJID"], "DATE": to_date(tu["TUDTC"])})
    tu_start = lookup(tu_dates["USUBJID"], start_series)
    baseline_tu = tu_dates[(tu_dates["DATE"] <= tu_start) | tu_dates["DATE"].isna()
                           | tu_start.isna()]
    index = _dose_index(protocol)
    adsl = pd.DataFrame({
        "STUDYID": dm["STUDYID"], "USUBJID": subjects, "SUBJID": dm["SUBJID"],
        "SITEID": dm["SITEID"], "AGE": to_number(dm["AGE"]), "SEX": dm["SEX"],
        "DISEASE": dm["DISEASE"], "ARMCD": dm["ARMCD"], "TRT01P": dm["ARMCD"],
        "TRT01A": dm["ARMCD"].where(infused, None).astype(object),
        "TRT01AN": dm["ARMCD"].map(index).where(infused).astype(float),
        "TRTDOSE": subjects.map(dose).astype(float),
        "TRTSDT": trtsdt, "TRTSDTM": trtsdtm,
        "ENRLFL": flag(~subjects.isin(screen_fail)),
        "SAFFL": flag(infused),
        "BBLAST": subjects.map(marrow).fillna(subjects.map(blood)).astype(float),
        "BCD7BLST": subjects.map(sc_value("cd7_blast_pct")).astype(float),
        "BWEIGHT": subjects.map(weight).fillna(subjects.map(sc_weight)).astype(float),
        "EMDFL": flag(subjects.isin(baseline_tu["USUBJID"])),
        "DTHFL": flag(dthdt.notna()), "DTHDT": dthdt,
        "LSTALVDT": lstalvdt,
        "HSCTFL": flag(hsctdt.notna()), "HSCTDT": hsctdt,
        "RFICDT": to_date(dm["RFICDTC"]),
        "EOSSTT": _end_of_study_status(ds, subjects),
    })
    adsl["DLTFL"], adsl["DLTEVLFL"] = _dlt_flags(domains, adsl, protocol)
    adsl["EFFFL"] = flag((adsl["SAFFL"] == "Y") & _efficacy_evaluable(domains, adsl))
    adsl["DLTFL"] = adsl["DLTFL"].where(adsl["SAFFL"] == "Y", None).astype(object)
    adsl["ITTFL"] = flag((adsl["ENRLFL"] == "Y") & _assigned(adsl["ARMCD"], index))
    flags = medication_flags(domains, adsl).set_index("USUBJID")
    for column in ("TOCIFL", "TOCISTDY", "CORTFL", "CORTSTDY"):
        adsl[column] = adsl["USUBJID"].map(flags[column])
    adsl.attrs["efficacy_evaluable"] = str(getattr(getattr(protocol, "options", None),
                                                   "efficacy_evaluable", "") or "")
    return adsl[list(ADSL_COLUMNS)].sort_values(["TRTSDT", "USUBJID"], na_position="last",
                                                ignore_index=True)


def _assigned(armcd: pd.Series, levels: dict[str, int]) -> pd.Series:
    """ARMCD is one of the protocol's dose levels (any non-empty ARMCD when it has none)."""
    if levels:
        return armcd.isin(list(levels))
    return armcd.notna() & (armcd.astype(str).str.strip() != "")


END_OF_STUDY: dict[str, str] = {"COMPLETED": "COMPLETED", "SCREEN FAILURE": "DISCONTINUED"}
"""DS DSDECOD -> ADSL EOSSTT (ADaM IG: COMPLETED, DISCONTINUED, ONGOING); every other
disposition (death, lost to follow-up, withdrawal, ...) ends the study as DISCONTINUED."""


def _end_of_study_status(ds: pd.DataFrame, subjects: pd.Series) -> pd.Series:
    """EOSSTT: the subject's disposition, ``ONGOING`` when it has none yet (data cut)."""
    decod = ds["DSDECOD"].astype(str).str.upper()
    status = pd.Series([END_OF_STUDY.get(v, "DISCONTINUED") for v in decod], index=ds.index,
                       dtype=object)
    first = status.groupby(ds["USUBJID"]).first().to_dict()
    return pd.Series([first.get(u, "ONGOING") for u in subjects], index=subjects.index,
                     dtype=object)


def _efficacy_evaluable(domains: Domains, adsl: pd.DataFrame) -> pd.Series:
    rs = domain(domains, "RS", ("RSTESTCD", "RSSTRESC", "RSDTC"))
    overall = rs[(rs["RSTESTCD"] == "OVRLRESP") & rs["RSSTRESC"].notna()
                 & (rs["RSSTRESC"].astype(str).str.upper() != "NE")]
    start = lookup(overall["USUBJID"], pd.Series(adsl["TRTSDT"].to_numpy(),
                                                 index=adsl["USUBJID"].to_numpy()))
    assessed = set(overall.loc[to_date(overall["RSDTC"]) > start, "USUBJID"])
    died = adsl["DTHDT"].notna() & adsl["TRTSDT"].notna()
    return pd.Series(np.asarray(adsl["USUBJID"].isin(assessed) | died), index=adsl.index)
