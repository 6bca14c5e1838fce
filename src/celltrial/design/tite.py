"""Time-to-event designs for a DLT window that outlasts accrual (CAR-T: 28 days).

A patient still inside the DLT window without a DLT is *pending*; ``EscalationData.followup``
gives the fraction w of the window observed (0 < w < 1). Patients with a DLT, or with w >= 1
(or None), are complete.

TITE-BOIN (Yuan Y, Lin R, Li D, Nie L, Warren KE. Clin Cancer Res 2018;24:4921-4930):
- pending patients' outcomes are imputed by their posterior mean under the approximate
  likelihood p^y (1 - p)^(n - c - y + STFT), STFT = sum of the pending w (uniform time to
  DLT within the window), prior Beta(phi/2, 1 - phi/2): p~ = (phi/2 + y)/(1 + n - c + STFT)
  and y^_i = p~ (1 - w_i)/(1 - p~ w_i); the DLT rate p^ = (y + sum y^_i)/n goes through BOIN's
  boundaries (escalate p^ <= lambda_e, de-escalate p^ >= lambda_d, else stay);
- accrual suspension: when more than ``max_pending_fraction`` (1/2) of the patients at the
  current dose are pending, the decision is to **wait** (enrol nobody) until more complete;
- dose elimination (BOIN's safety rule) and the final MTD use complete patients only:
  eliminating on data that a pending DLT could only make worse is conservative, never lax;
  stop when dose 1 is eliminated;
- no escalation while the current dose has fewer than 3 complete patients: celltrial's rule,
  stricter than the paper, so that an escalation never rests on imputed outcomes alone;
- at dose 1 with p^ >= lambda_d and patients pending there: wait (no lower dose to go to; the
  R package TITEgBOIN 0.4.0 ``next_TITE_QuasiBOIN`` suspends accrual the same way).
Options reproduce the later form of the design (Lin R, Yuan Y. Biostatistics 2020;21:807-824,
as coded in TITEgBOIN): ``estimator="ess"`` takes p^ = y/(n - c + STFT) (observed DLTs over
the effective sample size) instead of the imputation; ``eliminate_on="treated"`` applies the
elimination rule to all treated patients with the DLTs observed so far (pending counted as no
DLT, laxer than the default ``"complete"``); ``min_complete_to_escalate=0`` drops celltrial's
rule. The simulator `celltrial.design.simulate_tite` measures both forms.

TITE-CRM (Cheung YK, Chappell R. Biometrics 2000;56:1177-1182; dfcrm ``titecrm``): the CRM
power model with the weighted likelihood prod p_d^y (1 - w p_d)^(1 - y), linear weights
w = min(followup, 1) for pending patients and 1 for complete ones; the estimate is the
posterior mean of beta (normal prior, variance ``prior_var``, dfcrm's 1.34) by quadrature
(trapezoid on a fixed grid, vectorised over patients), the
plug-in DLT probabilities skeleton^exp(beta_hat) give the dose closest to the target; no
skipping above the current dose + 1, no escalation right after a DLT in the current cohort
(coherence, Cheung 2005), and the same accrual-suspension rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from celltrial.design.boin import BOIN
from celltrial.design.data import Decision, EscalationData, Selection
from celltrial.errors import invalid


def pending_mask(data: EscalationData) -> np.ndarray:
    """True for patients inside the DLT window without a DLT."""
    if data.followup is None:
        return np.zeros(data.n_patients, dtype=bool)
    w = np.array([1.0 if v is None else v for v in data.followup], dtype=np.float64)
    return (np.asarray(data.dlt, dtype=np.int64) == 0) & (w < 1.0)


def complete_only(data: EscalationData) -> EscalationData:
    """The same trial with pending patients left out (current dose kept)."""
    keep = ~pending_mask(data)
    pick = lambda values: None if values is None else tuple(  # noqa: E731
        v for v, k in zip(values, keep, strict=True) if k)
    return EscalationData(data.n_doses, pick(data.doses), pick(data.dlt), pick(data.efficacy),
                          pick(data.exposure), data.current_dose)


def weights(data: EscalationData) -> np.ndarray:
    """Per patient weight: the observed fraction of the window if pending, else 1."""
    w = np.ones(data.n_patients)
    if data.followup is not None:
        pend = pending_mask(data)
        w[pend] = [min(max(float(v), 0.0), 1.0) for v, p in zip(data.followup, pend,
                                                               strict=True) if p]
    return w


def _suspend(data: EscalationData, d: int, fraction: float) -> str | None:
    at = np.asarray(data.doses) == d + 1
    n, c = int(at.sum()), int((pending_mask(data) & at).sum())
    if n and c / n > fraction:
        return (f"{c} of {n} patients at dose {d + 1} still inside the DLT window (more than "
                f"{fraction:.0%}): wait, enrol nobody until more of them complete")
    return None


@dataclass(frozen=True)
class TITEBOIN:
    """TITE-BOIN on top of a `BOIN` specification (module docstring)."""

    base: BOIN = BOIN()
    max_pending_fraction: float = 0.5
    min_complete_to_escalate: int = 3
    estimator: Literal["impute", "ess"] = "impute"
    eliminate_on: Literal["complete", "treated"] = "complete"

    def __post_init__(self) -> None:
        if not 0 < self.max_pending_fraction <= 1:
            raise invalid("max_pending_fraction", self.max_pending_fraction, "in (0, 1]")
        if self.estimator not in ("impute", "ess"):
            raise invalid("estimator", self.estimator, "'impute' (Yuan 2018) or 'ess' (Lin 2020)")
        if self.eliminate_on not in ("complete", "treated"):
            raise invalid("eliminate_on", self.eliminate_on, "'complete' or 'treated'")

    @property
    def n_doses(self) -> int:
        return self.base.n_doses

    @property
    def cohort_size(self) -> int:
        return self.base.cohort_size

    @property
    def max_n(self) -> int:
        return self.base.max_n

    def imputed_rate(self, data: EscalationData, dose: int) -> tuple[float, int, float]:
        """(p^, pending count c, STFT) at ``dose`` (1-based): TITE-BOIN's imputation, or
        y/(n - c + STFT) with ``estimator="ess"``."""
        at = np.asarray(data.doses) == dose
        y = int(np.asarray(data.dlt)[at].sum()) if at.any() else 0
        n = int(at.sum())
        pend = pending_mask(data) & at
        w = weights(data)[pend]
        c, stft = int(pend.sum()), float(w.sum())
        if self.estimator == "ess":
            ess = n - c + stft
            return (y / ess if ess > 0 else 0.0), c, stft
        phi = self.base.target
        p_tilde = (phi / 2 + y) / (1 + n - c + stft)
        imputed = float(np.sum(p_tilde * (1 - w) / (1 - p_tilde * w)))
        return (y + imputed) / n if n else 0.0, c, stft

    def next_dose(self, data: EscalationData) -> Decision:
        if data.n_patients == 0 or not pending_mask(data).any():
            return self.base.next_dose(data)
        complete = complete_only(data)
        done = complete if self.eliminate_on == "complete" else data
        if self.base.eliminated_from(done.n(), done.y()) == 0:
            return self.base.next_dose(done)
        d = int(data.current_dose or self.base.start_dose) - 1
        wait = _suspend(data, d, self.max_pending_fraction)
        if wait:
            return Decision("wait", d + 1, wait)
        if data.n_patients >= self.max_n:
            return Decision("wait", d + 1, f"maximum sample size {self.max_n} enrolled: wait "
                            "for the pending patients, then select the MTD")
        p_hat, c, stft = self.imputed_rate(data, d + 1)
        lam_e, lam_d = self.base.boundaries
        elim = self.base.eliminated_from(done.n(), done.y())
        n, y = complete.n(), complete.y()
        counts = (f"dose {d + 1}: {int(y[d])} DLT in {int(n[d])} complete, {c} pending "
                  f"(STFT {stft:.2f}); estimated DLT rate {p_hat:.3f} ({self.estimator})")
        if elim is not None and d >= elim:
            return Decision("de-escalate", elim, f"{counts}; doses >= {elim + 1} eliminated "
                            f"for toxicity ({self.eliminate_on} patients): de-escalate")
        if p_hat >= lam_d:
            if d > 0:
                return Decision("de-escalate", d, f"{counts} >= lambda_d {lam_d:.4f}: de-escalate")
            if c:
                return Decision("wait", 1, f"{counts} >= lambda_d {lam_d:.4f} at dose 1 with "
                                "patients pending: wait for their outcomes")
            return Decision("stay", 1, f"{counts} >= lambda_d: stay at dose 1")
        if p_hat <= lam_e:
            top = d == self.n_doses - 1 or (elim is not None and d + 1 >= elim)
            if top:
                return Decision("stay", d + 1, f"{counts} <= lambda_e: no higher dose, stay")
            if n[d] < self.min_complete_to_escalate:
                return Decision("stay", d + 1, f"{counts} <= lambda_e {lam_e:.4f}, but fewer "
                                f"than {self.min_complete_to_escalate} complete patients at "
                                "the dose: stay")
            return Decision("escalate", d + 2, f"{counts} <= lambda_e {lam_e:.4f}: escalate")
        return Decision("stay", d + 1, f"{counts} between lambda_e and lambda_d: stay")

    def select(self, data: EscalationData) -> Selection:
        """MTD from complete patients only (BOIN select.mtd)."""
        return self.base.select(complete_only(data))


@lru_cache(maxsize=8)
def _beta_grid(prior_var: float) -> np.ndarray:
    """Equally spaced nodes over +-10 prior SD for the posterior mean of beta: the trapezoid
    rule is spectrally accurate for this smooth, normally decaying integrand (the values
    equal dfcrm ``titecrm``, R ``integrate``, to 1e-9; tests/design/test_tite.py)."""
    sd = math.sqrt(prior_var)
    return np.linspace(-10 * sd, 10 * sd, 2001)


@dataclass(frozen=True)
class TITECRM:
    """TITE-CRM, one-parameter power model with linear weights (module docstring)."""

    skeleton: tuple[float, ...] = (0.05, 0.12, 0.25, 0.40, 0.55)
    target: float = 0.3
    cohort_size: int = 3
    n_cohorts: int = 10
    prior_var: float = 1.34
    start_dose: int = 1
    max_pending_fraction: float = 0.5

    def __post_init__(self) -> None:
        sk = tuple(float(v) for v in self.skeleton)
        object.__setattr__(self, "skeleton", sk)
        if not sk or any(not 0 < v < 1 for v in sk) or any(b <= a for a, b in zip(sk, sk[1:])):
            raise invalid("skeleton", sk, "strictly increasing probabilities in (0, 1)")
        if not 0 < self.target < 1:
            raise invalid("target", self.target, "a DLT probability in (0, 1)")
        if not self.prior_var > 0:
            raise invalid("prior_var", self.prior_var, "> 0")

    @property
    def n_doses(self) -> int:
        return len(self.skeleton)

    @property
    def max_n(self) -> int:
        return self.cohort_size * self.n_cohorts

    def estimate(self, data: EscalationData) -> tuple[float, np.ndarray]:
        """(posterior mean of beta, plug-in DLT probability per dose) under the weighted
        likelihood (dfcrm ``titecrm``: ``estimate`` and ``ptox``)."""
        sk = np.asarray(self.skeleton)
        k = sk.size
        dose = np.asarray(data.doses, dtype=np.int64) - 1
        y = np.asarray(data.dlt, dtype=np.int64)
        w = weights(data)
        b = _beta_grid(self.prior_var)
        # log posterior density on the grid: weighted log-likelihood + normal log prior;
        # patients with a DLT, and complete ones without, enter per dose by their counts
        logp = np.log(sk)[:, None] * np.exp(b)[None, :]  # log p_d(beta), dose x node
        p = np.exp(logp)
        full = (y == 0) & (w >= 1)
        part = (y == 0) & (w < 1)
        loglik = np.bincount(dose[y == 1], minlength=k) @ logp
        loglik = loglik + np.bincount(dose[full], minlength=k) @ np.log1p(-p)
        if part.any():
            loglik = loglik + np.log1p(-w[part][:, None] * p[dose[part]]).sum(axis=0)
        logd = loglik - 0.5 * b * b / self.prior_var
        dens = np.exp(logd - logd.max())
        b_hat = float(np.sum(b * dens) / np.sum(dens))  # trapezoid: end weights ~ e^-50
        return b_hat, sk ** math.exp(b_hat)

    def next_dose(self, data: EscalationData) -> Decision:
        if data.n_doses != self.n_doses:
            raise invalid("data.n_doses", data.n_doses, f"{self.n_doses} (skeleton length)")
        if data.n_patients == 0:
            return Decision("stay", self.start_dose, f"start at dose {self.start_dose}")
        d = int(data.current_dose or self.start_dose) - 1
        wait = _suspend(data, d, self.max_pending_fraction)
        if wait:
            return Decision("wait", d + 1, wait)
        if data.n_patients >= self.max_n:
            return Decision("stop", None, f"maximum sample size {self.max_n} reached")
        _, ptox = self.estimate(data)
        best = int(np.argmin(np.abs(ptox - self.target)))
        nxt, rule = min(best, d + 1), (f"plug-in DLT probability {ptox[best]:.3f} at dose "
                                       f"{best + 1} closest to {self.target:g}")
        if best > d:
            last = self._last_cohort_dlt(data, d)
            if last:
                nxt, rule = d, rule + "; a DLT in the last cohort at the current dose: no " \
                    "escalation (coherence)"
            elif nxt != best:
                rule += f"; no skipping: dose {nxt + 1}"
        action = "escalate" if nxt > d else "de-escalate" if nxt < d else "stay"
        return Decision(action, nxt + 1, rule)  # type: ignore[arg-type]

    def _last_cohort_dlt(self, data: EscalationData, d: int) -> bool:
        doses = list(data.doses)
        dlt = list(data.dlt)
        i = len(doses)
        while i > 0 and doses[i - 1] == d + 1:
            i -= 1
        tail = dlt[max(i, len(doses) - self.cohort_size):]
        return any(tail)

    def select(self, data: EscalationData) -> Selection:
        """MTD: the dose tried whose plug-in estimate (all patients weighted) is closest."""
        if data.n_patients == 0:
            return Selection(None, "no patient treated", (None,) * self.n_doses)
        _, ptox = self.estimate(data)
        tried = int(max(data.doses)) - 1
        best = min(int(np.argmin(np.abs(ptox - self.target))), tried)
        return Selection(best + 1, f"plug-in DLT probability {ptox[best]:.3f} closest to "
                         f"{self.target:g} among doses tried", tuple(float(v) for v in ptox))


__all__ = ["TITEBOIN", "TITECRM", "complete_only", "pending_mask", "weights"]
