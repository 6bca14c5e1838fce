"""celltrial.conduct: the conduct loop of a phase I trial (docs/conduct.md).

Enrol a cohort -> dose (split fractions, hold rules) -> observe through the DLT window ->
adjudicate DLTs -> the design decides the next dose -> enrol again. One piece of code serves
virtual trials (:mod:`~celltrial.conduct.virtual_trial`), the live trial and its history
(:mod:`~celltrial.conduct.escalation`, ``celltrial escalate``), and the data cut
(:mod:`~celltrial.conduct.datacut`). It sits above ``design``, ``kinetics``, ``derive`` and
``clinical``; none of them imports it.
"""

from celltrial.conduct.datacut import RECORD_DATE_COLUMNS, apply_data_cut, parse_cut
from celltrial.conduct.escalation import (
    Cohort, CohortStep, EscalationHistory, Verdict, cohorts, decide, enrolment_cap,
    escalation_history,
)
from celltrial.conduct.virtual_trial import (
    FIRST_INFUSION, VIRTUAL_USER, VirtualTrial, run_virtual_trial, simulate_study, write_study,
)

__all__ = [
    "FIRST_INFUSION", "RECORD_DATE_COLUMNS", "VIRTUAL_USER", "Cohort", "CohortStep",
    "EscalationHistory", "Verdict",
    "VirtualTrial", "apply_data_cut", "cohorts", "decide", "enrolment_cap",
    "escalation_history", "parse_cut", "run_virtual_trial", "simulate_study", "write_study",
]
