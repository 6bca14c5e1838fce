"""Non-compartmental analysis (NCA) of CAR-T cellular kinetics: Cmax, Tmax, Clast, Tlast,
AUC0-28d and AUC0-last, by the linear or the linear-up/log-down trapezoid rule.

Sources: PKNCA definitions and AUC integration methods (CLINICAL_REFERENCE.md 5.3 [K4]):

- "linear-up/log-down" (PKNCA default "lin up/log down"): a segment is integrated with the log
  trapezoid ``(C1 - C2) dt / ln(C1/C2)`` when the level decreases and the second level is > 0,
  otherwise with the linear trapezoid ``(C1 + C2) dt / 2`` (both zero -> zero).
- "linear": the linear trapezoid on every segment.
- Cmax: maximum quantifiable level after infusion; Tmax: the first time it is reached
  (PKNCA ``first.tmax``); Clast/Tlast: the last quantifiable level and its time (Tlast is the
  persistence of CAR-T cells [K1,K2]).
- AUC0-last: area from time 0 to Tlast (no extrapolation beyond Tlast).
- AUC0-28d: area from time 0 to day 28. When no sample lies on day 28, the level at day 28 is
  interpolated within the segment around it by that segment's rule (linear, or log-linear for a
  log-down segment). When Tlast < 28 and a sample at or after day 28 was BLQ, nothing is
  added after Tlast (AUC0-28 = AUC0-last, PKNCA's "AUCint.last" convention); when no sample
  at all reaches day 28, the value is missing with that reason.

Conventions of celltrial (CLINICAL_REFERENCE.md 5.3 says the published CAR-T convention was
not found; these are ours, stated here and in docs/stats.md):

- Time 0 = the first CAR-T infusion (split doses included); times in days. Samples before
  time 0 (baseline) are not part of the profile. When no sample is at time 0, a level of 0 at
  time 0 is implied (no CAR-T cells before infusion).
- BLQ: a value that is NaN or below ``lloq`` is below the limit of quantification. BLQ samples
  before the first quantifiable sample count as 0; BLQ samples after it are missing and left
  out (the curve joins the surrounding quantifiable samples).

Parameters are declared as data (:data:`NCA_PARAMETERS`: name, unit, interval, function,
CDISC PPTESTCD); a new parameter is a new row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from celltrial.errors import invalid
from celltrial.stats.result import Missing

Value = float | Missing


def _linear_area(c1: np.ndarray, c2: np.ndarray, dt: np.ndarray) -> np.ndarray:
    return (c1 + c2) * dt / 2


def _log_area(c1: np.ndarray, c2: np.ndarray, dt: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (c1 - c2) * dt / np.log(c1 / c2)


def _log_down(c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """Segments integrated with the log trapezoid under linear-up/log-down: C2 < C1 and C2 > 0."""
    return (c2 < c1) & (c2 > 0)


def _never(c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    return np.zeros(np.shape(c1), dtype=bool)


METHODS: Mapping[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "linear-up/log-down": _log_down,
    "linear": _never,
}
"""AUC integration methods (PKNCA): which segments use the log trapezoid."""


@dataclass(frozen=True)
class Profile:
    """A concentration-time profile after the BLQ rules: times from 0, levels (0 before the first
    quantifiable sample), ``quantifiable`` flags, the last sampling time (BLQ included) and the
    method's log-segment rule."""

    time: np.ndarray
    conc: np.ndarray
    quantifiable: np.ndarray
    last_sample: float
    log_segment: Callable[[np.ndarray, np.ndarray], np.ndarray]


def _segment_areas(p: Profile, time: np.ndarray, conc: np.ndarray) -> np.ndarray:
    c1, c2, dt = conc[:-1], conc[1:], np.diff(time)
    log = p.log_segment(c1, c2)
    return np.where(log, _log_area(c1, c2, dt), _linear_area(c1, c2, dt))


def _level_at(p: Profile, time: np.ndarray, conc: np.ndarray, t: float) -> float:
    """Level at t inside the profile, interpolated by the rule of the segment holding t."""
    j = int(np.searchsorted(time, t, side="left"))
    if time[j] == t:
        return float(conc[j])
    t1, t2, c1, c2 = time[j - 1], time[j], conc[j - 1], conc[j]
    frac = (t - t1) / (t2 - t1)
    if p.log_segment(np.array(c1), np.array(c2)):
        return float(math.exp(math.log(c1) + frac * (math.log(c2) - math.log(c1))))
    return float(c1 + frac * (c2 - c1))


def _quantifiable_part(p: Profile) -> tuple[np.ndarray, np.ndarray]:
    last = np.flatnonzero(p.quantifiable)[-1]
    return p.time[: last + 1], p.conc[: last + 1]


def auc_interval(p: Profile, start: float, end: float | str) -> Value:
    """Area from ``start`` to ``end`` (a number of days, or ``"tlast"``) under the profile."""
    if not p.quantifiable.any():
        if isinstance(end, str):
            return Missing("no quantifiable sample: Tlast, and so AUC0-last, is undefined")
        if p.last_sample >= end:
            return 0.0
        return Missing(f"no sample at or after day {end:g} (last at day {p.last_sample:g}), "
                       "and none quantifiable")
    time, conc = _quantifiable_part(p)
    tlast = float(time[-1])
    stop = tlast if isinstance(end, str) else float(end)
    if stop > tlast:
        if p.last_sample < stop:
            return Missing(f"follow-up ends at day {p.last_sample:g}, before day {stop:g}: "
                           f"AUC{start:g}-{stop:g} cannot be computed")
        stop = tlast  # BLQ after Tlast: nothing added after Tlast
    inside = (time > start) & (time < stop)
    t = np.concatenate([[start], time[inside], [stop]])
    c = np.concatenate([[_level_at(p, time, conc, start)], conc[inside],
                        [_level_at(p, time, conc, stop)]])
    return float(np.sum(_segment_areas(p, t, c)))


def _cmax(p: Profile) -> Value:
    if not p.quantifiable.any():
        return Missing("no quantifiable sample (all below LLOQ)")
    return float(p.conc[p.quantifiable].max())


def _tmax(p: Profile) -> Value:
    if not p.quantifiable.any():
        return Missing("no quantifiable sample (all below LLOQ)")
    q = np.flatnonzero(p.quantifiable)
    return float(p.time[q[np.argmax(p.conc[q])]])


def _clast(p: Profile) -> Value:
    if not p.quantifiable.any():
        return Missing("no quantifiable sample (all below LLOQ)")
    return float(p.conc[np.flatnonzero(p.quantifiable)[-1]])


def _tlast(p: Profile) -> Value:
    if not p.quantifiable.any():
        return Missing("no quantifiable sample (all below LLOQ)")
    return float(p.time[np.flatnonzero(p.quantifiable)[-1]])


@dataclass(frozen=True)
class NCAParameter:
    """One NCA parameter: attribute name, CDISC PPTESTCD, label, unit template (``{conc}``,
    ``{time}``), interval (start, end) for areas, and the function computing it."""

    name: str
    pptestcd: str
    label: str
    unit: str
    interval: tuple[float, float | str] | None
    function: Callable[[Profile], Value]


NCA_PARAMETERS: tuple[NCAParameter, ...] = (
    NCAParameter("cmax", "CMAX", "Maximum level", "{conc}", None, _cmax),
    NCAParameter("tmax", "TMAX", "Time of maximum level", "{time}", None, _tmax),
    NCAParameter("clast", "CLST", "Last quantifiable level", "{conc}", None, _clast),
    NCAParameter("tlast", "TLST", "Time of last quantifiable level (persistence)", "{time}",
                 None, _tlast),
    NCAParameter("auc_0_28", "AUCINT", "AUC from day 0 to day 28", "{conc}*{time}", (0.0, 28.0),
                 lambda p: auc_interval(p, 0.0, 28.0)),
    NCAParameter("auc_last", "AUCLST", "AUC from time 0 to Tlast", "{conc}*{time}",
                 (0.0, "tlast"), lambda p: auc_interval(p, 0.0, "tlast")),
)
"""The NCA parameters celltrial reports, in computation order (PKNCA / CDISC PP)."""


@dataclass(frozen=True)
class NCAResult:
    """NCA of one profile: each parameter a number or a :class:`Missing` with its reason."""

    cmax: Value
    tmax: Value
    clast: Value
    tlast: Value
    auc_0_28: Value
    auc_last: Value
    method: str
    lloq: float
    n_samples: int
    n_quantifiable: int

    def table(self, conc_unit: str = "", time_unit: str = "day") -> pd.DataFrame:
        """One row per parameter: name, pptestcd, label, value (NaN if missing), unit, reason."""
        rows = []
        for p in NCA_PARAMETERS:
            item = getattr(self, p.name)
            missing = isinstance(item, Missing)
            rows.append({"name": p.name, "pptestcd": p.pptestcd, "label": p.label,
                         "value": math.nan if missing else float(item),
                         "unit": p.unit.format(conc=conc_unit, time=time_unit),
                         "reason": item.reason if missing else None})
        return pd.DataFrame(rows)


def prepare_profile(times: object, values: object, lloq: float = 0.0,
                    method: str = "linear-up/log-down") -> Profile:
    """Validate a profile and apply the time-0 and BLQ rules of this module."""
    if method not in METHODS:
        raise invalid("method", method, "one of " + ", ".join(METHODS))
    t = np.asarray(times, dtype=float).ravel()
    v = np.asarray(values, dtype=float).ravel()
    if v.size != t.size:
        raise invalid("values", f"{v.size} values", f"one per time ({t.size})")
    if not np.all(np.isfinite(t)):
        raise invalid("times", float(t[~np.isfinite(t)][0]), "finite study days")
    if not math.isfinite(float(lloq)) or lloq < 0:
        raise invalid("lloq", lloq, "a finite number >= 0")
    if np.any(v[np.isfinite(v)] < 0):
        raise invalid("values", float(v[np.isfinite(v) & (v < 0)][0]), "levels >= 0")
    keep = t >= 0
    t, v = t[keep], v[keep]
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    if np.any(np.diff(t) == 0):
        raise invalid("times", float(t[1:][np.diff(t) == 0][0]), "distinct sampling times")
    if t.size == 0:
        raise invalid("times", "none >= 0", "at least one sample at or after the infusion")
    quant = np.isfinite(v) & (v >= lloq) & ~((lloq == 0) & (v == 0))
    if quant.any():
        first = np.flatnonzero(quant)[0]
        keep = quant | (np.arange(t.size) < first)
    else:
        keep = np.ones(t.size, dtype=bool)
    conc = np.where(quant, v, 0.0)
    last_sample = float(t[-1])
    t, conc, quant = t[keep], conc[keep], quant[keep]
    if t[0] > 0:
        t, conc, quant = np.r_[0.0, t], np.r_[0.0, conc], np.r_[False, quant]
    return Profile(time=t, conc=conc, quantifiable=quant, last_sample=last_sample,
                   log_segment=METHODS[method])


def nca(times: object, values: object, lloq: float = 0.0,
        method: str = "linear-up/log-down") -> NCAResult:
    """NCA of one subject's profile (days from first infusion; levels in their unit).

    Values below ``lloq`` or NaN are BLQ (0 before the first quantifiable sample, missing after).

    >>> r = nca([0, 7, 14, 28], [0, 2000, 500, 50], lloq=10)
    >>> r.cmax, r.tmax, r.tlast
    (2000.0, 7.0, 28.0)
    >>> r.auc_0_28 == r.auc_last
    True
    """
    profile = prepare_profile(times, values, lloq, method)
    found = {p.name: p.function(profile) for p in NCA_PARAMETERS}
    return NCAResult(**found, method=method, lloq=float(lloq),
                     n_samples=int(np.size(np.asarray(times))),
                     n_quantifiable=int(profile.quantifiable.sum()))
