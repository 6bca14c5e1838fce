"""Individual fits of the multiphasic model (empirical Bayes / MAP) and the ADPC reader.

Each patient's log parameters ``log p = mu + eta`` are estimated as the mode of
``log L(y | p) + log N(eta | 0, Omega)``: the M3 likelihood of :mod:`celltrial.kinetics.likelihood`
(log-normal residual, below-LLOQ samples as ``P(Y < LLOQ)``) times the population prior. With
6 parameters and about 12 samples per patient (often several BLQ), maximum likelihood alone is
not identifiable; the prior is the population model (Stein 2019 for qPCR by default, or a
population fit: ``PopulationFit.as_prior()``). This is the "POSTHOC"/EBE step of NONMEM.

The mode is found by damped Gauss-Newton steps in JAX (Hessian ``J' W J + Omega^-1`` with ``J``
the Jacobian of the log prediction and ``W`` the exact second derivatives of the M3 terms in the
prediction: positive definite, so every step descends; step length the best of
:data:`STEP_FRACTIONS` of the step, 0 included, so the objective never rises), vectorised
over patients with ``vmap`` and compiled with ``jit``. SEs of the individual log parameters come
from the inverse of that Hessian at the mode. ``Omega`` is the prior's diagonal ``omega2`` or,
when the prior carries ``extra["omega_matrix"]`` (a population fit with a block or full Omega,
``PopulationFit.as_prior()``), that full matrix.

Multi-start: the posterior of a patient is often multimodal in Tmax (the peak can sit between
any two samples), and a descent from the typical values can stop in a local mode with the peak
too early and too low -- the late expanders of the pharmacometric review (issue 17: 2-3 of 60
fits ended with a fitted Cmax below an observed level). Every patient is therefore fitted from
the starts of :data:`START_RULES` (typical values; the observed peak and its time; the observed
peak with the rise ending at the next sample; the observed peak with a late and an early Tmax),
and the start with the lowest objective is kept (the usual remedy for local optima in EBE
estimation: e.g. NONMEM's ``$ESTIMATION ... MCETA``, Monolix's multiple initial conditions). The
chosen start is reported (``start``).

ADPC input (columns, as built by ``celltrial.derive.build_adpc``): ``USUBJID``; ``TIME`` (or
``ARELTM``) study day from the first infusion (float); ``AVAL`` (NaN when BLQ); ``BLQFL``
(``"Y"``/``"N"``); ``LLOQ``; ``PARAMCD`` (``CARTQPCR`` copies/ug gDNA, ``CARTPCT`` % CAR+ of CD3+,
``CARTABS`` CAR+ cells/uL). Optional ``PCSPEC``: only blood samples (``BLOOD`` or empty) are used.
Samples before day 0 (pre-infusion) carry no CAR-T kinetics and are left out; quantified samples
with a missing AVAL are left out (reported in ``notes``). Extra columns are ignored.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from celltrial.errors import InvalidValue, invalid
from celltrial.kinetics.likelihood import _HALF_LOG_2PI, log_likelihood_jax
from celltrial.kinetics.multiphasic import (
    PARAMETERS,
    STEIN_2019,
    MultiphasicParameters,
    PopulationModel,
    log_predict_jax,
)

ANALYTE_UNITS: dict[str, str] = {
    "CARTQPCR": "copies/ug gDNA",
    "CARTPCT": "% CAR+ of CD3+",
    "CARTABS": "CAR+ cells/uL",
}
"""Analytes (PARAMCD) the kinetics fits accept, with their units (docs/data-model.md, PC)."""

REQUIRED_COLUMNS: tuple[str, ...] = ("USUBJID", "AVAL", "BLQFL", "LLOQ", "PARAMCD")
"""Required ADPC columns, plus ``TIME`` or ``ARELTM``."""

STEP_FRACTIONS = (1.0, 0.5, 0.25, 0.1, 0.03, 0.01, 1e-3, 1e-4, 0.0)
"""Fractions of the Newton step tried; the best is kept (0 = stay), so no step goes uphill."""

FIT_SMOOTH = 0.05
"""Soft-minimum width (log units) at Tmax used in fits (``log_predict_jax(..., smooth)``): the
fitted curve is at most 0.05 * ln 2 = 3.5% below the exact model, only near Tmax, far inside the
residual SD (0.56); it makes the objective smooth in Tmax so Newton and Laplace apply."""

MAX_STEP = 3.0
"""Largest Newton step (Euclidean norm, log-parameter units)."""

START_RULES: dict[str, str] = {
    "typical": "the prior's typical values (eta = 0)",
    "observed peak": "log Cmax = the highest quantified log level, Tmax = its time; the rest "
                     "typical",
    "peak at next sample": "log Cmax = highest quantified log level + sigma, Tmax = midway between "
                           "its time and the next sample's (a peak missed between samples)",
    "late peak": "log Cmax = highest quantified log level + sigma, Tmax = its time x 1.5",
    "early peak": "log Cmax = highest quantified log level, Tmax = its time x 0.6",
}
"""Starting points of the individual fits (data-declared; see the module docstring). A patient
with no quantified sample starts from the typical values only."""


@dataclass(frozen=True)
class Observations:
    """Samples of one analyte padded to a rectangle: arrays ``(n_subjects, max_samples)``.

    ``z`` is ``log AVAL`` for a quantified sample and ``log LLOQ`` for a BLQ one; ``mask`` is False
    for padding.
    """

    ids: tuple[str, ...]
    t: np.ndarray
    z: np.ndarray
    blq: np.ndarray
    mask: np.ndarray
    analyte: str
    unit: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    log_lloq: np.ndarray | None = None
    """``log LLOQ`` of every sample (NaN where ADPC gives none), for simulating the design."""

    @property
    def n_subjects(self) -> int:
        return len(self.ids)

    @property
    def n_samples(self) -> int:
        return int(self.mask.sum())

    @property
    def n_blq(self) -> int:
        return int((self.blq & self.mask).sum())


def _time_column(adpc: pd.DataFrame) -> str:
    for name in ("TIME", "ARELTM"):
        if name in adpc.columns:
            return name
    raise invalid("adpc columns", sorted(map(str, adpc.columns)),
                  "including `TIME` or `ARELTM` (study day from the first infusion)")


def read_observations(adpc: pd.DataFrame, analyte: str = "CARTQPCR") -> Observations:
    """Validate ADPC and return the padded samples of ``analyte`` (see the module docstring)."""
    if not isinstance(adpc, pd.DataFrame):
        raise invalid("adpc", type(adpc).__name__, "a pandas DataFrame")
    missing = [c for c in REQUIRED_COLUMNS if c not in adpc.columns]
    if missing:
        raise invalid("adpc columns", sorted(map(str, adpc.columns)),
                      f"including {', '.join('`' + m + '`' for m in missing)}")
    if analyte not in ANALYTE_UNITS:
        raise invalid("analyte", analyte, f"one of {sorted(ANALYTE_UNITS)}")
    time_col = _time_column(adpc)
    rows = adpc[adpc["PARAMCD"] == analyte]
    if "PCSPEC" in rows.columns:
        spec = rows["PCSPEC"].fillna("BLOOD").astype(str).str.upper()
        rows = rows[spec == "BLOOD"]
    if rows.empty:
        raise invalid("adpc", f"no {analyte} blood samples", f"to hold {analyte} samples")
    notes: list[str] = []
    time = pd.to_numeric(rows[time_col], errors="coerce")
    value = pd.to_numeric(rows["AVAL"], errors="coerce")
    lloq = pd.to_numeric(rows["LLOQ"], errors="coerce")
    flag = rows["BLQFL"].astype(str).str.upper()
    bad_flag = ~flag.isin(["Y", "N"])
    if bad_flag.any():
        i = bad_flag.idxmax()
        raise invalid(f"BLQFL (row {i}, {rows.at[i, 'USUBJID']})", rows.at[i, "BLQFL"],
                      "'Y' or 'N'")
    if time.isna().any():
        i = time.isna().idxmax()
        raise invalid(f"{time_col} (row {i}, {rows.at[i, 'USUBJID']})", rows.at[i, time_col],
                      "a number of days from the first infusion")
    blq = (flag == "Y").to_numpy()
    bad_lloq = blq & ~(lloq > 0).to_numpy()
    if bad_lloq.any():
        i = rows.index[np.argmax(bad_lloq)]
        raise invalid(f"LLOQ (row {i}, {rows.at[i, 'USUBJID']}, BLQFL Y)", rows.at[i, "LLOQ"],
                      "a number > 0 for a below-LLOQ sample")
    quant = ~blq
    nonpos = quant & (value <= 0).to_numpy()
    if nonpos.any():
        i = rows.index[np.argmax(nonpos)]
        raise invalid(f"AVAL (row {i}, {rows.at[i, 'USUBJID']}, BLQFL N)", rows.at[i, "AVAL"],
                      "a number > 0 for a quantified sample (flag BLQFL Y when below LLOQ)")
    keep = np.ones(len(rows), dtype=bool)
    no_value = quant & value.isna().to_numpy()
    if no_value.any():
        notes.append(f"{int(no_value.sum())} sample(s) with BLQFL N and no AVAL left out")
        keep &= ~no_value
    before = (time < 0).to_numpy()
    if before.any():
        notes.append(f"{int(before.sum())} pre-infusion sample(s) (TIME < 0) left out")
        keep &= ~before
    z = np.where(blq, np.log(lloq.where(lloq > 0, 1.0).to_numpy(float)),
                 np.log(value.where(value > 0, 1.0).to_numpy(float)))
    frame = pd.DataFrame({"USUBJID": rows["USUBJID"].astype(str).to_numpy(),
                          "t": time.to_numpy(float), "z": z, "blq": blq,
                          "ll": np.log(lloq.where(lloq > 0).to_numpy(float))})[keep]
    if frame.empty:
        raise invalid("adpc", f"no usable {analyte} sample at TIME >= 0",
                      f"to hold {analyte} samples from day 0 on")
    frame = frame.sort_values(["USUBJID", "t"], kind="stable")
    groups = list(frame.groupby("USUBJID", sort=True))
    width = max(len(g) for _, g in groups)
    n = len(groups)
    t = np.zeros((n, width))
    zz = np.zeros((n, width))
    bb = np.zeros((n, width), dtype=bool)
    mm = np.zeros((n, width), dtype=bool)
    ll = np.full((n, width), np.nan)
    for k, (_, g) in enumerate(groups):
        m = len(g)
        t[k, :m], zz[k, :m] = g["t"].to_numpy(), g["z"].to_numpy()
        bb[k, :m], mm[k, :m], ll[k, :m] = g["blq"].to_numpy(), True, g["ll"].to_numpy()
    return Observations(tuple(str(s) for s, _ in groups), t, zz, bb, mm, analyte,
                        ANALYTE_UNITS[analyte], tuple(notes), ll)


# --------------------------------------------------------------------------------------------
# JAX core shared with the population fit


def _data_terms(z: Any, log_pred: Any, blq: Any, sigma: Any, mask: Any) -> tuple[Any, Any, Any]:
    """Per-sample ``-log L`` and its first and second derivatives in ``log_pred`` (closed form).

    Quantified: ``r^2/2 + log sigma + log(2 pi)/2``, ``-r/sigma``, ``1/sigma^2`` with
    ``r = (z - log_pred)/sigma``. BLQ: ``-log Phi(r)``, ``lambda/sigma``,
    ``lambda (r + lambda)/sigma^2`` with ``lambda = phi(r)/Phi(r)`` (> 0: ``log Phi`` is concave).
    Padding (``mask`` False) gives zeros.
    """
    import jax.numpy as jnp
    from jax.scipy.stats import norm

    r = (z - log_pred) / sigma
    log_cdf = norm.logcdf(r)
    lam = jnp.exp(norm.logpdf(r) - log_cdf)
    value = jnp.where(blq, -log_cdf, 0.5 * r * r + jnp.log(sigma) + _HALF_LOG_2PI)
    d1 = jnp.where(blq, lam / sigma, -r / sigma)
    d2 = jnp.where(blq, lam * (r + lam) / sigma**2, 1.0 / sigma**2)
    zero = jnp.zeros_like(value)
    return (jnp.where(mask, value, zero), jnp.where(mask, d1, zero), jnp.where(mask, d2, zero))


def subject_objective(eta: Any, mu: Any, omega_inv: Any, sigma: Any, t: Any, z: Any, blq: Any,
                      mask: Any) -> Any:
    """``-log L(y | mu + eta) + eta' Omega^-1 eta / 2`` for one subject (JAX; ``omega_inv`` the
    ``(6, 6)`` precision matrix)."""
    log_pred = log_predict_jax(mu + eta, t, FIT_SMOOTH)
    return -log_likelihood_jax(z, log_pred, blq, sigma, mask) + 0.5 * eta @ omega_inv @ eta


def subject_gradient_hessian(eta: Any, mu: Any, omega_inv: Any, sigma: Any, t: Any, z: Any,
                             blq: Any, mask: Any) -> tuple[Any, Any, Any]:
    """Objective, gradient and Gauss-Newton Hessian ``J' W J + Omega^-1`` of one subject.

    ``J`` is the Jacobian of ``log C(t_j)`` in ``eta`` (forward mode) and ``W`` the second
    derivatives of :func:`_data_terms`; dropping the model's second derivatives is the FOCE-I
    approximation (Hessian always positive definite).
    """
    import jax
    import jax.numpy as jnp

    def pred(e: Any) -> Any:
        return log_predict_jax(mu + e, t, FIT_SMOOTH)

    log_pred = pred(eta)
    jac = jax.jacfwd(pred)(eta)
    value, d1, d2 = _data_terms(z, log_pred, blq, sigma, mask)
    obj = jnp.sum(value) + 0.5 * eta @ omega_inv @ eta
    grad = jac.T @ d1 + omega_inv @ eta
    hess = (jac * d2[:, None]).T @ jac + omega_inv
    return obj, grad, hess


def newton_modes(eta0: Any, mu: Any, omega_inv: Any, sigma: Any, t: Any, z: Any, blq: Any,
                 mask: Any, n_iter: Any) -> Any:
    """Modes of :func:`subject_objective` for all subjects (``vmap``): ``n_iter`` damped
    Gauss-Newton steps from ``eta0`` ``(n, 6)``; ``mu`` is ``(n, 6)`` (covariates applied).
    ``n_iter`` may be traced (one compilation for any number of steps)."""
    import jax
    import jax.numpy as jnp

    fractions = jnp.asarray(STEP_FRACTIONS)

    def one(eta: Any, mu_i: Any, t_i: Any, z_i: Any, b_i: Any, m_i: Any) -> Any:
        args = (mu_i, omega_inv, sigma, t_i, z_i, b_i, m_i)

        def step(_: Any, e: Any) -> Any:
            _, g, h = subject_gradient_hessian(e, *args)
            d = -jnp.linalg.solve(h, g)
            d = d * jnp.minimum(1.0, MAX_STEP / (jnp.linalg.norm(d) + 1e-300))
            cands = e[None, :] + fractions[:, None] * d[None, :]
            vals = jax.vmap(lambda c: subject_objective(c, *args))(cands)
            vals = jnp.where(jnp.isfinite(vals), vals, jnp.inf)
            return cands[jnp.argmin(vals)]

        return jax.lax.fori_loop(0, n_iter, step, eta)

    return jax.vmap(one)(eta0, mu, t, z, blq, mask)


def mode_hessians(eta: Any, mu: Any, omega_inv: Any, sigma: Any, t: Any, z: Any, blq: Any,
                  mask: Any) -> Any:
    """Gauss-Newton Hessians ``(n, 6, 6)`` at ``eta`` (JAX, vmapped over subjects)."""
    import jax

    def one(e: Any, m: Any, ti: Any, zi: Any, bi: Any, mi: Any) -> Any:
        return subject_gradient_hessian(e, m, omega_inv, sigma, ti, zi, bi, mi)[2]

    return jax.vmap(one)(eta, mu, t, z, blq, mask)


# --------------------------------------------------------------------------------------------
# Public individual fits


@dataclass(frozen=True)
class IndividualFit:
    """One patient's MAP estimate: parameters, SE of the log parameters, data counts, the
    objective at the mode and the start (a key of :data:`START_RULES`) it was reached from."""

    usubjid: str
    params: MultiphasicParameters
    se_log: tuple[float, ...]
    n_samples: int
    n_blq: int
    objective: float
    start: str = "typical"


def default_prior(obs: Observations) -> PopulationModel:
    """Stein 2019 for qPCR; for flow analytes the Stein shape with the typical Cmax set to the
    geometric mean of the patients' observed maxima and a wide Cmax IIV (omega^2 = 4), since
    flow levels are on another scale (an assumption; prefer ``PopulationFit.as_prior()``)."""
    if obs.analyte == "CARTQPCR":
        return STEIN_2019
    peaks = np.where(obs.mask & ~obs.blq, obs.z, -np.inf).max(axis=1)
    peaks = peaks[np.isfinite(peaks)]
    cmax = float(np.exp(np.mean(peaks))) if len(peaks) else 1.0
    t = STEIN_2019.typical
    typical = MultiphasicParameters(t.foldx, t.Tmax, cmax, t.alpha, t.FB, t.beta)
    omega2 = dict(STEIN_2019.omega2) | {"Cmax": 4.0}
    return PopulationModel(typical, omega2, STEIN_2019.sigma,
                           source="Stein 2019 shape, Cmax re-centred on the observed peaks "
                                  "(assumption for flow data)", unit=obs.unit)


def fit_individuals(adpc: pd.DataFrame, *, analyte: str = "CARTQPCR",
                    prior: PopulationModel | None = None, n_iter: int = 40,
                    starts: Sequence[str] = tuple(START_RULES)) -> pd.DataFrame:
    """MAP fit of every patient's multiphasic parameters to ADPC samples of ``analyte``.

    ``prior``: the population model the estimates shrink towards (default :func:`default_prior`).
    ``starts``: keys of :data:`START_RULES` to start from (the best mode is kept; ``("typical",)``
    is the single-start fit). Returns one row per USUBJID: the six parameters (natural scale),
    ``se_log_<param>``, ``n_samples``, ``n_blq``, ``objective`` (``-log`` posterior, up to a
    constant) and ``start`` (the start the kept mode came from).

    >>> import pandas as pd
    >>> adpc = pd.DataFrame({"USUBJID": "P1", "PARAMCD": "CARTQPCR", "LLOQ": 20.0,
    ...     "TIME": [0.0, 4, 7, 10, 14, 28, 90], "BLQFL": ["Y"] + ["N"] * 6,
    ...     "AVAL": [None, 300, 5000, 20000, 9000, 1500, 150]})
    >>> fit = fit_individuals(adpc)
    >>> bool(12000 < fit.loc[0, "Cmax"] < 40000)
    True
    """
    obs = read_observations(adpc, analyte)
    prior = default_prior(obs) if prior is None else prior
    fits = fit_observations(obs, prior, n_iter=n_iter, starts=starts)
    rows = []
    for f in fits:
        row: dict[str, Any] = {"USUBJID": f.usubjid}
        row |= {p: getattr(f.params, p) for p in PARAMETERS}
        row |= {f"se_log_{p}": s for p, s in zip(PARAMETERS, f.se_log, strict=True)}
        row |= {"n_samples": f.n_samples, "n_blq": f.n_blq, "objective": f.objective,
                "start": f.start}
        rows.append(row)
    return pd.DataFrame(rows)


@functools.cache
def _compiled() -> tuple[Any, Any, Any]:
    """jit-compiled mode finder, Hessians and objectives (compiled once per process and shape)."""
    import jax

    return (jax.jit(newton_modes), jax.jit(mode_hessians),
            jax.jit(jax.vmap(subject_objective, in_axes=(0, 0, None, None, 0, 0, 0, 0))))


def prior_precision(prior: PopulationModel) -> np.ndarray:
    """``Omega^-1`` ``(6, 6)`` of ``prior``: its ``extra["omega_matrix"]`` when present (block or
    full Omega of a population fit), else the diagonal of ``omega2``."""
    matrix = prior.extra.get("omega_matrix") if prior.extra else None
    if matrix is not None:
        omega = np.asarray(matrix, dtype=float)
        if omega.shape != (6, 6) or not np.allclose(omega, omega.T):
            raise invalid("prior.extra['omega_matrix']", omega.shape, "a symmetric (6, 6) matrix")
        try:
            np.linalg.cholesky(omega)
        except np.linalg.LinAlgError:
            raise invalid("prior.extra['omega_matrix']", "not positive definite",
                          "a positive definite covariance matrix") from None
        return np.linalg.inv(omega)
    omega2 = prior.omega2_array()
    if np.any(~np.isfinite(omega2) | (omega2 <= 0)):
        raise InvalidValue(f"Invalid `prior.omega2`: got `{omega2.tolist()}`, must be all > 0")
    return np.diag(1.0 / omega2)


def start_points(obs: Observations, mu: np.ndarray, sigma: float,
                 starts: Sequence[str]) -> np.ndarray:
    """Starting ``eta`` ``(len(starts), n, 6)`` by :data:`START_RULES` (rows with no quantified
    sample, or a peak at day 0, start from the typical values for every rule)."""
    unknown = [s for s in starts if s not in START_RULES]
    if unknown or not starts:
        raise invalid("starts", list(starts), f"one or more of {list(START_RULES)}")
    n = obs.n_subjects
    quant = obs.mask & ~obs.blq
    z = np.where(quant, obs.z, -np.inf)
    k = z.argmax(axis=1)
    rows = np.arange(n)
    peak, t_peak = z[rows, k], obs.t[rows, k]
    later = np.where(obs.mask & (obs.t > t_peak[:, None]), obs.t, np.inf).min(axis=1)
    t_next = np.where(np.isfinite(later), 0.5 * (t_peak + later), 1.5 * t_peak)
    usable = np.isfinite(peak) & (t_peak > 0)
    i_tmax, i_cmax = PARAMETERS.index("Tmax"), PARAMETERS.index("Cmax")
    rules = {"observed peak": (t_peak, 0.0), "peak at next sample": (t_next, sigma),
             "late peak": (1.5 * t_peak, sigma), "early peak": (0.6 * t_peak, 0.0)}
    out = np.zeros((len(starts), n, 6))
    with np.errstate(divide="ignore", invalid="ignore"):
        for j, name in enumerate(starts):
            if name == "typical":
                continue
            tmax, lift = rules[name]
            out[j, :, i_tmax] = np.where(usable, np.log(tmax) - mu[:, i_tmax], 0.0)
            out[j, :, i_cmax] = np.where(usable, peak + lift - mu[:, i_cmax], 0.0)
    return out


def fit_observations(obs: Observations, prior: PopulationModel, *, n_iter: int = 40,
                     mu: np.ndarray | None = None,
                     starts: Sequence[str] = tuple(START_RULES)) -> list[IndividualFit]:
    """MAP fits on already-read :class:`Observations` (``mu`` ``(n, 6)`` overrides the prior's
    typical log values per subject, e.g. with covariate effects), from every start in
    ``starts`` (keys of :data:`START_RULES`), keeping each subject's lowest objective."""
    import jax
    import jax.numpy as jnp

    if not (np.isfinite(prior.sigma) and prior.sigma > 0):
        raise invalid("prior.sigma", prior.sigma, "a finite number > 0")
    precision = prior_precision(prior)
    n = obs.n_subjects
    mu_all = (np.tile(prior.typical.as_log_array(), (n, 1)) if mu is None
              else np.asarray(mu, dtype=float))
    eta0 = start_points(obs, mu_all, float(prior.sigma), starts)      # (s, n, 6)
    n_starts = len(eta0)

    def stack(a: np.ndarray) -> Any:
        return jnp.asarray(np.concatenate([a] * n_starts, axis=0))

    with jax.enable_x64(True):
        args = (stack(mu_all), jnp.asarray(precision), jnp.asarray(prior.sigma),
                stack(obs.t), stack(obs.z), stack(obs.blq), stack(obs.mask))
        modes, hessians, objectives = _compiled()
        eta_all = modes(jnp.asarray(eta0.reshape(-1, 6)), *args, n_iter)
        values_all = np.asarray(objectives(eta_all, *args)).reshape(n_starts, n)
        values_all = np.where(np.isfinite(values_all), values_all, np.inf)
        best = values_all.argmin(axis=0)                              # ties: the earlier start
        eta = np.asarray(eta_all).reshape(n_starts, n, 6)[best, np.arange(n)]
        values = values_all[best, np.arange(n)]
        single = tuple(a[:n] for a in (args[0], *args[3:]))
        hess = np.asarray(hessians(jnp.asarray(eta), single[0], args[1], args[2], *single[1:]))
    out = []
    for k, sid in enumerate(obs.ids):
        try:
            cov = np.linalg.inv(hess[k])
            se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        except np.linalg.LinAlgError:
            se = np.full(6, np.nan)
        out.append(IndividualFit(
            sid, MultiphasicParameters.from_log_array(mu_all[k] + eta[k]), tuple(map(float, se)),
            int(obs.mask[k].sum()), int((obs.blq[k] & obs.mask[k]).sum()), float(values[k]),
            str(list(starts)[best[k]])))
    return out


def subject_ids(obs: Observations) -> Sequence[str]:
    """Subject ids in the row order of the arrays."""
    return obs.ids
