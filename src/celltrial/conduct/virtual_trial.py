"""Virtual trials conducted by their own protocol, cohort by cohort, in calendar time.

The loop (docs/conduct.md) is the one a phase I site runs:

1. referred virtual patients (``kinetics.virtual.draw_patients``) are screened against the
   protocol's eligibility (``celltrial.clinical.screen``) until the next cohort slot is filled;
2. the cohort is dosed at the level the protocol's design decided (bags and split fractions;
   the split-infusion hold rules withhold later fractions, ``clinical.next_fraction``), and
   each patient's whole course is generated (``kinetics.virtual.simulate_cohort`` and
   ``subject_records``);
3. once the DLT window of the cohort has closed (plus :data:`REVIEW_DAYS` for the
   dose-escalation committee), the next cohort's dose is decided by
   :func:`celltrial.conduct.escalation.decide` on the records as they stood the day before it
   is dosed (``apply_data_cut``): DLTs derived from the generated records by the same code as
   real data, then the protocol's design (3+3, BOIN, CRM or BOIN12);
4. until the design stops, the study's maximum is dosed, the referred patients run out, or
   the next cohort would start after the data cut; then the recommended dose is expanded
   where the protocol has an expansion.

Finally every record after the data cut is removed and patients still in follow-up are
ongoing. ``celltrial escalate`` on the stored data reproduces every decision (the replay uses
the same ``decide`` on the same cuts; a test checks it on all five studies).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from celltrial.conduct.datacut import apply_data_cut, parse_cut
from celltrial.conduct.escalation import Verdict, decide, enrolment_cap
from celltrial.errors import invalid

__all__ = ["FIRST_INFUSION", "VirtualTrial", "run_virtual_trial", "simulate_study",
           "write_study"]

FIRST_INFUSION = dt.date(2025, 1, 6)
"""First infusion of the first patient of every virtual study."""

STAGGER_DAYS = 7
WAIT_DAYS = 7  # a time-to-event design asked to wait: look again a week later
"""Days between the first infusions of patients of one cohort (sentinel dosing; assumption,
the usual stagger of CAR-T phase I cohorts)."""

REVIEW_DAYS = 7
"""Days from the close of a cohort's DLT window to the next cohort's first infusion (safety
review by the dose-escalation committee; assumption)."""

VIRTUAL_USER = "celltrial-virtual-patients"
"""The audit trail's "who" for virtual studies."""


@dataclass(frozen=True)
class Step:
    """One cohort of a virtual trial: the decision that chose its dose, and who was dosed."""

    number: int
    dose: int                       # 1-based
    level: str
    first_infusion: dt.date
    decided_on: dt.date | None      # the day whose records decided (None for cohort 1)
    action: str
    reason: str
    phase: str
    subjects: tuple[str, ...]


@dataclass(frozen=True)
class VirtualTrial:
    """A virtual study: its SDTM domains (cut at ``data_cut``) and the escalation it ran."""

    study: str
    seed: int
    screened: int
    data_cut: dt.date
    domains: dict[str, pd.DataFrame]
    steps: tuple[Step, ...]
    final: Verdict | None           # the decision in force at the data cut
    stopped: str                    # why enrolment ended

    def as_dict(self) -> dict[str, Any]:
        return {"study": self.study, "seed": self.seed, "screened": self.screened,
                "data_cut": self.data_cut.isoformat(), "stopped": self.stopped,
                "cohorts": [{"cohort": s.number, "dose": s.dose, "level": s.level,
                             "first_infusion": s.first_infusion.isoformat(),
                             "decided_on": s.decided_on.isoformat() if s.decided_on else None,
                             "action": s.action, "reason": s.reason, "phase": s.phase,
                             "subjects": list(s.subjects)} for s in self.steps],
                "next": None if self.final is None else {
                    "action": self.final.decision.action, "dose": self.final.decision.dose,
                    "reason": self.final.decision.reason, "phase": self.final.phase}}


def run_virtual_trial(protocol: Any, n_patients: int, seed: int, *,
                      data_cut: str | dt.date | None = None,
                      progress: Callable[[int, int], None] | None = None) -> VirtualTrial:
    """Conduct a virtual study of ``protocol`` (module docstring): at most ``n_patients``
    referred, seeded by ``seed``, records up to ``data_cut`` (default today). The same seed
    and data cut give identical data; ``progress(done, total)`` follows the referrals."""
    from celltrial.kinetics.mechanistic import CD7Model
    from celltrial.kinetics.virtual import (
        _Rows, draw_patients, late_days, screen_patient, simulate_cohort, subject_records,
    )

    if isinstance(n_patients, bool) or not isinstance(n_patients, int) or n_patients < 1:
        raise invalid("n_patients", n_patients, "a positive number of patients")
    cut = parse_cut(data_cut)
    rng = np.random.default_rng(seed)
    patients = draw_patients(protocol, n_patients, rng)
    seeds = rng.integers(0, 2**63 - 1, size=n_patients)
    cohort_rng = np.random.default_rng(rng.integers(0, 2**63 - 1))
    model, days_late = CD7Model(), late_days(protocol)
    cohort_size = int(protocol.escalation.cohort_size) if protocol.escalation else 3
    cap = enrolment_cap(protocol)
    window = int(protocol.dlt.window_days)
    levels = [lv.id for lv in protocol.dose_levels]
    rows = _Rows(protocol.id)
    steps: list[Step] = []
    referred, start, stopped = 0, FIRST_INFUSION, "referred patients exhausted"

    def refer(slot_day0: dt.date) -> int | None:
        """Screen referred patients until one is eligible; its index, or None."""
        nonlocal referred
        while referred < n_patients:
            i = referred
            referred += 1
            values = {k: (v.item() if hasattr(v, "item") else v)
                      for k, v in patients.iloc[i].to_dict().items()}
            ok, failed = screen_patient(protocol, values)
            if ok:
                return i
            subject_records(rows, protocol, patients.iloc[i], _usubjid(protocol, i), i,
                            slot_day0, (ok, failed), prng=np.random.default_rng(seeds[i]))
            if progress is not None:
                progress(referred, n_patients)
        return None

    while True:
        if start > cut:
            stopped = "the next cohort would start after the data cut"
            break
        decided_on = None
        if steps:
            decided_on = start - dt.timedelta(days=1)
            verdict = decide(apply_data_cut(rows.frames(), decided_on), protocol)
            if verdict.decision.action == "wait":  # time-to-event designs: too many pending
                start += dt.timedelta(days=WAIT_DAYS)
                continue
            if verdict.decision.action == "stop" or verdict.decision.dose is None:
                stopped = f"the design stopped: {verdict.decision.reason}"
                break
            dose, action, reason, phase = (verdict.decision.dose, verdict.decision.action,
                                           verdict.decision.reason, verdict.phase)
        else:
            first = _first_decision(protocol)
            dose, action, reason, phase = first.dose, first.action, first.reason, "escalation"
        dosed_so_far = sum(len(s.subjects) for s in steps)
        size = cohort_size if phase == "expansion" else min(cohort_size, cap - dosed_so_far)
        members: list[int] = []
        day0s: list[dt.date] = []
        for j in range(size):
            day0 = start + dt.timedelta(days=STAGGER_DAYS * j)
            if day0 > cut:
                break
            i = refer(day0)
            if i is None:
                break
            members.append(i)
            day0s.append(day0)
        if not members:
            stopped = "referred patients exhausted" if referred >= n_patients else \
                "the next patient would be dosed after the data cut"
            break
        cohort = simulate_cohort(protocol, patients.iloc[members].reset_index(drop=True),
                                 dose - 1, cohort_rng, days_late, model)
        for k, (i, day0) in enumerate(zip(members, day0s, strict=True)):
            subject_records(rows, protocol, patients.iloc[i], _usubjid(protocol, i), i, day0,
                            (True, []), prng=np.random.default_rng(seeds[i]), outcome=cohort,
                            k=k)
            if progress is not None:
                progress(referred, n_patients)
        steps.append(Step(len(steps) + 1, dose, levels[dose - 1], day0s[0], decided_on, action,
                          reason, phase, tuple(_usubjid(protocol, i) for i in members)))
        start = day0s[-1] + dt.timedelta(days=window + REVIEW_DAYS + 1)
    domains = apply_data_cut(rows.frames(), cut)
    final = decide(domains, protocol) if steps else None
    if progress is not None:
        progress(n_patients, n_patients)
    return VirtualTrial(protocol.id, seed, referred, cut, domains, tuple(steps), final, stopped)


def _first_decision(protocol: Any) -> Any:
    """The design's decision before anyone is dosed (its start dose)."""
    from celltrial.design.data import EscalationData
    from celltrial.design.live import escalation_spec, make_design

    design = make_design(escalation_spec(protocol), len(protocol.dose_levels))
    return design.next_dose(EscalationData(len(protocol.dose_levels)))


def _usubjid(protocol: Any, i: int) -> str:
    return f"{protocol.id}-{i + 1:03d}"


def simulate_study(protocol: Any, n_patients: int, seed: int, *,
                   data_cut: str | dt.date | None = None,
                   progress: Callable[[int, int], None] | None = None
                   ) -> dict[str, pd.DataFrame]:
    """The SDTM domains of :func:`run_virtual_trial`."""
    return run_virtual_trial(protocol, n_patients, seed, data_cut=data_cut,
                             progress=progress).domains


def write_study(store: Any, protocol: Any, n_patients: int, seed: int, *,
                data_cut: str | dt.date | None = None,
                user: str = VIRTUAL_USER) -> VirtualTrial:
    """Conduct a virtual study and write it through ``celltrial.store.write_domains``
    (validated, audited, one transaction; the audit reason names the generator, the seed and
    the data cut)."""
    from celltrial.store import write_domains

    trial = run_virtual_trial(protocol, n_patients, seed, data_cut=data_cut)
    write_domains(store, protocol.id, trial.domains, user=user, source="virtual",
                  reason=f"virtual study: mechanistic CD7 CAR-T model, {n_patients} referred, "
                         f"seed {seed}, data cut {trial.data_cut.isoformat()}")
    return trial
