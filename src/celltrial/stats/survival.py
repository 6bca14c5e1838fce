"""Kaplan-Meier estimation and the log-rank test, numerically equal to R's ``survival`` package.

Sources (R package ``survival`` 3.5, Therneau):

- ``survfit(Surv(time, event) ~ 1)``: Kaplan-Meier estimate, Greenwood variance of the
  cumulative hazard, ``var(log S(t)) = sum_{t_i <= t} d_i / (n_i (n_i - d_i))`` (infinite once
  every subject at risk has failed, n_i = d_i).
- Confidence intervals as ``survfit_confint`` (z = qnorm(1 - (1 - conf_level)/2), se = the
  standard error of log S):
  ``"log"`` (R's default) ``S exp(-/+ z se)``, upper limit capped at 1, none where S = 0;
  ``"log-log"`` ``exp(-exp(log(-log S) -/+ z se / log S))``, none where S is 0 or 1;
  ``"plain"`` ``S -/+ z se S`` clipped to [0, 1].
- ``table["std_err"]`` is the standard error of S itself (``se * S``), the column that
  ``summary(fit)`` prints as ``std.err``; the object field ``fit$std.err`` is instead the standard
  error of log S (``std_err_log`` here).
- Median and its CI as ``print(fit)`` (``survmean``'s ``minmin``): the first time with S (or the
  lower/upper limit curve) <= 0.5; when a curve equals 0.5 exactly (within sqrt(machine eps)) on
  a flat part, the midpoint of that flat part (that time and the next time the curve drops).
  NaN when the curve never reaches 0.5 ("not reached").
- Quantiles as ``quantile(fit, p)`` (``findq``), the same midpoint convention, for any p.
- Landmarks as ``summary(fit, times = t)``: S, its standard error and CI at the last time <= t
  (1 before the first time), number at risk at t, events and censorings in (previous t, t];
  times after the last observed time are dropped (R's ``extend = FALSE``).
- ``survdiff(Surv(time, event) ~ group)`` (rho = 0): log-rank statistic with the hypergeometric
  variance; df = (groups with expected > 0) - 1; p upper-tail chi-square. With
  ``+ strata(s)`` (stratified log-rank): observed, expected and variance computed within each
  stratum and summed over strata before the quadratic form. Rows whose group or stratum label
  is missing (None, NaN) are dropped, as R's ``model.frame`` (``na.omit``) does.
- Times must be >= 0 (time from the origin: infusion, enrolment); a negative time is refused,
  never counted (a date entered before the origin is an error to correct at the source).

R's ``survfit`` also merges times that differ by less than sqrt(machine eps) (``aeqSurv``);
celltrial takes times as given (study days are exact).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from celltrial.errors import NotComputable, invalid

ConfType = Literal["log", "log-log", "plain"]
CONF_TYPES: tuple[str, ...] = ("log", "log-log", "plain")
TOLERANCE = float(np.sqrt(np.finfo(float).eps))
"""R's ``.Machine$double.eps^0.5``: how close to p a curve must be to count as equal."""

TABLE_COLUMNS = ("time", "n_risk", "n_event", "n_censor", "surv", "std_err", "lower", "upper")


def _as_time_event(time: object, event: object) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(time, dtype=float).ravel()
    e = np.asarray(event).ravel()
    if t.size == 0:
        raise invalid("time", "[]", "at least one observation")
    if e.size != t.size:
        raise invalid("event", f"{e.size} values", f"one per time ({t.size})")
    if not np.all(np.isfinite(t)):
        raise invalid("time", float(t[~np.isfinite(t)][0]), "a finite number (no NaN or infinity)")
    refuse_negative(t)
    if e.dtype == bool:
        return t, e.astype(np.int64)
    ef = np.asarray(e, dtype=float)
    bad = ~((ef == 0) | (ef == 1))
    if bad.any():
        raise invalid("event", float(ef[bad][0]), "0 (censored) or 1 (event)")
    return t, ef.astype(np.int64)


def refuse_negative(t: np.ndarray) -> None:
    """InvalidValue naming the first negative time and its position (times run from the origin:
    a negative one is a date before it, an error to correct, never a value to count)."""
    negative = np.flatnonzero(t < 0)
    if negative.size:
        i = int(negative[0])
        raise invalid("time", float(t[i]), f"a time >= 0 from the origin (row {i + 1} of "
                      f"{t.size}; {negative.size} negative)")


def _labels(values: object, name: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(present, labels) of a label vector: rows with a missing label (None, NaN, pd.NA) are
    not present; InvalidValue when the count differs from ``n`` or the labels cannot be
    ordered (mixed types, e.g. 1 and "a")."""
    v = np.asarray(values, dtype=object).ravel()
    if v.size != n:
        raise invalid(name, f"{v.size} values", f"one per time ({n})")
    present = ~pd.isna(v)
    try:
        labels, index = np.unique(v[present], return_inverse=True)
    except TypeError as exc:
        kinds = sorted({type(x).__name__ for x in v[present]})
        raise invalid(name, f"labels of types {', '.join(kinds)}",
                      "labels of one type (all text or all numbers)") from exc
    out = np.full(n, -1, dtype=np.int64)
    out[present] = index
    return present, out


def _z(conf_level: float) -> float:
    from scipy.special import ndtri

    if not 0.0 < float(conf_level) < 1.0:
        raise invalid("conf_level", conf_level, "in (0, 1), e.g. 0.95")
    return float(ndtri(1.0 - (1.0 - conf_level) / 2.0))


def confidence_limits(surv: np.ndarray, se_log: np.ndarray, conf_type: str,
                      conf_level: float) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise CI of S from the standard error of log S (R ``survfit_confint``)."""
    if conf_type not in CONF_TYPES:
        raise invalid("conf_type", conf_type, "one of " + ", ".join(CONF_TYPES))
    z = _z(conf_level)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "plain":
            half = se_log * surv * z
            return np.maximum(surv - half, 0.0), np.minimum(surv + half, 1.0)
        if conf_type == "log":
            xx = np.where(surv == 0, np.nan, surv)
            return np.exp(np.log(xx) - z * se_log), np.minimum(np.exp(np.log(xx) + z * se_log), 1.0)
        xx = np.where((surv == 0) | (surv == 1), np.nan, surv)
        se2 = z * se_log / np.log(xx)
        loglog = np.log(-np.log(xx))
        return np.exp(-np.exp(loglog - se2)), np.exp(-np.exp(loglog + se2))


def _minmin(y: np.ndarray, x: np.ndarray) -> float:
    """R survmean's ``minmin``: first x where y <= 0.5, midpoint on an exact 0.5 flat part."""
    keep = ~np.isnan(y) & (y < 0.5 + TOLERANCE)
    if not keep.any():
        return float("nan")
    xk, yk = x[keep], y[keep]
    if abs(yk[0] - 0.5) < TOLERANCE and np.any(yk < yk[0]):
        return float((xk[0] + xk[np.flatnonzero(yk < yk[0])[0]]) / 2)
    return float(xk[0])


def _approx_constant_right(xs: np.ndarray, ys: np.ndarray, xout: np.ndarray) -> np.ndarray:
    """R ``approx(xs, ys, xout, method = "constant", f = 1)``: NaN pairs dropped, pairs sorted by
    xs as R's ``regularize.values`` does (a confidence limit curve need not be monotone)."""
    ok = ~np.isnan(xs)
    xs, ys = xs[ok], ys[ok]
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    out = np.full(xout.shape, np.nan)
    if xs.size == 0:
        return out
    j = np.searchsorted(xs, xout, side="left")
    inside = (xout >= xs[0]) & (xout <= xs[-1])
    out[inside] = ys[np.minimum(j[inside], xs.size - 1)]
    return out


def _findq(x: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """R survival's ``findq``: quantile p of the curve 1 - y(x) with the flat-part midpoint rule."""
    if np.all(np.isnan(y)) or np.nanmax(y) < p.min():
        return np.full(p.shape, np.nan)
    xmax = x[-1]
    keep = ~pd.Series(y).duplicated().to_numpy()
    x, y = x[keep], y[keep]
    n = y.size
    index = np.arange(n, dtype=float)
    i1 = _approx_constant_right(y + TOLERANCE, index, p)
    i2 = _approx_constant_right(y - TOLERANCE, index, p)
    take = lambda i: np.where(np.isnan(i), np.nan, x[np.nan_to_num(i).astype(int)])  # noqa: E731
    quant = (take(i1) + take(i2)) / 2
    quant[p == 0] = x[0]
    if not np.isnan(y[-1]):
        last = np.abs(p - y[-1]) < TOLERANCE
        quant[last] = (take(i1[last]) + xmax) / 2
    return quant


@dataclass(frozen=True)
class KaplanMeierResult:
    """A fitted Kaplan-Meier curve (R ``survfit``), one row per distinct observed time.

    ``table`` columns: time, n_risk, n_event, n_censor, surv, std_err (standard error of S, as
    ``summary(fit)`` prints it), lower, upper; ``std_err_log`` holds the standard error of
    log S (R's ``fit$std.err``).
    """

    table: pd.DataFrame
    std_err_log: np.ndarray = field(repr=False)
    n: int
    conf_type: str
    conf_level: float

    @property
    def events(self) -> int:
        return int(self.table["n_event"].sum())

    @property
    def median(self) -> float:
        """Median survival time as ``print(survfit)`` shows it; NaN when not reached."""
        return _minmin(self.table["surv"].to_numpy(), self.table["time"].to_numpy())

    @property
    def median_ci(self) -> tuple[float, float]:
        """(lower, upper) confidence limits of the median as ``print(survfit)``; NaN = not reached."""
        t = self.table["time"].to_numpy()
        return (_minmin(self.table["lower"].to_numpy(), t),
                _minmin(self.table["upper"].to_numpy(), t))

    def quantile(self, p: float | Sequence[float]) -> pd.DataFrame:
        """Time by which a fraction p has had the event, with CI (R ``quantile(fit, p)``).

        Returns columns p, quantile, lower, upper (NaN = not reached).
        """
        probs = np.atleast_1d(np.asarray(p, dtype=float))
        if np.any(np.isnan(probs)) or np.any((probs < 0) | (probs > 1)):
            raise invalid("p", p, "probabilities in [0, 1]")
        x = np.concatenate([[0.0], self.table["time"].to_numpy()])
        col = lambda name: np.concatenate([[0.0], 1.0 - self.table[name].to_numpy()])  # noqa: E731
        return pd.DataFrame({"p": probs, "quantile": _findq(x, col("surv"), probs),
                             "lower": _findq(x, col("lower"), probs),
                             "upper": _findq(x, col("upper"), probs)})

    def at(self, times: float | Sequence[float], extend: bool = False) -> pd.DataFrame:
        """Survival at landmark times, as R ``summary(fit, times = times, extend = extend)``.

        Columns time, n_risk, n_event, n_censor (events/censorings since the previous requested
        time), surv, std_err (of S), lower, upper. Without ``extend``, times after the last
        observed time are dropped, as R does.
        """
        req = np.unique(np.atleast_1d(np.asarray(times, dtype=float)))
        req = req[np.isfinite(req)]
        tab = self.table
        t = tab["time"].to_numpy()
        if not extend:
            req = req[req <= t[-1]]
        start = min(0.0, float(t[0]))
        t0 = np.concatenate([[start], t])
        i1 = np.searchsorted(t0, req, side="right") - 1
        i1 = np.maximum(i1, 0)
        pick = lambda name, first: np.concatenate([[first], tab[name].to_numpy(float)])[i1]  # noqa: E731
        risk = np.concatenate([tab["n_risk"].to_numpy(), [0]])
        i2 = np.searchsorted(t, req, side="left")
        cum = lambda name: np.concatenate([[0], np.cumsum(tab[name].to_numpy())])[i1]  # noqa: E731
        delta = lambda c: np.diff(np.concatenate([[0], c]))  # noqa: E731
        out = pd.DataFrame({
            "time": req, "n_risk": risk[i2],
            "n_event": delta(cum("n_event")), "n_censor": delta(cum("n_censor")),
            "surv": pick("surv", 1.0), "std_err": pick("std_err", 0.0),
            "lower": pick("lower", 1.0), "upper": pick("upper", 1.0),
        })
        return out


def kaplan_meier(time: object, event: object, conf_type: ConfType = "log",
                 conf_level: float = 0.95) -> KaplanMeierResult:
    """Kaplan-Meier estimate with Greenwood variance (R ``survfit(Surv(time, event) ~ 1)``).

    ``time``: follow-up times (study days); ``event``: 1 = event, 0 = censored.

    >>> fit = kaplan_meier([1, 2, 2, 3, 4, 5, 5, 6], [1, 1, 0, 1, 0, 1, 1, 1])
    >>> fit.median, fit.median_ci
    (5.0, (3.0, nan))
    """
    t, e = _as_time_event(time, event)
    if conf_type not in CONF_TYPES:
        raise invalid("conf_type", conf_type, "one of " + ", ".join(CONF_TYPES))
    _z(conf_level)
    n = t.size
    ut, inverse = np.unique(t, return_inverse=True)
    count = np.bincount(inverse, minlength=ut.size)
    d = np.bincount(inverse, weights=e, minlength=ut.size)
    n_risk = n - np.concatenate([[0], np.cumsum(count)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - d / n_risk)
        term = np.where(d > 0, d / (n_risk * (n_risk - d)), 0.0)
        se_log = np.sqrt(np.cumsum(term))
        std_err = se_log * surv
    lower, upper = confidence_limits(surv, se_log, conf_type, conf_level)
    table = pd.DataFrame({
        "time": ut, "n_risk": n_risk.astype(np.int64), "n_event": d.astype(np.int64),
        "n_censor": (count - d).astype(np.int64), "surv": surv, "std_err": std_err,
        "lower": lower, "upper": upper,
    })
    return KaplanMeierResult(table=table, std_err_log=se_log, n=n, conf_type=conf_type,
                             conf_level=float(conf_level))


class LogRankResult(NamedTuple):
    """Log-rank test (R ``survdiff``); unpacks as ``chisq, df, p``."""

    chisq: float
    df: int
    p: float


def _logrank_parts(t: np.ndarray, e: np.ndarray, gi: np.ndarray, ng: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed, expected and hypergeometric covariance of the ng groups over one stratum."""
    ut, ti = np.unique(t, return_inverse=True)
    nt = ut.size
    cell = ti * ng + gi
    count = np.bincount(cell, minlength=nt * ng).reshape(nt, ng).astype(float)
    dead = np.bincount(cell, weights=e, minlength=nt * ng).reshape(nt, ng)
    risk = np.cumsum(count[::-1], axis=0)[::-1]
    has = dead.sum(axis=1) > 0
    risk, dead = risk[has], dead[has]
    n_t, d_t = risk.sum(axis=1), dead.sum(axis=1)
    observed = dead.sum(axis=0)
    expected = (risk * (d_t / n_t)[:, None]).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(n_t > 1, d_t * (n_t - d_t) / (n_t * n_t * (n_t - 1)), 0.0)
    var = np.diag((risk * (w * n_t)[:, None]).sum(axis=0)) - (risk * w[:, None]).T @ risk
    return observed, expected, var


def logrank_test(time: object, event: object, group: object,
                 strata: object = None) -> LogRankResult:
    """Log-rank test of equal survival between groups (R ``survdiff(Surv(time, event) ~ group)``;
    with ``strata``, the stratified test ``survdiff(Surv(time, event) ~ group + strata(s))``).

    Rows whose group (or stratum) is missing (None, NaN) are dropped, as R does; times must be
    >= 0 and events 0/1 (refused otherwise, naming the first bad value).

    >>> chisq, df, p = logrank_test([1, 2, 3, 4, 5, 6], [1, 1, 1, 1, 1, 0], ["a", "b"] * 3)
    >>> df
    1
    """
    from scipy.special import chdtrc

    t, e = _as_time_event(time, event)
    present, gi = _labels(group, "group", t.size)
    if strata is None:
        si = np.zeros(t.size, dtype=np.int64)
    else:
        in_stratum, si = _labels(strata, "strata", t.size)
        present &= in_stratum
    t, e, gi, si = t[present], e[present], gi[present], si[present]
    groups = np.unique(gi)
    gi = np.searchsorted(groups, gi)  # groups left after dropping rows, 0..ng-1
    ng = groups.size
    if ng < 2:
        raise invalid("group", f"{ng} group(s) with a label", "at least two distinct groups")
    observed, expected = np.zeros(ng), np.zeros(ng)
    var = np.zeros((ng, ng))
    for s_ in np.unique(si):
        rows = si == s_
        o, x, v = _logrank_parts(t[rows], e[rows], gi[rows], ng)
        observed, expected, var = observed + o, expected + x, var + v
    keep = expected > 0
    df = int(keep.sum()) - 1
    if df < 1:
        raise NotComputable("log-rank test needs two groups with subjects at risk at an event time")
    diff = (observed - expected)[keep][1:]
    vv = var[np.ix_(keep, keep)][1:, 1:]
    chisq = float(np.sum(np.linalg.solve(vv, diff) * diff))
    return LogRankResult(chisq, df, float(chdtrc(df, chisq)))
