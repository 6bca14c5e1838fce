"""Optimal-biological-dose design in the spirit of BOIN12 (Lin, Zhou, Yan, Li, Yuan, JCO
Precis Oncol 2020;4:1393-1402; as coded in the R package escalation, boin12_logic.R;
CLINICAL_REFERENCE 7.3): toxicity (DLT) and efficacy (response) jointly through a utility
table, selecting the phase II dose (RP2D) rather than the MTD.

Utility table (per patient outcome): efficacy without DLT u1 = 100, neither u2 (default 40),
efficacy with DLT u3 (default 60), DLT without efficacy u4 = 0. With y1..y4 the counts at a
dose, the pseudo-count x = (u1 y1 + u2 y2 + u3 y3 + u4 y4) / 100 and the desirability score
is 100 P(Beta(1 + x, 1 + n - x) > u_b / 100) with the benchmark
u_b = u_bar + (100 - u_bar) / 2, u_bar = 100 phi_e (1 - phi_t) + u2 (1 - phi_t)(1 - phi_e)
+ u3 phi_t phi_e + u4 phi_t (1 - phi_e).

Admissible doses among d-1, d, d+1: P(p_T > phi_t | data) < c_t (0.95) and
P(p_E < phi_e | data) < c_e (0.90), Beta(1, 1) priors. Next dose (BOIN boundaries from
phi_t): n > 8 at d, p_T < lambda_d and d+1 untried -> escalate (exploration rule);
p_T >= lambda_d -> de-escalate; lambda_e < p_T < lambda_d with n >= N* (6) -> the higher
score of d-1 and d; otherwise the admissible dose among d-1, d, d+1 with the highest score
(ties: the higher dose); no admissible dose -> stop.

RP2D (OBD): isotonic DLT estimates give the MTD (closest to phi_t, as BOIN); among the
treated, admissible doses at or below the MTD, the dose with the highest estimated utility
(posterior mean of the utility, 100 (1 + x)/(2 + n)); ties -> the lower dose.

Kinetic exposure (cd7-zz-phase1 chooses the RP2D from safety, efficacy and kinetics): with
``exposure_threshold`` set, a patient counts as efficacious when they respond OR their CAR-T
exposure (AUC0-28d, same unit as the data) is at least the threshold, i.e. adequate expansion
is credited as biological activity in the utility. Patients whose efficacy is not yet known
(None) count as not efficacious. PKBOIN-12's published rules were not found; this is our
documented choice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import beta as beta_dist

from celltrial.design.boundaries import boin_boundaries
from celltrial.design.data import Decision, EscalationData, Selection
from celltrial.design.isotonic import boin_estimates, closest_to_target, isotonic_batch
from celltrial.errors import invalid


@dataclass(frozen=True)
class BOIN12:
    """BOIN12-style optimal biological dose design specification."""

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
        for name in ("n_star", "cohort_size", "n_cohorts"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise invalid(name, getattr(self, name), "an integer >= 1")
        if not 1 <= self.start_dose <= self.n_doses:
            raise invalid("start_dose", self.start_dose, f"a dose index in 1..{self.n_doses}")
        if self.exposure_threshold is not None and not self.exposure_threshold > 0:
            raise invalid("exposure_threshold", self.exposure_threshold, "> 0 or None")

    @property
    def max_n(self) -> int:
        return self.cohort_size * self.n_cohorts

    @property
    def benchmark(self) -> float:
        """u_b, the utility benchmark (BOIN12 paper, eq. for the desirability score)."""
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
        return {
            "n": np.bincount(dose, minlength=k)[:k] if dose.size else np.zeros(k, np.int64),
            "tox": np.bincount(dose, tox, minlength=k)[:k].astype(np.int64) if dose.size
            else np.zeros(k, np.int64),
            "eff": np.bincount(dose, eff, minlength=k)[:k].astype(np.int64) if dose.size
            else np.zeros(k, np.int64),
            "x": np.bincount(dose, utility / 100, minlength=k)[:k] if dose.size
            else np.zeros(k),
        }

    def scores(self, c: dict[str, np.ndarray]) -> np.ndarray:
        """Desirability score 100 P(utility > u_b | data) per dose."""
        return 100 * beta_dist.sf(self.benchmark / 100, 1 + c["x"], 1 + c["n"] - c["x"])

    def admissible(self, c: dict[str, np.ndarray]) -> np.ndarray:
        """Admissibility per dose (toxicity and futility constraints, Beta(1,1) priors)."""
        n, t, e = c["n"], c["tox"], c["eff"]
        too_toxic = beta_dist.sf(self.phi_t, 1 + t, 1 + n - t) >= self.c_t
        futile = beta_dist.cdf(self.phi_e, 1 + e, 1 + n - e) >= self.c_e
        return ~(too_toxic | futile)

    def next_dose(self, data: EscalationData) -> Decision:
        """BOIN12 decision for the next cohort."""
        if data.n_doses != self.n_doses:
            raise invalid("data.n_doses", data.n_doses, f"{self.n_doses} (the design's doses)")
        if data.n_patients == 0:
            return Decision("stay", self.start_dose, f"start at dose {self.start_dose}")
        if data.n_patients >= self.max_n:
            return Decision("stop", None, f"maximum sample size {self.max_n} reached; "
                            "select the OBD")
        c = self.outcome_counts(data)
        score = self.scores(c)
        adm = self.admissible(c)
        lam_e, lam_d = boin_boundaries(self.phi_t)
        d = int(data.current_dose or self.start_dose) - 1
        n, t = int(c["n"][d]), int(c["tox"][d])
        if n == 0:
            return Decision("stay", d + 1, f"no patient treated yet at dose {d + 1}")
        pt = t / n
        counts = f"{t}/{n} DLT at dose {d + 1}"
        top = self.n_doses - 1
        if n > 8 and pt < lam_d and d < top and c["n"][d + 1] == 0:
            nxt, rule = d + 1, f"{counts}, n > 8 and rate < lambda_d {lam_d:.4f}, dose {d + 2} " \
                "untried: escalate (exploration rule)"
        elif pt >= lam_d:
            nxt, rule = max(d - 1, 0), f"{counts}: rate >= lambda_d {lam_d:.4f}: de-escalate"
        elif lam_e < pt < lam_d and n >= self.n_star:
            both = [i for i in (d - 1, d) if i >= 0 and adm[i]]
            if len(both) == 2:
                nxt = d - 1 if score[d - 1] > score[d] else d
            else:
                nxt = both[0] if both else 0
            rule = (f"{counts}: lambda_e < rate < lambda_d with n >= {self.n_star}: "
                    f"dose {d} or {d + 1}, higher desirability score")
        else:
            cands = [i for i in (d - 1, d, d + 1) if 0 <= i <= top and adm[i]]
            if not cands:
                return Decision("stop", None, f"{counts}: no admissible dose among doses "
                                f"{max(d, 1)}..{min(d + 2, top + 1)} (too toxic or futile); stop")
            best = max(score[i] for i in cands)
            nxt = [i for i in cands if score[i] == best][-1]
            rule = (f"{counts}: admissible dose with the highest desirability score "
                    f"({best:.1f}) among d-1, d, d+1")
        action = "escalate" if nxt > d else "de-escalate" if nxt < d else "stay"
        return Decision(action, nxt + 1, rule)  # type: ignore[arg-type]

    def select(self, data: EscalationData) -> Selection:
        """RP2D (OBD) from the data at the end (see module docstring)."""
        c = self.outcome_counts(data)
        n = c["n"]
        util = np.where(n > 0, 100 * (1 + c["x"]) / (2 + n), np.nan)
        est = tuple(None if np.isnan(v) else float(v) for v in util)
        if not (n > 0).any():
            return Selection(None, "no patient treated", est)
        phat, w = boin_estimates(n, c["tox"])
        fit = isotonic_batch(phat[None, :], np.where(n > 0, w, 0.0)[None, :])[0]
        mtd = int(closest_to_target(fit[None, :], self.phi_t)[0])
        adm = self.admissible(c) & (n > 0) & (np.arange(self.n_doses) <= mtd)
        if not adm.any():
            return Selection(None, "no treated dose at or below the MTD is admissible "
                             "(too toxic or futile)", est)
        cand = np.flatnonzero(adm)
        best = int(cand[np.argmax(util[cand])])
        return Selection(best + 1, f"highest estimated utility {util[best]:.1f} among admissible "
                         f"doses <= MTD (dose {mtd + 1})", est)
