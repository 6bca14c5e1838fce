"""Virtual patients: SDTM-shaped records of patients from the mechanistic CD7 CAR-T model.

This module only makes patients; the trial they are enrolled in (cohorts, calendar, the
escalation design, the data cut) is conducted by :mod:`celltrial.conduct.virtual_trial`.

- ``draw_patients`` / ``screen_patient``: referred patients and their eligibility
  (``celltrial.clinical.screen``).
- ``simulate_cohort``: the model trajectories of a cohort dosed at one level, split
  fractions given or withheld by the protocol's hold rules
  (``celltrial.clinical.next_fraction``), daily CRS/ICANS grades.
- ``subject_records``: what a site would record for one subject: DM, SC, EX, AE, LB, VS, XC,
  RS, TU, TR, PC, IS, PR, DS with the variables of docs/data-model.md.

Clinical rules are those of ``celltrial.clinical`` (one implementation): ``grade_crs``/
``grade_icans`` for the daily XC observations (generated to carry the model's CRS/ICANS
grade), ``grade_lab`` for LBTOXGR and the cytopenia AEs, ``assess_response``/
``assess_extramedullary``/``overall_response`` for RS.

Observation models (noise, LLOQ, links from model states to labs) are listed in
docs/kinetics-mechanistic.md; each is an assumption unless a source is named.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from celltrial.errors import CelltrialError, invalid
from celltrial.kinetics.engine import Infusion, Trajectory, simulate
from celltrial.kinetics.mechanistic import (
    CELLS_PER_UG_GDNA, CRS_LINK, ICANS_LINK, CD7Model, effectors_per_ul, initial_state,
)
from celltrial.kinetics.parameters import draw_parameters

DIAGNOSIS_WEIGHTS: dict[str, float] = {
    "AML": 3.0, "MPAL": 1.0, "T-ALL": 4.0, "ETP-ALL": 1.0, "T-LBL": 2.0, "B-ALL": 1.0,
    "other": 0.5,
}
"""Relative frequency of referred diagnoses (assumption: CD7 CAR-T series, CLINICAL_REFERENCE 6)."""

OFF_TARGET_REFERRALS = 0.1
"""Fraction of referred patients with a diagnosis outside the protocol's target."""

EXPANSION_FAILURE = (0.08, 0.15)
"""(probability, multiplier of ``rho``): a product that fails to expand (primary
non-response). Assumption: expansion failed in 1/13 in [D8] and CR is 85-90% in [D1, D4];
rho x 0.15 is below the contraction rate, so such a product never expands."""

BOOLEAN_PREVALENCE: dict[str, float] = {
    "relapsed_refractory": 0.97, "pregnant_or_lactating": 0.01,
    "congenital_immunodeficiency": 0.005, "cns_leukemia": 0.04, "uncontrolled_infection": 0.04,
    "active_hbv_hcv": 0.02, "hiv_infection": 0.005, "thrombosis_embolism": 0.02,
    "recent_mi_or_arrhythmia": 0.02, "investigator_unsuitable": 0.02,
}
"""Prevalence of the boolean screening variables among referred patients (assumptions)."""


@dataclass(frozen=True)
class LabTest:
    """One LB test: code, name, category, unit and reference range (adult, SI)."""

    code: str
    name: str
    category: str
    unit: str
    low: float | None
    high: float | None


LAB_TESTS: tuple[LabTest, ...] = (
    LabTest("WBC", "Leukocytes", "HEMATOLOGY", "10^9/L", 4.0, 10.0),
    LabTest("NEUT", "Neutrophils", "HEMATOLOGY", "10^9/L", 1.8, 7.5),
    LabTest("LYM", "Lymphocytes", "HEMATOLOGY", "10^9/L", 1.0, 4.0),
    LabTest("PLAT", "Platelets", "HEMATOLOGY", "10^9/L", 150.0, 400.0),
    LabTest("HGB", "Hemoglobin", "HEMATOLOGY", "g/L", 120.0, 170.0),
    LabTest("ALT", "Alanine Aminotransferase", "CHEMISTRY", "U/L", 7.0, 40.0),
    LabTest("AST", "Aspartate Aminotransferase", "CHEMISTRY", "U/L", 10.0, 40.0),
    LabTest("BILI", "Bilirubin", "CHEMISTRY", "umol/L", 3.0, 21.0),
    LabTest("CREAT", "Creatinine", "CHEMISTRY", "umol/L", 45.0, 110.0),
    LabTest("FIBRINO", "Fibrinogen", "CHEMISTRY", "g/L", 2.0, 4.0),
    LabTest("CRP", "C Reactive Protein", "CHEMISTRY", "mg/L", 0.0, 5.0),
    LabTest("FERRITIN", "Ferritin", "CHEMISTRY", "ug/L", 20.0, 300.0),
    LabTest("IL6", "Interleukin 6", "CYTOKINE", "pg/mL", 0.0, 7.0),
    LabTest("IL10", "Interleukin 10", "CYTOKINE", "pg/mL", 0.0, 9.0),
    LabTest("IFNG", "Interferon Gamma", "CYTOKINE", "pg/mL", 0.0, 15.0),
    LabTest("TNFA", "Tumor Necrosis Factor Alpha", "CYTOKINE", "pg/mL", 0.0, 8.0),
    LabTest("CD7ABS", "CD7+ Cells", "IMMUNOPHENOTYPE", "cells/uL", None, None),
    LabTest("CD7PCT", "CD7+ Cells/Lymphocytes", "IMMUNOPHENOTYPE", "%", None, None),
    LabTest("BLAST", "Blasts", "MARROW", "%", 0.0, 5.0),
    LabTest("MRD", "Measurable Residual Disease", "MARROW", "fraction", None, None),
)
LAB = {t.code: t for t in LAB_TESTS}

ASSAYS: dict[str, tuple[str, float, float]] = {
    "CARTQPCR": ("copies/ug gDNA", 50.0, 0.3),
    "CARTPCT": ("%", 0.1, 0.15),
    "CARTABS": ("cells/uL", 1.0, 0.15),
}
"""PC test -> (unit, LLOQ, log-normal assay SD). Assumptions: qPCR LLOQ 50 copies/ug gDNA
and flow LLOQ 0.1% CAR+ of CD3+ are usual validated limits."""

MRD_SENSITIVITY = 1e-4
"""Flow MRD sensitivity (0.01%, ALL MRD [R7]); below it MRD is reported undetectable (0)."""

XC_DAYS = 28
"""Daily CRS/ICANS observations from day 0 to day 28 (the DLT window of the five studies)."""

CRS_OBSERVATION: dict[int, tuple[float, str, str]] = {
    0: (36.8, "none", "none"), 1: (38.6, "none", "none"), 2: (39.0, "fluids", "low_flow"),
    3: (39.4, "one_vasopressor", "high_flow"),
    4: (39.8, "multiple_vasopressors", "positive_pressure"),
}
"""ASTCT 2019 CRS grade -> (temperature C, hypotension, oxygen) that yields that grade."""

ICANS_OBSERVATION: dict[int, tuple[int | None, str, str, str, str]] = {
    0: (10, "alert", "none", "none", "none"), 1: (8, "alert", "none", "none", "none"),
    2: (5, "awakens_to_voice", "none", "none", "none"),
    3: (1, "awakens_to_touch", "rapidly_resolving", "none", "none"),
    4: (None, "unarousable", "prolonged", "none", "diffuse"),
}
"""ASTCT 2019 ICANS grade -> (ICE, consciousness, seizure, motor, edema) yielding that grade."""


# ------------------------------------------------------------------ patients and screening

def _target_diagnoses(protocol: Any) -> list[str]:
    """Diagnoses that pass every criterion mentioning ``diagnosis`` for an otherwise
    eligible patient (the protocol's target population, read from its own rules)."""
    from celltrial.protocols.criteria import evaluate, variables_of

    typical = {"age_years": 40.0, "ecog": 1.0, "cd7_blast_pct": 90.0, "lvef": 0.6,
               "nyha_class": 1.0, "ast_x_uln": 1.0, "alt_x_uln": 1.0, "bilirubin_mg_dl": 0.8,
               "weight_kg": 65.0, **{k: False for k in BOOLEAN_PREVALENCE},
               "relapsed_refractory": True}
    cats = list(protocol.variables["diagnosis"].categories or DIAGNOSIS_WEIGHTS) \
        if "diagnosis" in protocol.variables else list(DIAGNOSIS_WEIGHTS)
    out = []
    for cat in cats:
        values = {**typical, "diagnosis": cat}
        ok = True
        for crit in protocol.eligibility.inclusion:
            if "diagnosis" in variables_of(crit.rule) and evaluate(crit.rule, values) is False:
                ok = False
        for crit in protocol.eligibility.exclusion:
            if "diagnosis" in variables_of(crit.rule) and evaluate(crit.rule, values) is True:
                ok = False
        if ok:
            out.append(cat)
    return out or cats


def draw_patients(protocol: Any, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Referred patients with every screening variable of the protocol, plus marrow blast %,
    sex and extramedullary disease. Distributions are assumptions (adult/adolescent r/r
    acute leukemia referred to CD7 CAR-T phase I studies)."""
    targets = _target_diagnoses(protocol)
    everything = list(DIAGNOSIS_WEIGHTS)
    w_t = np.array([DIAGNOSIS_WEIGHTS.get(c, 0.5) for c in targets])
    w_a = np.array([DIAGNOSIS_WEIGHTS[c] for c in everything])
    off = rng.uniform(size=n) < OFF_TARGET_REFERRALS
    diag = np.where(off, rng.choice(everything, size=n, p=w_a / w_a.sum()),
                    rng.choice(targets, size=n, p=w_t / w_t.sum()))
    sex = np.where(rng.uniform(size=n) < 0.62, "M", "F")
    age = np.clip(np.round(rng.normal(36.0, 15.0, n)), 8, 78)
    weight = np.round(np.clip(np.where(sex == "M", rng.normal(70, 12, n),
                                       rng.normal(60, 10, n)), 30, 140), 1)
    lbl = diag == "T-LBL"
    marrow = np.where(lbl, rng.uniform(0.5, 25.0, n),
                      np.clip(np.exp(rng.normal(math.log(35.0), 0.7, n)), 5.0, 95.0))
    frame = pd.DataFrame({
        "diagnosis": diag, "sex": sex, "age_years": age, "weight_kg": weight,
        "height_cm": np.round(np.where(sex == "M", rng.normal(174, 7, n),
                                       rng.normal(162, 6, n)), 0),
        "ecog": rng.choice([0.0, 1.0, 2.0, 3.0], size=n, p=[0.3, 0.42, 0.2, 0.08]),
        "cd7_blast_pct": np.round(100 * rng.beta(5.0, 0.9, n), 1),
        "lvef": np.round(np.clip(rng.normal(0.62, 0.06, n), 0.3, 0.8), 2),
        "nyha_class": rng.choice([1.0, 2.0, 3.0], size=n, p=[0.9, 0.08, 0.02]),
        "ast_x_uln": np.round(np.exp(rng.normal(math.log(0.8), 0.55, n)), 2),
        "alt_x_uln": np.round(np.exp(rng.normal(math.log(0.8), 0.6, n)), 2),
        "bilirubin_mg_dl": np.round(np.exp(rng.normal(math.log(0.7), 0.5, n)), 2),
        "marrow_blast_pct": np.round(marrow, 1),
        "emd": lbl | (rng.uniform(size=n) < 0.1),
    })
    for name, prevalence in BOOLEAN_PREVALENCE.items():
        frame[name] = rng.uniform(size=n) < prevalence
    frame.loc[frame["sex"] == "M", "pregnant_or_lactating"] = False
    return frame


def screen_patient(protocol: Any, values: Mapping[str, Any]) -> tuple[bool, list[str]]:
    """Eligible?, and the ids of the criteria not met (``celltrial.clinical.screen`` on the
    protocol's variables of the patient)."""
    from celltrial.clinical import screen

    result = screen(protocol, {k: v for k, v in values.items() if k in protocol.variables})
    return bool(result.eligible), [c.id for c in result.failed]


# ------------------------------------------------------------------ simulation of outcomes

EARLY_END = 60


@dataclass(frozen=True)
class CohortOutcomes:
    """Model trajectories of one cohort of patients dosed at one level, with the daily
    CRS/ICANS grades (days 0..XC_DAYS) and the split fractions each patient received."""

    level: int                 # dose-level index (0-based)
    early: Trajectory          # daily, days 0..EARLY_END, dt 0.05
    late: Trajectory           # days EARLY_END..end, dt 0.2
    params: dict[str, np.ndarray]
    crs_daily: np.ndarray      # (n, XC_DAYS + 1) ASTCT 2019 CRS grade per day
    icans_daily: np.ndarray
    fractions_given: np.ndarray  # (n,) number of split fractions infused
    hold_reasons: tuple[str | None, ...]  # why the next fraction was withheld, per patient

    @property
    def crs(self) -> np.ndarray:
        return self.crs_daily.max(axis=1)

    @property
    def icans(self) -> np.ndarray:
        return self.icans_daily.max(axis=1)


def patient_parameters(patients: pd.DataFrame, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Model parameters of each patient (one row of ``patients`` each): between-patient
    variability of :func:`~celltrial.kinetics.parameters.draw_parameters` and primary
    expansion failure (:data:`EXPANSION_FAILURE`)."""
    n = len(patients)
    params = draw_parameters(n, rng)
    failure = rng.uniform(size=n) < EXPANSION_FAILURE[0]
    params["rho"] = np.where(failure, params["rho"] * EXPANSION_FAILURE[1], params["rho"])
    return params


def crs_daily_grades(il6: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Daily ASTCT 2019 CRS grade from each day's IL-6 rise over its pre-infusion level:
    ``CRS_LINK.draw(IL6(d) - IL6(0), u)`` with one uniform ``u`` per patient (the patient's
    sensitivity), one episode (once back to grade 0 after onset it stays 0).

    The link is monotone in IL-6 for a fixed ``u``, so the worst daily grade equals the link
    of the peak rise (the calibrated grade distribution, mechanistic.CRS_LINK), and a day's
    grade depends only on that day's state: the grade seen before a split fraction does not
    depend on the fraction (the hold rule reads it; docs/conduct.md)."""
    rise = np.maximum(il6 - il6[:, :1], 1e-9)
    n, days = rise.shape
    daily = CRS_LINK.draw(rise.reshape(-1), np.repeat(u, days)).reshape(n, days)
    started = np.cumsum(daily > 0, axis=1) > 0
    ended = np.cumsum(started & (daily == 0), axis=1) > 0
    return np.where(ended, 0, daily).astype(int)


def icans_daily_grades(il6: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Daily ICANS grades: the grade ``ICANS_LINK.draw(peak IL-6, u)`` from 2 days after the
    IL-6 peak for 2 + grade days (assumption: ICANS usually follows CRS by a few days,
    CLINICAL_REFERENCE 2)."""
    n, days = il6.shape
    grade = ICANS_LINK.draw(il6.max(axis=1), u)
    daily = np.zeros((n, days), dtype=int)
    start = np.minimum(days - 2, np.maximum(1, il6.argmax(axis=1)) + 2)
    for i in np.flatnonzero(grade):
        daily[i, start[i]: min(start[i] + 2 + int(grade[i]), days)] = grade[i]
    return daily


def simulate_cohort(protocol: Any, patients: pd.DataFrame, level: int,
                    rng: np.random.Generator, late_days: list[int],
                    model: CD7Model | None = None) -> CohortOutcomes:
    """Trajectories of ``patients`` dosed at ``protocol.dose_levels[level]``, split fractions
    given or withheld by the protocol's hold rules (``celltrial.clinical.next_fraction``)
    on the daily grades seen from the first fraction up to the next one."""
    from celltrial.clinical.split_hold import next_fraction

    model = model or CD7Model()
    n = len(patients)
    params = patient_parameters(patients, rng)
    u_crs, u_icans = rng.uniform(size=n), rng.uniform(size=n)
    cap = protocol.intervention.weight_cap_kg
    weight = patients["weight_kg"].to_numpy(float)
    scale = np.minimum(weight, cap) / weight if cap else np.ones(n)
    y0 = initial_state(params, marrow_blast_pct=patients["marrow_blast_pct"].to_numpy(float))
    split = protocol.intervention.split
    per_kg = protocol.dose_levels[level].cells_per_kg

    def run(given: np.ndarray) -> Trajectory:
        infusions = [Infusion(float(frac.day), effectors_per_ul(
            per_kg * frac.fraction * scale * (given > f), params["blood_fraction"]))
            for f, frac in enumerate(split)]
        return simulate(model, params, y0, list(range(EARLY_END + 1)), infusions=infusions)

    given = np.full(n, len(split))
    reasons: list[str | None] = [None] * n
    early = run(given)
    for f in range(1, len(split)):
        # grades on the days from the first fraction up to the morning of fraction f (a state
        # at day d is the state before any infusion of day d, so fraction f does not show)
        window = slice(split[0].day, split[f].day + 1)
        il6 = early.state("IL6")
        crs = crs_daily_grades(il6, u_crs)
        icans = icans_daily_grades(il6[:, : XC_DAYS + 1], u_icans)
        changed = False
        for i in np.flatnonzero(given > f):
            decision = next_fraction(protocol, f + 1, {
                "crs_grade": int(crs[i, window].max()),
                "icans_grade": int(icans[i, window].max())})
            if not decision.give:
                given[i], reasons[i], changed = f, decision.reason, True
        if changed:
            early = run(given)
    il6 = early.state("IL6")
    y60 = early.states[:, -1, :]
    days = [d - EARLY_END for d in sorted({EARLY_END, *late_days})]
    late = simulate(model, params, y60, days, dt=0.2)
    late = Trajectory(np.asarray(days) + EARLY_END, late.states, late.backend, late.dtype)
    return CohortOutcomes(level, early, late, params,
                          crs_daily_grades(il6, u_crs)[:, : XC_DAYS + 1],
                          icans_daily_grades(il6[:, : XC_DAYS + 1], u_icans), given,
                          tuple(reasons))


# ------------------------------------------------------------------ record building

class _Rows:
    """Rows of every domain, with --SEQ kept per subject and domain."""

    def __init__(self, studyid: str) -> None:
        self.studyid = studyid
        self.rows: dict[str, list[dict[str, Any]]] = {d: [] for d in DOMAIN_COLUMNS}
        self.seq: dict[tuple[str, str], int] = {}

    def add(self, domain: str, usubjid: str, **values: Any) -> None:
        key = (domain, usubjid)
        self.seq[key] = self.seq.get(key, 0) + 1
        row = {"STUDYID": self.studyid, "USUBJID": usubjid}
        if domain != "DM":
            row[f"{domain}SEQ"] = self.seq[key]
        row.update(values)
        self.rows[domain].append(row)

    def frames(self) -> dict[str, pd.DataFrame]:
        return {d: pd.DataFrame(self.rows[d], columns=list(DOMAIN_COLUMNS[d]))
                for d in DOMAIN_COLUMNS}


def _cols(domain: str, *names: str) -> tuple[str, ...]:
    seq = () if domain == "DM" else (f"{domain}SEQ",)
    return ("STUDYID", "USUBJID", *seq, *names)


DOMAIN_COLUMNS: dict[str, tuple[str, ...]] = {
    "DM": _cols("DM", "SUBJID", "SITEID", "AGE", "AGEU", "SEX", "DISEASE", "ARMCD", "ARM",
                "RFICDTC", "RFSTDTC", "RFPENDTC", "DTHDTC", "DTHFL"),
    "SC": _cols("SC", "SCTESTCD", "SCORRES", "SCORRESU", "SCDTC"),
    "EX": _cols("EX", "EXTRT", "EXFRACN", "EXDOSE", "EXDOSU", "EXDOSTOT", "EXVOL", "EXBAGN",
                "EXSTDTC", "EXADJ"),
    "AE": _cols("AE", "AETERM", "AEDECOD", "AETOXGR", "AETOXSCL", "AESTDTC", "AEENDTC", "AESER",
                "AEREL", "AEOUT"),
    "LB": _cols("LB", "LBCAT", "LBTESTCD", "LBTEST", "LBSPEC", "LBORRES", "LBORRESU", "LBSTRESN",
                "LBSTRESU", "LBORNRLO", "LBORNRHI", "LBTOXGR", "LBDTC", "LBMETHOD"),
    "VS": _cols("VS", "VSTESTCD", "VSSTRESN", "VSSTRESU", "VSDTC"),
    "XC": _cols("XC", "XCDTC", "XCTEMP", "XCFEVMSK", "XCHYPOT", "XCOXY", "XCICE", "XCLOC",
                "XCSEIZ", "XCMOTOR", "XCEDEMA", "XCCRSGR", "XCICAGR"),
    "RS": _cols("RS", "RSTESTCD", "RSCAT", "RSORRES", "RSSTRESC", "RSDTC", "RSEVAL"),
    "TU": _cols("TU", "TULNKID", "TUTESTCD", "TUORRES", "TULOC", "TUDTC"),
    "TR": _cols("TR", "TRLNKID", "TRTESTCD", "TRSTRESN", "TRSTRESU", "TRDTC"),
    "PC": _cols("PC", "PCTESTCD", "PCSTRESN", "PCSTRESU", "PCORRES", "PCLLOQ", "PCSPEC", "PCDTC"),
    "IS": _cols("IS", "ISTESTCD", "ISORRES", "ISSTRESC", "ISSTRESN", "ISDTC"),
    "PR": _cols("PR", "PRTRT", "PRSTDTC"),
    "DS": _cols("DS", "DSDECOD", "DSTERM", "DSSTDTC"),
}
"""Columns of every domain, exactly the variables of docs/data-model.md."""


def _iso(day0: dt.date, day: float) -> str:
    return (day0 + dt.timedelta(days=int(day))).isoformat()


MARROW_CRITERIA_BY_DIAGNOSIS: dict[str, tuple[str, ...]] = {
    "AML": ("aml_eln2022", "all_bbmt2010"), "MPAL": ("aml_eln2022", "all_bbmt2010"),
}
"""Marrow response criteria preferred per diagnosis (first one the protocol lists); other
diagnoses (T-ALL, ETP-ALL, T-LBL, ...) prefer the ALL criteria."""

RSCAT = {"aml_eln2022": "ELN 2022", "all_bbmt2010": "ALL",
         "extramedullary_lugano2014": "LUGANO 2014"}


def _marrow_criteria(protocol: Any, diagnosis: str) -> str:
    """The protocol's marrow criteria for this diagnosis (``protocol.response_criteria``)."""
    marrow = [c for c in protocol.response_criteria if c != "extramedullary_lugano2014"]
    prefer = MARROW_CRITERIA_BY_DIAGNOSIS.get(diagnosis, ("all_bbmt2010", "aml_eln2022"))
    for c in prefer:
        if c in marrow:
            return c
    return marrow[0] if marrow else prefer[0]


def _grade_lab(code: str, value: float, test: LabTest, baseline: float | None) -> int | None:
    """Worst CTCAE v5.0 grade of the test's terms (``derive.adlb.CTCAE_TERMS``) by
    ``celltrial.clinical.grade_lab``; None for a test without a CTCAE term."""
    from celltrial.clinical import grade_lab
    from celltrial.derive.adlb import CTCAE_TERMS

    best: int | None = None
    for term in CTCAE_TERMS.get(code, ()):
        try:
            grade = int(grade_lab(term, value, test.unit, lln=test.low or None,
                                  uln=test.high or None, baseline=baseline))
        except CelltrialError:
            continue
        best = grade if best is None else max(best, grade)
    return best


# ------------------------------------------------------------------ one subject's records

def subject_records(rows: _Rows, protocol: Any, pt: pd.Series, usubjid: str, index: int,
                    day0: dt.date, screen: tuple[bool, list[str]], *,
                    prng: np.random.Generator, outcome: CohortOutcomes | None = None,
                    k: int | None = None) -> None:
    """All records of one subject: a screen failure (``outcome`` None), or a patient dosed at
    ``outcome.level`` (row ``k`` of the cohort) with follow-up to the end of the schedule.
    ``day0`` is the (planned) first infusion date; screening and consent precede it."""
    consent = -int(prng.integers(14, 28))
    screen_day = consent + 2
    site = f"{1 + index % 3:02d}"
    for name in protocol.variables:
        if name in pt.index:
            v = pt[name]
            text = ("Y" if v else "N") if isinstance(v, (bool, np.bool_)) else str(v)
            rows.add("SC", usubjid, SCTESTCD=name, SCORRES=text,
                     SCORRESU=protocol.variables[name].unit or "", SCDTC=_iso(day0, screen_day))
    blast_test = LAB["BLAST"]
    rows.add("LB", usubjid, LBCAT="MARROW", LBTESTCD="BLAST", LBTEST=blast_test.name,
             LBSPEC="BONE MARROW", LBORRES=f"{pt['marrow_blast_pct']:.1f}", LBORRESU="%",
             LBSTRESN=float(pt["marrow_blast_pct"]), LBSTRESU="%", LBORNRLO=0.0, LBORNRHI=5.0,
             LBTOXGR=None, LBDTC=_iso(day0, screen_day), LBMETHOD="MORPHOLOGY")
    dm = {"SUBJID": f"{index + 1:03d}", "SITEID": site, "AGE": int(pt["age_years"]),
          "AGEU": "YEARS", "SEX": pt["sex"], "DISEASE": pt["diagnosis"],
          "RFICDTC": _iso(day0, consent)}
    if outcome is None or k is None:
        ok, failed = screen
        term = "Screen failure: criteria not met " + ", ".join(failed)
        rows.add("DM", usubjid, **dm, ARMCD="", ARM="Screen failure",
                 RFSTDTC=None, RFPENDTC=_iso(day0, screen_day + 1), DTHDTC=None, DTHFL="")
        rows.add("DS", usubjid, DSDECOD="SCREEN FAILURE", DSTERM=term,
                 DSSTDTC=_iso(day0, screen_day + 1))
        return
    _dosed_subject(rows, protocol, pt, usubjid, day0, outcome, k, dm, prng=prng,
                   end_day=schedule_end_day(protocol), screen_day=screen_day)


def schedule_end_day(protocol: Any) -> int:
    """Last scheduled study day of the protocol (at least day EARLY_END + 1)."""
    sched = protocol.schedule
    return max([*sched.kinetics_days, *sched.cytokine_days, *sched.cd7_days, *sched.marrow_days,
                *sched.ada_days, *sched.followup_days, EARLY_END + 1])


def late_days(protocol: Any) -> list[int]:
    """Scheduled days after EARLY_END (and the last day): where the late trajectory is kept."""
    sched = protocol.schedule
    days = {*sched.kinetics_days, *sched.cytokine_days, *sched.cd7_days, *sched.marrow_days,
            *sched.ada_days, *sched.followup_days}
    return sorted(d for d in days if d > EARLY_END) + [schedule_end_day(protocol)]


def _dosed_subject(rows: _Rows, protocol: Any, pt: pd.Series, usubjid: str, day0: dt.date,
                   out: CohortOutcomes, k: int, dm: dict[str, Any], *,
                   prng: np.random.Generator, end_day: int, screen_day: int) -> None:
    j = k                                 # row of this patient in the cohort
    lvl = protocol.dose_levels[out.level]
    diagnosis = str(pt["diagnosis"])
    p = {name: float(v[j]) for name, v in out.params.items()}
    early, late = out.early.states[j], out.late.states[j]
    early_days, late_days = out.early.days.astype(int), out.late.days.astype(int)

    def state_at(day: int) -> np.ndarray:
        if day <= 0:
            return early[0]
        if day <= EARLY_END:
            return early[day]
        idx = int(np.searchsorted(late_days, day))
        return late[min(idx, len(late_days) - 1)]

    crs_daily, icans_daily = out.crs_daily[k], out.icans_daily[k]
    crs_g, icans_g = int(crs_daily.max()), int(icans_daily.max())
    il6 = early[: XC_DAYS + 1, 5]
    peak_day = max(1, int(np.argmax(il6)))
    # ---- death, HSCT, loss to follow-up
    fatal_crs = crs_g >= 4 and prng.uniform() < 0.25
    death_day: int | None = peak_day + 2 if fatal_crs else None
    marrow_days = [d for d in protocol.schedule.marrow_days if d > 0]
    blast_pct = {d: 100 * _marrow_fraction(state_at(d), p) for d in marrow_days}
    responder_28 = bool(marrow_days) and blast_pct[marrow_days[0]] < 5.0
    hsct_day = int(prng.integers(45, 100)) if responder_28 and prng.uniform() < 0.4 else None
    relapse_day = None
    for d in marrow_days:
        if hsct_day is not None and d > hsct_day:
            blast_pct[d] = blast_pct[d] * 1e-3   # transplant conditioning + graft effect
        if relapse_day is None and d > marrow_days[0] and blast_pct[d] >= 5.0 and responder_28:
            relapse_day = d
    refractory = bool(marrow_days) and not responder_28
    if death_day is None:
        if refractory:
            death_day = int(prng.integers(60, 200))
        elif relapse_day is not None:
            death_day = relapse_day + int(prng.integers(45, 240))
        elif prng.uniform() < 0.08:
            death_day = int(prng.integers(30, 400))
    last_day = end_day if death_day is None else min(death_day, end_day)
    if death_day is not None and death_day > end_day:
        death_day = None
    lost = death_day is None and prng.uniform() < 0.03
    if lost:
        last_day = int(prng.integers(60, max(61, end_day)))
    # ---- DM, EX
    dm.update(ARMCD=lvl.id, ARM=f"{lvl.label}", RFSTDTC=_iso(day0, 0),
              RFPENDTC=_iso(day0, last_day),
              DTHDTC=_iso(day0, death_day) if death_day is not None else None,
              DTHFL="Y" if death_day is not None else "")
    rows.add("DM", usubjid, **dm)
    rows.add("PR", usubjid, PRTRT="LYMPHODEPLETION", PRSTDTC=_iso(day0, -5))
    cap = protocol.intervention.weight_cap_kg
    weight = float(pt["weight_kg"])
    bags = protocol.intervention.bags
    for f_no, frac in enumerate(protocol.intervention.split, start=1):
        if death_day is not None and frac.day >= death_day:
            break
        if f_no > int(out.fractions_given[k]):
            # withheld by the protocol's split-infusion hold rule (EXADJ gives the reason)
            rows.add("EX", usubjid, EXTRT=protocol.intervention.product, EXFRACN=f_no,
                     EXDOSE=0.0, EXDOSU="cells/kg", EXDOSTOT=0.0, EXVOL=0.0, EXBAGN=0,
                     EXSTDTC=_iso(day0, frac.day),
                     EXADJ=f"WITHHELD: {out.hold_reasons[k] or 'hold rule'}")
            continue
        per_kg = lvl.cells_per_kg * frac.fraction * (min(weight, cap) / weight if cap else 1.0)
        actual = per_kg * float(prng.uniform(0.95, 1.05))
        total = actual * weight
        volume = float(np.clip(total / 2e6 / 1.0, bags.min_volume_ml * bags.min_bags,
                               bags.max_volume_ml * bags.max_bags))
        n_bags = int(np.clip(math.ceil(volume / bags.max_volume_ml), bags.min_bags, bags.max_bags))
        rows.add("EX", usubjid, EXTRT=protocol.intervention.product, EXFRACN=f_no,
                 EXDOSE=round(actual), EXDOSU="cells/kg", EXDOSTOT=round(total),
                 EXVOL=round(volume, 1), EXBAGN=n_bags, EXSTDTC=_iso(day0, frac.day))
    alive = lambda d: d <= last_day and (death_day is None or d < death_day)  # noqa: E731
    on_cart = lambda d: alive(d) and (hsct_day is None or d < hsct_day)  # noqa: E731
    # ---- XC daily and VS
    for d in range(0, XC_DAYS + 1):
        if not alive(d):
            break
        cg, ig = int(crs_daily[d]), int(icans_daily[d])
        temp, hypot, oxy = CRS_OBSERVATION[cg]
        temp = round(temp + float(prng.normal(0, 0.15)), 1)
        ice, loc, seiz, motor, edema = ICANS_OBSERVATION[ig]
        crs_grade = _crs_grade({"temperature_c": temp, "hypotension": hypot, "oxygen": oxy})
        icans_grade = _icans_grade({"ice_score": ice, "consciousness": loc, "seizure": seiz,
                                    "motor": motor, "edema": edema})
        rows.add("XC", usubjid, XCDTC=_iso(day0, d), XCTEMP=temp, XCFEVMSK="N", XCHYPOT=hypot,
                 XCOXY=oxy, XCICE=ice, XCLOC=loc, XCSEIZ=seiz, XCMOTOR=motor, XCEDEMA=edema,
                 XCCRSGR=crs_grade, XCICAGR=icans_grade)
        rows.add("VS", usubjid, VSTESTCD="TEMP", VSSTRESN=temp, VSSTRESU="C",
                 VSDTC=_iso(day0, d))
        sbp = {"none": 118.0, "fluids": 86.0, "one_vasopressor": 80.0,
               "multiple_vasopressors": 72.0}[hypot]
        rows.add("VS", usubjid, VSTESTCD="SYSBP", VSSTRESN=round(sbp + float(prng.normal(0, 5))),
                 VSSTRESU="mmHg", VSDTC=_iso(day0, d))
    rows.add("VS", usubjid, VSTESTCD="WEIGHT", VSSTRESN=weight, VSSTRESU="kg",
             VSDTC=_iso(day0, screen_day))
    rows.add("VS", usubjid, VSTESTCD="HEIGHT", VSSTRESN=float(pt["height_cm"]), VSSTRESU="cm",
             VSDTC=_iso(day0, screen_day))
    # ---- AEs and procedures for CRS/ICANS
    for term, daily, grade in (("Cytokine release syndrome", crs_daily, crs_g),
                               ("Immune effector cell-associated neurotoxicity syndrome",
                                icans_daily, icans_g)):
        if grade == 0 or not alive(int(np.flatnonzero(daily).min())):
            continue
        on = np.flatnonzero(daily)
        fatal = fatal_crs and term.startswith("Cytokine")
        end = death_day if fatal else int(on.max()) + 1
        rows.add("AE", usubjid, AETERM=term, AEDECOD=term, AETOXGR=5 if fatal else grade,
                 AETOXSCL="ASTCT 2019", AESTDTC=_iso(day0, int(on.min())),
                 AEENDTC=_iso(day0, end), AESER="Y" if grade >= 3 or fatal else "N",
                 AEREL="RELATED", AEOUT="FATAL" if fatal else "RECOVERED/RESOLVED")
    if crs_g >= 2:
        first2 = int(np.flatnonzero(crs_daily >= 2).min())
        if alive(first2):
            rows.add("PR", usubjid, PRTRT="TOCILIZUMAB", PRSTDTC=_iso(day0, first2))
    if crs_g >= 3 or icans_g >= 2:
        first = int(np.flatnonzero((crs_daily >= 3) | (icans_daily >= 2)).min())
        if alive(first):
            rows.add("PR", usubjid, PRTRT="CORTICOSTEROIDS", PRSTDTC=_iso(day0, first))
    # ---- labs (hematology/chemistry), cytokines, CD7, kinetics
    lab_days = sorted({-7, *protocol.schedule.cytokine_days, *protocol.schedule.followup_days})
    base_anc = float(np.exp(prng.normal(math.log(1.6), 0.5)))
    base_plt = float(np.exp(prng.normal(math.log(90.0), 0.6)))
    baselines: dict[str, float] = {}
    for d in lab_days:
        if not alive(max(d, 0)):
            continue
        s = state_at(d)
        values = _labs(s, p, pt, d, base_anc, base_plt, hsct_day, prng)
        for code, value in values.items():
            test = LAB[code]
            if d <= 0:
                baselines[code] = value
            _lab_row(rows, usubjid, day0, d, test, value, baselines.get(code), "BLOOD")
        if on_cart(d) and d in protocol.schedule.cytokine_days:
            for code, value in _cytokines(s, p, prng).items():
                _lab_row(rows, usubjid, day0, d, LAB[code], value, None, "BLOOD")
    for d in protocol.schedule.cd7_days:
        if not on_cart(d):
            continue
        s = state_at(d)
        cd7 = (s[4] + 0.02 * s[2]) * float(np.exp(prng.normal(0, 0.1)))
        lymph = s[0] + s[1] + s[4] + _cd7_negative_t(d) + 100.0
        _lab_row(rows, usubjid, day0, d, LAB["CD7ABS"], round(cd7, 1), None, "BLOOD")
        _lab_row(rows, usubjid, day0, d, LAB["CD7PCT"], round(100 * s[4] / lymph, 2), None,
                 "BLOOD")
    vcn = float(np.exp(prng.normal(math.log(1.5), 0.3)))
    for d in protocol.schedule.kinetics_days:
        if not on_cart(d):
            continue
        s = state_at(d)
        car = s[0] + s[1]
        wbc = 1000.0 * _labs(s, p, pt, d, base_anc, base_plt, hsct_day, prng)["WBC"]
        cd3 = car + 0.8 * s[4] + _cd7_negative_t(d)
        truth = {"CARTQPCR": car / max(wbc, 50.0) * CELLS_PER_UG_GDNA * vcn,
                 "CARTPCT": 100.0 * car / cd3, "CARTABS": car}
        limit = {"CARTPCT": 100.0}
        for code, (unit, lloq, sd) in ASSAYS.items():
            value = min(truth[code] * float(np.exp(prng.normal(0, sd))),
                        limit.get(code, math.inf))
            blq = value < lloq
            rows.add("PC", usubjid, PCTESTCD=code, PCSTRESN=None if blq else _sig(value),
                     PCSTRESU=unit, PCORRES="<LLOQ" if blq else f"{_sig(value):g}",
                     PCLLOQ=lloq, PCSPEC="BLOOD", PCDTC=_iso(day0, d))
    # ---- marrow, MRD, responses, extramedullary disease
    base_blast = float(pt["marrow_blast_pct"])
    emd = bool(pt["emd"])
    lesions: list[tuple[str, str, float]] = []
    if emd:
        for n_les in range(1 + int(prng.integers(0, 3))):
            loc = ["MEDIASTINUM", "CERVICAL LYMPH NODE", "AXILLARY LYMPH NODE", "SKIN"][n_les]
            ldiam = float(prng.uniform(20, 70))
            lesions.append((f"T{n_les + 1:02d}", loc, ldiam))
            rows.add("TU", usubjid, TULNKID=f"T{n_les + 1:02d}", TUTESTCD="TUMIDENT",
                     TUORRES="TARGET", TULOC=loc, TUDTC=_iso(day0, -7))
            _tr(rows, usubjid, day0, -7, f"T{n_les + 1:02d}", ldiam)
    from celltrial.clinical import assess_extramedullary, assess_response, overall_response

    criteria = _marrow_criteria(protocol, diagnosis)
    ever = False
    b0 = _marrow_fraction(early[0], p)
    baseline_lesions = [{"id": lid, "ldi_cm": ld / 10, "sdi_cm": 0.7 * ld / 10}
                        for lid, _, ld in lesions]
    nadir_spd = sum(x["ldi_cm"] * x["sdi_cm"] for x in baseline_lesions)
    em_cat: str | None = None
    for d in marrow_days:
        if not alive(d):
            continue
        s = state_at(d)
        pct = blast_pct[d]
        observed = round(pct * float(np.exp(prng.normal(0, 0.1))), 1) if pct >= 0.1 else 0.0
        observed = min(observed, 99.0)
        _lab_row(rows, usubjid, day0, d, LAB["BLAST"], observed, None, "BONE MARROW",
                 method="MORPHOLOGY")
        mrd = min(1.0, pct / 100.0 * float(np.exp(prng.normal(0, 0.2))))
        mrd_value = mrd if mrd >= MRD_SENSITIVITY else 0.0
        _lab_row(rows, usubjid, day0, d, LAB["MRD"], mrd_value, None, "BONE MARROW",
                 method="FLOW", text=None if mrd >= MRD_SENSITIVITY else f"<{MRD_SENSITIVITY:g}")
        labs = _labs(s, p, pt, d, base_anc, base_plt, hsct_day, prng)
        em_result = None
        if lesions:
            ratio = (max(_marrow_fraction(s, p), 1e-9) / max(b0, 1e-9)) ** (1 / 3)
            if hsct_day is not None and d > hsct_day:
                ratio *= 0.1
            now = []
            for lid, _, ld in lesions:
                size = ld * min(ratio, 2.0)
                size = 0.0 if size < 5.0 else round(size, 1)
                _tr(rows, usubjid, day0, d, lid, size)
                now.append({"id": lid, "ldi_cm": size / 10, "sdi_cm": round(0.7 * size, 1) / 10})
            em_result = assess_extramedullary({"lesions": now, "new_lesions": False}, baseline={
                "lesions": baseline_lesions}, nadir={"spd": nadir_spd})
            nadir_spd = min(nadir_spd, sum(x["ldi_cm"] * x["sdi_cm"] for x in now))
            em_cat = em_result.category
            rows.add("RS", usubjid, RSTESTCD="EMRESP", RSCAT=RSCAT["extramedullary_lugano2014"],
                     RSORRES=em_cat, RSSTRESC=em_cat, RSDTC=_iso(day0, d),
                     RSEVAL="INVESTIGATOR")
        emd_now = bool(lesions) and em_cat != "CR"
        marrow = assess_response(criteria, {
            "bm_blasts_pct": observed, "circulating_blasts": observed >= 20.0,
            "emd": emd_now, "anc": min(labs["NEUT"], 2000.0),
            "platelets": min(labs["PLAT"], 2000.0), "marrow_adequate": True,
            "auer_rods": False, "mrd_flow": mrd_value,
        }, baseline={"bm_blasts_pct": base_blast, "emd": bool(lesions)}, prior_remission=ever)
        rows.add("RS", usubjid, RSTESTCD="MARROW", RSCAT=RSCAT[criteria],
                 RSORRES=marrow.category, RSSTRESC=marrow.category, RSDTC=_iso(day0, d),
                 RSEVAL="INVESTIGATOR")
        overall = overall_response(marrow, em_result)
        ever = ever or overall in ("CR", "CRh", "CRi", "MLFS")
        rows.add("RS", usubjid, RSTESTCD="OVRLRESP", RSCAT=RSCAT[criteria], RSORRES=overall,
                 RSSTRESC=overall, RSDTC=_iso(day0, d), RSEVAL="DERIVED")
    if hsct_day is not None and alive(hsct_day):
        rows.add("PR", usubjid, PRTRT="ALLOGENEIC HSCT", PRSTDTC=_iso(day0, hsct_day))
    # ---- other adverse events (cytopenias graded by clinical.grade_lab, infections)
    _cytopenia_aes(rows, usubjid, day0)
    if prng.uniform() < 0.3 and alive(20):
        start = int(prng.integers(10, 60))
        if alive(start):
            rows.add("AE", usubjid, AETERM="Viral reactivation", AEDECOD="Viral infection",
                     AETOXGR=int(prng.choice([1, 2, 3], p=[0.3, 0.5, 0.2])),
                     AETOXSCL="CTCAE v5.0", AESTDTC=_iso(day0, start),
                     AEENDTC=_iso(day0, min(start + 14, last_day)), AESER="N",
                     AEREL="NOT RELATED", AEOUT="RECOVERED/RESOLVED")
    # ---- immunogenicity
    ada_pos_from = int(prng.choice([28, 90, 180])) if prng.uniform() < 0.15 else None
    for d in protocol.schedule.ada_days:
        if not alive(d):
            continue
        pos = ada_pos_from is not None and d >= ada_pos_from
        rows.add("IS", usubjid, ISTESTCD="ADACAR", ISORRES="POSITIVE" if pos else "NEGATIVE",
                 ISSTRESC="POSITIVE" if pos else "NEGATIVE",
                 ISSTRESN=float(2 ** int(prng.integers(3, 9))) if pos else None,
                 ISDTC=_iso(day0, d))
    # ---- disposition
    if death_day is not None:
        cause = "Cytokine release syndrome" if fatal_crs else \
            "Disease progression" if (refractory or relapse_day is not None) else "Infection"
        rows.add("DS", usubjid, DSDECOD="DEATH", DSTERM=cause, DSSTDTC=_iso(day0, death_day))
    elif lost:
        rows.add("DS", usubjid, DSDECOD="LOST TO FOLLOW-UP", DSTERM="Lost to follow-up",
                 DSSTDTC=_iso(day0, last_day))
    else:
        rows.add("DS", usubjid, DSDECOD="COMPLETED", DSTERM="Completed study follow-up",
                 DSSTDTC=_iso(day0, last_day))


def _crs_grade(observation: Mapping[str, Any]) -> int:
    """ASTCT 2019 CRS grade of a daily observation (``celltrial.clinical.grade_crs``)."""
    from celltrial.clinical import grade_crs

    return int(grade_crs(observation))


def _icans_grade(observation: Mapping[str, Any]) -> int:
    """ASTCT 2019 ICANS grade of a daily observation (``celltrial.clinical.grade_icans``)."""
    from celltrial.clinical import grade_icans

    return int(grade_icans(observation))


def _marrow_fraction(s: np.ndarray, p: Mapping[str, float]) -> float:
    blasts = float(s[2] + s[3])
    return blasts / (blasts + p["marrow_normal"])


def _cd7_negative_t(day: int) -> float:
    """CD7-negative T cells/uL: ~100 after lymphodepletion, expanding to ~400 by 3 months
    (assumption: CD7- T cells expand after CD7 CAR-T [D1, D12])."""
    return 100.0 + 300.0 * (1.0 - math.exp(-max(day, 0) / 45.0))


def _labs(s: np.ndarray, p: Mapping[str, float], pt: pd.Series, day: int, base_anc: float,
          base_plt: float, hsct_day: int | None, prng: np.random.Generator) -> dict[str, float]:
    """Hematology and chemistry from the model state (assumed empirical links): marrow
    capacity 1 - blast fraction; lymphodepletion nadir days 0-14 with recovery over ~6
    weeks; IL-6 raises CRP, ferritin, transaminases, creatinine and lowers fibrinogen."""
    blast = _marrow_fraction(s, p)
    capacity = 1.0 - blast
    if day < 0:
        recovery = 1.0
    else:
        recovery = 0.08 + 0.92 * min(1.0, max(0.0, day - 10) / 40.0)
        if hsct_day is not None and hsct_day <= day < hsct_day + 21:
            recovery = 0.1
    noise = lambda sd=0.1: float(np.exp(prng.normal(0, sd)))  # noqa: E731
    normal_anc, normal_plt = (base_anc, base_plt) if day < 0 else (3.5, 210.0)
    anc = normal_anc * capacity * recovery * noise()
    plt = normal_plt * capacity * (0.15 + 0.85 * recovery) * noise()
    lym = (s[0] + s[1] + s[4] + _cd7_negative_t(day) + 100.0) / 1000.0 * noise()
    hgb = (85.0 + 45.0 * capacity * (0.7 + 0.3 * recovery)) * noise(0.05)
    il6 = float(s[5])
    sat = lambda k: il6 / (il6 + k)  # noqa: E731 - saturating effect of IL-6
    alt_base, ast_base = 40.0 * float(pt["alt_x_uln"]), 40.0 * float(pt["ast_x_uln"])
    return {
        "WBC": round(anc + lym + 0.3 * recovery, 2), "NEUT": round(anc, 2),
        "LYM": round(lym, 2), "PLAT": round(plt, 0), "HGB": round(hgb, 0),
        "ALT": round(alt_base * (1 + 4.0 * sat(2000.0)) * noise(), 0),
        "AST": round(ast_base * (1 + 5.0 * sat(2000.0)) * noise(), 0),
        "BILI": round(17.1 * float(pt["bilirubin_mg_dl"]) * (1 + 1.5 * sat(3000.0)) * noise(), 1),
        "CREAT": round(70.0 * (1 + 1.5 * sat(3000.0)) * noise(), 0),
        "FIBRINO": round(max(0.3, 3.0 - 2.0 * sat(1000.0)) * noise(), 2),
        "CRP": round((3.0 + 300.0 * sat(300.0)) * noise(0.2), 1),
        "FERRITIN": round((600.0 + 30000.0 * sat(2000.0)) * noise(0.2), 0),
    }


def _cytokines(s: np.ndarray, p: Mapping[str, float], prng: np.random.Generator
               ) -> dict[str, float]:
    """IL-6 from the model with assay noise; IL-10, IFN-gamma and TNF-alpha follow the
    activation of effectors (assumed empirical links, log-normal noise 20%)."""
    il6 = float(s[5])
    active = float(s[0])
    noise = lambda: float(np.exp(prng.normal(0, 0.2)))  # noqa: E731
    return {"IL6": round(il6 * noise(), 1), "IL10": round((2.0 + 0.15 * il6) * noise(), 1),
            "IFNG": round((5.0 + 1.5 * active) * noise(), 1),
            "TNFA": round((3.0 + 0.02 * il6) * noise(), 1)}


def _lab_row(rows: _Rows, usubjid: str, day0: dt.date, day: int, test: LabTest, value: float,
             baseline: float | None, spec: str, *, method: str | None = None,
             text: str | None = None) -> None:
    rows.add("LB", usubjid, LBCAT=test.category, LBTESTCD=test.code, LBTEST=test.name,
             LBSPEC=spec, LBORRES=text if text is not None else f"{value:g}",
             LBORRESU=test.unit, LBSTRESN=float(value), LBSTRESU=test.unit,
             LBORNRLO=test.low, LBORNRHI=test.high,
             LBTOXGR=_grade_lab(test.code, float(value), test, baseline),
             LBDTC=_iso(day0, day), LBMETHOD=method)


def _tr(rows: _Rows, usubjid: str, day0: dt.date, day: int, lid: str, ldiam: float) -> None:
    rows.add("TR", usubjid, TRLNKID=lid, TRTESTCD="LDIAM", TRSTRESN=round(ldiam, 1),
             TRSTRESU="mm", TRDTC=_iso(day0, day))
    rows.add("TR", usubjid, TRLNKID=lid, TRTESTCD="SDIAM", TRSTRESN=round(0.7 * ldiam, 1),
             TRSTRESU="mm", TRDTC=_iso(day0, day))


CYTOPENIA_TERMS: dict[str, str] = {
    "NEUT": "Neutrophil count decreased", "PLAT": "Platelet count decreased", "HGB": "Anemia",
    "LYM": "Lymphocyte count decreased",
}
"""LB test -> CTCAE v5.0 term of the AE recorded from its worst post-infusion grade."""


def _cytopenia_aes(rows: _Rows, usubjid: str, day0: dt.date) -> None:
    """One AE per cytopenia term at its worst LB grade (>= 1) after infusion, from the
    LBTOXGR computed by ``clinical.grade_lab`` (none while grades are not available)."""
    mine = [r for r in rows.rows["LB"] if r["USUBJID"] == usubjid
            and r["LBTESTCD"] in CYTOPENIA_TERMS and r["LBTOXGR"] is not None]
    first = day0.isoformat()
    for code, term in CYTOPENIA_TERMS.items():
        graded = [r for r in mine if r["LBTESTCD"] == code and r["LBDTC"] > first
                  and r["LBTOXGR"] >= 1]
        if not graded:
            continue
        worst = max(r["LBTOXGR"] for r in graded)
        rows.add("AE", usubjid, AETERM=term, AEDECOD=term, AETOXGR=worst, AETOXSCL="CTCAE v5.0",
                 AESTDTC=graded[0]["LBDTC"], AEENDTC=graded[-1]["LBDTC"],
                 AESER="N", AEREL="RELATED", AEOUT="RECOVERED/RESOLVED")


def _sig(x: float, digits: int = 4) -> float:
    """``x`` rounded to ``digits`` significant digits, as an assay reports it."""
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))
