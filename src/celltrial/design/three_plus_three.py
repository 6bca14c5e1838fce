"""The 3+3 design (Storer 1989), the variant coded in the R package escalation
(`three_plus_three`, allow_deescalate = FALSE; CLINICAL_REFERENCE 7.1):

- 3 patients at a dose: 0/3 DLT -> escalate (at the top dose: stop and recommend it);
  1/3 -> treat 3 more at the same dose; >= 2/3 -> stop, recommend the previous dose (none if
  dose 1).
- 6 patients: <= 1/6 -> escalate (top dose: stop, recommend it); >= 2/6 -> stop, recommend
  the previous dose.
- No de-escalation: a dose is never revisited, so the dose below a failed dose may have 3 or
  6 patients. Start at dose 1. Maximum 6 patients per dose.

Operating characteristics are exact: `exact_operating_characteristics` sums over the
outcomes of each dose (binomial probabilities), no simulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

from celltrial.design.data import Decision, EscalationData, Selection, check_probabilities
from celltrial.errors import invalid


@dataclass(frozen=True)
class ThreePlusThree:
    """3+3 design specification (see module docstring)."""

    n_doses: int = 5

    def __post_init__(self) -> None:
        if not isinstance(self.n_doses, int) or self.n_doses < 1:
            raise invalid("n_doses", self.n_doses, "an integer >= 1")

    @property
    def cohort_size(self) -> int:
        return 3

    @property
    def max_n(self) -> int:
        return 6 * self.n_doses

    @staticmethod
    def _cleared(n: int, y: int) -> bool:
        return (n >= 3 and y == 0) or (n >= 6 and y <= 1)

    def next_dose(self, data: EscalationData) -> Decision:
        """3+3 decision for the next cohort."""
        if data.n_doses != self.n_doses:
            raise invalid("data.n_doses", data.n_doses, f"{self.n_doses} (the design's doses)")
        if data.n_patients == 0:
            return Decision("stay", 1, "start at dose 1")
        n, y = data.n(), data.y()
        failed = np.flatnonzero(y >= 2)
        if failed.size:
            f = int(failed[0]) + 1
            rec = f"recommend dose {f - 1}" if f > 1 else "no dose recommended"
            return Decision("stop", None, f"{int(y[f - 1])}/{int(n[f - 1])} DLT at dose {f} "
                            f"(>= 2): stop, {rec}")
        d = int(data.current_dose or 1)
        nd, yd = int(n[d - 1]), int(y[d - 1])
        counts = f"{yd}/{nd} DLT at dose {d}"
        if nd < 3:
            return Decision("stay", d, f"{counts}: complete the cohort of 3")
        if yd == 1 and nd < 6:
            return Decision("stay", d, f"{counts}: treat 3 more at the same dose")
        if self._cleared(nd, yd):
            if d == self.n_doses:
                return Decision("stop", None, f"{counts} at the top dose: stop, recommend it")
            return Decision("escalate", d + 1, f"{counts}: escalate")
        return Decision("stay", d, f"{counts}: complete the cohort")

    def select(self, data: EscalationData) -> Selection:
        """Recommended dose (MTD) of the 3+3 rule; provisional while the trial runs."""
        n, y = data.n(), data.y()
        est = tuple(float(y[i] / n[i]) if n[i] else None for i in range(self.n_doses))
        failed = np.flatnonzero(y >= 2)
        if failed.size:
            f = int(failed[0]) + 1
            if f == 1:
                return Selection(None, ">= 2 DLT at dose 1: no dose recommended", est)
            return Selection(f - 1, f">= 2 DLT at dose {f}: the previous dose", est)
        cleared = [i + 1 for i in range(self.n_doses) if self._cleared(int(n[i]), int(y[i]))]
        if cleared and cleared[-1] == self.n_doses:
            return Selection(self.n_doses, "top dose cleared", est)
        if cleared:
            return Selection(cleared[-1], "trial not finished: highest dose cleared so far "
                             "(provisional)", est)
        return Selection(None, "no dose cleared yet", est)


@dataclass(frozen=True)
class ExactOC:
    """Exact operating characteristics of the 3+3 design."""

    selection_pct: tuple[float, ...]
    mean_patients: tuple[float, ...]
    mean_dlts: tuple[float, ...]
    stop_pct: float


def exact_operating_characteristics(design: ThreePlusThree, p_true: object) -> ExactOC:
    """Exact selection %, expected patients and DLTs per dose by enumerating each dose's
    outcomes: pass with 0/3 or 1/3 then 0/3; fail otherwise (the previous dose is chosen)."""
    p = check_probabilities("p_true", p_true, design.n_doses)  # type: ignore[arg-type]
    b0, b1 = binom.pmf(0, 3, p), binom.pmf(1, 3, p)
    passes = b0 + b1 * b0
    reach = np.concatenate([[1.0], np.cumprod(passes)[:-1]])
    patients = reach * (3 + 3 * b1)
    dlts = reach * (3 * p + b1 * 3 * p)
    fail = reach * (1 - passes)
    sel = np.append(fail[1:], reach[-1] * passes[-1])
    return ExactOC(tuple(float(v) for v in 100 * sel), tuple(float(v) for v in patients),
                   tuple(float(v) for v in dlts), float(100 * fail[0]))
