"""The next-cohort decision of a running trial, from its analysis dataset ADSL.

ADSL (celltrial.derive.build_adsl; docs/data-model.md) gives per subject TRT01AN (dose index,
1-based), DLTEVLFL (DLT-evaluable Y/N), DLTFL (DLT Y/N) and the first infusion TRTSDTM.
Patients enter the design in order of first infusion (ties by USUBJID); only DLT-evaluable
patients count; infused patients not yet evaluable are reported as pending. The current dose
is the dose of the last infused patient.

The design comes from the protocol's ``escalation`` block when it has one (proposed fields:
``escalation: {design: boin | 3+3 | crm | boin12, target: 0.3, cohort_size: 3, max_n: 30,
skeleton: [...], efficacy_target, exposure_threshold, assumed, rationale}``); without it BOIN with target 0.3, cohorts of 3 and 10 cohorts is assumed
and the result says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from celltrial.design.data import Decision, DoseDesign, EscalationData, Selection
from celltrial.errors import NotComputable, invalid

DESIGN_NAMES = ("boin", "3+3", "crm", "boin12", "tite-boin", "tite-crm")
TITE_DESIGNS = ("tite-boin", "tite-crm")


@dataclass(frozen=True)
class EscalationSpec:
    """Which escalation rule a protocol uses (``assumed`` when the protocol names none)."""

    design: str = "boin"
    target: float = 0.3
    cohort_size: int = 3
    max_n: int | None = None
    skeleton: tuple[float, ...] | None = None
    efficacy_target: float | None = None
    exposure_threshold: float | None = None
    assumed: bool = True
    note: str = "protocol has no escalation block: BOIN, target 0.3, cohorts of 3 assumed"
    n_cap: int | None = None


def escalation_spec(protocol: Any) -> EscalationSpec:
    """Read the protocol's ``escalation`` block (dict or object); defaults when absent."""
    block = getattr(protocol, "escalation", None)
    if block is None:
        return EscalationSpec()
    get = (block.get if isinstance(block, Mapping)
           else lambda key, default=None: getattr(block, key, default))
    name = str(get("design", "boin")).lower()
    if name not in DESIGN_NAMES:
        raise invalid("escalation.design", name, f"one of {', '.join(DESIGN_NAMES)}")
    skeleton = get("skeleton", None)
    eff, exposure = get("efficacy_target", None), get("exposure_threshold", None)
    assumed = bool(get("assumed", False))
    rationale = get("rationale", None)
    note = f"from the protocol: {name}" + (
        f" (assumed by the protocol: {rationale})" if assumed and rationale else
        " (assumed by the protocol)" if assumed else "")
    return EscalationSpec(name, float(get("target", 0.3) or 0.3), int(get("cohort_size", 3) or 3),
                          None if get("max_n", None) is None else int(get("max_n")),
                          None if skeleton is None else tuple(float(v) for v in skeleton),
                          None if eff is None else float(eff),
                          None if exposure is None else float(exposure), assumed, note,
                          None if get("n_cap", None) is None else int(get("n_cap")))


def make_design(spec: EscalationSpec, n_doses: int) -> DoseDesign:
    """Build the design object a spec names, for ``n_doses`` dose levels."""
    from celltrial.design.boin import BOIN
    from celltrial.design.boin12 import BOIN12
    from celltrial.design.crm import CRM
    from celltrial.design.three_plus_three import ThreePlusThree
    from celltrial.design.tite import TITEBOIN, TITECRM

    cs = spec.cohort_size
    n_cohorts = max(1, -(-(spec.max_n or 10 * cs) // cs))
    if spec.design == "3+3":
        return ThreePlusThree(n_doses)
    if spec.design in ("crm", "tite-crm"):
        skeleton = spec.skeleton or tuple(np.round(np.linspace(
            spec.target / 3, min(0.9, spec.target * 2), n_doses), 3))
        if len(skeleton) != n_doses:
            raise invalid("escalation.skeleton", skeleton, f"{n_doses} probabilities")
        if spec.design == "tite-crm":
            return TITECRM(skeleton=skeleton, target=spec.target, cohort_size=cs,
                           n_cohorts=n_cohorts)
        return CRM(skeleton=skeleton, target=spec.target, cohort_size=cs, n_cohorts=n_cohorts)
    if spec.design == "boin12":
        return BOIN12(n_doses=n_doses, phi_t=spec.target, cohort_size=cs, n_cohorts=n_cohorts,
                      phi_e=spec.efficacy_target or 0.25, n_cap=spec.n_cap,
                      exposure_threshold=spec.exposure_threshold)
    boin = BOIN(target=spec.target, n_doses=n_doses, cohort_size=cs, n_cohorts=n_cohorts,
                n_earlystop=spec.n_cap)
    return TITEBOIN(boin) if spec.design == "tite-boin" else boin


@dataclass(frozen=True)
class LiveDecision:
    """The decision for the next cohort of a running trial, with what it was made from."""

    study: str
    design: str
    spec: EscalationSpec
    decision: Decision
    selection: Selection
    counts: pd.DataFrame  # dose, level, n evaluable, DLT, pending
    data: EscalationData

    def as_dict(self) -> dict[str, Any]:
        return {
            "study": self.study, "design": self.design, "assumed": self.spec.assumed,
            "note": self.spec.note, "action": self.decision.action,
            "dose": self.decision.dose, "reason": self.decision.reason,
            "current_dose": self.data.current_dose,
            "selection": {"dose": self.selection.dose, "reason": self.selection.reason},
            "counts": self.counts.to_dict(orient="records"),
        }


RESPONDER_CATEGORIES = ("CR", "CRI", "CRH", "MLFS", "PR")
"""Best overall response categories counted as efficacy (ORR default categories)."""


def efficacy_by_subject(adrs: pd.DataFrame | None) -> dict[str, int]:
    """1/0 per subject from the ADRS best overall response (PARAMCD ``BOR``, AVALC)."""
    if adrs is None or adrs.empty or not {"USUBJID", "PARAMCD", "AVALC"} <= set(adrs.columns):
        return {}
    bor = adrs[adrs["PARAMCD"] == "BOR"]
    return {str(u): int(str(v).upper() in RESPONDER_CATEGORIES)
            for u, v in zip(bor["USUBJID"], bor["AVALC"], strict=True)}


def exposure_by_subject(adpp: pd.DataFrame | None, paramcd: str = "AUC28_QPCR"
                        ) -> dict[str, float]:
    """AUC0-28d per subject from ADPP (PARAMCD ``AUC28_QPCR``, AVAL; NaN left out)."""
    if adpp is None or adpp.empty or not {"USUBJID", "PARAMCD", "AVAL"} <= set(adpp.columns):
        return {}
    rows = adpp[(adpp["PARAMCD"] == paramcd) & pd.to_numeric(adpp["AVAL"], errors="coerce").notna()]
    return {str(u): float(v) for u, v in zip(rows["USUBJID"], rows["AVAL"], strict=True)}


def pending_followup(treated: pd.DataFrame, window_days: float) -> pd.Series:
    """Fraction of the DLT window observed for each infused patient still in it: not
    DLT-evaluable yet, alive, no allogeneic HSCT, not discontinued, and followed (last date
    known alive LSTALVDT minus first infusion TRTSDT) for less than ``window_days``. NaN for
    everyone else (evaluable, or lost to the window: those never enter a design)."""
    need = {"TRTSDT", "LSTALVDT"}
    if not need <= set(treated.columns):
        return pd.Series(np.nan, index=treated.index)
    days = (pd.to_datetime(treated["LSTALVDT"]) - pd.to_datetime(treated["TRTSDT"])).dt.days
    out = treated.get("DTHFL", pd.Series("N", index=treated.index)).astype(str).eq("Y") | \
        treated.get("HSCTFL", pd.Series("N", index=treated.index)).astype(str).eq("Y") | \
        treated.get("EOSSTT", pd.Series("", index=treated.index)).astype(str).eq(
            "DISCONTINUED")
    waiting = (treated["DLTEVLFL"].astype(str).str.upper() != "Y") & ~out & \
        days.notna() & (days < window_days)
    return (days.clip(lower=0) / window_days).where(waiting)


def escalation_data_from_adsl(adsl: pd.DataFrame, n_doses: int,
                              efficacy: dict[str, int] | None = None,
                              exposure: dict[str, float] | None = None,
                              window_days: float | None = None
                              ) -> tuple[EscalationData, pd.DataFrame]:
    """EscalationData (evaluable patients in order of first infusion) and the count table;
    ``efficacy``/``exposure`` by USUBJID add those outcomes (None where a subject has none).
    With ``window_days`` (time-to-event designs) patients still inside the DLT window enter
    too, with the fraction of the window observed as ``followup``."""
    need = ("USUBJID", "TRT01AN", "DLTEVLFL", "DLTFL")
    missing = [c for c in need if c not in adsl.columns]
    if missing:
        raise NotComputable(f"ADSL lacks {', '.join(missing)}: cannot build escalation data")
    frame = adsl.copy()
    frame["_dose"] = pd.to_numeric(frame["TRT01AN"], errors="coerce")
    treated = frame[frame["_dose"].notna()].copy()
    order = "TRTSDTM" if "TRTSDTM" in treated.columns else (
        "TRTSDT" if "TRTSDT" in treated.columns else None)
    treated = treated.sort_values([c for c in (order, "USUBJID") if c], kind="stable")
    bad = treated[(treated["_dose"] < 1) | (treated["_dose"] > n_doses)]
    if not bad.empty:
        row = bad.iloc[0]
        raise invalid(f"ADSL TRT01AN of {row['USUBJID']}", row["TRT01AN"],
                      f"a dose index in 1..{n_doses}")
    is_evaluable = treated["DLTEVLFL"].astype(str).str.upper() == "Y"
    fraction = pending_followup(treated, window_days) if window_days else None
    enters = is_evaluable if fraction is None else (is_evaluable | fraction.notna())
    evaluable = treated[enters]
    doses = tuple(int(v) for v in evaluable["_dose"])
    dlt = tuple(int(str(v).upper() == "Y") for v in evaluable["DLTFL"])
    current = int(treated["_dose"].iloc[-1]) if not treated.empty else None
    subjects = [str(u) for u in evaluable["USUBJID"]]
    eff = None if efficacy is None else tuple(efficacy.get(u) for u in subjects)
    expo = None if exposure is None else tuple(exposure.get(u) for u in subjects)
    fup = None if fraction is None else tuple(
        None if pd.isna(v) else float(v) for v in fraction[enters])
    data = EscalationData(n_doses, doses, dlt, eff, expo, current_dose=current, followup=fup)
    pending = treated[~is_evaluable]
    counts = pd.DataFrame({
        "dose": range(1, n_doses + 1),
        "n_evaluable": np.bincount(np.asarray(evaluable["_dose"][is_evaluable[enters]],
                                              dtype=int) - 1, minlength=n_doses)[:n_doses]
        if is_evaluable.any() else np.zeros(n_doses, dtype=int),
        "n_dlt": data.y(),
        "n_pending": np.bincount(pending["_dose"].astype(int) - 1, minlength=n_doses)[:n_doses]
        if not pending.empty else np.zeros(n_doses, dtype=int),
    })
    return data, counts


def live_decision(adsl: pd.DataFrame, protocol: Any, adrs: pd.DataFrame | None = None,
                  adpp: pd.DataFrame | None = None) -> LiveDecision:
    """Next-cohort decision of ``protocol``'s escalation rule on the study's ADSL (and, for
    BOIN12, best overall response from ADRS and AUC0-28d by qPCR from ADPP)."""
    levels = list(getattr(protocol, "dose_levels", []) or [])
    if not levels:
        raise NotComputable(f"protocol {getattr(protocol, 'id', '?')} has no dose levels")
    spec = escalation_spec(protocol)
    design = make_design(spec, len(levels))
    wants_efficacy = spec.design == "boin12"
    window = None
    if spec.design in TITE_DESIGNS:
        dlt = getattr(protocol, "dlt", None)
        window = float(getattr(dlt, "window_days", 0) or 28)
    data, counts = escalation_data_from_adsl(
        adsl, len(levels), efficacy_by_subject(adrs) if wants_efficacy else None,
        exposure_by_subject(adpp) if wants_efficacy else None, window)
    if wants_efficacy:
        eff = np.array([v if v is not None else 0 for v in (data.efficacy or ())], dtype=int)
        counts["n_response"] = np.bincount(np.asarray(data.doses, dtype=int) - 1, eff,
                                           minlength=len(levels))[: len(levels)].astype(int) \
            if data.n_patients else 0
    counts.insert(1, "level", [lv.id for lv in levels])
    if "DLTEVLFL" in adsl.columns and data.n_patients == 0 and data.current_dose is not None \
            and window is None:
        decision = Decision("stay", data.current_dose, "no DLT-evaluable patient yet: "
                            "complete the DLT window of the current cohort")
    else:
        decision = design.next_dose(data)
    return LiveDecision(str(getattr(protocol, "id", "")), type(design).__name__, spec,
                        decision, design.select(data), counts, data)
