"""ADTTE: OS, PFS, EFS, DOR and CIR with documented censoring rules (docs/derive.md).

Times are days (AVAL = ADT - STARTDT); CNSR 0 = event, 1 = censored; EVNTTYPE is the cause code
for competing-risk analysis (CIR: 1 relapse, 2 death in remission, 0 censored; other parameters:
1 event, 0 censored). Sources: ELN 2017/2022 definitions [T1, T2] and FDA endpoints guidance [T3]
as summarised in CLINICAL_REFERENCE.md section 4.

- OS (infused): first infusion to death, any cause; censored at the last date known alive.
- PFS (infused): first infusion to relapse/progression or death; censored at the last response
  assessment (day 0 if none).
- EFS (infused, ELN 2022): no CR/CRh/CRi by the landmark is an event at day 0 (ELN "day 1");
  after remission, relapse or death; censored at day 0 if alive and never assessed, else at the
  last assessment.
- DOR (responders, ORR categories): first response to relapse/progression or death; censored at
  the last response assessment.
- CIR (CR/CRh/CRi): first remission to relapse (EVNTTYPE 1), death in remission competing
  (EVNTTYPE 2); censored at the last response assessment.

Allogeneic HSCT after CAR-T: no source gives the rule (CLINICAL_REFERENCE.md section 4:
"not found"), so it is the protocol option ``options.censor_at_transplant``: when true, PFS,
EFS, DOR and CIR are censored at the HSCT date when it comes before the event (and no event
after it counts); when false, transplant is ignored. Both variants are always derived: the
protocol's choice under the plain PARAMCD, the other under ``<PARAMCD>SENS`` (sensitivity).
``options.death_in_remission_competing`` false makes death in remission a censoring for CIR.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from celltrial.derive.adrs import (
    FAILURE, ORR_DEFAULT, REMISSION, first_day_in, last_assessment_day, relapse_day,
)
from celltrial.derive.timeline import DAY, days_between

EFS_LANDMARK_DAYS = 90
"""Response landmark for EFS treatment failure when the protocol does not give one (assumption:
the month-3 assessment that every registration lists)."""


@dataclass(frozen=True)
class Options:
    """The censoring options of a protocol (``protocol.options``)."""

    censor_at_transplant: bool = False
    death_in_remission_competing: bool = True
    efs_landmark_days: float = EFS_LANDMARK_DAYS
    orr_categories: tuple[str, ...] = ORR_DEFAULT


def options_of(protocol: Any) -> Options:
    """Read the censoring options from a protocol (defaults where it is silent)."""
    opts = getattr(protocol, "options", None)
    categories = ORR_DEFAULT
    for endpoint in getattr(protocol, "endpoints", []) or []:
        if endpoint.derivation == "orr" and (endpoint.params or {}).get("categories"):
            categories = tuple(endpoint.params["categories"])
            break
    return Options(
        censor_at_transplant=bool(getattr(opts, "censor_at_transplant", False)),
        death_in_remission_competing=bool(getattr(opts, "death_in_remission_competing", True)),
        efs_landmark_days=float(getattr(opts, "efs_landmark_days", None) or EFS_LANDMARK_DAYS),
        orr_categories=categories,
    )


@dataclass(frozen=True)
class Subject:
    """Per-subject days from the first infusion (NaN when absent)."""

    death: float
    last_alive: float
    hsct: float
    relapse: float
    last_assessment: float
    remission: float
    response: float
    assessed: bool


@dataclass(frozen=True)
class Outcome:
    """One ADTTE record before dating: origin day, end day, censoring and cause."""

    origin: float
    end: float
    cnsr: int
    evnttype: int
    desc: str


def _nan(x: float) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _first(*days: float) -> float:
    present = [d for d in days if not _nan(d)]
    return min(present) if present else math.nan


def _with_transplant(outcome: Outcome, s: Subject, censor_at_transplant: bool) -> Outcome:
    """Censor at the HSCT date when the option is on and HSCT precedes the event."""
    if not censor_at_transplant or _nan(s.hsct) or s.hsct < outcome.origin:
        return outcome
    if outcome.cnsr == 0 and outcome.end <= s.hsct:
        return outcome
    return Outcome(outcome.origin, s.hsct, 1, 0, "ALLOGENEIC HSCT")


def os_outcome(s: Subject, o: Options) -> Outcome | None:
    if not _nan(s.death):
        return Outcome(0.0, s.death, 0, 1, "DEATH")
    return Outcome(0.0, s.last_alive if not _nan(s.last_alive) else 0.0, 1, 0, "LAST KNOWN ALIVE")


def pfs_outcome(s: Subject, o: Options, transplant: bool) -> Outcome | None:
    event = _first(s.relapse, s.death)
    if not _nan(event):
        desc = "RELAPSE/PROGRESSION" if event == s.relapse else "DEATH"
        out = Outcome(0.0, event, 0, 1, desc)
    else:
        out = Outcome(0.0, _first(s.last_assessment, math.inf) if s.assessed else 0.0, 1, 0,
                      "LAST ASSESSMENT" if s.assessed else "NO ASSESSMENT")
    return _with_transplant(out, s, transplant)


def efs_outcome(s: Subject, o: Options, transplant: bool) -> Outcome | None:
    if not _nan(s.remission) and s.remission <= o.efs_landmark_days and (
            _nan(s.relapse) or s.relapse > s.remission):
        event = _first(s.relapse, s.death)
        if not _nan(event):
            desc = "RELAPSE" if event == s.relapse else "DEATH"
            return _with_transplant(Outcome(0.0, event, 0, 1, desc), s, transplant)
        return _with_transplant(Outcome(0.0, s.last_assessment, 1, 0, "LAST ASSESSMENT"),
                                s, transplant)
    if not s.assessed and _nan(s.death):
        return Outcome(0.0, 0.0, 1, 0, "NOT EVALUABLE")
    reached = (not _nan(s.last_assessment) and s.last_assessment >= o.efs_landmark_days)
    if reached or not _nan(s.death) or not _nan(s.relapse):
        return Outcome(0.0, 0.0, 0, 1, "TREATMENT FAILURE")
    return Outcome(0.0, s.last_assessment, 1, 0, "LANDMARK NOT REACHED")


def dor_outcome(s: Subject, o: Options, transplant: bool) -> Outcome | None:
    if _nan(s.response):
        return None
    relapse = s.relapse if not _nan(s.relapse) and s.relapse > s.response else math.nan
    event = _first(relapse, s.death)
    if not _nan(event):
        desc = "RELAPSE/PROGRESSION" if event == relapse else "DEATH"
        out = Outcome(s.response, event, 0, 1, desc)
    else:
        out = Outcome(s.response, s.last_assessment, 1, 0, "LAST ASSESSMENT")
    return _with_transplant(out, s, transplant)


def cir_outcome(s: Subject, o: Options, transplant: bool) -> Outcome | None:
    if _nan(s.remission):
        return None
    relapse = s.relapse if not _nan(s.relapse) and s.relapse > s.remission else math.nan
    if not _nan(relapse) and (_nan(s.death) or relapse <= s.death):
        out = Outcome(s.remission, relapse, 0, 1, "RELAPSE")
    elif not _nan(s.death) and o.death_in_remission_competing:
        out = Outcome(s.remission, s.death, 0, 2, "DEATH IN REMISSION")
    elif not _nan(s.death):
        out = Outcome(s.remission, s.death, 1, 0, "DEATH IN REMISSION (CENSORED)")
    else:
        out = Outcome(s.remission, s.last_assessment, 1, 0, "LAST ASSESSMENT")
    return _with_transplant(out, s, transplant)


@dataclass(frozen=True)
class Parameter:
    """An ADTTE parameter: code, label, rule, and whether the HSCT option applies."""

    paramcd: str
    param: str
    rule: Callable[..., Outcome | None]
    transplant_option: bool


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("OS", "Overall survival (days)", os_outcome, False),
    Parameter("PFS", "Progression-free survival (days)", pfs_outcome, True),
    Parameter("EFS", "Event-free survival (days)", efs_outcome, True),
    Parameter("DOR", "Duration of response (days)", dor_outcome, True),
    Parameter("CIR", "Time to relapse from remission, death in remission competing (days)",
              cir_outcome, True),
)


def _subjects(adsl: pd.DataFrame, adrs: pd.DataFrame, o: Options) -> dict[str, Subject]:
    infused = adsl[adsl["SAFFL"] == "Y"].set_index("USUBJID")
    start = infused["TRTSDT"]
    death = days_between(infused["DTHDT"], start)
    alive = days_between(infused["LSTALVDT"], start)
    hsct = days_between(infused["HSCTDT"], start)
    relapse, last = relapse_day(adrs), last_assessment_day(adrs)
    remission = first_day_in(adrs, REMISSION)
    response = first_day_in(adrs, o.orr_categories)
    return {u: Subject(death=float(death[u]), last_alive=float(alive[u]), hsct=float(hsct[u]),
                       relapse=float(relapse.get(u, np.nan)),
                       last_assessment=float(last.get(u, np.nan)),
                       remission=float(remission.get(u, np.nan)),
                       response=float(response.get(u, np.nan)), assessed=u in last.index)
            for u in infused.index}


TTE_COLUMNS = ("STUDYID", "USUBJID", "PARAMCD", "PARAM", "STARTDT", "ADT", "AVAL", "CNSR",
               "EVNTTYPE", "EVNTDESC", "HSCTRULE", "TRT01A", "TRT01AN")


def build_adtte(adsl: pd.DataFrame, adrs: pd.DataFrame, protocol: Any) -> pd.DataFrame:
    """ADTTE for the infused subjects: every parameter under the protocol's transplant rule and,
    for PFS/EFS/DOR/CIR, the opposite rule as ``<PARAMCD>SENS``."""
    o = options_of(protocol)
    subjects = _subjects(adsl, adrs, o)
    meta = adsl.set_index("USUBJID")
    rows = []
    for p in PARAMETERS:
        variants = [(p.paramcd, o.censor_at_transplant)]
        if p.transplant_option:
            variants.append((p.paramcd + "SENS", not o.censor_at_transplant))
        for paramcd, transplant in variants:
            label = p.param if paramcd == p.paramcd else f"{p.param}, sensitivity"
            for u, s in subjects.items():
                out = p.rule(s, o) if not p.transplant_option else p.rule(s, o, transplant)
                if out is None or _nan(out.end):
                    continue
                startdt = meta.at[u, "TRTSDT"] + out.origin * DAY
                rows.append({
                    "STUDYID": meta.at[u, "STUDYID"], "USUBJID": u, "PARAMCD": paramcd,
                    "PARAM": label, "STARTDT": startdt,
                    "ADT": startdt + (out.end - out.origin) * DAY,
                    "AVAL": float(out.end - out.origin), "CNSR": out.cnsr,
                    "EVNTTYPE": out.evnttype, "EVNTDESC": out.desc,
                    "HSCTRULE": ("CENSOR AT HSCT" if transplant else "IGNORE HSCT")
                    if p.transplant_option else "",
                    "TRT01A": meta.at[u, "TRT01A"], "TRT01AN": meta.at[u, "TRT01AN"],
                })
    frame = pd.DataFrame(rows, columns=list(TTE_COLUMNS))
    return frame.astype({"AVAL": float, "CNSR": int, "EVNTTYPE": int})


__all__ = ["FAILURE", "Options", "PARAMETERS", "build_adtte", "options_of"]
