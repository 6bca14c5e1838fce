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
docs/virtual-patients.md; each is an assumption unless a source is named.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from celltrial.clinical.ae_terms import scale_of
from celltrial.clinical.gvhd import grade_gvhd
from celltrial.errors import CelltrialError, invalid
from celltrial.kinetics.engine import Infusion, Trajectory, simulate
from celltrial.kinetics.mechanistic import (
    CELLS_PER_UG_GDNA, CRS_LINK, ICANS_LINK, CD7Model, effectors_per_ul, extinction_floor,
    initial_state,
)
from celltrial.kinetics.parameters import FRATRICIDE_FREE_EDITING, draw_parameters

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

LYMPHOCYTE_SUBSETS: tuple[LabTest, ...] = (
    LabTest("CD3ABS", "CD3+ T Cells", "IMMUNOPHENOTYPE", "cells/uL", 723.0, 2271.0),
    LabTest("CD4ABS", "CD4+ T Cells", "IMMUNOPHENOTYPE", "cells/uL", 396.0, 1309.0),
    LabTest("CD8ABS", "CD8+ T Cells", "IMMUNOPHENOTYPE", "cells/uL", 224.0, 1014.0),
    LabTest("NKABS", "NK Cells", "IMMUNOPHENOTYPE", "cells/uL", 61.0, 607.0),
)
"""Lymphocyte subsets by flow cytometry (absolute counts; the LBTESTCD codes of the store's
plausibility table and of ``derive.adtox.APLASIA_TESTS``). Reference ranges: 95% ranges of
healthy Chinese adults by single-platform flow cytometry, Wong WS et al. Clin Vaccine Immunol
2013;20:602-606 (CD3+ 723-2,271, CD3+CD4+ 396-1,309, CD3+CD8+ 224-1,014, CD56+ NK 61-607
cells/uL); the five studies recruit in China."""

LAB = {t.code: t for t in (*LAB_TESTS, *LYMPHOCYTE_SUBSETS)}

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


DIAGNOSIS_GROUPS: dict[str, str] = {
    "AML": "myeloid", "MPAL": "myeloid", "T-ALL": "lymphoid", "ETP-ALL": "lymphoid",
    "T-LBL": "lymphoid", "B-ALL": "lymphoid", "other": "lymphoid",
}
"""Diagnosis -> group of :data:`DISEASE_FIGURES`. MPAL goes with AML (a myeloid component
with heterogeneous CD7); B-ALL and "other" (no CD7 CAR-T data) take the lymphoid figures
(assumption)."""


@dataclass(frozen=True)
class DiseaseFigure:
    """One diagnosis-dependent figure of the virtual patients: its value in each diagnosis
    group (:data:`DIAGNOSIS_GROUPS`), its unit, what it does, and its source (keys of
    CLINICAL_REFERENCE.md section 6 and docs/virtual-patients.md)."""

    name: str
    myeloid: float
    lymphoid: float
    unit: str
    description: str
    source: str

    def of(self, diagnosis: object) -> float:
        """The figure for one diagnosis."""
        group = DIAGNOSIS_GROUPS.get(str(diagnosis), "lymphoid")
        return self.myeloid if group == "myeloid" else self.lymphoid


DISEASE_FIGURES: tuple[DiseaseFigure, ...] = (
    DiseaseFigure(
        "resistant", 0.12, 0.04, "probability",
        "primary CD7-negative/CD7-dim disease: the escape clone is 5-50% of the blasts at "
        "infusion (uniform), so the marrow does not clear (primary refractory)",
        "[D8] AML: 2/13 without CR/CRi (1 without expansion, 1 with expansion and no "
        "response); T-ALL/LBL: [D1] CR 18/20, [D3] 19/20, [D13] 94.4% by day 28 (the "
        "remaining failures come from EXPANSION_FAILURE)"),
    DiseaseFigure(
        "escape_shift", 1.0e5, 10.0, "x escape_fraction",
        "multiplier of the CD7-negative escape clone (parameters.escape_fraction): how "
        "many remitters carry a clone that regrows (CD7-negative relapse) and how early; "
        "in AML/MPAL nearly every remitter carries one (CD7 is heterogeneous on AML "
        "blasts [D6, D7])",
        "calibrated: AML [D8] 7 CD7-negative relapses of 11 remitters at median follow-up "
        "4.7 mo (7/7 CD7-negative); T-ALL [D2] 6 relapses, 4 CD7-negative, median 6 mo"),
    DiseaseFigure(
        "cd7pos_relapse", 0.05, 0.12, "probability at 1 year",
        "CD7-positive relapse of a remitter without HSCT (loss of CAR-T control), 1-year "
        "probability at the reference exposure; hazard x CD7POS_EXPOSURE_HR per doubling "
        "of the CAR-T peak",
        "[D2] 2/6 relapses CD7-positive in T-ALL; [D8] 0/7 in AML; [D13] 8/10 remitters "
        "without HSCT relapsed"),
    DiseaseFigure(
        "hsct", 0.65, 0.5, "probability",
        "consolidative allogeneic HSCT of a patient in remission at the first marrow "
        "assessment (median ~6 weeks after infusion)",
        "[D8] 7/13 AML; T-ALL/LBL [D1, D2] 7/20, [D3] 14/20, [D13] 37/47 remitters, "
        "[D4] 19/55 at median 1.3 mo"),
    DiseaseFigure(
        "hsct_relapse", 0.40, 0.20, "probability at 1 year after HSCT",
        "relapse after consolidative HSCT (doubled when MRD >= 1e-4 before HSCT)",
        "T-ALL/LBL [D13] 1-y PFS 67.2% with consolidative HSCT vs 15.0% without, [D3] no "
        "relapse after HSCT at median 142 d; AML [D8] 7 relapses of 11 remitters although 7 "
        "were bridged to HSCT; MRD effect: assumption"),
    DiseaseFigure(
        "post_relapse_survival", 100.0, 150.0, "days (median)",
        "time from relapse (or progression) to death from the disease (log-normal, SD 0.7)",
        "T-ALL [D2] median PFS 11.0 vs OS 18.3 mo, [D4] median EFS 5.0 vs OS 8.5 mo; AML "
        "shorter (assumption)"),
)
"""Diagnosis-dependent figures of the virtual patients (docs/virtual-patients.md, one row
each). ``resistant`` and ``escape_shift`` act on the model parameters
(:func:`patient_parameters`); the others on the clinical course (``_disease_course``)."""

DISEASE: dict[str, DiseaseFigure] = {f.name: f for f in DISEASE_FIGURES}


def product_cd7_editing(protocol: Any) -> str:
    """The product's CD7 editing from the protocol (``intervention.cd7_editing``; ``unknown``
    for a protocol object without it)."""
    return str(getattr(protocol.intervention, "cd7_editing", "unknown"))


def patient_parameters(patients: pd.DataFrame, rng: np.random.Generator, *,
                       cd7_editing: str = "unknown") -> dict[str, np.ndarray]:
    """Model parameters of each patient (one row of ``patients`` each): between-patient
    variability of :func:`~celltrial.kinetics.parameters.draw_parameters`, primary
    expansion failure (:data:`EXPANSION_FAILURE`), the product (``cd7_editing``, protocol
    data: a CD7-edited product, knockout or PEBL, has no fratricide, ``k_fratricide`` = 0;
    any other keeps the typical rate) and the diagnosis (:data:`DISEASE_FIGURES`):
    primary CD7-negative/dim disease (``resistant``: an escape clone of 5-50% of the blasts)
    and the size of the CD7-negative escape clone (``escape_shift``)."""
    n = len(patients)
    params = draw_parameters(n, rng)
    if cd7_editing in FRATRICIDE_FREE_EDITING:
        params["k_fratricide"] = np.zeros(n)
    failure = rng.uniform(size=n) < EXPANSION_FAILURE[0]
    params["rho"] = np.where(failure, params["rho"] * EXPANSION_FAILURE[1], params["rho"])
    diagnosis = (patients["diagnosis"].astype(str).tolist() if "diagnosis" in patients
                 else ["T-ALL"] * n)
    figure = {name: np.array([DISEASE[name].of(d) for d in diagnosis], dtype=float)
              for name in ("resistant", "escape_shift")}
    resistant = rng.uniform(size=n) < figure["resistant"]
    clone = rng.uniform(0.05, 0.5, size=n)
    params["escape_fraction"] = np.where(resistant, clone,
                                         params["escape_fraction"] * figure["escape_shift"])
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
    on the daily grades seen from the first fraction up to the next one. The product's CD7
    editing (``protocol.intervention.cd7_editing``) sets fratricide
    (:func:`patient_parameters`); the extinction floor is the parameters' own
    (:func:`~celltrial.kinetics.mechanistic.extinction_floor`)."""
    from celltrial.clinical.split_hold import next_fraction

    model = model or CD7Model()
    n = len(patients)
    params = patient_parameters(patients, rng, cd7_editing=product_cd7_editing(protocol))
    floor = extinction_floor(params)
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
        return simulate(model, params, y0, list(range(EARLY_END + 1)), infusions=infusions,
                        floor=floor)

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
    late = simulate(model, params, y60, days, dt=0.2, floor=floor)
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
                "LBSTRESU", "LBORNRLO", "LBORNRHI", "LBSTNRLO", "LBSTNRHI", "LBTOXGR", "LBDTC",
                "LBMETHOD"),
    "VS": _cols("VS", "VSTESTCD", "VSSTRESN", "VSSTRESU", "VSDTC"),
    "XC": _cols("XC", "XCDTC", "XCTEMP", "XCFEVMSK", "XCHYPOT", "XCOXY", "XCICE", "XCLOC",
                "XCSEIZ", "XCMOTOR", "XCEDEMA", "XCCRSGR", "XCICAGR"),
    "RS": _cols("RS", "RSTESTCD", "RSCAT", "RSORRES", "RSSTRESC", "RSDTC", "RSEVAL"),
    "TU": _cols("TU", "TULNKID", "TUTESTCD", "TUORRES", "TULOC", "TUDTC"),
    "TR": _cols("TR", "TRLNKID", "TRTESTCD", "TRSTRESN", "TRSTRESU", "TRDTC"),
    "PC": _cols("PC", "PCTESTCD", "PCSTRESN", "PCSTRESU", "PCORRES", "PCLLOQ", "PCSPEC", "PCDTC"),
    "IS": _cols("IS", "ISTESTCD", "ISORRES", "ISSTRESC", "ISSTRESN", "ISDTC"),
    "PR": _cols("PR", "PRTRT", "PRSTDTC"),
    "CM": _cols("CM", "CMTRT", "CMDECOD", "CMCAT", "CMINDC", "CMDOSE", "CMDOSU", "CMROUTE",
                "CMSTDTC", "CMENDTC"),
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
             LBSTNRLO=0.0, LBSTNRHI=5.0, LBTOXGR=None, LBDTC=_iso(day0, screen_day),
             LBMETHOD="MORPHOLOGY")
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


def _scheduled_days(protocol: Any) -> set[int]:
    """Every assessment day of the protocol's schedule."""
    sched = protocol.schedule
    return {*sched.kinetics_days, *sched.cytokine_days, *sched.cd7_days, *sched.marrow_days,
            *sched.ada_days, *sched.followup_days}


def schedule_end_day(protocol: Any) -> int:
    """Last scheduled study day of the protocol (at least day EARLY_END + 1)."""
    return max([*_scheduled_days(protocol), EARLY_END + 1])


def late_days(protocol: Any) -> list[int]:
    """Scheduled days after EARLY_END (and the last day): where the late trajectory is kept."""
    days = _scheduled_days(protocol)
    return sorted(d for d in days if d > EARLY_END) + [schedule_end_day(protocol)]


def _dosed_subject(rows: _Rows, protocol: Any, pt: pd.Series, usubjid: str, day0: dt.date,
                   out: CohortOutcomes, k: int, dm: dict[str, Any], *,
                   prng: np.random.Generator, end_day: int, screen_day: int) -> None:
    """Every record of one dosed patient (row ``k`` of the cohort ``out``).

    The course is decided first, then written: the disease (``_disease_course``: remission,
    CD7-negative or CD7-positive relapse, consolidative HSCT, relapse after HSCT, death from
    the disease), the blood counts that follow it (``_blood_counts``), infections and GVHD
    (``_complications``), then death (the earliest of fatal CRS, a fatal complication and
    death from the disease) and its cause. Nothing is recorded after death or the last
    contact (docs/virtual-patients.md)."""
    lvl = protocol.dose_levels[out.level]
    diagnosis = str(pt["diagnosis"])
    p = {name: float(v[k]) for name, v in out.params.items()}
    # draws added by issue 13 come from child generators (lymphocyte-subset noise; GVHD of a
    # donor-derived product and organ stages), so the patient's other draws are unchanged
    aux, gvhd_rng = prng.spawn(2)
    states = _daily_states(out, k, end_day)
    crs_daily, icans_daily = out.crs_daily[k], out.icans_daily[k]
    crs_g, icans_g = int(crs_daily.max()), int(icans_daily.max())
    peak_day = max(1, int(np.argmax(states[: XC_DAYS + 1, _IL6])))
    fatal_crs = crs_g >= 4 and prng.uniform() < FATAL_CRS_GRADE4
    marrow_days = sorted(d for d in protocol.schedule.marrow_days if 0 < d <= end_day)
    lesions = _draw_lesions(pt, prng)
    course = _disease_course(states, p, diagnosis, marrow_days, lesions, end_day, prng)
    counts = _blood_counts(states, course, pt, crs_g, end_day, prng,
                           normal_cd7_steady=p["normal_cd7_steady"])
    stops = [end_day, course.death, peak_day + 2 if fatal_crs else None]
    episodes = _complications(course, counts, states, crs_daily,
                              min(s for s in stops if s is not None), prng)
    episodes += _product_gvhd(protocol, course, min(s for s in stops if s is not None),
                              gvhd_rng)
    episodes.sort(key=lambda e: (e.start, e.term))
    gvhd = {i: gvhd_observation(min(e.grade, 4), gvhd_rng) for i, e in enumerate(episodes)
            if e.term == GVHD_TERM}
    liver = [(e.start, e.end, float(gvhd[i].get("bilirubin_mg_dl", 0.0)))
             for i, e in enumerate(episodes) if i in gvhd and "bilirubin_mg_dl" in gvhd[i]]
    # ---- death and its cause: the earliest of fatal CRS, a fatal complication, the disease
    deaths: list[tuple[int, str]] = [(e.end, e.term) for e in episodes if e.grade == 5]
    if fatal_crs:
        deaths.append((peak_day + 2, CRS_TERM))
    if course.death is not None:
        deaths.append((course.death, DISEASE_DEATH))
    death_day, cause = min(deaths) if deaths else (None, None)
    if death_day is not None and death_day > end_day:
        death_day, cause = None, None
    last_day = end_day if death_day is None else death_day
    lost = death_day is None and prng.uniform() < LOST_TO_FOLLOW_UP
    if lost:
        last_day = int(prng.integers(EARLY_END, max(EARLY_END + 1, end_day)))
    hsct = course.hsct if course.hsct is not None and course.hsct < last_day else None
    alive = lambda d: d <= last_day and (death_day is None or d < death_day)  # noqa: E731
    on_cart = lambda d: alive(d) and (hsct is None or d < hsct)  # noqa: E731
    # ---- DM, EX
    dm.update(ARMCD=lvl.id, ARM=f"{lvl.label}", RFSTDTC=_iso(day0, 0),
              RFPENDTC=_iso(day0, last_day),
              DTHDTC=_iso(day0, death_day) if death_day is not None else None,
              DTHFL="Y" if death_day is not None else "")
    rows.add("DM", usubjid, **dm)
    rows.add("PR", usubjid, PRTRT="LYMPHODEPLETION", PRSTDTC=_iso(day0, -5))
    _exposure(rows, protocol, pt, usubjid, day0, out, k, death_day, prng)
    # ---- XC daily and VS
    for d in range(0, XC_DAYS + 1):
        if not alive(d):
            break
        _daily_observation(rows, usubjid, day0, d, int(crs_daily[d]), int(icans_daily[d]), prng)
    weight = float(pt["weight_kg"])
    rows.add("VS", usubjid, VSTESTCD="WEIGHT", VSSTRESN=weight, VSSTRESU="kg",
             VSDTC=_iso(day0, screen_day))
    rows.add("VS", usubjid, VSTESTCD="HEIGHT", VSSTRESN=float(pt["height_cm"]), VSSTRESU="cm",
             VSDTC=_iso(day0, screen_day))
    # ---- AEs and procedures for CRS/ICANS (ASTCT 2019)
    for term, daily, grade in ((CRS_TERM, crs_daily, crs_g), (ICANS_TERM, icans_daily, icans_g)):
        on = np.flatnonzero(daily)
        if grade == 0 or not alive(int(on.min())):
            continue
        fatal = cause == term
        _add_ae(rows, usubjid, day0, term, grade, int(on.min()),
                death_day if fatal else int(on.max()) + 1, scale="ASTCT 2019", fatal=fatal,
                stop=last_day)
    # ---- CRS/ICANS management as concomitant medications (CM; drugs of
    # celltrial/clinical/data/cm_drugs.csv): tocilizumab 8 mg/kg IV (at most 800 mg) from the
    # first day of CRS grade >= 2, dexamethasone 10 mg IV from the first day of CRS grade >= 3
    # or ICANS grade >= 2 (Neelapu SS et al., Nat Rev Clin Oncol 2018;15:47-62; Lee DW et al.,
    # Biol Blood Marrow Transplant 2019;25:625-638)
    if crs_g >= 2:
        first2 = int(np.flatnonzero(crs_daily >= 2).min())
        if alive(first2):
            rows.add("CM", usubjid, CMTRT="TOCILIZUMAB", CMDECOD="TOCILIZUMAB",
                     CMCAT="CRS/ICANS MANAGEMENT", CMINDC="CYTOKINE RELEASE SYNDROME",
                     CMDOSE=float(min(8.0 * weight, 800.0)), CMDOSU="mg",
                     CMROUTE="INTRAVENOUS", CMSTDTC=_iso(day0, first2),
                     CMENDTC=_iso(day0, first2))
    if crs_g >= 3 or icans_g >= 2:
        first = int(np.flatnonzero((crs_daily >= 3) | (icans_daily >= 2)).min())
        if alive(first):
            indication = ("CYTOKINE RELEASE SYNDROME" if crs_daily[first] >= 3 else
                          "IMMUNE EFFECTOR CELL-ASSOCIATED NEUROTOXICITY SYNDROME")
            rows.add("CM", usubjid, CMTRT="DEXAMETHASONE", CMDECOD="DEXAMETHASONE",
                     CMCAT="CRS/ICANS MANAGEMENT", CMINDC=indication, CMDOSE=10.0,
                     CMDOSU="mg", CMROUTE="INTRAVENOUS", CMSTDTC=_iso(day0, first),
                     CMENDTC=None)
    # ---- blood counts (extra hematology visits), chemistry, cytokines, CD7, kinetics
    sched = protocol.schedule
    lab_days = sorted({-7, *sched.cytokine_days, *sched.followup_days})
    heme_days = {*HEMATOLOGY_DAYS,
                 *((hsct + w for w in (7, 14, 21, 28)) if hsct is not None else ())}
    graded: list[tuple[str, int, int]] = []
    baselines: dict[str, float] = {}
    for d in sorted({*lab_days, *(x for x in heme_days if x <= end_day)}):
        if not alive(max(d, 0)):
            continue
        values = _lab_values(d, counts, states, pt, prng,
                             hematology_only=d not in lab_days)
        if "BILI" in values:
            for start, end, bili in liver:      # liver GVHD: its bilirubin (MAGIC liver stage)
                if start <= d <= end:
                    values["BILI"] = max(values["BILI"], round(
                        17.1 * bili * float(np.exp(gvhd_rng.normal(0.0, 0.05))), 1))
        for code, value in values.items():
            test = LAB[code]
            if d <= 0:
                baselines[code] = value
            grade = _lab_row(rows, usubjid, day0, d, test, value, baselines.get(code), "BLOOD")
            if code in CYTOPENIA_TERMS and grade is not None and d > 0:
                graded.append((code, d, grade))
        if on_cart(d) and d in sched.cytokine_days:
            for code, value in _cytokines(states[max(d, 0)], prng).items():
                _lab_row(rows, usubjid, day0, d, LAB[code], value, None, "BLOOD")
    for d in sched.cd7_days:
        if not on_cart(d):
            continue
        s = states[max(d, 0)]
        cd7 = (s[_N] + 0.02 * s[_B]) * float(np.exp(prng.normal(0, 0.1)))
        lymph = s[_E] + s[_M] + s[_N] + _cd7_negative_t(d) + SUBSET["other_lymphocytes"]
        _lab_row(rows, usubjid, day0, d, LAB["CD7ABS"], round(cd7, 1), None, "BLOOD")
        _lab_row(rows, usubjid, day0, d, LAB["CD7PCT"], round(100 * s[_N] / lymph, 2), None,
                 "BLOOD")
    # ---- lymphocyte subsets (flow cytometry) on the CD7 days and the follow-up lab visits
    for d in sorted({-7, *sched.cd7_days, *sched.followup_days}):
        if not on_cart(d):
            continue
        true = lymphocyte_subsets(states[max(d, 0)], d, normal_cd7_steady=p["normal_cd7_steady"])
        for test in LYMPHOCYTE_SUBSETS:
            value = true[test.code] * float(np.exp(aux.normal(0.0, SUBSET["flow_sd"])))
            _lab_row(rows, usubjid, day0, d, test, float(round(value)), None, "BLOOD",
                     method="FLOW")
    vcn = float(np.exp(prng.normal(math.log(1.5), 0.3)))
    for d in sched.kinetics_days:
        if not on_cart(d):
            continue
        s = states[max(d, 0)]
        car = s[_E] + s[_M]
        wbc = 1000.0 * counts.wbc(d)
        cd3 = lymphocyte_subsets(s, d)["CD3ABS"]
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
    detected = None
    if course.relapse is not None:
        # at the next visit, or earlier when symptoms bring the patient (unscheduled marrow)
        visits = sorted({*lab_days, *heme_days, *marrow_days, course.relapse
                         + int(prng.integers(*RELAPSE_DETECTION_DAYS))})
        detected = next((v for v in visits if course.relapse <= v <= end_day
                         and course.blasts[v] >= MORPHOLOGIC), None)
    assessments = sorted({*marrow_days, *((detected,) if detected is not None else ())})
    _marrow_and_response(rows, protocol, pt, usubjid, day0, course, counts, lesions,
                         assessments, alive, prng)
    if hsct is not None and alive(hsct):
        rows.add("PR", usubjid, PRTRT="ALLOGENEIC HSCT", PRSTDTC=_iso(day0, hsct))
    # ---- cytopenia episodes (from the LB grades), infections, GVHD
    _cytopenia_aes(rows, usubjid, day0, graded, hsct, last_day)
    for i, e in enumerate(episodes):
        if alive(e.start):
            # a grade-5 episode that another cause of death came before is life-threatening
            fatal = e.grade == 5 and cause == e.term and e.end == death_day
            grade = e.grade if fatal else min(e.grade, 4)
            if i in gvhd and not fatal:
                # acute GVHD: the MAGIC overall grade of its organ stages, as a site grades it
                grade = grade_gvhd(gvhd[i]).grade
            _add_ae(rows, usubjid, day0, e.term, grade,
                    e.start, e.end, scale=scale_of(e.term),
                    related=hsct is None or e.start < hsct, fatal=fatal, stop=last_day)
            if i in gvhd and grade >= GVHD_STEROID_GRADE and (hsct is None or e.start < hsct):
                # the product's GVHD of grade II-IV: first-line systemic corticosteroid
                rows.add("CM", usubjid, CMTRT="METHYLPREDNISOLONE",
                         CMDECOD="METHYLPREDNISOLONE", CMCAT="GVHD MANAGEMENT",
                         CMINDC="GRAFT VERSUS HOST DISEASE",
                         CMDOSE=float(round(GVHD_STEROID_MG_PER_KG * weight)), CMDOSU="mg",
                         CMROUTE="INTRAVENOUS", CMSTDTC=_iso(day0, e.start),
                         CMENDTC=None if e.end > last_day else _iso(day0, e.end))
    # ---- immunogenicity
    ada_pos_from = int(prng.choice([28, 90, 180])) if prng.uniform() < 0.15 else None
    for d in sched.ada_days:
        if not on_cart(d):
            continue
        pos = ada_pos_from is not None and d >= ada_pos_from
        rows.add("IS", usubjid, ISTESTCD="ADACAR", ISORRES="POSITIVE" if pos else "NEGATIVE",
                 ISSTRESC="POSITIVE" if pos else "NEGATIVE",
                 ISSTRESN=float(2 ** int(prng.integers(3, 9))) if pos else None,
                 ISDTC=_iso(day0, d))
    # ---- disposition
    if death_day is not None:
        rows.add("DS", usubjid, DSDECOD="DEATH", DSTERM=cause, DSSTDTC=_iso(day0, death_day))
    elif lost:
        rows.add("DS", usubjid, DSDECOD="LOST TO FOLLOW-UP", DSTERM="Lost to follow-up",
                 DSSTDTC=_iso(day0, last_day))
    else:
        rows.add("DS", usubjid, DSDECOD="COMPLETED", DSTERM="Completed study follow-up",
                 DSSTDTC=_iso(day0, last_day))


# ------------------------------------------------------------------ the clinical course

_E, _M, _B, _BN, _N, _IL6 = range(6)

CRS_TERM = "Cytokine release syndrome"
ICANS_TERM = "Immune effector cell-associated neurotoxicity syndrome"

DISEASE_DEATH = "Disease progression"
"""DS DSTERM of a death from the disease (refractory or relapsed leukemia). Such a death has
no grade-5 AE: in oncology trials progression of the disease under study is an efficacy
outcome, not an adverse event (CTCAE v5.0 asks to report "Disease progression" only where
the protocol says so)."""

FATAL_CRS_GRADE4 = 0.1
"""Probability that grade 4 CRS is fatal (death 2 days after the IL-6 peak). Assumption: no
CRS death in the CD7 CAR-T series of CLINICAL_REFERENCE 6 ([D1, D3, D4, D8, D13], > 150
patients); with ~4% grade 4 CRS in the virtual population this gives ~0.4% CRS deaths."""

LOST_TO_FOLLOW_UP = 0.03
"""Probability that a patient alive at the end of follow-up was lost to follow-up earlier."""

MORPHOLOGIC = 0.05
"""Marrow blast fraction of morphologic remission (< 5%) and relapse (>= 5%) [R1, R6]."""

CD7POS_EXPOSURE_HR = 0.79
"""Hazard ratio of CD7-positive relapse per doubling of the CAR-T peak: [K3] JULIET
(tisagenlecleucel, DLBCL) HR per 2-fold Cmax for the duration of response 0.79 (0.61-1.01);
transferred to CD7 CAR-T (assumption)."""

EXPOSURE_REFERENCE = 30.0
"""CAR-T cells/uL at the peak (effector + memory, days 0-28) of a typical virtual patient:
the median of the virtual population of a non-edited product (fratricide at its typical
rate; 35 cells/uL without fratricide, before issue 17), checked by
tests/kinetics/test_virtual_patients.py; the exposure at which ``cd7pos_relapse`` holds."""

HSCT_DELAY_DAYS = 10.0
"""Median days from the first marrow assessment (+2 days) to allogeneic HSCT (log-normal,
SD 0.6): HSCT at median ~6 weeks after infusion, as [D4] (median 1.3 mo, 1.0-10.6)."""

HSCT_RELAPSE_LAG = 30
"""Days after HSCT before a relapse can show (engraftment, first chimerism; assumption)."""

HSCT_ENGRAFTMENT = (17.0, 3.0, 11, 28)
"""Neutrophil engraftment after allogeneic HSCT: days (mean, SD, min, max); platelets engraft
a median of 6 days later. Assumption: the usual 2-3 weeks after allo-HSCT."""

RELAPSE_DETECTION_DAYS = (7, 22)
"""Days from the onset of a relapse (blasts >= 5%) to its diagnosis when no visit comes first
(uniform [7, 22): symptoms, blood blasts; assumption). Death from the disease comes at least
a week after the diagnosis."""

REFRACTORY_SURVIVAL = 120.0
"""Median days from infusion to death from the disease of a patient who never reaches
remission (log-normal, SD 0.5, at least 35 days; assumption: survival of r/r acute leukemia
after failed salvage is a few months; no death in the first 30 days in [D4])."""


@dataclass(frozen=True)
class RecoveryFigure:
    """One figure of the blood-count recovery after lymphodepletion and CAR-T."""

    name: str
    value: float
    unit: str
    source: str


RECOVERY_FIGURES: tuple[RecoveryFigure, ...] = (
    RecoveryFigure("nadir_exit_median", 12.0, "days",
                   "median day the counts leave the post-lymphodepletion nadir for a partial "
                   "level (log SD 0.5); assumption: neutrophils > 0.5 x10^9/L within ~2 "
                   "weeks in most patients after fludarabine/cyclophosphamide"),
    RecoveryFigure("partial_level", 0.30, "x normal (mean; uniform +-0.15)",
                   "the partial level between nadir exit and full recovery: ANC ~0.5-1.5, "
                   "platelets ~20-90 x10^9/L (grade 2-4; mostly grade 3); assumption"),
    RecoveryFigure("full_recovery_delay", 13.0, "days after nadir exit (median)",
                   "calibrated (log SD 0.8): ~30% of remitters have grade >= 3 neutropenia or "
                   "thrombocytopenia after day 28, within 20-40% of CAR-T series (Fried 2019 "
                   "BMT: severe neutropenia 34% / thrombocytopenia 21% after day 21; Strati "
                   "2021: grade 3-4 after day 30 29% / 42%; Jain 2020 Blood Adv: neutrophils "
                   "recovered in 33% at month 1, 80% at month 3); grade 3-4 cytopenia in all "
                   "patients [D1, D4, D8]"),
    RecoveryFigure("platelet_lag", 1.15, "x neutrophil recovery days",
                   "assumption: platelets recover a little after neutrophils (log SD 0.25)"),
    RecoveryFigure("crs_delay", 0.25, "per CRS grade above 1",
                   "Jain 2020 Blood Adv: grade >= 3 CRS or ICANS associated with no count "
                   "recovery at month 1; size of the effect: assumption"),
    RecoveryFigure("low_platelet_delay", 1.3, "x if baseline platelets < 75",
                   "platelets < 75 x10^9/L at lymphodepletion predicts persistent cytopenia "
                   "(CAR-HEMATOTOX, Rejeski 2021 Blood); size of the effect: assumption"),
)
RECOVERY = {f.name: f.value for f in RECOVERY_FIGURES}


@dataclass(frozen=True)
class _Course:
    """One patient's leukemia, days 0..end_day."""

    blasts: np.ndarray         # marrow blast fraction
    cd7neg: np.ndarray         # CD7-negative share of the blasts
    remission: int | None      # first day with blasts < 5%
    relapse: int | None        # first day with blasts >= 5% after remission
    hsct: int | None           # allogeneic HSCT (in remission)
    death: int | None          # death from the disease (None: not before end_day)


def _daily_states(out: CohortOutcomes, k: int, end_day: int) -> np.ndarray:
    """Model states of patient ``k`` on every day 0..end_day, shape (end_day + 1, 6): the
    daily early trajectory, and between the late trajectory's days log-linear interpolation
    of the cell states (exact for exponential growth or decline), linear for IL-6."""
    from celltrial.kinetics.mechanistic import CELL_STATES

    days = np.concatenate([out.early.days, out.late.days]).astype(float)
    values = np.concatenate([out.early.states[k], out.late.states[k]]).astype(float)
    days, first = np.unique(days, return_index=True)
    values = values[first]
    floor = extinction_floor(out.params)
    grid = np.arange(end_day + 1, dtype=float)
    daily = np.empty((end_day + 1, values.shape[1]))
    for s in range(values.shape[1]):
        if CELL_STATES[s]:
            v = np.exp(np.interp(grid, days, np.log(np.maximum(values[:, s], 1e-30))))
            daily[:, s] = np.where(v < floor, 0.0, v)
        else:
            daily[:, s] = np.interp(grid, days, values[:, s])
    return daily


def _first(condition: np.ndarray, after: int | None) -> int | None:
    """First day > ``after`` where ``condition`` holds (None if ``after`` is None or never)."""
    if after is None:
        return None
    hit = np.flatnonzero(condition[after + 1:])
    return after + 1 + int(hit[0]) if hit.size else None


def _disease_course(states: np.ndarray, p: Mapping[str, float], diagnosis: str,
                    marrow_days: list[int], lesions: list[tuple[str, str, float]],
                    end_day: int, prng: np.random.Generator) -> _Course:
    """The leukemia of one patient (docs/virtual-patients.md, "Disease course"):

    - the model's CD7-positive (B) and CD7-negative (BN) blasts; remission when their marrow
      fraction falls below 5%;
    - CD7-positive relapse of a remitter (loss of CAR-T control, not in the model): from a
      random day with the 1-year probability ``cd7pos_relapse`` at the reference exposure,
      hazard x :data:`CD7POS_EXPOSURE_HR` per doubling of the patient's CAR-T peak, the
      CD7-positive blasts grow back at the blast growth rate (so MRD turns positive first);
    - consolidative HSCT (``hsct``) of a patient in remission at the first marrow assessment
      (blasts < 5% even with the morphology error of 3 SD, extramedullary lesions in CR), at
      median ~6 weeks, only before any relapse; after HSCT the model's blasts are gone
      (conditioning + graft) and a relapse after HSCT (``hsct_relapse``, doubled with MRD
      >= 1e-4 before HSCT) regrows CD7-negative if the escape clone existed, else positive;
    - death from the disease: relapse + ``post_relapse_survival``, or
      :data:`REFRACTORY_SURVIVAL` without remission."""
    days = np.arange(end_day + 1, dtype=float)
    h, g, cap = p["marrow_normal"], p["blast_growth"], p["marrow_max"]
    level = h * MORPHOLOGIC / (1.0 - MORPHOLOGIC)       # blasts at 5% of the marrow
    pos, neg = states[:, _B].copy(), states[:, _BN]
    frac = (pos + neg) / (pos + neg + h)
    below = np.flatnonzero(frac[1:] < MORPHOLOGIC)
    remission = int(below[0]) + 1 if below.size else None
    q = DISEASE["cd7pos_relapse"].of(diagnosis)
    if remission is not None and q > 0:
        peak = float((states[: XC_DAYS + 1, _E] + states[: XC_DAYS + 1, _M]).max())
        hazard = -math.log(1.0 - q) / 365.0 \
            * CD7POS_EXPOSURE_HR ** math.log2(max(peak, 1e-3) / EXPOSURE_REFERENCE)
        onset = remission + prng.exponential(1.0 / hazard)
        regrowth = np.minimum(cap, level * np.exp(np.minimum(g * (days - onset), 50.0)))
        pos = pos + np.where(days >= remission, regrowth, 0.0)
    total = pos + neg
    frac = total / (total + h)
    cd7neg = np.divide(neg, total, out=np.zeros_like(total), where=total > 0)
    relapse = _first(frac >= MORPHOLOGIC, remission)
    first_marrow = marrow_days[0] if marrow_days else XC_DAYS
    hsct = None
    in_remission = first_marrow <= end_day \
        and frac[first_marrow] * math.exp(3 * BLAST_MORPHOLOGY_SD) < MORPHOLOGIC \
        and _emd_response(lesions, float(frac[first_marrow]), float(frac[0]))[1] in (None, "CR")
    if remission is not None and in_remission \
            and prng.uniform() < DISEASE["hsct"].of(diagnosis):
        day = first_marrow + 2 + int(round(math.exp(prng.normal(math.log(HSCT_DELAY_DAYS),
                                                                 0.6))))
        if day < end_day and (relapse is None or day < relapse):
            hsct = day
    if hsct is not None:
        risk = DISEASE["hsct_relapse"].of(diagnosis)
        if frac[hsct] >= MRD_SENSITIVITY:
            risk = min(0.9, 2.0 * risk)
        onset = hsct + HSCT_RELAPSE_LAG + prng.exponential(
            (365.0 - HSCT_RELAPSE_LAG) / -math.log(1.0 - risk))
        regrowth = np.minimum(cap, level * np.exp(np.minimum(g * (days - onset), 50.0)))
        after = days >= hsct
        frac = np.where(after, regrowth / (regrowth + h), frac)
        cd7neg = np.where(after, 1.0 if neg[hsct] > 0 else 0.0, cd7neg)
        relapse = _first(frac >= MORPHOLOGIC, hsct)
    death = None
    if relapse is not None:
        median = DISEASE["post_relapse_survival"].of(diagnosis)
        death = relapse + max(RELAPSE_DETECTION_DAYS[1] + 7,
                              int(math.exp(prng.normal(math.log(median), 0.7))))
    elif remission is None:
        death = max(35, int(math.exp(prng.normal(math.log(REFRACTORY_SURVIVAL), 0.5))))
    if death is not None and death > end_day:
        death = None
    return _Course(frac, cd7neg, remission, relapse, hsct, death)


@dataclass(frozen=True)
class _Counts:
    """True blood counts of one patient, days 0..end_day, and before infusion."""

    anc: np.ndarray            # 10^9/L
    plt: np.ndarray            # 10^9/L
    hgb: np.ndarray            # g/L
    lym: np.ndarray            # 10^9/L
    other: np.ndarray          # monocytes and others, 10^9/L
    circulating: np.ndarray    # blasts in blood, 10^9/L
    before: dict[str, float]   # the same before infusion (day < 0)
    engraftment: int | None    # neutrophil engraftment day after HSCT

    def wbc(self, day: int) -> float:
        if day < 0:
            b = self.before
            return b["NEUT"] + b["LYM"] + b["OTHER"]
        return float(self.anc[day] + self.lym[day] + self.other[day] + self.circulating[day])


def _rise(days: np.ndarray, midpoint: float, width: float) -> np.ndarray:
    """Logistic recovery from 0 to 1 with its midpoint at ``midpoint``."""
    return 1.0 / (1.0 + np.exp(-np.clip((days - midpoint) / width, -50.0, 50.0)))


def _blood_counts(states: np.ndarray, course: _Course, pt: pd.Series, crs_grade: int,
                  end_day: int, prng: np.random.Generator, *,
                  normal_cd7_steady: float | None = None) -> _Counts:
    """Blood counts that follow the marrow (docs/virtual-patients.md, "Blood counts"):
    normal production x (1 - marrow blast fraction) x recovery, where recovery falls after
    lymphodepletion to a nadir, leaves it for a partial level and later recovers fully, on
    logistic curves whose days vary between patients (:data:`RECOVERY_FIGURES`: later with
    severe CRS and low baseline platelets);
    after HSCT, aplasia until engraftment (:data:`HSCT_ENGRAFTMENT`), then the graft's
    counts. Lymphocytes: CAR-T + normal CD7+ + CD7-negative T cells (model), after HSCT the
    donor's slow reconstitution. Before infusion (``before``): the disease's own counts, and,
    with ``normal_cd7_steady``, the lymphocytes before lymphodepletion (the patient's steady
    state of normal CD7+ cells; :func:`lymphocyte_subsets`)."""
    days = np.arange(end_day + 1, dtype=float)
    capacity = 1.0 - course.blasts
    male = str(pt.get("sex", "M")) == "M"
    base_anc = float(np.exp(prng.normal(math.log(1.6), 0.5)))
    base_plt = float(np.exp(prng.normal(math.log(90.0), 0.6)))
    normal_anc = float(np.exp(prng.normal(math.log(3.2), 0.25)))
    normal_plt = float(np.exp(prng.normal(math.log(220.0), 0.25)))
    normal_hgb = float(prng.normal(140.0 if male else 128.0, 8.0))
    delay = (1.0 + RECOVERY["crs_delay"] * max(0, crs_grade - 1)) \
        * (RECOVERY["low_platelet_delay"] if base_plt < 75.0 else 1.0)
    t_exit = RECOVERY["nadir_exit_median"] * delay * float(np.exp(prng.normal(0.0, 0.5)))
    t_full = t_exit + RECOVERY["full_recovery_delay"] * delay \
        * float(np.exp(prng.normal(0.0, 0.8)))
    lag = float(np.exp(prng.normal(math.log(RECOVERY["platelet_lag"]), 0.25)))
    partial = RECOVERY["partial_level"] + float(prng.uniform(-0.15, 0.15))
    partial_plt = RECOVERY["partial_level"] + float(prng.uniform(-0.15, 0.15))
    floor_anc, floor_plt = float(prng.uniform(0.02, 0.08)), float(prng.uniform(0.05, 0.15))
    washout = np.exp(-days / 1.5)

    def recovery(floor: float, level: float, exit_day: float, full_day: float) -> np.ndarray:
        return floor + (level - floor) * _rise(days, exit_day, 2.0) \
            + (1.0 - level) * _rise(days, full_day, 4.0)

    rise_anc = recovery(floor_anc, partial, t_exit, t_full)
    rise_plt = recovery(floor_plt, partial_plt, t_exit * lag, t_full * lag)
    anc = normal_anc * capacity * rise_anc + base_anc * washout
    plt = normal_plt * capacity * rise_plt + base_plt * washout
    hgb_rise = 0.55 + 0.45 * _rise(days, t_full + 10.0, 10.0)
    lym = (states[:, _E] + states[:, _M] + states[:, _N]
           + np.array([_cd7_negative_t(int(d)) for d in days])
           + SUBSET["other_lymphocytes"]) / 1000.0
    other = 0.05 + 0.45 * rise_anc
    engraftment = None
    if course.hsct is not None:
        t0 = course.hsct
        mean, sd, lo, hi = HSCT_ENGRAFTMENT
        engraftment = t0 + int(np.clip(round(prng.normal(mean, sd)), lo, hi))
        platelets = engraftment + int(round(np.exp(prng.normal(math.log(6.0), 0.4))))
        after = days >= t0
        fall = np.exp(-(days - t0) / 2.0)
        graft_anc = normal_anc * capacity * (0.01 + 0.99 * _rise(days, engraftment, 2.5))
        graft_plt = normal_plt * capacity * (0.05 + 0.95 * _rise(days, platelets, 4.0))
        anc = np.where(after, graft_anc + anc[t0] * fall, anc)
        plt = np.where(after, graft_plt + plt[t0] * fall, plt)
        hgb_rise = np.where(after, 0.55 + 0.45 * _rise(days, engraftment + 20.0, 10.0),
                            hgb_rise)
        donor = 0.05 + 1.3 * (1.0 - np.exp(-np.maximum(days - engraftment, 0.0) / 120.0))
        lym = np.where(after, donor, lym)
        other = np.where(after, 0.05 + 0.45 * _rise(days, engraftment, 2.5), other)
    hgb = np.maximum(HGB_TRANSFUSION, 70.0 + (normal_hgb - 70.0) * capacity * hgb_rise)
    blast_pct = 100.0 * course.blasts
    circulating = 0.05 * np.maximum(blast_pct - 20.0, 0.0)
    capacity0 = 1.0 - min(float(pt["marrow_blast_pct"]), 99.0) / 100.0
    lym_before = float(lym[0])
    if normal_cd7_steady is not None:
        # before lymphodepletion: the same cells the flow panel counts (lymphocyte_subsets)
        subsets = lymphocyte_subsets(states[0], -1, normal_cd7_steady=normal_cd7_steady)
        lym_before = (subsets["CD3ABS"] + subsets["NKABS"]
                      + SUBSET["other_lymphocytes"]) / 1000.0
    before = {"NEUT": base_anc, "PLAT": base_plt, "HGB": 80.0 + 45.0 * capacity0,
              "LYM": lym_before, "OTHER": 0.5}
    return _Counts(anc, plt, hgb, lym, other, circulating, before, engraftment)


HGB_TRANSFUSION = 72.0
"""Hemoglobin g/L kept by red-cell transfusion (a usual threshold of 70-80 g/L; assumption)."""

HEMATOLOGY_DAYS: tuple[int, ...] = (35, 42, 49, 56, 63, 70, 77, 84)
"""Weekly blood counts from day 35 to day 84 between the protocol's visits, and weekly for 4
weeks after HSCT: the usual CAR-T follow-up of cytopenia (assumption); the cytopenia AEs are
read from them."""


@dataclass(frozen=True)
class Complication:
    """An infection (or GVHD) as data: the CTCAE v5.0 term, its daily hazard under each risk
    (``neutropenia``: ANC < 0.5 x10^9/L outside CRS days; ``immunodeficiency``: T/NK cell
    aplasia (weight 0-1 from normal CD7+ and CD7-negative T cells) or the first 100 days
    after HSCT; ``transplant``: days 14-100 after HSCT; ``any``: every day), its grade
    distribution, duration in days and source."""

    term: str
    hazards: tuple[tuple[str, float], ...]
    grades: tuple[tuple[int, float], ...]
    days: tuple[int, int]
    once: bool
    source: str


COMPLICATIONS: tuple[Complication, ...] = (
    Complication("Febrile neutropenia", (("neutropenia", 0.02),), ((3, 0.92), (4, 0.08)),
                 (3, 7), False,
                 "CTCAE v5.0 grades 3-5; frequency assumption (fever in neutropenia is the "
                 "usual first infection after CAR-T)"),
    Complication("Sepsis", (("neutropenia", 0.002),), ((4, 0.65), (5, 0.35)), (4, 12), False,
                 "CTCAE v5.0 grades 4-5 only; [D4] infections after day 30 grade 4 in 5%, "
                 "grade 5 in 9%"),
    Complication("Lung infection", (("neutropenia", 0.0015), ("immunodeficiency", 0.0006),
                                    ("any", 0.0001)),
                 ((2, 0.4), (3, 0.38), (4, 0.1), (5, 0.12)), (10, 21), False,
                 "CTCAE v5.0 (bacterial or fungal pneumonia); [D1] 1 death from fungal "
                 "pneumonia at 5.5 mo; [D4] grade 3 infections in 9% after day 30"),
    Complication("Cytomegalovirus infection reactivation", (("immunodeficiency", 0.0035),),
                 ((2, 0.7), (3, 0.27), (4, 0.02), (5, 0.01)), (14, 28), True,
                 "CTCAE v5.0; viral reactivation [D1] 20% (grade 1-2), [D8] 69.2%; [D9] VZV, "
                 "EBV, CMV, parvovirus B19"),
    Complication("Epstein-Barr virus infection reactivation", (("immunodeficiency", 0.0015),),
                 ((2, 0.75), (3, 0.25)), (14, 28), True,
                 "CTCAE v5.0; [D9] EBV among the viral infections after CD7 CAR-T"),
    Complication("Upper respiratory infection", (("any", 0.0006),), ((2, 0.9), (3, 0.1)),
                 (5, 10), False,
                 "CTCAE v5.0; [D4] grade 1-2 infections in 29% in the first 30 days"),
    Complication("Graft versus host disease", (("transplant", 0.0065),),
                 ((1, 0.3), (2, 0.35), (3, 0.2), (4, 0.1), (5, 0.05)), (14, 60), True,
                 "CTCAE v5.0; acute GVHD in ~40% after allo-HSCT (assumption, textbook); "
                 "[D4] GVHD grade 5 in 4%"),
)
"""Infections and GVHD of the virtual patients (docs/virtual-patients.md, "Infections")."""

GVHD_TERM = "Graft versus host disease"


@dataclass(frozen=True)
class ProductGVHD:
    """Acute GVHD caused by a donor-derived CAR-T product (protocol
    ``intervention.product_origin`` ``donor_prior_hsct`` or ``donor_new``): probability per
    infused patient, MAGIC overall grade distribution, onset and duration (days), source."""

    probability: float
    grades: tuple[tuple[int, float], ...]
    onset_days: tuple[int, int]
    duration_days: tuple[int, int]
    source: str


PRODUCT_GVHD = ProductGVHD(
    0.40, ((1, 0.5), (2, 0.45), (3, 0.05)), (14, 60), (14, 42),
    "[D4] donor-derived CD7 CAR-T phase II (55 r/r T-ALL/LBL, Blood 2025): acute GVHD grade "
    "1-2 in 38%, grade 3 in 2%, none of grade 4-5, so 40% of any grade and 1 in 20 of them "
    "grade 3; [D1] Pan 2021 (20 patients, same platform): grade 1-2 in 60%. The split of "
    "grade I and II, the onset (uniform days 14-60) and the duration (14-42 days) are "
    "assumptions (not found published for CD7 CAR-T)")
"""Acute GVHD of a donor-derived product (docs/virtual-patients.md, "GVHD"). An autologous
product (every shipped protocol) or one of unknown origin gives none; GVHD after an allogeneic
HSCT is the ``transplant`` row of :data:`COMPLICATIONS`."""

GVHD_STEROID_GRADE = 2
GVHD_STEROID_MG_PER_KG = 2.0
"""Acute GVHD of the product of MAGIC grade >= II is treated with methylprednisolone 2 mg/kg/day
IV from onset to resolution (CM, CMCAT ``GVHD MANAGEMENT``): first-line therapy of grade II-IV
acute GVHD (Penack O et al., EBMT recommendations, Lancet Haematol 2020;7:e157-e167); grade I
is treated topically (no CM record). GVHD after an allogeneic HSCT is the transplant's and
its treatment is not recorded."""

GVHD_PATTERNS: dict[int, tuple[tuple[float, dict[str, Any]], ...]] = {
    1: ((1.0, {"skin_bsa_pct": (10.0, 50.0)}),),
    2: ((0.4, {"skin_bsa_pct": (51.0, 80.0)}),
        (0.25, {"skin_bsa_pct": (10.0, 50.0), "upper_gi_persistent": True}),
        (0.2, {"skin_bsa_pct": (10.0, 50.0), "stool_ml": (500.0, 999.0)}),
        (0.15, {"bilirubin_mg_dl": (2.0, 3.0)})),
    3: ((0.6, {"skin_bsa_pct": (10.0, 50.0), "stool_ml": (1000.0, 1500.0)}),
        (0.4, {"skin_bsa_pct": (10.0, 50.0), "bilirubin_mg_dl": (3.1, 6.0)})),
    4: ((0.6, {"stool_ml": (1600.0, 3000.0), "gi_severe_pain_or_bleeding": True}),
        (0.4, {"bilirubin_mg_dl": (15.1, 25.0)})),
}
"""MAGIC overall grade -> (weight, organ involvement) patterns that have that grade by
``celltrial.clinical.gvhd.grade_gvhd`` (Harris 2016, Tables 1-2): a range (uniform, whole %
BSA and mL, bilirubin to 0.1 mg/dL) or a flag per organ key. Skin is the organ most often
involved (grade I is skin only); the weights are assumptions."""


def gvhd_observation(grade: int, rng: np.random.Generator) -> dict[str, Any]:
    """An acute GVHD organ observation (vocabulary of ``clinical.gvhd.GVHD_KEYS``) whose MAGIC
    overall grade is ``grade`` (1-4), one pattern of :data:`GVHD_PATTERNS` drawn by weight."""
    if grade not in GVHD_PATTERNS:
        raise invalid("GVHD grade", grade, f"one of {sorted(GVHD_PATTERNS)}")
    patterns = GVHD_PATTERNS[grade]
    weights = np.array([w for w, _ in patterns])
    _, organs = patterns[int(rng.choice(len(patterns), p=weights / weights.sum()))]
    out: dict[str, Any] = {}
    for key, spec in organs.items():
        if isinstance(spec, bool):
            out[key] = spec
        else:
            value = float(rng.uniform(*spec))
            out[key] = round(value, 1) if key == "bilirubin_mg_dl" else float(round(value))
            out[key] = min(max(out[key], spec[0]), spec[1])
    return out


def _product_gvhd(protocol: Any, course: _Course, horizon: int,
                  rng: np.random.Generator) -> list[_Episode]:
    """The acute GVHD episode of a donor-derived product (:data:`PRODUCT_GVHD`), if any:
    none for another origin, none starting after ``horizon`` (death, end of follow-up) or on
    or after an allogeneic HSCT (GVHD then belongs to the graft)."""
    from celltrial.protocols.schema import DONOR_DERIVED

    if str(getattr(protocol.intervention, "product_origin", "unknown")) not in DONOR_DERIVED:
        return []
    g = PRODUCT_GVHD
    if rng.uniform() >= g.probability:
        return []
    grades = np.array([x for x, _ in g.grades])
    probs = np.array([q for _, q in g.grades])
    grade = int(rng.choice(grades, p=probs / probs.sum()))
    start = int(rng.integers(g.onset_days[0], g.onset_days[1] + 1))
    end = start + int(rng.integers(g.duration_days[0], g.duration_days[1] + 1))
    if start > horizon or (course.hsct is not None and start >= course.hsct):
        return []
    return [_Episode(GVHD_TERM, start, end, grade)]


IMMUNE_THRESHOLD = 400.0
"""T/NK cells/uL (normal CD7+ + CD7-negative T cells) under which the immunodeficiency
weight rises linearly to 1 at zero (assumption: the CD4 count under which viral reactivation
prophylaxis is usual, ~200-400/uL)."""

REFRACTORY_DAYS = 14
"""Days after an episode before the same infection can start again (assumption)."""


@dataclass(frozen=True)
class _Episode:
    term: str
    start: int
    end: int
    grade: int


def _complications(course: _Course, counts: _Counts, states: np.ndarray,
                   crs_daily: np.ndarray, horizon: int, prng: np.random.Generator
                   ) -> list[_Episode]:
    """Infections and GVHD from day 0 to ``horizon``: for each :data:`COMPLICATIONS` row,
    episodes drawn from its daily hazard (sum over risks of hazard x risk weight), each with
    a grade and duration; a grade-5 episode ends in death on its last day."""
    n = horizon + 1
    days = np.arange(n)
    crs = np.zeros(n, dtype=bool)
    crs[: min(n, crs_daily.size)] = crs_daily[:n] > 0
    t_cells = states[:n, _N] + np.array([_cd7_negative_t(int(d)) for d in days])
    weight = {"neutropenia": ((counts.anc[:n] < 0.5) & ~crs).astype(float),
              "immunodeficiency": np.clip(1.0 - t_cells / IMMUNE_THRESHOLD, 0.0, 1.0),
              "transplant": np.zeros(n), "any": np.ones(n)}
    if course.hsct is not None:
        since = days - course.hsct
        weight["immunodeficiency"] = np.where(
            since >= 0, np.where(since < 100, 1.0, np.where(since < 180, 0.5, 0.2)),
            weight["immunodeficiency"])
        weight["transplant"] = ((since >= 14) & (since <= 100)).astype(float)
    out: list[_Episode] = []
    for c in COMPLICATIONS:
        cum = np.cumsum(sum(h * weight[risk] for risk, h in c.hazards))
        grades = np.array([g for g, _ in c.grades])
        probs = np.array([q for _, q in c.grades])
        t = 0
        while t < n:
            target = (cum[t - 1] if t > 0 else 0.0) + prng.exponential()
            start = int(np.searchsorted(cum, target))
            if start >= n:
                break
            grade = int(prng.choice(grades, p=probs / probs.sum()))
            end = start + int(prng.integers(c.days[0], c.days[1] + 1))
            out.append(_Episode(c.term, start, end, grade))
            if grade == 5 or c.once:
                break
            t = end + REFRACTORY_DAYS
    return sorted(out, key=lambda e: (e.start, e.term))


# ------------------------------------------------------------------ records of the course

def _exposure(rows: _Rows, protocol: Any, pt: pd.Series, usubjid: str, day0: dt.date,
              out: CohortOutcomes, k: int, death_day: int | None,
              prng: np.random.Generator) -> None:
    """EX: each split fraction given (dose, bags, volume) or withheld (EXADJ gives why)."""
    lvl = protocol.dose_levels[out.level]
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


def _daily_observation(rows: _Rows, usubjid: str, day0: dt.date, d: int, cg: int, ig: int,
                       prng: np.random.Generator) -> None:
    """XC (the ASTCT observations that carry the day's CRS/ICANS grade) and VS of one day."""
    temp, hypot, oxy = CRS_OBSERVATION[cg]
    temp = round(temp + float(prng.normal(0, 0.15)), 1)
    ice, loc, seiz, motor, edema = ICANS_OBSERVATION[ig]
    crs_grade = _crs_grade({"temperature_c": temp, "hypotension": hypot, "oxygen": oxy})
    icans_grade = _icans_grade({"ice_score": ice, "consciousness": loc, "seizure": seiz,
                                "motor": motor, "edema": edema})
    rows.add("XC", usubjid, XCDTC=_iso(day0, d), XCTEMP=temp, XCFEVMSK="N", XCHYPOT=hypot,
             XCOXY=oxy, XCICE=ice, XCLOC=loc, XCSEIZ=seiz, XCMOTOR=motor, XCEDEMA=edema,
             XCCRSGR=crs_grade, XCICAGR=icans_grade)
    rows.add("VS", usubjid, VSTESTCD="TEMP", VSSTRESN=temp, VSSTRESU="C", VSDTC=_iso(day0, d))
    sbp = {"none": 118.0, "fluids": 86.0, "one_vasopressor": 80.0,
           "multiple_vasopressors": 72.0}[hypot]
    rows.add("VS", usubjid, VSTESTCD="SYSBP", VSSTRESN=round(sbp + float(prng.normal(0, 5))),
             VSSTRESU="mmHg", VSDTC=_iso(day0, d))


def _add_ae(rows: _Rows, usubjid: str, day0: dt.date, term: str, grade: int, start: int,
            end: int | None, *, scale: str = "CTCAE v5.0", related: bool = True,
            fatal: bool = False, stop: int | None = None) -> None:
    """One AE record. A fatal AE is grade 5, serious, ending on the day of death; an AE still
    going at ``stop`` (death from another cause, the last contact) or without an end is
    ongoing (no AEENDTC, NOT RECOVERED/NOT RESOLVED)."""
    ongoing = not fatal and (end is None or (stop is not None and end > stop))
    outcome = "FATAL" if fatal else \
        "NOT RECOVERED/NOT RESOLVED" if ongoing else "RECOVERED/RESOLVED"
    rows.add("AE", usubjid, AETERM=term, AEDECOD=term, AETOXGR=5 if fatal else int(grade),
             AETOXSCL=scale, AESTDTC=_iso(day0, start),
             AEENDTC=None if ongoing or end is None else _iso(day0, end),
             AESER="Y" if fatal or grade >= 3 else "N",
             AEREL="RELATED" if related else "NOT RELATED", AEOUT=outcome)


CD7_BLAST_TEST = LabTest("CD7BLAST", "CD7+ Blasts/Blasts", "MARROW", "%", None, None)
"""Marrow flow cytometry: CD7-positive blasts as % of the blasts, measured when the marrow
has >= 5% blasts (CD7 status of a relapse or of refractory disease; CD7-negative relapse:
< 20% [D2, D8])."""


BLAST_MORPHOLOGY_SD = 0.1
"""Log-normal SD of the morphologic marrow blast count around the true fraction (assumption:
~10% relative error of a 200-500 cell differential)."""


def _draw_lesions(pt: pd.Series, prng: np.random.Generator) -> list[tuple[str, str, float]]:
    """Extramedullary target lesions at baseline (id, location, long diameter mm) of a patient
    with extramedullary disease: 1-3 lesions of 20-70 mm (assumption)."""
    lesions = []
    if bool(pt["emd"]):
        for n_les in range(1 + int(prng.integers(0, 3))):
            loc = ["MEDIASTINUM", "CERVICAL LYMPH NODE", "AXILLARY LYMPH NODE", "SKIN"][n_les]
            lesions.append((f"T{n_les + 1:02d}", loc, float(prng.uniform(20, 70))))
    return lesions


def _emd_response(lesions: list[tuple[str, str, float]], fraction: float, fraction0: float,
                  nadir_spd: float | None = None
                  ) -> tuple[list[float], str | None, Any, float | None]:
    """Lesion sizes (mm) when the marrow blast fraction is ``fraction`` (baseline
    ``fraction0``), and their Lugano 2014 category (``clinical.assess_extramedullary``; None
    without lesions). Observation model: a lesion's diameter scales with the leukemic burden
    to the power 1/3 (volume ~ cells; assumption), is capped at twice its baseline and reads 0
    under 5 mm. Returns (sizes, category, result, the new nadir SPD)."""
    if not lesions:
        return [], None, None, nadir_spd
    from celltrial.clinical import assess_extramedullary

    baseline = [{"id": lid, "ldi_cm": ld / 10, "sdi_cm": 0.7 * ld / 10} for lid, _, ld in lesions]
    if nadir_spd is None:
        nadir_spd = sum(x["ldi_cm"] * x["sdi_cm"] for x in baseline)
    ratio = (max(fraction, 1e-12) / max(fraction0, 1e-12)) ** (1 / 3)
    sizes, now = [], []
    for lid, _, ld in lesions:
        size = ld * min(ratio, 2.0)
        size = 0.0 if size < 5.0 else round(size, 1)
        sizes.append(size)
        now.append({"id": lid, "ldi_cm": size / 10, "sdi_cm": round(0.7 * size, 1) / 10})
    result = assess_extramedullary({"lesions": now, "new_lesions": False},
                                   baseline={"lesions": baseline}, nadir={"spd": nadir_spd})
    nadir_spd = min(nadir_spd, sum(x["ldi_cm"] * x["sdi_cm"] for x in now))
    return sizes, result.category, result, nadir_spd


def _marrow_and_response(rows: _Rows, protocol: Any, pt: pd.Series, usubjid: str,
                         day0: dt.date, course: _Course, counts: _Counts,
                         lesions: list[tuple[str, str, float]], days: list[int],
                         alive: Callable[[int], bool], prng: np.random.Generator) -> None:
    """Marrow blasts, MRD, CD7 of the blasts, extramedullary lesions (TU/TR) and responses
    (RS: marrow, EMD, overall) at each marrow assessment ``days`` (scheduled, plus the
    unscheduled one at relapse)."""
    from celltrial.clinical import assess_response, overall_response

    for lid, loc, ldiam in lesions:
        rows.add("TU", usubjid, TULNKID=lid, TUTESTCD="TUMIDENT", TUORRES="TARGET", TULOC=loc,
                 TUDTC=_iso(day0, -7))
        _tr(rows, usubjid, day0, -7, lid, ldiam)
    criteria = _marrow_criteria(protocol, str(pt["diagnosis"]))
    base_blast = float(pt["marrow_blast_pct"])
    b0 = float(course.blasts[0])
    nadir_spd: float | None = None
    ever = False
    for d in days:
        if not alive(d):
            continue
        fraction = float(course.blasts[d])
        pct = 100.0 * fraction
        observed = round(pct * float(np.exp(prng.normal(0, BLAST_MORPHOLOGY_SD))), 1) \
            if pct >= 0.1 else 0.0
        observed = min(observed, 99.0)
        _lab_row(rows, usubjid, day0, d, LAB["BLAST"], observed, None, "BONE MARROW",
                 method="MORPHOLOGY")
        mrd = min(1.0, fraction * float(np.exp(prng.normal(0, 0.2))))
        mrd_value = mrd if mrd >= MRD_SENSITIVITY else 0.0
        _lab_row(rows, usubjid, day0, d, LAB["MRD"], mrd_value, None, "BONE MARROW",
                 method="FLOW", text=None if mrd >= MRD_SENSITIVITY else f"<{MRD_SENSITIVITY:g}")
        if observed >= 100 * MORPHOLOGIC:
            cd7 = 100.0 * (1.0 - float(course.cd7neg[d])) * float(np.exp(prng.normal(0, 0.05)))
            _lab_row(rows, usubjid, day0, d, CD7_BLAST_TEST, round(min(cd7, 100.0), 1), None,
                     "BONE MARROW", method="FLOW")
        sizes, em_cat, em_result, nadir_spd = _emd_response(lesions, fraction, b0, nadir_spd)
        for (lid, _, _), size in zip(lesions, sizes, strict=True):
            _tr(rows, usubjid, day0, d, lid, size)
        if em_cat is not None:
            rows.add("RS", usubjid, RSTESTCD="EMRESP", RSCAT=RSCAT["extramedullary_lugano2014"],
                     RSORRES=em_cat, RSSTRESC=em_cat, RSDTC=_iso(day0, d),
                     RSEVAL="INVESTIGATOR")
        emd_now = bool(lesions) and em_cat != "CR"
        marrow = assess_response(criteria, {
            "bm_blasts_pct": observed, "circulating_blasts": observed >= 20.0,
            "emd": emd_now, "anc": round(min(float(counts.anc[d]), 2000.0), 2),
            "platelets": round(min(float(counts.plt[d]), 2000.0), 0), "marrow_adequate": True,
            "auer_rods": False, "mrd_flow": mrd_value,
        }, baseline={"bm_blasts_pct": base_blast, "emd": bool(lesions)}, prior_remission=ever)
        rows.add("RS", usubjid, RSTESTCD="MARROW", RSCAT=RSCAT[criteria],
                 RSORRES=marrow.category, RSSTRESC=marrow.category, RSDTC=_iso(day0, d),
                 RSEVAL="INVESTIGATOR")
        overall = overall_response(marrow, em_result)
        ever = ever or overall in ("CR", "CRh", "CRi", "MLFS")
        rows.add("RS", usubjid, RSTESTCD="OVRLRESP", RSCAT=RSCAT[criteria], RSORRES=overall,
                 RSSTRESC=overall, RSDTC=_iso(day0, d), RSEVAL="DERIVED")


def _crs_grade(observation: Mapping[str, Any]) -> int:
    """ASTCT 2019 CRS grade of a daily observation (``celltrial.clinical.grade_crs``)."""
    from celltrial.clinical import grade_crs

    return int(grade_crs(observation))


def _icans_grade(observation: Mapping[str, Any]) -> int:
    """ASTCT 2019 ICANS grade of a daily observation (``celltrial.clinical.grade_icans``)."""
    from celltrial.clinical import grade_icans

    return int(grade_icans(observation))


def _cd7_negative_t(day: int) -> float:
    """CD7-negative T cells/uL: ~100 after lymphodepletion, expanding to ~400 by 3 months
    (assumption: CD7- T cells expand after CD7 CAR-T [D1, D12])."""
    return 100.0 + 300.0 * (1.0 - math.exp(-max(day, 0) / 45.0))


@dataclass(frozen=True)
class SubsetFigure:
    """One figure of the lymphocyte-subset observation model (what the flow panel reads from
    the model's states), its unit and its source."""

    name: str
    value: float
    unit: str
    source: str


SUBSET_FIGURES: tuple[SubsetFigure, ...] = (
    SubsetFigure(
        "nk_share", 0.2, "fraction of the normal CD7+ T/NK cells (model state N)",
        "healthy adults: CD56+ NK 61-607/uL against CD3+ T 723-2,271/uL (95% ranges; Wong WS "
        "et al. Clin Vaccine Immunol 2013;20:602-606), NK 14-18% against CD3+ 66-67% of "
        "lymphocytes (medians; Chng WJ et al. Clin Diagn Lab Immunol 2004;11:168-173); with "
        "85-90% of T cells CD7+ and every NK cell CD7+, NK are 0.15-0.24 of the CD7+ T/NK "
        "cells; 0.2, the split the CAR-T share of CD3+ cells (PC CARTPCT) already used"),
    SubsetFigure(
        "cd4_share", 0.55, "fraction of T cells (CD7+ and CD7-negative)",
        "CD3+CD4+ 396-1,309 of CD3+ 723-2,271/uL (Wong 2013: 0.56 of the geometric middles); "
        "CD4 35% of 66-67% CD3+ lymphocytes (Chng 2004: 0.52-0.53)"),
    SubsetFigure(
        "cd8_share", 0.38, "fraction of T cells (CD7+ and CD7-negative)",
        "CD3+CD8+ 224-1,014 of CD3+ 723-2,271/uL (Wong 2013: 0.37); CD8 27-27.5% of 66-67% "
        "(Chng 2004: 0.41); CD4:CD8 about 1.4; the rest (~7%) are CD4-CD8- or CD4+CD8+"),
    SubsetFigure(
        "cd7_negative_share", 0.13, "fraction of T cells before lymphodepletion",
        "CD7 is on ~85-90% of normal T cells ([D6], [D12]; parameters.normal_cd7_steady); "
        "after lymphodepletion the CD7-negative T cells follow _cd7_negative_t (unchanged)"),
    SubsetFigure(
        "car_cd4_share", 0.4, "fraction of circulating CAR-T cells that are CD4+ (rest CD8+)",
        "assumption: CD7 CAR-T products are CD8-rich ([D3]: naturally selected CD7 CAR-T "
        "hold more CD8+ central memory cells); no CD4:CD8 of circulating CD7 CAR-T cells was "
        "found. CAR-T cells are CD3+ and count in CD3/CD4/CD8 as a flow panel counts them"),
    SubsetFigure(
        "other_lymphocytes", 100.0, "cells/uL",
        "B cells and other non-T/NK lymphocytes, the constant already in LB LYM (assumption)"),
    SubsetFigure(
        "flow_sd", 0.1, "log-normal SD",
        "assumption: ~10% CV of single-platform flow absolute counts"),
)
"""Observation model of the lymphocyte subsets (docs/virtual-patients.md, "Lymphocyte
subsets"): the model's normal CD7+ cells N split into T and NK cells, CD7-negative T cells,
CAR-T cells split into CD4/CD8."""

SUBSET = {f.name: f.value for f in SUBSET_FIGURES}


def lymphocyte_subsets(state: np.ndarray, day: int, *,
                       normal_cd7_steady: float | None = None) -> dict[str, float]:
    """True CD3+, CD4+, CD8+ T-cell and NK-cell counts (cells/uL) of one model state on study
    day ``day`` (:data:`SUBSET_FIGURES`): CAR-T cells E + M are CD3+ (``car_cd4_share`` CD4+,
    the rest CD8+); normal CD7+ cells N are ``nk_share`` NK and the rest T cells; CD7-negative
    T cells are :func:`_cd7_negative_t`. Before lymphodepletion (``day`` < 0 with
    ``normal_cd7_steady`` given) N is the patient's steady state and the CD7-negative T cells
    are ``cd7_negative_share`` of all T cells; no CAR-T yet."""
    nk_share, cd7neg_share = SUBSET["nk_share"], SUBSET["cd7_negative_share"]
    if day < 0 and normal_cd7_steady is not None:
        n, car = float(normal_cd7_steady), 0.0
        t_pos = (1.0 - nk_share) * n
        t_neg = t_pos * cd7neg_share / (1.0 - cd7neg_share)
    else:
        n, car = float(state[_N]), float(state[_E] + state[_M])
        t_pos, t_neg = (1.0 - nk_share) * n, _cd7_negative_t(day)
    t = t_pos + t_neg
    cd4 = SUBSET["car_cd4_share"]
    return {"CD3ABS": car + t, "CD4ABS": cd4 * car + SUBSET["cd4_share"] * t,
            "CD8ABS": (1.0 - cd4) * car + SUBSET["cd8_share"] * t, "NKABS": nk_share * n}


def _lab_values(day: int, counts: _Counts, states: np.ndarray, pt: pd.Series,
                prng: np.random.Generator, *, hematology_only: bool) -> dict[str, float]:
    """Measured blood counts (true counts of ``_blood_counts`` with 10% log-normal noise) and
    chemistry (IL-6 raises CRP, ferritin, transaminases, bilirubin, creatinine and lowers
    fibrinogen; assumed empirical links)."""
    noise = lambda sd=0.1: float(np.exp(prng.normal(0, sd)))  # noqa: E731
    if day < 0:
        b = counts.before
        anc, plt, hgb, lym = b["NEUT"], b["PLAT"], b["HGB"], b["LYM"]
        other = b["OTHER"]
    else:
        anc, plt, hgb = float(counts.anc[day]), float(counts.plt[day]), float(counts.hgb[day])
        lym, other = float(counts.lym[day]), float(counts.other[day] + counts.circulating[day])
    anc, lym = anc * noise(), lym * noise()
    values = {"WBC": round(anc + lym + other, 2), "NEUT": round(anc, 2), "LYM": round(lym, 2),
              "PLAT": round(plt * noise(), 0), "HGB": round(hgb * noise(0.05), 0)}
    if hematology_only:
        return values
    il6 = float(states[max(day, 0), _IL6])
    sat = lambda k: il6 / (il6 + k)  # noqa: E731 - saturating effect of IL-6
    alt_base, ast_base = 40.0 * float(pt["alt_x_uln"]), 40.0 * float(pt["ast_x_uln"])
    values.update({
        "ALT": round(alt_base * (1 + 4.0 * sat(2000.0)) * noise(), 0),
        "AST": round(ast_base * (1 + 5.0 * sat(2000.0)) * noise(), 0),
        "BILI": round(17.1 * float(pt["bilirubin_mg_dl"]) * (1 + 1.5 * sat(3000.0)) * noise(), 1),
        "CREAT": round(70.0 * (1 + 1.5 * sat(3000.0)) * noise(), 0),
        "FIBRINO": round(max(0.3, 3.0 - 2.0 * sat(1000.0)) * noise(), 2),
        "CRP": round((3.0 + 300.0 * sat(300.0)) * noise(0.2), 1),
        "FERRITIN": round((600.0 + 30000.0 * sat(2000.0)) * noise(0.2), 0),
    })
    return values


def _cytokines(s: np.ndarray, prng: np.random.Generator) -> dict[str, float]:
    """IL-6 from the model with assay noise; IL-10, IFN-gamma and TNF-alpha follow the
    activation of effectors (assumed empirical links, log-normal noise 20%)."""
    il6 = float(s[_IL6])
    active = float(s[_E])
    noise = lambda: float(np.exp(prng.normal(0, 0.2)))  # noqa: E731
    return {"IL6": round(il6 * noise(), 1), "IL10": round((2.0 + 0.15 * il6) * noise(), 1),
            "IFNG": round((5.0 + 1.5 * active) * noise(), 1),
            "TNFA": round((3.0 + 0.02 * il6) * noise(), 1)}


def _lab_row(rows: _Rows, usubjid: str, day0: dt.date, day: int, test: LabTest, value: float,
             baseline: float | None, spec: str, *, method: str | None = None,
             text: str | None = None) -> int | None:
    """One LB record, graded by CTCAE v5.0 where the test has a term; returns the grade."""
    grade = _grade_lab(test.code, float(value), test, baseline)
    rows.add("LB", usubjid, LBCAT=test.category, LBTESTCD=test.code, LBTEST=test.name,
             LBSPEC=spec, LBORRES=text if text is not None else f"{value:g}",
             LBORRESU=test.unit, LBSTRESN=float(value), LBSTRESU=test.unit,
             LBORNRLO=test.low, LBORNRHI=test.high, LBSTNRLO=test.low, LBSTNRHI=test.high,
             LBTOXGR=grade,
             LBDTC=_iso(day0, day), LBMETHOD=method)
    return grade


def _tr(rows: _Rows, usubjid: str, day0: dt.date, day: int, lid: str, ldiam: float) -> None:
    rows.add("TR", usubjid, TRLNKID=lid, TRTESTCD="LDIAM", TRSTRESN=round(ldiam, 1),
             TRSTRESU="mm", TRDTC=_iso(day0, day))
    rows.add("TR", usubjid, TRLNKID=lid, TRTESTCD="SDIAM", TRSTRESN=round(0.7 * ldiam, 1),
             TRSTRESU="mm", TRDTC=_iso(day0, day))


CYTOPENIA_TERMS: dict[str, str] = {
    "NEUT": "Neutrophil count decreased", "PLAT": "Platelet count decreased", "HGB": "Anemia",
    "LYM": "Lymphocyte count decreased",
}
"""LB test -> CTCAE v5.0 term of the cytopenia AEs read from its grades."""


def _cytopenia_aes(rows: _Rows, usubjid: str, day0: dt.date,
                   graded: list[tuple[str, int, int]], hsct: int | None, last_day: int) -> None:
    """Cytopenia AEs as episodes of the post-infusion LB grades (``clinical.grade_lab``): an
    episode starts at the first result of grade >= 1 and ends on the first later result of
    grade 0 (recovery; :data:`CYTOPENIA_MERGE_DAYS`); its grade is the worst in between. An
    episode not recovered by death or the last contact is ongoing. Episodes starting after
    HSCT are not related to the CAR-T cells (conditioning)."""
    for code, term in CYTOPENIA_TERMS.items():
        episodes: list[list[int]] = []          # [start, recovered day (-1: not yet), worst]
        for d, g in sorted((d, g) for c, d, g in graded if c == code):
            current = episodes[-1] if episodes else None
            if g >= 1:
                if current is not None and (current[1] < 0
                                            or d - current[1] <= CYTOPENIA_MERGE_DAYS):
                    current[1], current[2] = -1, max(current[2], g)
                else:
                    episodes.append([d, -1, g])
            elif current is not None and current[1] < 0:
                current[1] = d
        for start, end, worst in episodes:
            _add_ae(rows, usubjid, day0, term, worst, start, end if end >= 0 else None,
                    related=hsct is None or start < hsct, stop=last_day)


CYTOPENIA_MERGE_DAYS = 7
"""A cytopenia that comes back within 7 days of a normal result continues its episode (one
normal value between abnormal ones is not a recovery; assumption)."""


def _sig(x: float, digits: int = 4) -> float:
    """``x`` rounded to ``digits`` significant digits, as an assay reports it."""
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))


# ------------------------------------------------------------------ calibration

def virtual_cohort(protocol: Any, n: int, seed: int, *, level: int = 0,
                   diagnoses: tuple[str, ...] | None = None) -> dict[str, pd.DataFrame]:
    """SDTM domains of ``n`` referred patients (of ``diagnoses``, default the protocol's
    referrals) all dosed at ``protocol.dose_levels[level]`` on the same day and followed to the
    end of the schedule: a calibration cohort, without screening, escalation or data cut."""
    if n < 1:
        raise invalid("n", n, "a positive number of patients")
    if not 0 <= level < len(protocol.dose_levels):
        raise invalid("level", level, f"a dose-level index 0..{len(protocol.dose_levels) - 1}")
    rng = np.random.default_rng(seed)
    drawn: list[pd.DataFrame] = []
    while sum(len(f) for f in drawn) < n:
        batch = draw_patients(protocol, 2 * n, rng)
        drawn.append(batch[batch["diagnosis"].isin(diagnoses)] if diagnoses else batch)
    patients = pd.concat(drawn).iloc[:n].reset_index(drop=True)
    seeds = rng.integers(0, 2**63 - 1, size=n)
    out = simulate_cohort(protocol, patients, level, rng, late_days(protocol))
    rows = _Rows(protocol.id)
    day0 = dt.date(2025, 1, 6)
    for k in range(n):
        subject_records(rows, protocol, patients.iloc[k], f"{protocol.id}-{k + 1:05d}", k, day0,
                        (True, []), prng=np.random.default_rng(seeds[k]), outcome=out, k=k)
    return rows.frames()


INFECTION_TERMS = frozenset(c.term for c in COMPLICATIONS) - {GVHD_TERM}
VIRAL_TERMS = frozenset({"Cytomegalovirus infection reactivation",
                         "Epstein-Barr virus infection reactivation"})


def patient_outcomes(domains: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per dosed subject with the figures of :data:`CALIBRATION_TARGETS`, read from
    the records (days from the first infusion): diagnosis group, remission by the first
    marrow assessment, relapse (day, CD7-negative), HSCT, death (day, cause), PFS, worst
    CRS/ICANS, grade >= 3 cytopenia, prolonged cytopenia, infections."""
    dm = domains["DM"]
    dm = dm[dm["RFSTDTC"].notna()]
    start = pd.to_datetime(dm.set_index("USUBJID")["RFSTDTC"])

    def day(frame: pd.DataFrame, column: str) -> pd.Series:
        return (pd.to_datetime(frame[column]) - frame["USUBJID"].map(start)).dt.days

    out = pd.DataFrame(index=start.index)
    out["diagnosis"] = dm.set_index("USUBJID")["DISEASE"]
    out["group"] = out["diagnosis"].map(lambda d: DIAGNOSIS_GROUPS.get(str(d), "lymphoid"))
    out["level"] = dm.set_index("USUBJID")["ARMCD"]
    last = pd.to_datetime(dm.set_index("USUBJID")["RFPENDTC"])
    death = pd.to_datetime(dm.set_index("USUBJID")["DTHDTC"])
    out["death"] = (death - start).dt.days
    out["last"] = (last - start).dt.days
    ds = domains["DS"]
    out["cause"] = ds[ds["DSDECOD"] == "DEATH"].set_index("USUBJID")["DSTERM"]
    rs = domains["RS"].assign(day=lambda f: day(f, "RSDTC"))
    ovr = rs[rs["RSTESTCD"] == "OVRLRESP"]
    first = ovr[ovr["day"] > 0].sort_values("day").groupby("USUBJID").first()
    out["remission"] = first["RSSTRESC"].isin(("CR", "CRh", "CRi", "MLFS"))
    out["remission"] = out["remission"].fillna(False).astype(bool)
    failure = rs[rs["RSSTRESC"].isin(("RELAPSE", "PD"))].groupby("USUBJID")["day"].min()
    relapse = rs[rs["RSSTRESC"] == "RELAPSE"].groupby("USUBJID")["day"].min()
    out["relapse"] = relapse
    out["progression"] = failure
    out["last_assessment"] = rs.groupby("USUBJID")["day"].max()
    lb = domains["LB"].assign(day=lambda f: day(f, "LBDTC"))
    cd7 = lb[lb["LBTESTCD"] == "CD7BLAST"].set_index(["USUBJID", "day"])["LBSTRESN"]
    out["relapse_cd7"] = [cd7.get((s, int(d)), math.nan) if pd.notna(d) else math.nan
                          for s, d in zip(out.index, out["relapse"], strict=True)]
    pr = domains["PR"].assign(day=lambda f: day(f, "PRSTDTC"))
    out["hsct"] = pr[pr["PRTRT"] == "ALLOGENEIC HSCT"].groupby("USUBJID")["day"].min()
    ae = domains["AE"].assign(day=lambda f: day(f, "AESTDTC"))
    grade = pd.to_numeric(ae["AETOXGR"], errors="coerce")
    for name, term in (("crs", CRS_TERM), ("icans", ICANS_TERM)):
        out[name] = grade[ae["AEDECOD"] == term].groupby(ae["USUBJID"]).max()
        out[name] = out[name].fillna(0).astype(int)
    heme = lb[lb["LBTESTCD"].isin(("NEUT", "PLAT")) & (lb["day"] > 0)]
    severe = heme[pd.to_numeric(heme["LBTOXGR"], errors="coerce") >= 3]
    out["cytopenia_g34"] = out.index.isin(severe["USUBJID"])
    late = severe[(severe["day"] > XC_DAYS) & (severe["day"] <= 60)]
    late = late[late["day"] < late["USUBJID"].map(out["relapse"]).fillna(np.inf)]
    late = late[late["day"] < late["USUBJID"].map(out["hsct"]).fillna(np.inf)]
    out["prolonged_cytopenia"] = out.index.isin(late["USUBJID"])
    year = ae[ae["day"] <= 365]
    infection = year[year["AEDECOD"].isin(INFECTION_TERMS)]
    g = pd.to_numeric(infection["AETOXGR"], errors="coerce")
    out["viral"] = out.index.isin(infection.loc[infection["AEDECOD"].isin(VIRAL_TERMS),
                                                "USUBJID"])
    severe_inf = infection[(g >= 3) & (infection["AEDECOD"] != "Febrile neutropenia")]
    out["infection_g3"] = out.index.isin(severe_inf["USUBJID"])
    out["infection_early_g3"] = out.index.isin(severe_inf.loc[severe_inf["day"] <= XC_DAYS,
                                                              "USUBJID"])
    out["infection_fatal"] = out.index.isin(infection.loc[infection["AEOUT"] == "FATAL",
                                                          "USUBJID"])
    return out


def _km(time: pd.Series, event: pd.Series, at: float) -> float:
    """Kaplan-Meier survival at ``at`` days (``celltrial.stats.kaplan_meier``, equal to R
    survfit)."""
    from celltrial.stats import kaplan_meier

    fit = kaplan_meier(time.to_numpy(float), event.to_numpy(bool).astype(int))
    return float(fit.at(at, extend=True)["surv"].iloc[0])


def _os(o: pd.DataFrame) -> float:
    return _km(o["death"].fillna(o["last"]), o["death"].notna(), 365)


def _pfs(o: pd.DataFrame) -> float:
    event_day = np.fmin(o["progression"].to_numpy(float), o["death"].to_numpy(float))
    censor = o["last_assessment"].fillna(0.0).to_numpy(float)
    event = ~np.isnan(event_day)
    return _km(pd.Series(np.where(event, event_day, censor)), pd.Series(event), 365)


def _share(column: str, among: Callable[[pd.DataFrame], pd.Series] | None = None
           ) -> Callable[[pd.DataFrame], float]:
    def value(o: pd.DataFrame) -> float:
        sub = o[among(o)] if among is not None else o
        return float(sub[column].mean()) if len(sub) else math.nan
    return value


def _relapse_1y(o: pd.DataFrame) -> float:
    remitters = o[o["remission"]]
    return float((remitters["relapse"] <= 365).mean()) if len(remitters) else math.nan


def _relapse_after_hsct(o: pd.DataFrame) -> float:
    done = o[o["hsct"].notna()]
    after = done["relapse"] - done["hsct"]
    return float((after <= 365).mean()) if len(done) else math.nan


def _cd7neg_share(o: pd.DataFrame) -> float:
    measured = o["relapse_cd7"].dropna()
    return float((measured < CD7_NEGATIVE_BELOW).mean()) if len(measured) else math.nan


CD7_NEGATIVE_BELOW = 20.0
"""CD7+ blasts (% of blasts) under which a relapse is called CD7-negative (assumption: the
usual 20% flow-cytometry positivity cut-off)."""


def _median_relapse(o: pd.DataFrame) -> float:
    return float(o["relapse"].median())


@dataclass(frozen=True)
class CalibrationTarget:
    """A published figure the virtual patients are calibrated to: the group (``myeloid``,
    ``lymphoid`` or ``all``), the published value, the range accepted for a large virtual
    cohort, how it is read from the records (:func:`patient_outcomes`) and the source."""

    figure: str
    group: str
    published: str
    low: float
    high: float
    metric: Callable[[pd.DataFrame], float]
    source: str


def _prolonged_at_risk(o: pd.DataFrame) -> pd.Series:
    """Remitters alive and without HSCT at day 60 (cytopenia of the CAR-T, not of the
    disease or the transplant)."""
    return o["remission"] & ~(o["hsct"] <= 60) & ~(o["death"] <= 60)


CALIBRATION_TARGETS: tuple[CalibrationTarget, ...] = (
    CalibrationTarget("remission (CR/CRh/CRi/MLFS) at the first marrow assessment", "lymphoid",
                      "90% (85-95%)", 0.82, 0.97, _share("remission"),
                      "[D1] CR 18/20; [D3] 19/20 by day 28; [D13] 94.4% day 28; [D2] CR 85%"),
    CalibrationTarget("remission (CR/CRh/CRi/MLFS) at the first marrow assessment", "myeloid",
                      "84.6% (11/13)", 0.70, 0.92, _share("remission"),
                      "[D8] CR/CRi 11/13 (95% CI 55-98%)"),
    CalibrationTarget("relapse by 1 year, remitters", "lymphoid", "~30% (6/19 by 2 y, 7 HSCT)",
                      0.18, 0.45, _relapse_1y, "[D2]; [D13] 8/10 without HSCT relapsed"),
    CalibrationTarget("relapse by 1 year, remitters", "myeloid", "7/11 by median 4.7 mo",
                      0.45, 0.80, _relapse_1y, "[D8]"),
    CalibrationTarget("CD7-negative / marrow relapses", "lymphoid", "4/6", 0.45, 0.85,
                      _cd7neg_share, "[D2]"),
    CalibrationTarget("CD7-negative / marrow relapses", "myeloid", "7/7", 0.80, 1.0,
                      _cd7neg_share, "[D8]"),
    CalibrationTarget("median day of relapse", "lymphoid", "6 mo (4.0-10.9)", 120, 300,
                      _median_relapse, "[D2]"),
    CalibrationTarget("median day of relapse", "myeloid", "< 4.7 mo (assumption)", 60, 200,
                      _median_relapse, "[D8] 7 relapses by median follow-up 4.7 mo"),
    CalibrationTarget("allogeneic HSCT", "lymphoid", "35-70%", 0.30, 0.60, _share("hsct_done"),
                      "[D1, D2] 7/20; [D3] 14/20; [D13] 37/60; [D4] 19/55"),
    CalibrationTarget("allogeneic HSCT", "myeloid", "7/13", 0.35, 0.65, _share("hsct_done"),
                      "[D8]"),
    CalibrationTarget("relapse by 1 year after HSCT", "lymphoid", "~25%", 0.10, 0.40,
                      _relapse_after_hsct,
                      "[D13] 1-y PFS 67.2% with consolidative HSCT; [D3] no relapse at "
                      "median 142 d"),
    CalibrationTarget("relapse by 1 year after HSCT", "myeloid", "high (assumption)", 0.30,
                      0.75, _relapse_after_hsct,
                      "[D8] 7 relapses of 11 remitters although 7 were bridged to HSCT"),
    CalibrationTarget("OS at 1 year", "lymphoid", "~65% (median OS 18.3 mo; 2-y 42-64%)",
                      0.50, 0.80, _os, "[D2] 2-y OS 42.3%, median 18.3 mo; [D13] 2-y OS "
                      "63.5%; [D4] median OS 8.5 mo"),
    CalibrationTarget("OS at 1 year", "myeloid", "~45% (assumption)", 0.25, 0.60, _os,
                      "not published for CD7 CAR-T in AML; [D8] 4/11 in remission at 4.7 mo"),
    CalibrationTarget("PFS at 1 year", "lymphoid", "~50% (median PFS 11.0 mo)", 0.33, 0.65,
                      _pfs, "[D2] median PFS 11.0 mo, 2-y 36.8%; [D13] 2-y PFS 53.7%; "
                      "[D4] median EFS 5.0 mo"),
    CalibrationTarget("PFS at 1 year", "myeloid", "~25% (assumption)", 0.10, 0.40, _pfs,
                      "[D8] 4/11 remitters still in remission at median 4.7 mo"),
    CalibrationTarget("CRS any grade", "all", "85-100%", 0.85, 0.97,
                      lambda o: float((o["crs"] >= 1).mean()),
                      "[D1] 100%; [D4] 98%; [D8] 92.3%; [D3] 19/20; [D13] 91.7%"),
    CalibrationTarget("CRS grade >= 3", "all", "~10%", 0.05, 0.15,
                      lambda o: float((o["crs"] >= 3).mean()),
                      "[D1] 10%; [D4] 11%; [D3] 1/20; [D13] 11.7%"),
    CalibrationTarget("ICANS any grade", "all", "8-15%", 0.05, 0.20,
                      lambda o: float((o["icans"] >= 1).mean()),
                      "[D1] 15%; [D4] 9%; [D8] 7.7%; [D3] 2/20; [D9] 14.3%"),
    CalibrationTarget("grade 3-4 neutropenia or thrombocytopenia", "all", "96-100%", 0.90, 1.0,
                      _share("cytopenia_g34"), "[D1] 100%; [D8] 100%; [D4] 96%"),
    CalibrationTarget("grade >= 3 cytopenia after day 28 (days 29-60, remitters before "
                      "relapse/HSCT)", "all", "20-40%", 0.20, 0.40,
                      _share("prolonged_cytopenia", _prolonged_at_risk),
                      "Fried 2019 BMT; Strati 2021 Haematologica; Jain 2020 Blood Adv "
                      "(CD19 CAR-T, summarised in Blood 2023;141:2460)"),
    CalibrationTarget("viral reactivation by 1 year", "all", "20-69%", 0.20, 0.60,
                      _share("viral"), "[D1] 20%; [D8] 69.2%; [D9]"),
    CalibrationTarget("grade >= 3 infection by 1 year (not febrile neutropenia)", "all",
                      "~23% after day 30", 0.12, 0.35, _share("infection_g3"),
                      "[D4] after day 30: grade 3 9%, grade 4 5%, grade 5 9%"),
    CalibrationTarget("fatal infection by 1 year", "all", "5-9%", 0.02, 0.12,
                      _share("infection_fatal"), "[D1] 1/20 (fungal pneumonia); [D4] 9%"),
    CalibrationTarget("grade >= 3 infection by day 28 (a DLT by rule D3)", "all",
                      "none reported", 0.0, 0.08, _share("infection_early_g3"),
                      "[D4] infections in the first 30 days grade 1-2 only; [D8] no DLT"),
    CalibrationTarget("death by day 30", "all", "0/55", 0.0, 0.03,
                      lambda o: float((o["death"] <= 30).mean()), "[D4]; [D1] none"),
)
"""The calibration table of docs/virtual-patients.md: published figure, accepted range for
a large virtual cohort, and source (keys of CLINICAL_REFERENCE.md section 6 and
docs/virtual-patients.md)."""


def calibration_table(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Each :data:`CALIBRATION_TARGETS` row with the value of the virtual cohort
    ``outcomes`` (:func:`patient_outcomes`), its n and whether it is in the accepted range.

    Reproduce the table of docs/virtual-patients.md::

        from celltrial.protocols import load
        from celltrial.kinetics.virtual import (calibration_table, patient_outcomes,
                                                virtual_cohort)
        o = patient_outcomes(virtual_cohort(load("cd7-zz-phase1"), 3000, 1, level=1))
        print(calibration_table(o).to_string())
    """
    outcomes = outcomes.assign(hsct_done=outcomes["hsct"].notna())
    rows = []
    for t in CALIBRATION_TARGETS:
        sub = outcomes if t.group == "all" else outcomes[outcomes["group"] == t.group]
        value = t.metric(sub) if len(sub) else math.nan
        rows.append({"figure": t.figure, "group": t.group, "published": t.published,
                     "accepted": f"{t.low:g}-{t.high:g}", "virtual": round(value, 3),
                     "n": len(sub), "ok": bool(t.low <= value <= t.high),
                     "source": t.source})
    return pd.DataFrame(rows)
