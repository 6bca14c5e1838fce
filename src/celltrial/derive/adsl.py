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
DCSREAS / DCSREASP (ADaM IG 1.3 ADSL, reason for discontinuation from study and its
specification): the DS DSDECOD and DSTERM of the earliest-dated disposition event other than
``COMPLETED`` of a subject whose EOSSTT is DISCONTINUED (screen failures included: DCSREAS
``SCREEN FAILURE``); empty for completed and ongoing subjects. SCRFCRIT: the eligibility
criteria a screen failure did not meet, the ids of the protocol's criteria named in DSTERM
(the store writes ``Screen failure: criteria not met I3, E2`` from the virtual patients and
``...: I3 <finding> (<text>); E2 ...`` from the web screening page; :func:`failed_criteria`).
PRLINES / PRHSCTFL (prior therapy, ICH E3 11.2 baseline characteristics): the number of prior
lines of anticancer therapy, CM records of CMCAT ``PRIOR ANTICANCER THERAPY`` starting before
the first infusion (before consent for a subject never infused), the records starting on the
same day being one line (a combination regimen; an undated record is one line; project
convention, no leukaemia consensus defines a line); Y when PR holds an ``ALLOGENEIC HSCT``
before that day. Both are empty when nothing is recorded: absence of a record is not
"none" (the virtual patients carry no treatment history).
DLTTERM / DLTDY / DLTRULE: the event(s) that made the DLT (term and judged grade, by the day
each met its rule), the study day the first met it and the rules met (``celltrial.derive.dlt``
adjudication); empty without a DLT. MRDSTAT (added by ``derive_datasets`` through
:func:`with_mrd_status`): MRD status in remission, the rule of the MRD outcome measures
(``celltrial.derive.endpoints.mrd_threshold``).
"""

from __future__ import annotations

import re
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
                "ITTFL", "TOCIFL", "TOCISTDY", "CORTFL", "CORTSTDY", "DCSREAS", "DCSREASP",
                "SCRFCRIT", "PRLINES", "PRHSCTFL", "DLTTERM", "DLTDY", "DLTRULE")

PRIOR_THERAPY_CATEGORY = "PRIOR ANTICANCER THERAPY"
"""CM CMCAT of the anticancer therapies given before the study (docs/data-model.md)."""
HSCT_TERM = "ALLOGENEIC HSCT"
"""PR PRTRT of an allogeneic haematopoietic stem-cell transplant."""


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


def _dlt_flags(domains: Domains, base: pd.DataFrame, protocol: Any) -> dict[str, pd.Series]:
    """DLTFL (None when not infused), DLTEVLFL and the DLT events (DLTTERM, DLTDY, DLTRULE)
    per subject from the DLT adjudication (``celltrial.derive.dlt.adjudicate``)."""
    from celltrial.derive.dlt import adjudicate

    table = adjudicate(domains, protocol, base).set_index("USUBJID")
    subjects = base["USUBJID"]
    dltfl = subjects.map(table["DLTFL"]).astype(object)
    events = pd.DataFrame([dlt_events(result) for result in table["RESULT"]],
                          index=table.index, columns=["DLTTERM", "DLTDY", "DLTRULE"])
    return {"DLTFL": dltfl.where(dltfl.notna(), None),
            "DLTEVLFL": flag(subjects.map(table["DLTEVLFL"]) == "Y"),
            "DLTTERM": subjects.map(events["DLTTERM"]).astype(object),
            "DLTDY": subjects.map(events["DLTDY"]).astype(float),
            "DLTRULE": subjects.map(events["DLTRULE"]).astype(object)}


def dlt_events(result: Any) -> tuple[str | None, float, str | None]:
    """(DLTTERM, DLTDY, DLTRULE) of one ``celltrial.clinical.DLTResult``: each DLT event as
    ``<term> grade <g>`` by the day it met its rule (``; `` between), the first of those days,
    the rule ids met; (None, NaN, None) without a DLT."""
    dlts = sorted(result.dlts, key=lambda e: (np.inf if e.met_day is None else e.met_day,
                                              e.toxicity.term))
    if not dlts:
        return None, np.nan, None
    days = [e.met_day for e in dlts if e.met_day is not None]
    return ("; ".join(f"{e.toxicity.term} grade {e.grade}" for e in dlts),
            float(min(days)) if days else np.nan,
            ", ".join(dict.fromkeys(e.rule_id for e in dlts)))


def build_adsl(domains: Domains, protocol: Any) -> pd.DataFrame:
    """ADSL from the SDTM domains (DM, EX, DS, LB, SC, VS, RS, PR, AE and all dated domains)."""
    dm = domain(domains, "DM", ("STUDYID", "SUBJID", "SITEID", "AGE", "SEX", "DISEASE", "ARMCD",
                                "RFICDTC", "RFSTDTC", "RFPENDTC", "DTHDTC", "DTHFL"))
    dm = dm.drop_duplicates("USUBJID").reset_index(drop=True)
    ex = domain(domains, "EX", ("EXSTDTC", "EXDOSE"))
    ex = ex[~(to_number(ex["EXDOSE"]) <= 0)]  # a withheld fraction (EXDOSE 0) is no infusion
    ds = domain(domains, "DS", ("DSDECOD", "DSTERM", "DSSTDTC"))
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
    for column, values in _dlt_flags(domains, adsl, protocol).items():
        adsl[column] = values
    adsl["EFFFL"] = flag((adsl["SAFFL"] == "Y") & _efficacy_evaluable(domains, adsl))
    adsl["DLTFL"] = adsl["DLTFL"].where(adsl["SAFFL"] == "Y", None).astype(object)
    adsl["ITTFL"] = flag((adsl["ENRLFL"] == "Y") & _assigned(adsl["ARMCD"], index))
    flags = medication_flags(domains, adsl).set_index("USUBJID")
    for column in ("TOCIFL", "TOCISTDY", "CORTFL", "CORTSTDY"):
        adsl[column] = adsl["USUBJID"].map(flags[column])
    for column, values in _discontinuation(ds, adsl, protocol).items():
        adsl[column] = values
    for column, values in _prior_therapy(domains, adsl).items():
        adsl[column] = values
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


def criterion_ids(protocol: Any) -> list[str]:
    """The ids of the protocol's eligibility criteria, inclusion first."""
    eligibility = getattr(protocol, "eligibility", None)
    return [c.id for c in (*getattr(eligibility, "inclusion", ()),
                           *getattr(eligibility, "exclusion", ()))]


NOT_MET = re.compile(r"criteria not met:?", re.IGNORECASE)


def failed_criteria(term: object, ids: list[str]) -> str | None:
    """The criterion ids a screen failure's DSTERM names after ``criteria not met``, in the
    order written, ``, `` between; None when it names none of ``ids``.

    >>> failed_criteria("Screen failure: criteria not met I3, E2", ["I1", "I3", "E2"])
    'I3, E2'
    >>> failed_criteria("Screen failure: criteria not met: I3 ecog = 3 (ECOG 0-2); E2 true "
    ...                 "(Active infection)", ["I3", "E2"])
    'I3, E2'
    >>> failed_criteria("ineligible", ["I1"]) is None
    True
    """
    if not isinstance(term, str):
        return None
    found = NOT_MET.split(term, maxsplit=1)
    if len(found) < 2:
        return None
    known = set(ids)
    named = [part.split()[0] for part in re.split(r"[;,]", found[1]) if part.split()]
    hits = list(dict.fromkeys(word for word in named if word in known))
    return ", ".join(hits) or None


def _discontinuation(ds: pd.DataFrame, adsl: pd.DataFrame, protocol: Any
                     ) -> dict[str, pd.Series]:
    """DCSREAS, DCSREASP and SCRFCRIT (module docstring)."""
    decod = ds["DSDECOD"].astype(object).where(ds["DSDECOD"].notna(), "").astype(str)
    stops = ds.assign(DECOD=decod.str.strip().str.upper(), DATE=to_date(ds["DSSTDTC"]))
    stops = stops[(stops["DECOD"] != "") & (stops["DECOD"] != "COMPLETED")]
    first = stops.sort_values("DATE", na_position="last", kind="stable").drop_duplicates(
        "USUBJID").set_index("USUBJID")
    stopped = adsl["EOSSTT"] == "DISCONTINUED"
    reason = adsl["USUBJID"].map(first["DECOD"]).where(stopped)
    term = adsl["USUBJID"].map(first["DSTERM"]).where(stopped)
    ids = criterion_ids(protocol)
    criteria = pd.Series([failed_criteria(t, ids) if r == "SCREEN FAILURE" else None
                          for r, t in zip(reason, term, strict=True)], index=adsl.index,
                         dtype=object)
    return {"DCSREAS": reason.astype(object).where(reason.notna(), None),
            "DCSREASP": term.astype(object).where(term.notna(), None),
            "SCRFCRIT": criteria}


def _prior_therapy(domains: Domains, adsl: pd.DataFrame) -> dict[str, pd.Series]:
    """PRLINES and PRHSCTFL (module docstring): before the first infusion, else consent."""
    start = adsl["TRTSDT"].fillna(adsl["RFICDT"])
    before = pd.Series(pd.to_datetime(start).astype("datetime64[us]").to_numpy(),
                       index=adsl["USUBJID"].to_numpy())
    cm = domain(domains, "CM", ("CMCAT", "CMTRT", "CMSTDTC"))
    prior = cm[cm["CMCAT"].astype(str).str.strip().str.upper() == PRIOR_THERAPY_CATEGORY]
    when = to_date(prior["CMSTDTC"])
    limit = lookup(prior["USUBJID"], before)
    prior = prior.assign(DATE=when)[when.isna() | limit.isna() | (when < limit)]
    dated = prior[prior["DATE"].notna()].groupby("USUBJID")["DATE"].nunique()
    undated = prior[prior["DATE"].isna()].groupby("USUBJID").size()
    lines = dated.add(undated, fill_value=0)
    pr = domain(domains, "PR", ("PRTRT", "PRSTDTC"))
    hsct = pr[pr["PRTRT"].astype(str).str.strip().str.upper() == HSCT_TERM]
    hsct_date = to_date(hsct["PRSTDTC"])
    earlier = hsct[(hsct_date < lookup(hsct["USUBJID"], before)).to_numpy()]
    subjects = adsl["USUBJID"]
    return {"PRLINES": subjects.map(lines).astype(float),
            "PRHSCTFL": pd.Series(np.where(subjects.isin(earlier["USUBJID"]), "Y", None),
                                  index=adsl.index, dtype=object)}


def with_mrd_status(adsl: pd.DataFrame, adrs: pd.DataFrame, adlb: pd.DataFrame
                    ) -> pd.DataFrame:
    """ADSL with MRDSTAT: per infused subject in remission (CR/CRh/CRi), ``NEGATIVE`` when an
    MRD result (ADLB PARAMCD MRD, flow or qPCR) from 7 days before the first remission on is
    below the disease's threshold (``endpoints.mrd_threshold``: 0.1% AML/MPAL, ELN MRD working
    party 2021; 0.01% ALL/LBL), ``POSITIVE`` when its results there are all at or above it;
    empty without a remission or without such a result (not recorded). The same rule as the
    MRD outcome measures, over the whole follow-up instead of a time frame."""
    from celltrial.derive.adrs import REMISSION, first_day_in
    from celltrial.derive.endpoints import mrd_threshold

    out = adsl.copy()
    status = pd.Series(None, index=out.index, dtype=object)
    if adlb is not None and len(adlb) and "PARAMCD" in adlb.columns and len(adrs):
        remission = first_day_in(adrs, REMISSION)
        mrd = adlb[(adlb["PARAMCD"] == "MRD") & adlb["AVAL"].notna() & (adlb["ADY"] > 0)
                   & adlb["USUBJID"].isin(remission.index)]
        mrd = mrd[mrd["ADY"] >= mrd["USUBJID"].map(remission).astype(float) - 7]
        if len(mrd):
            disease = out.set_index("USUBJID")["DISEASE"]
            threshold = mrd["USUBJID"].map(lambda u: mrd_threshold(disease.get(u), {}))
            negative = (mrd["AVAL"] < threshold).groupby(mrd["USUBJID"]).any()
            status = out["USUBJID"].map(negative.map({True: "NEGATIVE", False: "POSITIVE"}))
    out["MRDSTAT"] = status.astype(object).where(status.notna(), None)
    return out
