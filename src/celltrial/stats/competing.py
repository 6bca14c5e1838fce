"""Cumulative incidence with competing risks and Gray's test, numerically equal to R ``cmprsk``.

Source: R package ``cmprsk`` 2.2 (Gray), ``cuminc(ftime, fstatus, group, rho = 0, cencode = 0)``:

- Estimate: the Aalen-Johansen cumulative incidence function of each cause in each group,
  ``F_k(t) = sum_{t_i <= t} S(t_i-) d_ki / n_i`` with S the all-cause Kaplan-Meier curve
  (Fortran ``cinc``).
- Variance: the delta-method variance that ``cinc`` accumulates (Gray's ``v1 + F^2 v3 - 2 F v2``
  recursion, with the tie correction ``1 - (d - 1)/(n - 1)``), evaluated at each event time of
  the cause.
- Curves in cuminc's step-function form: times ``0, t1, t1, t2, t2, ..., t_max`` with estimates
  ``0, 0, F(t1), F(t1), F(t2), ..., F(t_last)`` (every corner of the step), the last time being
  the group's largest follow-up time.
- ``at(times)``: R ``timepoints()``: the value of the step function at each time (after any jump
  at that time); NaN after the group's largest follow-up time.
- Gray's test (Gray 1988, Ann Stat 16:1141; Fortran ``crstm``, one stratum): for each cause, the
  score ``s`` and covariance ``V`` comparing the groups' subdistribution hazards with weight
  ``(1 - F(t-))^rho``; statistic ``s' V^-1 s`` on ng - 1 df; p-value ``1 - pchisq(stat, df)``
  exactly as cuminc prints it. (R reports stat = -1 for a singular V; here stat and p are NaN.)

Times must be >= 0: cuminc accepts a negative time and draws a curve whose time axis runs
0, -1, -1, 4; here it is refused naming it (:func:`celltrial.stats.survival.refuse_negative`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from celltrial.errors import invalid
from celltrial.stats.survival import refuse_negative

CURVE_COLUMNS = ("group", "cause", "time", "est", "var")
ALL = "all"
"""Group label used when no grouping variable is given."""


def _sorted_unique(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct values of the sorted ``y``, the index of each one's first row, and each row's
    value index (``np.unique(..., return_index, return_inverse)`` without sorting again)."""
    new = np.empty(y.size, dtype=bool)
    new[:1] = True
    np.not_equal(y[1:], y[:-1], out=new[1:])
    first = np.flatnonzero(new)
    return y[first], first, np.cumsum(new) - 1


def _cinc(y: np.ndarray, failed: np.ndarray, of_cause: np.ndarray) -> tuple[np.ndarray, ...]:
    """cmprsk's ``cinc`` for one group and cause: step-function corners (x, f, v). y sorted."""
    n = y.size
    ut, first, _ = _sorted_unique(y)
    starts = np.append(first, n)
    cnt = np.diff(starts)
    cum_f = np.concatenate([[0], np.cumsum(failed)])
    cum_1 = np.concatenate([[0], np.cumsum(of_cause)])
    nd = cum_f[starts[1:]] - cum_f[starts[:-1]]
    nd1 = cum_1[starts[1:]] - cum_1[starts[:-1]]
    rs = (n - (starts[1:] - cnt)).astype(float)
    ev = nd > 0
    ut, nd, nd1, rs = ut[ev], nd[ev].astype(float), nd1[ev].astype(float), rs[ev]
    nd2 = nd - nd1
    fkn = np.cumprod((rs - nd) / rs)
    fk = np.concatenate([[1.0], fkn[:-1]])
    f = np.cumsum(fk * nd1 / rs)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(fkn > 0, 1.0 / fkn, 0.0)
        t5 = np.where(nd2 > 1, 1 - (nd2 - 1.0) / (rs - 1.0), 1.0)
        t6 = np.where((nd2 > 0) & (fkn > 0), fk * fk * t5 * nd2 / (rs * rs), 0.0)
        t4 = f * inv
        v1, v2, v3 = t4 * t4 * t6, inv * t4 * t6, inv * inv * t6
        t5 = np.where(nd1 > 1, 1 - (nd1 - 1.0) / (rs - 1.0), 1.0)
        t6 = np.where(nd1 > 0, fk * fk * t5 * nd1 / (rs * rs), 0.0)
        t4 = 1 + inv * f
        v1, v2, v3 = v1 + t4 * t4 * t6, v2 + inv * t4 * t6, v3 + inv * inv * t6
    v1, v2, v3 = np.cumsum(v1), np.cumsum(v2), np.cumsum(v3)
    hit = nd1 > 0
    tj, fj = ut[hit], f[hit]
    vj = v1[hit] + fj * fj * v3[hit] - 2 * fj * v2[hit]
    m = tj.size
    x = np.empty(2 * m + 2)
    est = np.empty(2 * m + 2)
    var = np.empty(2 * m + 2)
    x[0], est[0], var[0] = 0.0, 0.0, 0.0
    x[1:-1:2], x[2:-1:2] = tj, tj
    est[2:-1:2], var[2:-1:2] = fj, vj
    est[1:-1:2] = np.concatenate([[0.0], fj[:-1]])
    var[1:-1:2] = np.concatenate([[0.0], vj[:-1]])
    x[-1], est[-1], var[-1] = y[-1], est[-2], var[-2]
    return x, est, var


def _gray_counts(y: np.ndarray, cause_index: np.ndarray, g: np.ndarray, ng: int, nc: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Risk sets (t, group) and failures (cause, t, group) at the distinct failure times of the
    sorted ``y``; ``cause_index`` is 0 for censored, 1..nc for the causes. One pass for all
    causes (cmprsk's ``crstm`` recounts them per cause)."""
    failed = np.flatnonzero(cause_index)
    _, first_row, rank = _sorted_unique(y[failed])
    first = np.searchsorted(y, y[failed[first_row]])  # first row (of all) at each failure time
    ne = first.size
    rs = np.empty((ne, ng))
    for j in range(ng):                    # at risk in group j: rows from `first` on
        in_j = np.concatenate([[0], np.cumsum(g == j)])
        rs[:, j] = in_j[-1] - in_j[first]
    cell = (cause_index[failed] - 1) * (ne * ng) + rank * ng + g[failed]
    d = np.bincount(cell, minlength=nc * ne * ng).reshape(nc, ne, ng).astype(float)
    return rs, d


def _crst(rs: np.ndarray, d1: np.ndarray, d2: np.ndarray, rho: float
          ) -> tuple[np.ndarray, np.ndarray]:
    """cmprsk's ``crst`` (one stratum): score s (ng-1) and covariance V of Gray's test, from the
    risk sets ``rs`` and the failures of the cause of interest ``d1`` and of the other causes
    ``d2`` at the distinct failure times (rows) per group (columns)."""
    ng = rs.shape[1]
    ones = np.ones(ng)  # row sums over the few groups as matrix-vector products (fast)
    act = rs > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        skm = np.cumprod(np.where(act, (rs - d1 - d2) / rs, 1.0), axis=0)
        skmm = np.vstack([np.ones((1, ng)), skm[:-1]])
        f1 = np.cumsum(np.where(act, skmm * d1 / rs, 0.0), axis=0)
        f1m = np.vstack([np.zeros((1, ng)), f1[:-1]])
        h = np.where(act, rs / skmm, 0.0)
        tr = h @ ones
        tq = np.where(act, rs * (1 - f1m) / skmm, 0.0) @ ones
        nd1 = d1 @ ones
        f = np.cumsum(nd1 / tr)
        fm = np.concatenate([[0.0], f[:-1]])
        fb = (1 - fm) ** rho
        a = (fb / tr)[:, None, None] * h[:, :, None] * h[:, None, :]
        a *= -1.0
        diag = np.arange(ng)
        a[:, diag, diag] += fb[:, None] * h
        c = np.cumsum(a * (nd1 / (tr * (1 - fm)))[:, None, None], axis=0)
        score = np.where(act, fb[:, None] * (d1 - nd1[:, None] * rs * (1 - f1m)
                                             / (skmm * tq[:, None])), 0.0).sum(axis=0)[: ng - 1]
        # cause-of-interest failures
        on = act & (nd1 > 0)[:, None]
        t4 = np.where(skm > 0, 1 - (1 - f[:, None]) / skm, 1.0)
        t5 = np.where(nd1[:, None] > 1, 1 - (nd1[:, None] - 1) / (tr[:, None] * skmm - 1), 1.0)
        t3 = np.where(on, t5 * skmm * nd1[:, None] / (tr[:, None] * rs), 0.0)
        v3 = (t4 * t4 * t3).sum(axis=0)
        t1 = a - t4[:, None, :] * c
        v2 = _weighted_sum(t1, t4 * t3)
        v = _weighted_gram(t1, t3)
        # other-cause failures
        on2 = (skm > 0) & (d2 > 0)
        t4 = np.where(on2, (1 - f[:, None]) / skm, 0.0)
        t5 = np.where(d2 > 1, 1 - (d2 - 1.0) / (rs - 1.0), 1.0)
        t3 = np.where(on2, t5 * skmm * skmm * d2 / (rs * rs), 0.0)
        v3 = v3 + (t4 * t4 * t3).sum(axis=0)
        t1 = t4[:, None, :] * c
        v2 = v2 - _weighted_sum(t1, t4 * t3)
        v = v + _weighted_gram(t1, t3)
    cf = c[-1]
    v = v + (cf * v3[None, :]) @ cf.T + cf @ v2.T + v2 @ cf.T
    k = ng - 1
    return score, v[:k, :k]


def _weighted_sum(t1: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``sum over t of t1[t, i, k] * w[t, k]`` (an (ng, ng) matrix) by matrix products."""
    return np.einsum("tik,tk->ik", t1, w, optimize=True)


def _weighted_gram(t1: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``sum over t, k of t1[t, i, k] * t1[t, j, k] * w[t, k]`` as one matrix product (BLAS)."""
    ng = t1.shape[1]
    a = t1.transpose(1, 0, 2).reshape(ng, -1)
    return (a * w.reshape(1, -1)) @ a.T


@dataclass(frozen=True)
class CIFResult:
    """Cumulative incidence curves per group and cause (R ``cuminc``).

    ``curves``: long table with columns group, cause, time, est, var in cuminc's step-function
    form (see the module docstring). ``gray_test``: per cause, stat, pv, df (cuminc's ``Tests``);
    None with a single group. ``groups`` and ``causes`` in R's (sorted) order.
    """

    curves: pd.DataFrame
    gray_test: pd.DataFrame | None
    groups: tuple[object, ...]
    causes: tuple[object, ...]

    def curve(self, cause: object, group: object = ALL) -> pd.DataFrame:
        """One curve (time, est, var) in cuminc's step-function form."""
        rows = self.curves[(self.curves["group"] == group) & (self.curves["cause"] == cause)]
        if rows.empty:
            raise invalid("cause/group", (cause, group), f"one of causes {list(self.causes)} "
                          f"and groups {list(self.groups)}")
        return rows[["time", "est", "var"]].reset_index(drop=True)

    def at(self, times: float | Sequence[float]) -> pd.DataFrame:
        """Estimates and variances at given times (R ``timepoints(fit, times)``).

        Long table: group, cause, time, est, var; NaN after a group's largest follow-up time.
        """
        req = np.unique(np.atleast_1d(np.asarray(times, dtype=float)))
        parts = []
        for (group, cause), rows in self.curves.groupby(["group", "cause"], sort=False):
            x = rows["time"].to_numpy()
            k = np.searchsorted(x[:-1], req, side="right") - 1
            ok = (k >= 0) & (req <= x[-1])
            idx = np.where(ok, k + 1, 0)
            est = np.where(ok, rows["est"].to_numpy()[idx], np.nan)
            var = np.where(ok, rows["var"].to_numpy()[idx], np.nan)
            parts.append(pd.DataFrame({"group": group, "cause": cause, "time": req,
                                       "est": est, "var": var}))
        return pd.concat(parts, ignore_index=True)


def cumulative_incidence(time: object, cause: object, group: object = None, cencode: object = 0,
                         rho: float = 0.0) -> CIFResult:
    """Aalen-Johansen cumulative incidence per cause (and group) with Gray's test (R ``cuminc``).

    ``cause``: failure cause per subject, ``cencode`` (default 0) for censored; e.g. 1 = relapse,
    2 = death in remission (CLINICAL_REFERENCE.md 4, CIR).

    >>> fit = cumulative_incidence([1, 2, 3, 4, 5], [1, 2, 0, 1, 0])
    >>> fit.at([4.5])["est"].round(4).tolist()
    [0.5, 0.2]
    """
    t = np.asarray(time, dtype=float).ravel()
    c = np.asarray(cause).ravel()
    if t.size == 0:
        raise invalid("time", "[]", "at least one observation")
    if c.size != t.size:
        raise invalid("cause", f"{c.size} values", f"one per time ({t.size})")
    if not np.all(np.isfinite(t)):
        raise invalid("time", float(t[~np.isfinite(t)][0]), "a finite number (no NaN or infinity)")
    refuse_negative(t)
    if pd.isna(c).any():
        raise invalid("cause", "missing", f"a cause code or the censoring code {cencode!r}")
    if group is None:
        g_lab, gi = np.array([ALL], dtype=object), np.zeros(t.size, dtype=np.int64)
    else:
        gv = np.asarray(group).ravel()
        if gv.size != t.size:
            raise invalid("group", f"{gv.size} values", f"one per time ({t.size})")
        if pd.isna(gv).any():
            raise invalid("group", "missing", "a group label for every subject")
        g_lab, gi = np.unique(gv, return_inverse=True)
    order = np.argsort(t, kind="stable")
    t, c, gi = t[order], c[order], gi[order]
    failed = c != cencode
    causes = np.unique(c[failed])
    if causes.size == 0:
        raise invalid("cause", "all censored", "at least one failure (a code other than "
                      f"{cencode!r})")
    ng = g_lab.size
    rows = []
    tests = []
    if ng > 1:
        cause_index = np.where(failed, np.searchsorted(causes, c) + 1, 0)
        rs, d = _gray_counts(t, cause_index, gi, ng, causes.size)
        d_all = d.sum(axis=0)
    for i, k in enumerate(causes):
        of_cause = c == k
        for j in range(ng):
            sel = gi == j
            x, est, var = _cinc(t[sel], failed[sel].astype(float), of_cause[sel].astype(float))
            rows.append(pd.DataFrame({"group": g_lab[j], "cause": k, "time": x,
                                      "est": est, "var": var}))
        if ng > 1:
            tests.append((k, *_gray(rs, d[i], d_all - d[i], rho)))
    gray = None
    if tests:
        gray = pd.DataFrame(tests, columns=["cause", "stat", "pv", "df"])
    curves = pd.concat(rows, ignore_index=True)
    return CIFResult(curves=curves, gray_test=gray, groups=tuple(g_lab.tolist()),
                     causes=tuple(causes.tolist()))


def _gray(rs: np.ndarray, d1: np.ndarray, d2: np.ndarray, rho: float
          ) -> tuple[float, float, int]:
    from scipy.special import chdtr

    score, v = _crst(rs, d1, d2, rho)
    df = rs.shape[1] - 1
    sv = np.linalg.svd(v, compute_uv=False)
    if sv.size == 0 or sv[-1] <= 1e-7 * sv[0]:
        return float("nan"), float("nan"), df
    stat = float(score @ np.linalg.solve(v, score))
    return stat, float(1.0 - chdtr(df, stat)), df
