"""BOIN: Bayesian optimal interval design (Liu & Yuan, JRSS C 2015;64:507-523).

Rules as in the R package BOIN 2.7.2 (`get.oc`, `select.mtd`; CLINICAL_REFERENCE 7.2):
after each cohort, with y DLTs in n patients at the current dose d,
- eliminate d and every higher dose if n >= 3 and P(p > target | y, n) > 0.95 (Beta(1,1)
  prior); stop the trial if dose 1 is eliminated (no MTD);
- y/n <= lambda_e: escalate (unless d is the top dose or d+1 is eliminated: stay);
- y/n >= lambda_d: de-escalate (stay at dose 1);
- otherwise stay;
- optional: stop when n at the current dose reaches ``n_earlystop`` and the rule would keep
  the dose (BOIN `n.earlystop`);
- the trial stops at ``cohort_size * n_cohorts`` patients.
MTD: isotonic regression of the non-eliminated treated doses, dose closest to the target
(`celltrial.design.isotonic`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from celltrial.design.boundaries import (
    DEESCALATE,
    ELIMINATE,
    ESCALATE,
    boin_boundaries,
    decision_codes,
    elimination_count,
)
from celltrial.design.data import Decision, EscalationData, Selection
from celltrial.design.isotonic import boin_estimates, closest_to_target, isotonic_batch
from celltrial.errors import invalid


def _check_int(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < minimum:
        raise invalid(name, value, f"an integer >= {minimum}")


@dataclass(frozen=True)
class BOIN:
    """BOIN design specification (hyper-parameters only; see module docstring)."""

    target: float = 0.3
    n_doses: int = 5
    cohort_size: int = 3
    n_cohorts: int = 10
    phi1: float | None = None
    phi2: float | None = None
    cutoff_eli: float = 0.95
    n_earlystop: int | None = None
    start_dose: int = 1

    def __post_init__(self) -> None:
        _check_int("n_doses", self.n_doses, 1)
        _check_int("cohort_size", self.cohort_size, 1)
        _check_int("n_cohorts", self.n_cohorts, 1)
        if self.n_earlystop is not None:
            _check_int("n_earlystop", self.n_earlystop, 1)
        if not 1 <= self.start_dose <= self.n_doses:
            raise invalid("start_dose", self.start_dose, f"a dose index in 1..{self.n_doses}")
        if not 0.5 <= self.cutoff_eli < 1:
            raise invalid("cutoff_eli", self.cutoff_eli, "in [0.5, 1)")
        boin_boundaries(self.target, self.phi1, self.phi2)  # validates target/phi1/phi2

    @property
    def max_n(self) -> int:
        return self.cohort_size * self.n_cohorts

    @property
    def boundaries(self) -> tuple[float, float]:
        """(lambda_e, lambda_d)."""
        return boin_boundaries(self.target, self.phi1, self.phi2)

    @cached_property
    def codes(self) -> np.ndarray:
        """Decision lookup ``codes[n, y]`` for n = 0..max_n (see `boundaries.decision_codes`)."""
        return decision_codes(self.target, self.max_n, self.phi1, self.phi2, self.cutoff_eli)

    def eliminated_from(self, n: np.ndarray, y: np.ndarray) -> int | None:
        """0-based index of the lowest eliminated dose (it and all higher are out), or None."""
        codes = self.codes
        for i in range(self.n_doses):
            ni, yi = int(n[i]), int(y[i])
            if ni < 3:
                continue
            if ni <= self.max_n:
                if codes[ni, yi] == ELIMINATE:
                    return i
                continue
            e = elimination_count(ni, self.target, self.cutoff_eli)
            if e is not None and yi >= e:
                return i
        return None

    def next_dose(self, data: EscalationData) -> Decision:
        """BOIN decision for the next cohort (Liu & Yuan 2015; BOIN 2.7.2 get.oc loop)."""
        _same_doses(self, data)
        if data.n_patients == 0:
            return Decision("stay", self.start_dose, f"start at dose {self.start_dose}")
        n, y = data.n(), data.y()
        elim = self.eliminated_from(n, y)
        if elim == 0:
            return Decision("stop", None, "dose 1 eliminated: P(DLT rate > "
                            f"{self.target:g} | data) > {self.cutoff_eli:g}; no MTD")
        d = int(data.current_dose or self.start_dose) - 1
        nd, yd = int(n[d]), int(y[d])
        lam_e, lam_d = self.boundaries
        counts = f"{yd}/{nd} DLT at dose {d + 1}"
        if data.n_patients >= self.max_n:
            return Decision("stop", None, f"maximum sample size {self.max_n} reached; select the MTD")
        if nd == 0:
            return Decision("stay", d + 1, f"no patient treated yet at dose {d + 1}")
        code = int(self.codes[min(nd, self.max_n), yd]) if nd <= self.max_n else _code_beyond(
            self, nd, yd)
        top_blocked = d == self.n_doses - 1 or (elim is not None and d + 1 >= elim)
        if code == ELIMINATE:
            action, dose, rule = "de-escalate", d, (
                f"{counts}: P(DLT rate > {self.target:g}) > {self.cutoff_eli:g}, doses >= "
                f"{d + 1} eliminated; de-escalate")
        elif code == DEESCALATE:
            rule = f"{counts}: rate {yd / nd:.3f} >= lambda_d {lam_d:.4f}; de-escalate"
            action, dose = ("de-escalate", d) if d > 0 else ("stay", 1)
            if d == 0:
                rule += " (already at dose 1: stay)"
        elif code == ESCALATE:
            rule = f"{counts}: rate {yd / nd:.3f} <= lambda_e {lam_e:.4f}; escalate"
            if top_blocked:
                action, dose = "stay", d + 1
                rule += (" (top dose: stay)" if d == self.n_doses - 1
                         else f" (dose {d + 2} eliminated: stay)")
            else:
                action, dose = "escalate", d + 2
        else:
            action, dose = "stay", d + 1
            rule = f"{counts}: lambda_e {lam_e:.4f} < rate {yd / nd:.3f} < lambda_d {lam_d:.4f}; stay"
        if self.n_earlystop is not None and nd >= self.n_earlystop and dose == d + 1:
            return Decision("stop", None, f"{nd} patients at dose {d + 1} >= n_earlystop "
                            f"{self.n_earlystop} and the rule keeps the dose ({rule}); select the MTD")
        return Decision(action, dose, rule)

    def select(self, data: EscalationData) -> Selection:
        """MTD by isotonic regression (BOIN 2.7.2 select.mtd; CLINICAL_REFERENCE 7.2)."""
        _same_doses(self, data)
        n, y = data.n(), data.y()
        elim = self.eliminated_from(n, y)
        if elim == 0:
            return Selection(None, "dose 1 eliminated for toxicity; no MTD",
                             tuple(None for _ in range(self.n_doses)))
        adm = (n > 0) & (np.arange(self.n_doses) < (self.n_doses if elim is None else elim))
        if not adm.any():
            return Selection(None, "no patient treated", tuple(None for _ in range(self.n_doses)))
        phat, w = boin_estimates(n, y)
        fit = isotonic_batch(phat[None, :], np.where(adm, w, 0.0)[None, :])[0]
        idx = int(closest_to_target(fit[None, :], self.target)[0])
        est = tuple(None if np.isnan(v) else float(v) for v in fit)
        return Selection(idx + 1, f"isotonic DLT estimate {fit[idx]:.3f} closest to target "
                         f"{self.target:g} among doses treated and not eliminated", est)


def _code_beyond(design: BOIN, n: int, y: int) -> int:
    """Decision code for live data with more patients at a dose than the table holds."""
    return int(decision_codes(design.target, n, design.phi1, design.phi2,
                              design.cutoff_eli)[n, y])


def _same_doses(design: object, data: EscalationData) -> None:
    if data.n_doses != design.n_doses:  # type: ignore[attr-defined]
        raise invalid("data.n_doses", data.n_doses,
                      f"the design's number of doses ({design.n_doses})")  # type: ignore[attr-defined]
