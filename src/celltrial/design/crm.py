"""Continual reassessment method (CRM) with the one-parameter power ("empiric") model, as in
the R package dfcrm 0.2-2.1 (Cheung 2011, "Dose Finding by the Continual Reassessment
Method", CRC Press, ch. 3-4 and the dfcrm functions named below).

Model (O'Quigley, Pepe & Fisher, Biometrics 1990; Cheung 2011 ch. 3):

    p_d(beta) = skeleton_d ** exp(beta),   beta ~ Normal(0, prior_sd^2)  (dfcrm: 1.34)

Rules, with their source:

- **Estimate** (Cheung 2011 ch. 3; dfcrm ``crm(method="bayes")``): ``beta_hat`` = posterior
  mean of beta; the DLT probability of dose d is the plug-in estimate
  ``skeleton_d ** exp(beta_hat)`` (dfcrm ``ptox``). ``estimate="posterior_mean"`` uses the
  posterior mean of p_d instead (not dfcrm).
- **Next dose** (dfcrm ``crm`` ``mtd``): the dose whose estimate is closest to the target
  (ties to the lower dose), then restricted as in dfcrm ``crmsim(restrict=TRUE)``:
  **no skipping** - at most one level above the *current* dose (the dose of the last cohort);
  **coherence** (Cheung 2005, Biometrika 92:863; Cheung 2011 ch. 4) - never above the
  current dose when the last cohort had a DLT. Here "the last cohort" is the last
  ``cohort_size`` patients of the data and any DLT blocks escalation; dfcrm's ``crmsim``
  blocks it when the cohort's DLT *rate* is >= target, which is the same rule whenever
  ``cohort_size * target <= 1`` (e.g. cohorts of 3, target <= 1/3).
- **Selection** (dfcrm ``crmsim``, final ``crm`` fit): the dose whose estimate is closest to
  the target among all doses (it may be one level above the highest dose given);
  ``select_tried_only=True`` restricts it to doses given (not dfcrm).
- **Safety stop** (ours; dfcrm has none): once ``stop_min_n`` patients were treated at
  dose 1, stop with no MTD when P(p_1 > target | data) > ``stop_probability``;
  ``stop_probability=1`` disables it (dfcrm's behaviour).
- **Skeleton calibration** `getprior` (Lee & Cheung, Clinical Trials 2009 6:227; Cheung 2011
  ch. 7; dfcrm ``getprior``, empiric model): the skeleton whose indifference intervals are
  target +- halfwidth, with ``skeleton_nu = target``.

Integration: posterior moments are computed by composite 8-point Gauss-Legendre quadrature
over beta in [-B, B] (B = max(10, 10 prior SD); dfcrm integrates its numerator over
[-10, 10]) with panels no wider than min(0.5, 2.4 / sqrt(max_n)) (about two posterior SDs
of beta at most), split at the cut-point ``log(log(target) / log(skeleton_1))`` so that the
tail probability P(p_1 > target) = P(beta < cut) is the integral of a smooth function, not
of a step. Estimates and tail probabilities agree with adaptive quadrature to 1e-9
(tests/design/test_crm.py). dfcrm calls R's ``integrate()`` with its default relative
tolerance (about 1.2e-4), so dfcrm's own values are off the exact ones by up to about 1e-5
in ``estimate``; the tests show that QUADPACK run with dfcrm's settings reproduces them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from celltrial.design.data import Decision, EscalationData, Selection
from celltrial.errors import invalid

ESTIMATES = ("plugin", "posterior_mean")
GAUSS_POINTS = 8


def getprior(halfwidth: float, target: float, nu: int, n_levels: int) -> tuple[float, ...]:
    """Skeleton of the power model whose dose-``nu`` value is ``target`` and whose
    indifference intervals are ``target +- halfwidth`` (Lee & Cheung 2009; dfcrm ``getprior``
    with ``model="empiric"``).

    Dose k is recommended when its estimate is the closest to the target; between doses k
    and k+1 the switch happens at the beta where p_k = target - halfwidth and
    p_(k+1) = target + halfwidth, so ``log s_(k+1) = log s_k * log(target + halfwidth) /
    log(target - halfwidth)``, i.e. ``s_k = target ** (r ** (k - nu))`` with that ratio r.
    """
    for name, value in (("nu", nu), ("n_levels", n_levels)):
        if not isinstance(value, int | np.integer) or value < 1:
            raise invalid(name, value, "an integer >= 1")
    if not 0 < target < 1:
        raise invalid("target", target, "a DLT probability in (0, 1)")
    if not 0 < halfwidth < min(target, 1 - target):
        raise invalid("halfwidth", halfwidth, f"in (0, {min(target, 1 - target):g})")
    if nu > n_levels:
        raise invalid("nu", nu, f"a dose index in 1..{n_levels}")
    ratio = math.log(target + halfwidth) / math.log(target - halfwidth)
    log_t = math.log(target)
    return tuple(math.exp(log_t * ratio ** (k - nu)) for k in range(1, n_levels + 1))


@dataclass(frozen=True)
class CRMFit:
    """Posterior summaries of one data set (dfcrm ``crm`` names in brackets)."""

    estimate: float                    # posterior mean of beta [estimate]
    post_var: float                    # posterior variance of beta [post.var]
    ptox: tuple[float, ...]            # plug-in skeleton ** exp(estimate) [ptox]
    ptox_lower: tuple[float, ...]      # at estimate + z sd [ptoxL]
    ptox_upper: tuple[float, ...]      # at estimate - z sd [ptoxU]
    posterior_mean_p: tuple[float, ...]  # E(p_d | data) (not in dfcrm)
    p_dose1_too_toxic: float           # P(p_1 > target | data) (not in dfcrm)
    mtd: int                           # 1-based dose closest to target, unrestricted [mtd]
    conf_level: float = 0.9


@dataclass(frozen=True)
class CRM:
    """CRM design specification (power model; rules and sources in the module docstring)."""

    skeleton: tuple[float, ...] = (0.05, 0.12, 0.25, 0.40, 0.55)
    target: float = 0.3
    cohort_size: int = 3
    n_cohorts: int = 10
    prior_sd: float = math.sqrt(1.34)
    stop_probability: float = 0.9
    stop_min_n: int = 3
    start_dose: int = 1
    estimate: str = "plugin"
    select_tried_only: bool = False

    def __post_init__(self) -> None:
        sk = tuple(float(v) for v in self.skeleton)
        object.__setattr__(self, "skeleton", sk)
        if not sk or any(not 0 < v < 1 for v in sk) or any(b <= a for a, b in zip(sk, sk[1:])):
            raise invalid("skeleton", sk, "strictly increasing probabilities in (0, 1)")
        if not 0 < self.target < 1:
            raise invalid("target", self.target, "a DLT probability in (0, 1)")
        for name, minimum in (("cohort_size", 1), ("n_cohorts", 1), ("stop_min_n", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < minimum:
                raise invalid(name, value, f"an integer >= {minimum}")
        if not (math.isfinite(self.prior_sd) and self.prior_sd > 0):
            raise invalid("prior_sd", self.prior_sd, "> 0")
        if not 0 < self.stop_probability <= 1:
            raise invalid("stop_probability", self.stop_probability, "in (0, 1] (1: no stop)")
        if not 1 <= self.start_dose <= len(sk):
            raise invalid("start_dose", self.start_dose, f"a dose index in 1..{len(sk)}")
        if self.estimate not in ESTIMATES:
            raise invalid("estimate", self.estimate, f"one of {', '.join(ESTIMATES)}")

    @property
    def n_doses(self) -> int:
        return len(self.skeleton)

    @property
    def max_n(self) -> int:
        return self.cohort_size * self.n_cohorts

    @property
    def cut_point(self) -> float:
        """beta below which p_1(beta) > target: log(log(target) / log(skeleton_1))."""
        return math.log(math.log(self.target) / math.log(self.skeleton[0]))

    @cached_property
    def _nodes(self) -> dict[str, np.ndarray]:
        """Quadrature nodes (sorted), log weights + log prior, and the tables per node."""
        bound = max(10.0, 10.0 * self.prior_sd)
        width = min(0.5, 2.4 / math.sqrt(self.max_n))  # <= ~2 posterior SDs of beta
        cut = min(max(self.cut_point, -bound + width), bound - width)
        x, w = np.polynomial.legendre.leggauss(GAUSS_POINTS)
        beta, weight = [], []
        for lo, hi in ((-bound, cut), (cut, bound)):
            m = math.ceil((hi - lo) / width)
            edges = np.linspace(lo, hi, m + 1)
            half = np.diff(edges)[:, None] / 2
            beta.append((edges[:-1, None] + half * (x[None, :] + 1)).ravel())
            weight.append((half * w[None, :]).ravel())
        n_left = beta[0].size
        b = np.concatenate(beta)
        log_s = np.log(np.asarray(self.skeleton))
        e = np.exp(b)[:, None] * log_s[None, :]  # (G, K): log p_d(beta)
        return {
            "beta": b,
            "log_w": np.log(np.concatenate(weight)) - 0.5 * (b / self.prior_sd) ** 2,
            "log_p": e.T.copy(),                      # (K, G)
            "log_q": np.log(-np.expm1(e)).T.copy(),   # (K, G): log(1 - p_d)
            "p": np.exp(e),                           # (G, K)
            "left": np.arange(b.size) < n_left,       # beta < cut: p_1 > target
        }

    def posterior_batch(self, n: np.ndarray, y: np.ndarray, want_mean_p: bool = False
                        ) -> dict[str, np.ndarray]:
        """Posterior summaries of many data sets at once: ``n``, ``y`` (T, K) patients and
        DLTs per dose. Returns ``estimate``, ``post_var`` (T,), ``ptox`` (T, K) plug-in,
        ``tail`` (T,) = P(p_1 > target), and ``mean_p`` (T, K) when asked or when the design
        uses it."""
        g = self._nodes
        n = np.asarray(n, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        ll = y @ g["log_p"] + (n - y) @ g["log_q"] + g["log_w"][None, :]
        ll -= ll.max(axis=1, keepdims=True)
        w = np.exp(ll)
        w /= w.sum(axis=1, keepdims=True)
        est = w @ g["beta"]
        var = w @ (g["beta"] ** 2) - est ** 2
        out = {
            "estimate": est,
            "post_var": var,
            "ptox": np.asarray(self.skeleton)[None, :] ** np.exp(est)[:, None],
            "tail": w[:, g["left"]].sum(axis=1),
        }
        if want_mean_p or self.estimate == "posterior_mean":
            out["mean_p"] = w @ g["p"]
        return out

    def _working(self, post: dict[str, np.ndarray]) -> np.ndarray:
        return post["mean_p"] if self.estimate == "posterior_mean" else post["ptox"]

    def closest(self, p: np.ndarray) -> np.ndarray:
        """0-based dose whose estimate is closest to the target (ties: lower), per row."""
        return np.argmin(np.abs(np.atleast_2d(p) - self.target), axis=1)

    def decide_batch(self, n: np.ndarray, y: np.ndarray, current: np.ndarray,
                     last_cohort_dlt: np.ndarray, post: dict[str, np.ndarray] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rules of `next_dose` for many trials (no max-n check): returns (next dose
        0-based, safety stop flag, unrestricted closest dose 0-based). ``current`` is the
        0-based current dose, ``last_cohort_dlt`` whether the last cohort had a DLT;
        ``post`` is `posterior_batch` of (n, y) when already computed."""
        if post is None:
            post = self.posterior_batch(n, y)
        best = self.closest(self._working(post))
        ceiling = np.asarray(current) + np.where(last_cohort_dlt, 0, 1)
        nxt = np.minimum(best, np.minimum(ceiling, self.n_doses - 1))
        stop = self._safety_stop(np.asarray(n)[:, 0], post["tail"])
        return nxt, stop, best

    def select_batch(self, n: np.ndarray, y: np.ndarray,
                     post: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """The rule of `select` for many trials: 0-based MTD, -1 for none."""
        n = np.asarray(n)
        if post is None:
            post = self.posterior_batch(n, y)
        p = self._working(post)
        if self.select_tried_only:
            tried = np.arange(self.n_doses)[None, :] <= _highest_tried(n)[:, None]
            p = np.where(tried, p, np.inf)
        sel = self.closest(p)
        return np.where(self._safety_stop(n[:, 0], post["tail"]) | (n.sum(axis=1) == 0), -1, sel)

    def _safety_stop(self, n1: np.ndarray, tail: np.ndarray) -> np.ndarray:
        return (np.asarray(n1) >= self.stop_min_n) & (tail > self.stop_probability)

    def fit(self, data: EscalationData, conf_level: float = 0.9) -> CRMFit:
        """Posterior summaries of ``data`` as dfcrm ``crm(method="bayes")`` reports them,
        plus E(p_d | data) and P(p_1 > target | data)."""
        self._check(data)
        if not 0 < conf_level < 1:
            raise invalid("conf_level", conf_level, "in (0, 1)")
        from scipy.stats import norm

        post = self.posterior_batch(data.n()[None, :], data.y()[None, :], want_mean_p=True)
        est, var = float(post["estimate"][0]), float(post["post_var"][0])
        z = float(norm.ppf(0.5 + conf_level / 2))
        sk = np.asarray(self.skeleton)
        half = z * math.sqrt(max(var, 0.0))
        ptox = post["ptox"][0]
        return CRMFit(est, var, _floats(ptox), _floats(sk ** math.exp(est + half)),
                      _floats(sk ** math.exp(est - half)), _floats(post["mean_p"][0]),
                      float(post["tail"][0]), int(self.closest(ptox)[0]) + 1, conf_level)

    def _check(self, data: EscalationData) -> None:
        if data.n_doses != self.n_doses:
            raise invalid("data.n_doses", data.n_doses, f"{self.n_doses} (skeleton length)")

    def _label(self) -> str:
        return "posterior mean" if self.estimate == "posterior_mean" else "plug-in"

    def next_dose(self, data: EscalationData) -> Decision:
        """CRM decision for the next cohort (rules in the module docstring)."""
        self._check(data)
        if data.n_patients == 0:
            return Decision("stay", self.start_dose, f"start at dose {self.start_dose}")
        cur = int(data.current_dose or self.start_dose) - 1
        last_dlt = any(data.dlt[-self.cohort_size:])
        n, y = data.n()[None, :], data.y()[None, :]
        post = self.posterior_batch(n, y)
        nxt_a, stop_a, best_a = self.decide_batch(n, y, np.array([cur]), np.array([last_dlt]),
                                                  post)
        tail = float(post["tail"][0])
        if stop_a[0]:
            return Decision("stop", None, f"P(DLT rate at dose 1 > {self.target:g} | data) = "
                            f"{tail:.3f} > {self.stop_probability:g}: safety stop, no MTD")
        if data.n_patients >= self.max_n:
            return Decision("stop", None, f"maximum sample size {self.max_n} reached")
        nxt, best = int(nxt_a[0]), int(best_a[0])
        p = self._working(post)[0]
        action = "escalate" if nxt > cur else "de-escalate" if nxt < cur else "stay"
        rule = (f"{self._label()} DLT probability {p[best]:.3f} at dose {best + 1} is closest "
                f"to target {self.target:g}")
        if nxt != best:
            if last_dlt and nxt == cur:
                rule += f"; coherence: a DLT in the last cohort, no escalation above dose {cur + 1}"
            else:
                rule += f"; no skipping: dose {nxt + 1} (current dose {cur + 1})"
        return Decision(action, nxt + 1, rule)  # type: ignore[arg-type]

    def select(self, data: EscalationData) -> Selection:
        """MTD: dose whose estimate is closest to the target (none after a safety stop)."""
        self._check(data)
        if data.n_patients == 0:
            return Selection(None, "no patient treated", (None,) * self.n_doses)
        n, y = data.n()[None, :], data.y()[None, :]
        post = self.posterior_batch(n, y)
        p = self._working(post)[0]
        est = _floats(p)
        sel = int(self.select_batch(n, y, post)[0])
        if sel < 0:
            return Selection(None, f"P(DLT rate at dose 1 > {self.target:g}) = "
                             f"{float(post['tail'][0]):.3f} > {self.stop_probability:g}: no MTD",
                             est)
        among = "doses given" if self.select_tried_only else "all doses"
        reason = (f"{self._label()} DLT probability {p[sel]:.3f} closest to target "
                  f"{self.target:g} among {among}")
        if data.n()[sel] == 0:
            reason += f" (dose {sel + 1} has not been given)"
        return Selection(sel + 1, reason, est)


def _highest_tried(n: np.ndarray) -> np.ndarray:
    k = n.shape[1]
    return k - 1 - np.argmax(n[:, ::-1] > 0, axis=1)


def _floats(v: np.ndarray) -> tuple[float, ...]:
    return tuple(float(x) for x in v)
