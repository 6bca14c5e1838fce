"""Continual reassessment method (O'Quigley, Pepe & Fisher, Biometrics 1990) with the
one-parameter power model of the R package dfcrm (Cheung 2011, "Dose Finding by the
Continual Reassessment Method", ch. 3):

    p_d(theta) = skeleton_d ** exp(theta),  theta ~ Normal(0, prior_sd^2)  (dfcrm: var 1.34)

The posterior of theta is computed by numerical integration on a fine, evenly spaced grid
(``grid_size`` points over +-8 prior SDs; prior density times likelihood, normalised).
Next cohort: the dose whose posterior mean DLT probability is closest to the target,
without skipping (at most one dose above the highest dose tried). Safety stop: once at
least ``stop_min_n`` patients have been treated at dose 1, stop when
P(p_1 > target | data) > ``stop_probability`` (0.9). The MTD is the dose closest to the
target among the doses tried.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from celltrial.design.data import Decision, EscalationData, Selection
from celltrial.errors import invalid


@dataclass(frozen=True)
class CRM:
    """CRM design specification (power model; see module docstring)."""

    skeleton: tuple[float, ...] = (0.05, 0.12, 0.25, 0.40, 0.55)
    target: float = 0.3
    cohort_size: int = 3
    n_cohorts: int = 10
    prior_sd: float = math.sqrt(1.34)
    stop_probability: float = 0.9
    stop_min_n: int = 3
    start_dose: int = 1
    grid_size: int = 801

    def __post_init__(self) -> None:
        sk = tuple(float(v) for v in self.skeleton)
        object.__setattr__(self, "skeleton", sk)
        if not sk or any(not 0 < v < 1 for v in sk) or any(b <= a for a, b in zip(sk, sk[1:])):
            raise invalid("skeleton", sk, "strictly increasing probabilities in (0, 1)")
        if not 0 < self.target < 1:
            raise invalid("target", self.target, "a DLT probability in (0, 1)")
        for name, minimum in (("cohort_size", 1), ("n_cohorts", 1), ("stop_min_n", 0),
                              ("grid_size", 51)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < minimum:
                raise invalid(name, value, f"an integer >= {minimum}")
        if not self.prior_sd > 0:
            raise invalid("prior_sd", self.prior_sd, "> 0")
        if not 0 < self.stop_probability <= 1:
            raise invalid("stop_probability", self.stop_probability, "in (0, 1]")
        if not 1 <= self.start_dose <= len(sk):
            raise invalid("start_dose", self.start_dose, f"a dose index in 1..{len(sk)}")

    @property
    def n_doses(self) -> int:
        return len(self.skeleton)

    @property
    def max_n(self) -> int:
        return self.cohort_size * self.n_cohorts

    @cached_property
    def _grid(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        theta = np.linspace(-8 * self.prior_sd, 8 * self.prior_sd, self.grid_size)
        prior_log_w = -0.5 * (theta / self.prior_sd) ** 2  # constant terms cancel
        p_grid = np.asarray(self.skeleton)[None, :] ** np.exp(theta)[:, None]  # (G, K)
        p_grid = np.clip(p_grid, 1e-300, 1 - 1e-16)
        low_tail = (p_grid[:, 0] > self.target).astype(np.float64)
        return np.log(p_grid).T, np.log1p(-p_grid).T, prior_log_w, p_grid, low_tail

    def grid_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(log p (K, G), log(1-p) (K, G), log prior weight (G,), p (G, K)) on the grid."""
        g = self._grid
        return g[0], g[1], g[2], g[3]

    def grid_low_tail(self) -> np.ndarray:
        """Indicator on the grid of p_1(theta) > target."""
        return self._grid[4]

    def posterior(self, data: EscalationData) -> tuple[np.ndarray, float]:
        """(posterior mean DLT probability per dose, P(p_1 > target | data))."""
        log_p, log_q, prior, p_grid = self.grid_tables()
        n, y = data.n().astype(float), data.y().astype(float)
        ll = y @ log_p + (n - y) @ log_q + prior
        w = np.exp(ll - ll.max())
        w /= w.sum()
        return w @ p_grid, float(w @ self.grid_low_tail())

    def _check(self, data: EscalationData) -> None:
        if data.n_doses != self.n_doses:
            raise invalid("data.n_doses", data.n_doses, f"{self.n_doses} (skeleton length)")

    def next_dose(self, data: EscalationData) -> Decision:
        """CRM decision for the next cohort."""
        self._check(data)
        if data.n_patients == 0:
            return Decision("stay", self.start_dose, f"start at dose {self.start_dose}")
        mean, p_low = self.posterior(data)
        n = data.n()
        if n[0] >= self.stop_min_n and p_low > self.stop_probability:
            return Decision("stop", None, f"P(DLT rate at dose 1 > {self.target:g} | data) = "
                            f"{p_low:.3f} > {self.stop_probability:g}: safety stop, no MTD")
        if data.n_patients >= self.max_n:
            return Decision("stop", None, f"maximum sample size {self.max_n} reached")
        best = int(np.argmin(np.abs(mean - self.target)))
        highest = int(np.flatnonzero(n > 0).max())
        nxt = min(best, highest + 1)
        cur = int(data.current_dose or self.start_dose) - 1
        action = "escalate" if nxt > cur else "de-escalate" if nxt < cur else "stay"
        rule = (f"posterior mean DLT probability {mean[best]:.3f} at dose {best + 1} is closest "
                f"to target {self.target:g}")
        if nxt != best:
            rule += f"; no skipping: dose {nxt + 1} (highest tried {highest + 1})"
        return Decision(action, nxt + 1, rule)  # type: ignore[arg-type]

    def select(self, data: EscalationData) -> Selection:
        """MTD: dose tried with posterior mean closest to the target (none after a safety stop)."""
        self._check(data)
        if data.n_patients == 0:
            return Selection(None, "no patient treated", (None,) * self.n_doses)
        mean, p_low = self.posterior(data)
        est = tuple(float(v) for v in mean)
        n = data.n()
        if n[0] >= self.stop_min_n and p_low > self.stop_probability:
            return Selection(None, f"P(DLT rate at dose 1 > {self.target:g}) = {p_low:.3f} > "
                             f"{self.stop_probability:g}: no MTD", est)
        highest = int(np.flatnonzero(n > 0).max())
        best = min(int(np.argmin(np.abs(mean - self.target))), highest)
        return Selection(best + 1, f"posterior mean {mean[best]:.3f} closest to target "
                         f"{self.target:g} among doses tried", est)
