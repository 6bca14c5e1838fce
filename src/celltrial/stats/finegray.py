"""Fine-Gray subdistribution hazards regression, numerically equal to R ``cmprsk::crr``.

Source: Fine JP, Gray RJ. A proportional hazards model for the subdistribution of a competing
risk. J Am Stat Assoc 1999;94:496-509 (estimating equation, section 2; variance, section 3
and appendix), as implemented by R package ``cmprsk`` (Gray) ``crr(ftime, fstatus, cov1,
failcode = 1, cencode = 0)`` with one censoring group and time-fixed covariates.
Frozen reference: tests/stats/fixtures/finegray.json, made by finegray_reference.R there.

Model: the subdistribution hazard of the cause of interest is ``h0(t) exp(beta'Z)``. Subjects
failing from a competing cause stay in the risk set after their failure, weighted by the
censoring survival ``G``: at a failure time ``t`` the weight of subject ``j`` is 1 while
``T_j >= t`` and ``G(t-) / G(T_j-)`` after a competing failure at ``T_j < t`` (0 after
censoring). ``G`` is the Kaplan-Meier estimate of the censoring distribution (censoring as
the event; a failure at a censoring time counts as at risk for it), read just before each
time (``G(t-)``, as crr reads ``survfit`` at ``t (1 - 100 eps)``).

- Log pseudo-likelihood (Breslow ties): ``sum_t [ sum_{i fails at t} beta'Z_i
  - d_t log S0(beta, t) ]`` with ``S0 = sum_j w_j(t) exp(beta'Z_j)``.
- Estimate: Newton-Raphson from 0 with step halving, iterated to full precision (crr stops
  earlier, at its ``gtol``; the frozen fits differ from the exact maximum by < 1e-7 relative).
- Variance: the sandwich ``I^-1 (sum_i (eta_i + psi_i)(eta_i + psi_i)') I^-1`` where ``eta_i``
  is subject i's weighted score residual and ``psi_i`` the term from estimating ``G``
  (Fine & Gray 1999, section 3): ``psi_i = int q(u)/pi(u) dM_i^c(u)``, ``pi(u)`` the number
  with ``T >= u``, ``M^c`` the censoring martingale and ``q(u) = sum over competing failures
  j with T_j < u of sum over failure times s >= u of (Z_j - Zbar(s)) w_j(s) exp(beta'Z_j)
  d_s / S0(s)``.

The weights are held as a dense (failure times x subjects) matrix: meant for trial-sized data
(a few thousand subjects). Status codes: 0 = censored, ``failcode`` (default 1) = the cause
of interest, anything else = a competing cause.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from celltrial.errors import NotComputable, invalid

__all__ = ["FineGrayResult", "censoring_survival_before", "fine_gray"]


@dataclass(frozen=True)
class FineGrayResult:
    """Coefficients, sandwich variance, standard errors, information matrix, score and log
    pseudo-likelihood at the estimate; ``names`` label the covariates."""

    names: tuple[str, ...]
    coef: np.ndarray
    var: np.ndarray
    se: np.ndarray
    information: np.ndarray
    score: np.ndarray
    loglik: float
    iterations: int
    n: int
    n_events: int
    n_competing: int

    @property
    def hazard_ratio(self) -> np.ndarray:
        return np.exp(self.coef)

    def as_dict(self) -> dict[str, object]:
        return {"names": list(self.names), "coef": self.coef.tolist(), "se": self.se.tolist(),
                "hazard_ratio": self.hazard_ratio.tolist(), "var": self.var.tolist(),
                "loglik": self.loglik, "n": self.n, "n_events": self.n_events,
                "n_competing": self.n_competing, "iterations": self.iterations}


def censoring_survival_before(time: np.ndarray, censored: np.ndarray) -> np.ndarray:
    """Kaplan-Meier censoring survival ``G(t-)`` at each subject's own time (times sorted).

    At a tied time censorings are the events and every subject with ``T >= t`` is at risk.

    >>> censoring_survival_before(np.array([1.0, 2.0, 2.0, 3.0]), np.array([0, 1, 0, 1])).tolist()
    [1.0, 1.0, 1.0, 0.6666666666666667]
    """
    n = time.size
    g = np.ones(n)
    surv = 1.0
    i = 0
    while i < n:
        j = i
        while j < n and time[j] == time[i]:
            j += 1
        g[i:j] = surv  # value just before this time
        at_risk = n - i
        c = int(censored[i:j].sum())
        if c:
            surv *= 1.0 - c / at_risk
        i = j
    return g


class _Data:
    """Sorted data and the weights that do not depend on beta."""

    def __init__(self, time: np.ndarray, status: np.ndarray, z: np.ndarray, failcode: int):
        order = np.argsort(time, kind="stable")
        self.t = time[order]
        st = status[order]
        self.z = z[order]
        self.cens = st == 0
        self.fail = st == failcode
        self.comp = ~self.cens & ~self.fail
        self.g = censoring_survival_before(self.t, self.cens.astype(int))
        self.ftimes, first = np.unique(self.t[self.fail], return_index=True)
        # per distinct failure time: d, sum of Z of failures, G(t-) at it
        idx = np.searchsorted(self.t, self.ftimes, side="left")
        self.start = idx  # first subject with T >= t
        self.d = np.array([int(self.fail[self.t == u].sum()) for u in self.ftimes])
        self.zsum = np.array([self.z[self.fail & (self.t == u)].sum(axis=0) for u in self.ftimes])
        self.gt = self.g[idx]
        n = self.t.size
        # weight matrix W[k, j]: subject j's weight at failure time k
        self.w = np.zeros((self.ftimes.size, n))
        for k, u in enumerate(self.ftimes):
            atrisk = self.t >= u
            self.w[k, atrisk] = 1.0
            past = self.comp & (self.t < u)
            self.w[k, past] = self.gt[k] / self.g[past]

    def sums(self, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        risk = np.exp(self.z @ beta)
        wr = self.w * risk  # (K, n)
        s0 = wr.sum(axis=1)
        s1 = wr @ self.z
        s2 = np.einsum("kn,na,nb->kab", wr, self.z, self.z)
        return risk, s0, s1, s2


def _loglik_score_info(data: _Data, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    _, s0, s1, s2 = data.sums(beta)
    zbar = s1 / s0[:, None]
    loglik = float((data.zsum @ beta).sum() - (data.d * np.log(s0)).sum())
    score = (data.zsum - data.d[:, None] * zbar).sum(axis=0)
    info = (data.d[:, None, None] * (s2 / s0[:, None, None]
                                     - zbar[:, :, None] * zbar[:, None, :])).sum(axis=0)
    return loglik, score, info


def _variance_middle(data: _Data, beta: np.ndarray) -> np.ndarray:
    risk, s0, s1, _ = data.sums(beta)
    zbar = s1 / s0[:, None]
    dlam = data.d / s0  # (K,)
    n, p = data.z.shape
    # eta_i = fail_i (Z_i - Zbar(T_i)) - sum_k (Z_i - Zbar_k) w_ik r_i dLambda_k
    eta = np.zeros((n, p))
    k_of = np.searchsorted(data.ftimes, data.t)
    fi = np.flatnonzero(data.fail)
    eta[fi] = data.z[fi] - zbar[k_of[fi]]
    a = data.w * risk * dlam[:, None]  # (K, n)
    eta -= (a.sum(axis=0)[:, None] * data.z) - a.T @ zbar
    # q(u) at each subject's time u = T_i: competing failures j with T_j < u, failure times s >= u
    # contribution of j at failure time k: (Z_j - Zbar_k) w_jk r_j dLambda_k
    cj = np.flatnonzero(data.comp)
    uniq_t = np.unique(data.t[data.cens])
    psi = np.zeros((n, p))
    if uniq_t.size and cj.size:
        q = np.zeros((uniq_t.size, p))
        for m, u in enumerate(uniq_t):
            js = cj[data.t[cj] < u]
            if js.size == 0:
                continue
            ks = data.ftimes >= u
            if not ks.any():
                continue
            aa = a[np.ix_(ks, js)]  # (Ks, J)
            q[m] = (aa.sum(axis=0) @ data.z[js]) - (aa.sum(axis=1) @ zbar[ks])
        pi = np.array([(data.t >= u).sum() for u in uniq_t], dtype=float)
        dnc = np.array([(data.cens & (data.t == u)).sum() for u in uniq_t], dtype=float)
        qp = q / pi[:, None]
        # psi_i = cens_i q(T_i)/pi(T_i) - sum_{u <= T_i} q(u)/pi(u) dNc(u)/pi(u)
        cum = np.cumsum(qp * (dnc / pi)[:, None], axis=0)
        pos_le = np.searchsorted(uniq_t, data.t, side="right") - 1
        has = pos_le >= 0
        psi[has] -= cum[pos_le[has]]
        ci = np.flatnonzero(data.cens)
        psi[ci] += qp[np.searchsorted(uniq_t, data.t[ci])]
    u = eta + psi
    return u.T @ u


def fine_gray(time: Sequence[float], status: Sequence[int], covariates: Sequence[Sequence[float]]
              | np.ndarray, *, names: Sequence[str] | None = None, failcode: int = 1,
              tol: float = 1e-12, max_iter: int = 100) -> FineGrayResult:
    """Fit the Fine-Gray model; ``covariates`` is an n x p array (or p columns of length n).

    >>> r = fine_gray([1, 2, 3, 4, 5, 6], [1, 2, 1, 0, 1, 0], [[0], [1], [1], [0], [1], [0]])
    >>> round(float(r.coef[0]), 6)   # R: crr(..., gtol = 1e-12)$coef = 0.3954475456
    0.395448
    """
    t = np.asarray(time, dtype=float)
    st = np.asarray(status)
    z = np.asarray(covariates, dtype=float)
    if z.ndim == 1:
        z = z[:, None]
    if z.shape[0] != t.size and z.shape[1] == t.size:
        z = z.T
    n = t.size
    if z.shape[0] != n or st.size != n:
        raise invalid("covariates", z.shape, f"n x p with n = {n} rows like time and status")
    if n == 0 or not np.all(np.isfinite(t)) or np.any(t < 0):
        raise invalid("time", "non-finite or negative values" if n else "empty",
                      "finite times >= 0")
    if not np.all(np.isfinite(z)):
        raise invalid("covariates", "non-finite values", "finite numbers")
    if not np.all(np.equal(np.mod(st.astype(float), 1), 0)):
        raise invalid("status", st.tolist()[:5], "integer codes (0 = censored)")
    st = st.astype(int)
    p = z.shape[1]
    labels = tuple(names) if names is not None else tuple(f"x{j + 1}" for j in range(p))
    if len(labels) != p:
        raise invalid("names", list(labels), f"{p} names, one per covariate")
    data = _Data(t, st, z, failcode)
    if data.ftimes.size == 0:
        raise NotComputable("Fine-Gray regression needs at least one failure of the cause "
                            f"of interest (code {failcode})")
    beta = np.zeros(p)
    loglik, score, info = _loglik_score_info(data, beta)
    iterations = 0
    for iterations in range(1, max_iter + 1):
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            raise NotComputable("Fine-Gray information matrix is singular (a covariate "
                                "without variation among subjects at risk?)") from None
        new = beta + step
        new_ll, new_score, new_info = _loglik_score_info(data, new)
        halvings = 0
        while not np.isfinite(new_ll) or new_ll < loglik - 1e-12 * max(1.0, abs(loglik)):
            halvings += 1
            if halvings > 30:
                raise NotComputable("Fine-Gray Newton iteration does not increase the "
                                    "pseudo-likelihood")
            step = step / 2.0
            new = beta + step
            new_ll, new_score, new_info = _loglik_score_info(data, new)
        beta, loglik, score, info = new, new_ll, new_score, new_info
        if np.max(np.abs(step) / np.maximum(np.abs(beta), 1.0)) < tol:
            break
    else:
        raise NotComputable(f"Fine-Gray regression did not converge in {max_iter} iterations "
                            "(monotone likelihood: a covariate separating the events?)")
    inv = np.linalg.inv(info)
    var = inv @ _variance_middle(data, beta) @ inv.T
    return FineGrayResult(labels, beta, var, np.sqrt(np.diag(var)), info, score, loglik,
                          iterations, n, int(data.fail.sum()), int(data.comp.sum()))
