"""Dose-escalation decisions of a study, from its records: the decision in force now, and the
history of every cohort with the decision that should have applied to it.

One rule serves the virtual trials (:mod:`celltrial.conduct.virtual_trial` asks
:func:`decide` before each cohort) and the live trial (``celltrial escalate`` replays
:func:`escalation_history` on the stored records), so a virtual study's escalation path can
be reproduced from its data exactly:

- ``decide(domains, protocol)``: derive ADSL (DLTs adjudicated by the protocol's DLT rules,
  ``celltrial.derive``), and, for BOIN12, ADRS/ADPP; then the protocol's design
  (``celltrial.design.live``). The study's maximum (``escalation.max_n``, the design's
  maximum sample size and the target enrolment, whichever is smallest) stops it, counting
  patients infused; after escalation ends, the recommended dose is expanded until it holds
  ``escalation.expansion_n`` patients (when the protocol has one).
- Cohorts (``cohorts``): infused patients in order of first infusion; a new cohort starts
  when the dose changes, when the cohort is full (``cohort_size``), or when the patient's
  first infusion comes after the DLT window of the previous patient closed (a cohort is dosed
  before the previous one has been observed only within that window).
- The decision that applied to cohort k is ``decide`` on the records as they stood the day
  before its first infusion (:func:`celltrial.conduct.datacut.apply_data_cut`). A cohort dosed
  at another dose, or after the design stopped, is a protocol deviation, listed with the
  decision that should have applied.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from celltrial.conduct.datacut import apply_data_cut
from celltrial.design.data import Decision
from celltrial.design.live import LiveDecision, escalation_spec, live_decision, make_design
from celltrial.errors import NotComputable

__all__ = ["Cohort", "CohortStep", "EscalationHistory", "cohorts", "decide",
           "enrolment_cap", "escalation_history"]


def enrolment_cap(protocol: Any) -> int:
    """Most patients dosed during escalation: the smallest of ``escalation.max_n``, the design's
    maximum sample size and the target enrolment."""
    spec = escalation_spec(protocol)
    design = make_design(spec, len(protocol.dose_levels))
    caps = [design.max_n, int(protocol.target_enrollment)]
    if spec.max_n is not None:
        caps.append(spec.max_n)
    return int(min(caps))


def expansion_size(protocol: Any) -> int:
    block = getattr(protocol, "escalation", None)
    return int(getattr(block, "expansion_n", None) or 0)


def _datasets(domains: Mapping[str, pd.DataFrame], protocol: Any,
              adsl: pd.DataFrame | None = None
              ) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    from celltrial.derive import build_adsl

    if adsl is None:
        adsl = build_adsl(domains, protocol)
    adrs = adpp = None
    if escalation_spec(protocol).design == "boin12":
        from celltrial.derive import build_adpc, build_adpp, build_adrs

        adrs = build_adrs(domains, adsl)
        adpp = build_adpp(build_adpc(domains, adsl))
    return adsl, adrs, adpp


@dataclass(frozen=True)
class Verdict:
    """What the protocol allows next: a dose (1-based) or none, and why."""

    live: LiveDecision
    decision: Decision
    phase: str            # "escalation" | "expansion" | "closed"


def decide(domains: Mapping[str, pd.DataFrame], protocol: Any,
           adsl: pd.DataFrame | None = None) -> Verdict:
    """The protocol's decision for the next cohort from these records (module docstring);
    ``adsl``: the records' ADSL when the caller already derived it."""
    adsl, adrs, adpp = _datasets(domains, protocol, adsl)
    live = live_decision(adsl, protocol, adrs, adpp)
    treated = adsl[adsl["SAFFL"] == "Y"]
    infused = len(treated)
    cap, expand_to = enrolment_cap(protocol), expansion_size(protocol)
    decision, phase = live.decision, "escalation"
    if decision.action != "stop" and infused >= cap:
        decision = Decision("stop", None, f"{infused} patients dosed: the study's maximum of "
                            f"{cap} for dose escalation is reached")
    if decision.action == "stop":
        phase = "closed"
        sel = live.selection.dose
        at_sel = int((treated["TRT01AN"] == sel).sum()) if sel is not None else 0
        if sel is not None and at_sel < expand_to:
            decision = Decision("stay", sel, f"expansion: dose {sel} recommended "
                                f"({live.selection.reason}); {at_sel} of {expand_to} patients "
                                f"dosed there (escalation ended: {decision.reason})")
            phase = "expansion"
    return Verdict(live, decision, phase)


@dataclass(frozen=True)
class Cohort:
    """Consecutive patients dosed together at one level."""

    number: int
    dose: int                      # 1-based dose index
    level: str
    subjects: tuple[str, ...]
    first_infusion: dt.date


def cohorts(adsl: pd.DataFrame, protocol: Any) -> list[Cohort]:
    """The cohorts of the infused patients (module docstring)."""
    spec = escalation_spec(protocol)
    window = int(protocol.dlt.window_days)
    levels = [lv.id for lv in protocol.dose_levels]
    treated = adsl[(adsl["SAFFL"] == "Y") & adsl["TRT01AN"].notna()]
    treated = treated.sort_values(["TRTSDTM", "USUBJID"], kind="stable")
    out: list[Cohort] = []
    members: list[str] = []
    dose, first, last = None, None, None
    for row in treated.itertuples(index=False):
        d, day = int(row.TRT01AN), pd.Timestamp(row.TRTSDT).date()
        new = (dose is None or d != dose or len(members) >= spec.cohort_size
               or (last is not None and (day - last).days > window))
        if new and members:
            out.append(Cohort(len(out) + 1, dose, levels[dose - 1], tuple(members), first))
            members = []
        if new:
            dose, first = d, day
        members.append(str(row.USUBJID))
        last = day
    if members:
        out.append(Cohort(len(out) + 1, dose, levels[dose - 1], tuple(members), first))
    return out


@dataclass(frozen=True)
class CohortStep:
    """One cohort with the decision in force before it and whether it was followed."""

    cohort: Cohort
    decided_on: dt.date            # the records as of this day decided the cohort's dose
    decision: Decision
    phase: str

    @property
    def deviation(self) -> str | None:
        d = self.decision
        if d.dose == self.cohort.dose:
            return None
        c = self.cohort
        given = f"cohort {c.number} dosed at dose {c.dose} ({c.level})"
        if d.dose is None:
            return f"{given} after the design stopped: {d.reason}"
        return f"{given}; the design allowed dose {d.dose}: {d.reason}"

    def as_dict(self) -> dict[str, Any]:
        c = self.cohort
        return {"cohort": c.number, "dose": c.dose, "level": c.level,
                "subjects": list(c.subjects), "first_infusion": c.first_infusion.isoformat(),
                "decided_on": self.decided_on.isoformat(), "phase": self.phase,
                "decision": {"action": self.decision.action, "dose": self.decision.dose,
                             "reason": self.decision.reason},
                "deviation": self.deviation}


@dataclass(frozen=True)
class EscalationHistory:
    """Every cohort with its decision, and the decision in force at the data cut."""

    study: str
    steps: tuple[CohortStep, ...]
    current: Verdict
    data_cut: dt.date | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def deviations(self) -> tuple[CohortStep, ...]:
        return tuple(s for s in self.steps if s.deviation is not None)

    def as_dict(self) -> dict[str, Any]:
        cur = self.current
        return {"study": self.study,
                "data_cut": None if self.data_cut is None else self.data_cut.isoformat(),
                "cohorts": [s.as_dict() for s in self.steps],
                "deviations": [s.deviation for s in self.deviations],
                "next": {"action": cur.decision.action, "dose": cur.decision.dose,
                         "reason": cur.decision.reason, "phase": cur.phase}}


def escalation_history(domains: Mapping[str, pd.DataFrame], protocol: Any,
                       data_cut: dt.date | None = None) -> EscalationHistory:
    """Replay the escalation of a study on its records (module docstring)."""
    from celltrial.derive import build_adsl

    if data_cut is not None:
        domains = apply_data_cut(domains, data_cut)
    if not protocol.dose_levels:
        raise NotComputable(f"protocol {protocol.id} has no dose levels")
    adsl = build_adsl(domains, protocol)
    steps = []
    for cohort in cohorts(adsl, protocol):
        before = cohort.first_infusion - dt.timedelta(days=1)
        verdict = decide(apply_data_cut(domains, before), protocol)
        steps.append(CohortStep(cohort, before, verdict.decision, verdict.phase))
    return EscalationHistory(protocol.id, tuple(steps), decide(domains, protocol, adsl),
                             data_cut)
