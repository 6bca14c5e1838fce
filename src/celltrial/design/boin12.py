"""BOIN12: Bayesian optimal interval phase I/II design for utility-based dose finding
(Lin R, Zhou Y, Yan F, Li D, Yuan Y. JCO Precis Oncol 2020;4:1393-1402; CLINICAL_REFERENCE
7.3). Toxicity (DLT) and efficacy (response) are weighed through a utility table; the trial
selects the optimal biological dose (OBD) as the recommended phase II dose, not the MTD.

Utility (per patient): efficacy without DLT u1 = 100, neither u2 (default 40), efficacy with
DLT u3 (default 60), DLT without efficacy u4 = 0. With y1..y4 the counts at a dose, the
pseudo-count is x = (u1 y1 + u2 y2 + u3 y3 + u4 y4) / 100 and the rank-based desirability
score RDS = 100 P(Beta(1 + x, 1 + n - x) > u_b / 100), with the benchmark
u_b = u_bar + (100 - u_bar) / 2 and u_bar = 100 phi_e (1 - phi_t) + u2 (1 - phi_t)(1 - phi_e)
+ u3 phi_t phi_e + u4 phi_t (1 - phi_e), the highest unacceptable utility.

Dose elimination (paper, "dose exclusion rules"; BOIN's safety rule, Liu & Yuan 2015), with
Beta(1, 1) priors, applied to a dose once ``min_n_eliminate`` (3) patients are treated there:
- toxicity: P(p_T > phi_t | data) > c_t (0.95) eliminates the dose and every higher dose;
- futility: P(p_E < phi_e | data) > c_e (0.90) eliminates that dose only.
Eliminated doses are never given again and never selected.

Stopping (checked after each cohort, in this order):
1. dose 1 eliminated for toxicity: stop, no OBD (the safety stop);
2. every dose eliminated: stop, no OBD;
3. ``cohort_size * n_cohorts`` patients treated: stop, select the OBD;
4. ``n_cap`` patients treated at the current dose (the per-dose cap; off when None): stop,
   select the OBD (the algorithm has converged on that dose).

Next dose, with p = y/n the DLT rate at the current dose d and (lambda_e, lambda_d) BOIN's
boundaries for phi_t:
- p >= lambda_d: de-escalate to the highest non-eliminated dose below d (stay at d when there
  is none and d is not eliminated, else stop);
- otherwise the candidates are d, the highest non-eliminated dose below d and, while n < N*
  (``n_star``, 6) or p <= lambda_e, the lowest non-eliminated dose above d; eliminated
  candidates drop out; the candidate with the highest RDS is given (ties: the higher dose, as
  the authors' Shiny application); no candidate left: stop;
- exploration rule (paper, supplement p. 8): n >= 9 at d, p < lambda_d, and the next
  non-eliminated dose above d never tried: escalate to it.

OBD at the end (paper, "selecting the OBD"): toxicity by isotonic regression of
(y + 0.05)/(n + 0.1) over the treated doses (BOIN's estimator, `celltrial.design.isotonic`),
the MTD is the treated dose closest to phi_t; efficacy by unimodal (umbrella) isotonic
regression of (e + 0.05)/(n + 0.1) weighted by n, since efficacy may plateau or fall at high
doses (the paper smooths efficacy; its exact smoother is not published in code we could read,
so this smoother is our documented choice); estimated utility
U = 100 pE(1 - pT) + u2 (1 - pE)(1 - pT) + u3 pE pT + u4 (1 - pE) pT (toxicity and efficacy
independent, as in u_bar); the OBD is the treated, non-eliminated dose at or below the MTD
with the highest U (ties: the lower dose).

Efficacy is the patient's response (1), no response (0) or not yet known (None, counted as
not efficacious). Kinetic exposure: only when a protocol says so (``exposure_threshold``,
cd7-zz-phase1), a patient whose CAR-T exposure (AUC0-28d, same unit as the data) reaches the
threshold counts as efficacious even without a response. That credits expansion as
biological activity and biases the efficacy estimate upward at doses that expand without
responding (docs/design.md, "Kinetics in the OBD"); it is never the default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import beta as beta_dist

from celltrial.design.boundaries import boin_boundaries
from celltrial.design.data import Decision, EscalationData, Selection
from celltrial.design.isotonic import closest_to_target, pava, unimodal
from celltrial.errors import invalid

EXPLORE_N = 9  # paper supplement p. 8: explore the next dose once 9 patients sit at d


@dataclass(frozen=True)
class Elimination:
    """Doses eliminated by the data (0-based boolean arrays)."""

    toxic: np.ndarray  # this dose or a lower one is too toxic
    futile: np.ndarray  # this dose is futile

    @property
    def any(self) -> np.ndarray:
        return self.toxic | self.futile


@dataclass(frozen=True)
class BOIN12:
    """BOIN12 design specification (see module docstring for the rules and their source)."""

    n_doses: int = 5
    phi_t: float = 0.35
    phi_e: float = 0.25
    u2: float = 40.0
    u3: float = 60.0
    n_star: int = 6
    c_t: float = 0.95
    c_e: float = 0.90
    cohort_size: int = 3
    n_cohorts: int = 10
    start_dose: int = 1
    n_cap: int | None = None
    min_n_eliminate: int = 3
    exposure_threshold: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.n_doses, int) or self.n_doses < 1:
            raise invalid("n_doses", self.n_doses, "an integer >= 1")
        boin_boundaries(self.phi_t)
        if not 0 < self.phi_e < 1:
            raise invalid("phi_e", self.phi_e, "a response probability in (0, 1)")
        for name in ("u2", "u3"):
            if not 0 <= getattr(self, name) <= 100:
                raise invalid(name, getattr(self, name), "a utility in [0, 100]")
        for name in ("c_t", "c_e"):
            if not 0.5 <= getattr(self, name) < 1:
                raise invalid(name, getattr(self, name), "in [0.5, 1)")
        for name in ("n_star", "cohort_size", "n_cohorts", "min_n_eliminate"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise invalid(name, getattr(self, name), "an integer >= 1")
        if self.n_cap is not None and (not isinstance(self.n_cap, int) or self.n_cap < 1):
            raise invalid("n_cap", self.n_cap, "an integer >= 1 or None")
        if not 1 <= self.start_dose <= self.n_doses:
            raise invalid("start_dose", self.start_dose, f"a dose index in 1..{self.n_doses}")
        if self.exposure_threshold is not None and not self.exposure_threshold > 0:
            raise invalid("exposure_threshold", self.exposure_threshold, "> 0 or None")

    @property
    def max_n(self) -> int:
        return self.cohort_size * self.n_cohorts

    @property
    def benchmark(self) -> float:
        """u_b, the utility benchmark (BOIN12 paper, desirability score)."""
        pt, pe = self.phi_t, self.phi_e
        u_bar = 100 * pe * (1 - pt) + self.u2 * (1 - pt) * (1 - pe) + self.u3 * pt * pe
        return u_bar + (100 - u_bar) / 2

    def outcome_counts(self, data: EscalationData) -> dict[str, np.ndarray]:
        """Per-dose n, DLT count, efficacy count and pseudo-count x of the utility."""
        k = self.n_doses
        eff = np.zeros(data.n_patients, dtype=np.int64)
        if data.efficacy is not None:
            eff = np.array([1 if v == 1 else 0 for v in data.efficacy], dtype=np.int64)
        if self.exposure_threshold is not None and data.exposure is not None:
            high = np.array([v is not None and v >= self.exposure_threshold
                             for v in data.exposure], dtype=bool)
            eff = np.where(high, 1, eff)
        dose = np.asarray(data.doses, dtype=np.int64) - 1
        tox = np.asarray(data.dlt, dtype=np.int64)
        utility = np.select([(tox == 0) & (eff == 1), (tox == 0) & (eff == 0),
                             (tox == 1) & (eff == 1)], [100.0, self.u2, self.u3], 0.0)

        def per_dose(weights: np.ndarray | None) -> np.ndarray:
            return np.bincount(dose, weights, minlength=k)[:k] if dose.size else np.zeros(k)

        return {"n": per_dose(None).astype(np.int64), "tox": per_dose(tox).astype(np.int64),
                "eff": per_dose(eff).astype(np.int64), "x": per_dose(utility / 100)}

    def scores(self, c: dict[str, np.ndarray]) -> np.ndarray:
        """Rank-based desirability score 100 P(utility > u_b | data) per dose."""
        return 100 * beta_dist.sf(self.benchmark / 100, 1 + c["x"], 1 + c["n"] - c["x"])

    def eliminated(self, c: dict[str, np.ndarray]) -> Elimination:
        """Doses eliminated for toxicity (with every higher dose) or futility."""
        n, t, e = c["n"], c["tox"], c["eff"]
        enough = n >= self.min_n_eliminate
        toxic_here = enough & (beta_dist.sf(self.phi_t, 1 + t, 1 + n - t) > self.c_t)
        futile = enough & (beta_dist.cdf(self.phi_e, 1 + e, 1 + n - e) > self.c_e)
        return Elimination(np.maximum.accumulate(toxic_here), futile)

    def admissible(self, c: dict[str, np.ndarray]) -> np.ndarray:
        """Doses not eliminated (the admissible set of the paper)."""
        return ~self.eliminated(c).any

    def _stop(self, c: dict[str, np.ndarray], elim: Elimination) -> str | None:
        if elim.toxic[0]:
            n, t = int(c["n"][0]), int(c["tox"][0])
            return (f"{t}/{n} DLT at dose 1: P(DLT rate > {self.phi_t:g}) > {self.c_t:g}, "
                    "dose 1 eliminated for toxicity: stop, no dose recommended")
        if elim.any.all():
            return "every dose eliminated (too toxic or futile): stop, no dose recommended"
        return None

    def next_dose(self, data: EscalationData) -> Decision:
        """BOIN12 decision for the next cohort (see module docstring)."""
        return self._decide(data)[0]

    def _decide(self, data: EscalationData) -> tuple[Decision, bool]:
        """The decision and whether it ends the trial without a dose to recommend."""
        if data.n_doses != self.n_doses:
            raise invalid("data.n_doses", data.n_doses, f"{self.n_doses} (the design's doses)")
        if data.n_patients == 0:
            return Decision("stay", self.start_dose, f"start at dose {self.start_dose}"), False
        c = self.outcome_counts(data)
        elim = self.eliminated(c)
        safety = self._stop(c, elim)
        if safety:
            return Decision("stop", None, safety), True
        if data.n_patients >= self.max_n:
            return Decision("stop", None, f"maximum sample size {self.max_n} reached; "
                            "select the OBD"), False
        d = int(data.current_dose or self.start_dose) - 1
        n, t = int(c["n"][d]), int(c["tox"][d])
        if n == 0:
            return Decision("stay", d + 1, f"no patient treated yet at dose {d + 1}"), False
        if self.n_cap is not None and n >= self.n_cap:
            return Decision("stop", None, f"{n} patients at dose {d + 1} reached the per-dose "
                            f"cap {self.n_cap}: stop, select the OBD"), False
        open_ = ~elim.any
        below = [i for i in range(d - 1, -1, -1) if open_[i]][:1]
        above = [i for i in range(d + 1, self.n_doses) if open_[i]][:1]
        lam_e, lam_d = boin_boundaries(self.phi_t)
        pt = t / n
        counts = f"{t}/{n} DLT at dose {d + 1}"
        score = self.scores(c)
        if pt >= lam_d:
            if below:
                nxt, rule = below[0], f"{counts}: rate >= lambda_d {lam_d:.4f}: de-escalate"
            elif open_[d]:
                nxt, rule = d, f"{counts}: rate >= lambda_d {lam_d:.4f}, no lower dose open: stay"
            else:
                return Decision("stop", None, f"{counts}: rate >= lambda_d, dose {d + 1} "
                                "eliminated and no lower dose open: stop, no dose recommended"
                                ), True
        else:
            may_rise = n < self.n_star or pt <= lam_e
            cands = sorted(([d] if open_[d] else []) + below + (above if may_rise else []))
            if not cands:
                return Decision("stop", None, f"{counts}: dose {d + 1} eliminated and no "
                                "admissible neighbour: stop, no dose recommended"), True
            best = max(score[i] for i in cands)
            nxt = [i for i in cands if score[i] == best][-1]
            rule = (f"{counts}: highest desirability score ({best:.1f}) among admissible "
                    f"doses {', '.join(str(i + 1) for i in cands)}")
            if not may_rise:
                rule += f" (lambda_e < rate < lambda_d with n >= {self.n_star}: no escalation)"
        if n >= EXPLORE_N and pt < lam_d and above and c["n"][above[0]] == 0:
            nxt, rule = above[0], (f"{counts}, n >= {EXPLORE_N} and rate < lambda_d "
                                   f"{lam_d:.4f}, dose {above[0] + 1} untried: escalate "
                                   "(exploration rule)")
        action = "escalate" if nxt > d else "de-escalate" if nxt < d else "stay"
        return Decision(action, nxt + 1, rule), False  # type: ignore[arg-type]

    def estimates(self, c: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(isotonic DLT, unimodal efficacy, estimated utility) per dose; NaN if untreated."""
        n = c["n"].astype(np.float64)
        treated = n > 0
        pt = np.full(self.n_doses, np.nan)
        pe = np.full(self.n_doses, np.nan)
        if treated.any():
            pt[treated] = pava((c["tox"][treated] + 0.05) / (n[treated] + 0.1), n[treated] + 0.1)
            pe[treated] = unimodal((c["eff"][treated] + 0.05) / (n[treated] + 0.1), n[treated])
        util = (100 * pe * (1 - pt) + self.u2 * (1 - pe) * (1 - pt) + self.u3 * pe * pt)
        return pt, pe, util

    def select(self, data: EscalationData) -> Selection:
        """OBD (the recommended phase II dose) from the data at the end (module docstring)."""
        c = self.outcome_counts(data)
        pt, _, util = self.estimates(c)
        est = tuple(None if np.isnan(v) else float(v) for v in util)
        if not (c["n"] > 0).any():
            return Selection(None, "no patient treated", est)
        decision, no_dose = self._decide(data)
        if no_dose:
            return Selection(None, decision.reason, est)
        elim = self.eliminated(c)
        mtd = int(closest_to_target(pt[None, :], self.phi_t)[0])
        ok = (c["n"] > 0) & ~elim.any & (np.arange(self.n_doses) <= mtd)
        if not ok.any():
            return Selection(None, f"no treated, admissible dose at or below the MTD (dose "
                             f"{mtd + 1})", est)
        cand = np.flatnonzero(ok)
        # ties (to rounding: pooled estimates give equal utilities) go to the lower dose
        best = int(cand[np.flatnonzero(util[cand] >= util[cand].max() - 1e-9)[0]])
        return Selection(best + 1, f"highest estimated utility {util[best]:.1f} among "
                         f"admissible doses <= MTD (dose {mtd + 1})", est)
