"""Operating characteristics of time-to-event designs (TITE-BOIN, TITE-CRM) in calendar time.

Trial conduct, as simulated by Yuan et al. (Clin Cancer Res 2018;24:4921-4930) and Lin & Yuan
(Biostatistics 2020;21:807-824) and coded in the R package TITEgBOIN 0.4.0
(``get_oc_TITE_QuasiBOIN``); dfcrm 0.2-2.1 ``titesim`` (Cheung) is the same with cohorts of 1:

- patients arrive by a Poisson process, ``accrual`` patients per time unit (exponential gaps),
  or at fixed gaps 1/``accrual`` (``arrivals="fixed"``, dfcrm ``accrual="fixed"``); the first
  patient arrives at time 0;
- a cohort is the patient arriving at a decision time and the next ``cohort_size - 1``
  arrivals, all given the dose decided then (cohort size 1: a decision at every arrival);
- the decision for the next cohort is taken when its first patient arrives, on what is
  observed at that time only (`observed_data`): a DLT is seen at entry + its onset time; a
  patient without DLT is complete at entry + window; everyone else is pending with the
  fraction (t - entry)/window of the window observed;
- a ``wait`` decision turns the arriving patient away (accrual suspended); the decision is
  taken again at the next arrival;
- the trial ends when ``max_n`` patients are enrolled or the design stops; its duration is the
  last entry + window (every enrolled patient completes the window; the definition of
  TITEgBOIN and of dfcrm ``Duration``); the MTD is selected on the complete data, and a trial
  stopped with no dose selectable at the stop counts as stopped without a selection.

Time to DLT (`TiteSettings.dlt_time`): ``"uniform"`` - a DLT with probability p, its onset
uniform in the window (dfcrm ``surv="uniform"``); ``"weibull"`` - a Weibull time T with
P(T <= W) = p and P(T <= W/2) = (1 - late) p, a DLT when T <= W (TITEgBOIN with
``alpha1 = late``, ``alpha2 = 1/2``; ``late = 0.5``: half of the DLTs in the second half of
the window).

`CompleteFollowUp` wraps any design into the usual practice of waiting until every enrolled
patient has completed the window before the next cohort, the comparator for trial duration.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from celltrial.design.data import (
    Decision,
    DoseDesign,
    EscalationData,
    Selection,
    check_probabilities,
)
from celltrial.errors import invalid


@dataclass(frozen=True)
class TiteSettings:
    """Calendar-time assumptions of a simulated trial (module docstring)."""

    window: float = 3.0
    accrual: float = 2.0
    arrivals: Literal["poisson", "fixed"] = "poisson"
    dlt_time: Literal["uniform", "weibull"] = "weibull"
    late: float = 0.5

    def __post_init__(self) -> None:
        for name in ("window", "accrual"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise invalid(name, v, "a finite number > 0")
        if self.arrivals not in ("poisson", "fixed"):
            raise invalid("arrivals", self.arrivals, "'poisson' or 'fixed'")
        if self.dlt_time not in ("uniform", "weibull"):
            raise invalid("dlt_time", self.dlt_time, "'uniform' or 'weibull'")
        if not 0 < self.late < 1:
            raise invalid("late", self.late, "a fraction in (0, 1)")

    def gap(self, rng: np.random.Generator) -> float:
        """Time to the next arrival."""
        if self.arrivals == "fixed":
            return 1.0 / self.accrual
        return float(rng.exponential(1.0 / self.accrual))

    def outcomes(self, p: float, size: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(DLT 0/1, onset time from entry; inf without DLT) for ``size`` patients at a dose
        with DLT probability ``p`` within the window."""
        w = self.window
        if self.dlt_time == "uniform":
            dlt = rng.random(size) < p
            onset = rng.random(size) * w
        elif p <= 0:
            return np.zeros(size, dtype=np.int64), np.full(size, np.inf)
        elif p >= 1:
            dlt = np.ones(size, dtype=bool)
            onset = rng.random(size) * w
        else:
            # Weibull S(t) = exp(-lam t^k): S(W) = 1 - p, S(W/2) = 1 - (1 - late) p
            k = math.log(math.log(1 - p) / math.log(1 - (1 - self.late) * p)) / math.log(2)
            u = 1.0 - rng.random(size)  # in (0, 1]
            onset = w * (np.log(u) / math.log(1 - p)) ** (1 / k)
            dlt = onset <= w
        onset = np.where(dlt, onset, np.inf)
        return dlt.astype(np.int64), onset


def observed_data(n_doses: int, entry: np.ndarray, dose: np.ndarray, dlt: np.ndarray,
                  onset: np.ndarray, t: float, window: float) -> EscalationData:
    """What a design may see at calendar time ``t``: a DLT only once it has occurred
    (entry + onset <= t); follow-up fraction min((t - entry)/window, 1) for the others, 1 for
    a patient with an observed DLT (complete)."""
    entry = np.asarray(entry, dtype=np.float64)
    seen = (np.asarray(dlt) == 1) & (entry + np.asarray(onset, dtype=np.float64) <= t)
    follow = np.where(seen, 1.0, np.minimum((t - entry) / window, 1.0))
    return EscalationData(n_doses, tuple(int(d) for d in dose),
                          tuple(int(v) for v in seen), followup=tuple(float(v) for v in follow))


@dataclass(frozen=True)
class CompleteFollowUp:
    """Any design run the usual way: wait until every enrolled patient has completed the DLT
    window (or had a DLT), then decide on complete data."""

    base: Any

    @property
    def n_doses(self) -> int:
        return int(self.base.n_doses)

    @property
    def max_n(self) -> int:
        return int(self.base.max_n)

    @property
    def cohort_size(self) -> int:
        return int(self.base.cohort_size)

    def next_dose(self, data: EscalationData) -> Decision:
        if data.followup is not None:
            pending = sum(1 for y, f in zip(data.dlt, data.followup, strict=True)
                          if y == 0 and f is not None and f < 1)
            if pending:
                return Decision("wait", data.current_dose, f"{pending} patients still inside "
                                "the DLT window: wait for complete data")
        return self.base.next_dose(data)

    def select(self, data: EscalationData) -> Selection:
        return self.base.select(data)


@dataclass(frozen=True)
class TiteTrial:
    """One simulated trial: patients in order of entry and the decisions taken."""

    entry: np.ndarray
    dose: np.ndarray
    dlt: np.ndarray
    onset: np.ndarray
    decisions: tuple[tuple[float, Decision], ...]
    selected: int | None
    duration: float

    @property
    def waits(self) -> int:
        return sum(1 for _, d in self.decisions if d.action == "wait")


def simulate_trial(design: DoseDesign, p_true: Any, settings: TiteSettings,
                   rng: np.random.Generator) -> TiteTrial:
    """One trial in calendar time (module docstring)."""
    p = check_probabilities("p_true", p_true, design.n_doses)
    k, cs, max_n, w = design.n_doses, design.cohort_size, design.max_n, settings.window
    entry: list[float] = []
    dose: list[int] = []
    dlt: list[int] = []
    onset: list[float] = []
    log: list[tuple[float, Decision]] = []
    t = 0.0
    decision = design.next_dose(EscalationData(k))
    stop_view: EscalationData | None = None
    while True:
        d = decision.dose
        assert d is not None
        m = min(cs, max_n - len(entry))
        y, u = settings.outcomes(float(p[d - 1]), m, rng)
        for j in range(m):
            if j:
                t += settings.gap(rng)
            entry.append(t)
            dose.append(d)
        dlt.extend(int(v) for v in y)
        onset.extend(float(v) for v in u)
        if len(entry) >= max_n:
            break
        while True:
            t += settings.gap(rng)
            view = observed_data(k, np.array(entry), np.array(dose), np.array(dlt),
                                 np.array(onset), t, w)
            decision = design.next_dose(view)
            log.append((t, decision))
            if decision.action != "wait":
                break
        if decision.action == "stop" or decision.dose is None:
            stop_view = view
            break
    final = EscalationData(k, tuple(dose), tuple(dlt))
    selected = design.select(final).dose
    if stop_view is not None and design.select(stop_view).dose is None:
        selected = None
    return TiteTrial(np.array(entry), np.array(dose), np.array(dlt), np.array(onset),
                     tuple(log), selected, entry[-1] + w)


@dataclass(frozen=True)
class TiteResult:
    """Operating characteristics of a design in calendar time under one scenario."""

    selection_pct: tuple[float, ...]
    mean_patients: tuple[float, ...]
    mean_dlts: tuple[float, ...]
    stop_pct: float
    mean_duration: float
    sd_duration: float
    mean_waits: float
    n_trials: int
    seed: int
    p_true: tuple[float, ...] = ()
    sd_patients: tuple[float, ...] = ()
    design: str = ""
    settings: TiteSettings = TiteSettings()
    seconds: float = field(default=0.0, compare=False)

    def selection_se(self) -> tuple[float, ...]:
        """Monte Carlo standard error of each selection % (binomial)."""
        return tuple(100 * math.sqrt((q / 100) * (1 - q / 100) / self.n_trials)
                     for q in self.selection_pct)

    def as_dict(self) -> dict[str, Any]:
        return {"design": self.design, "p_true": list(self.p_true), "n_trials": self.n_trials,
                "seed": self.seed, "selection_pct": list(self.selection_pct),
                "stop_pct": self.stop_pct, "mean_patients": list(self.mean_patients),
                "mean_dlts": list(self.mean_dlts), "sd_patients": list(self.sd_patients),
                "mean_duration": self.mean_duration,
                "sd_duration": self.sd_duration, "mean_waits": self.mean_waits,
                "settings": {"window": self.settings.window, "accrual": self.settings.accrual,
                             "arrivals": self.settings.arrivals,
                             "dlt_time": self.settings.dlt_time, "late": self.settings.late},
                "seconds": self.seconds}


def simulate_tite(design: DoseDesign, p_true: Any, n_trials: int,
                  settings: TiteSettings = TiteSettings(), seed: int = 1) -> TiteResult:
    """Run ``n_trials`` calendar-time trials (numpy PCG64 stream from ``seed``)."""
    if not isinstance(n_trials, int) or n_trials < 1:
        raise invalid("n_trials", n_trials, "an integer >= 1")
    p = check_probabilities("p_true", p_true, design.n_doses)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
    k = design.n_doses
    selected = np.zeros(k + 1, dtype=np.int64)
    patients = np.zeros((n_trials, k))
    dlts = np.zeros(k, dtype=np.float64)
    durations = np.empty(n_trials)
    waits = np.empty(n_trials)
    start = time.perf_counter()
    for i in range(n_trials):
        trial = simulate_trial(design, p, settings, rng)
        selected[k if trial.selected is None else trial.selected - 1] += 1
        patients[i] = np.bincount(trial.dose - 1, minlength=k)
        dlts += np.bincount(trial.dose - 1, weights=trial.dlt, minlength=k)
        durations[i], waits[i] = trial.duration, trial.waits
    pct = 100 * selected / n_trials
    sd = (lambda a: a.std(axis=0, ddof=1)) if n_trials > 1 else (lambda a: 0 * a.mean(axis=0))
    return TiteResult(tuple(float(v) for v in pct[:k]),
                      tuple(float(v) for v in patients.mean(axis=0)),
                      tuple(float(v) for v in dlts / n_trials), float(pct[k]),
                      float(durations.mean()), float(np.atleast_1d(sd(durations))[0]),
                      float(waits.mean()), n_trials, seed, tuple(float(v) for v in p),
                      tuple(float(v) for v in sd(patients)), _name(design), settings,
                      time.perf_counter() - start)


def _name(design: object) -> str:
    base = getattr(design, "base", None)
    return type(design).__name__ + (f"({type(base).__name__})" if base is not None else "")


__all__ = ["CompleteFollowUp", "TiteResult", "TiteSettings", "TiteTrial", "observed_data",
           "simulate_tite", "simulate_trial"]
