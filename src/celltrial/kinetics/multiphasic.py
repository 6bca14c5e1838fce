"""Multiphasic CAR-T cellular-kinetics model (Stein et al. 2019, tisagenlecleucel).

Source: Stein AM et al., "Tisagenlecleucel model-based cellular kinetic analysis of chimeric
antigen receptor-T cells", CPT Pharmacometrics Syst Pharmacol 2019;8:285-295 (ELIANA + ENSIGN,
pediatric r/r B-ALL, n = 90), as summarised in CLINICAL_REFERENCE.md 5.1 [K1] and coded in
nlmixr2lib ``Stein_2019_Tisagenlecleucel``. Time t in days from the first infusion; the signal is
transgene copies/ug genomic DNA (qPCR), or any CAR-T level proportional to it (flow % CAR+ or
CAR+ cells/uL: same shape, other Cmax).

Closed form (six parameters, all positive, log-normal between-subject variability):

- expansion, ``t < Tmax``: ``C(t) = R0 * exp(rho * t)`` with ``rho = ln(foldx) / Tmax`` and
  ``R0 = Cmax / foldx`` (``C(t) = R0`` for ``t < 0``, as in the published code);
- contraction and persistence, ``t >= Tmax``:
  ``C(t) = (1 - FB) * Cmax * exp(-alpha (t - Tmax)) + FB * Cmax * exp(-beta (t - Tmax))``
  (effectors decline at ``alpha``; a fraction ``FB`` becomes memory-like cells declining at
  ``beta``; the memory ODE ``dM/dt = k E - beta M`` with ``k = FB (alpha - beta)``, ``M(Tmax) = 0``
  gives exactly this sum).

The predictions are computed on the log scale (``log C``), which is what the log-normal residual
model needs and stays finite for any parameter value. ``FB`` is log-normal in the source, so an
individual ``FB`` can exceed 1 in the far tail (> 5 SD); it is capped just below 1 here.

Typical values and IIV (omega^2 on the log scale) are :data:`STEIN_2019` (Stein 2019 Table 1).
Regression check (CLINICAL_REFERENCE.md 5.1): the typical patient has Cmax 24,000 copies/ug at
day 9.3 and AUC0-28d about 172,000 copies*day/ug by linear trapezoids on a 0.1-day grid.

>>> import numpy as np
>>> c = predict(STEIN_2019.typical, np.array([0.0, 9.3, 28.0]))
>>> [round(float(x)) for x in c]
[6, 24000, 1374]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from celltrial.errors import invalid

PARAMETERS: tuple[str, ...] = ("foldx", "Tmax", "Cmax", "alpha", "FB", "beta")
"""Parameter order used by every array in this package (log scale: ``log(foldx)``, ...)."""

FB_CAP = 1.0 - 1e-9
"""Largest FB used in a prediction (log-normal FB can exceed 1 in the far tail)."""


@dataclass(frozen=True)
class ParameterInfo:
    """One model parameter as data: name, unit, description, source."""

    name: str
    unit: str
    description: str


PARAMETER_INFO: tuple[ParameterInfo, ...] = (
    ParameterInfo("foldx", "fold", "fold expansion from R0 = Cmax/foldx at t = 0 to Cmax"),
    ParameterInfo("Tmax", "day", "time of the maximum (end of expansion)"),
    ParameterInfo("Cmax", "level", "maximum level (copies/ug gDNA for qPCR)"),
    ParameterInfo("alpha", "1/day", "rate of the rapid contraction (effector phase)"),
    ParameterInfo("FB", "fraction", "fraction of Cmax entering the slow (memory) phase"),
    ParameterInfo("beta", "1/day", "rate of the slow terminal decline (persistence)"),
)


@dataclass(frozen=True)
class MultiphasicParameters:
    """One patient's (or the typical) parameters of the Stein 2019 model."""

    foldx: float
    Tmax: float
    Cmax: float
    alpha: float
    FB: float
    beta: float

    def __post_init__(self) -> None:
        for name in PARAMETERS:
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise invalid(name, value, "a finite number > 0")

    def as_log_array(self) -> np.ndarray:
        """``log`` of the parameters in :data:`PARAMETERS` order."""
        return np.log(np.array([getattr(self, n) for n in PARAMETERS], dtype=float))

    @classmethod
    def from_log_array(cls, log_values: Sequence[float]) -> MultiphasicParameters:
        """Inverse of :meth:`as_log_array`."""
        return cls(**{n: float(np.exp(v)) for n, v in zip(PARAMETERS, log_values, strict=True)})

    @property
    def rho(self) -> float:
        """Expansion rate ``ln(foldx)/Tmax`` (1/day)."""
        return float(np.log(self.foldx) / self.Tmax)

    @property
    def R0(self) -> float:
        """Level at t = 0, ``Cmax/foldx``."""
        return self.Cmax / self.foldx


@dataclass(frozen=True)
class PopulationModel:
    """Typical values, IIV variances (log scale, diagonal) and residual SD (log scale)."""

    typical: MultiphasicParameters
    omega2: Mapping[str, float]
    sigma: float
    source: str
    unit: str = "copies/ug gDNA"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def omega2_array(self) -> np.ndarray:
        """IIV variances in :data:`PARAMETERS` order."""
        return np.array([self.omega2[n] for n in PARAMETERS], dtype=float)


STEIN_2019 = PopulationModel(
    typical=MultiphasicParameters(foldx=3900.0, Tmax=9.3, Cmax=24000.0, alpha=0.16, FB=0.0079,
                                  beta=0.0032),
    omega2={"foldx": 2.4, "Tmax": 0.38, "Cmax": 0.65, "alpha": 0.91, "FB": 0.80, "beta": 0.86},
    sigma=0.56,
    source="Stein et al. 2019 CPT:PSP 8:285, Table 1 (CLINICAL_REFERENCE.md 5.1 [K1])",
)
"""Published tisagenlecleucel population model (qPCR, copies/ug gDNA)."""


def _log_params(params: MultiphasicParameters | np.ndarray | Sequence[float]) -> np.ndarray:
    if isinstance(params, MultiphasicParameters):
        return params.as_log_array()
    arr = np.asarray(params, dtype=float)
    if arr.shape[-1] != len(PARAMETERS):
        raise invalid("log parameters", arr.shape, f"an array whose last axis has {len(PARAMETERS)}"
                      f" entries {PARAMETERS}")
    return arr


def log_predict(log_params: np.ndarray | MultiphasicParameters, t: np.ndarray) -> np.ndarray:
    """``log C(t)`` (numpy, vectorised).

    ``log_params`` has shape ``(..., 6)`` (log of :data:`PARAMETERS`); ``t`` broadcasts against
    ``log_params[..., 0]`` (e.g. params ``(n, 1, 6)`` with times ``(n, m)`` or ``(m,)``).
    """
    lp = _log_params(log_params)
    t = np.asarray(t, dtype=float)
    lfold, ltmax, lcmax, lalpha, lfb, lbeta = np.moveaxis(lp, -1, 0)
    tmax = np.exp(ltmax)
    with np.errstate(over="ignore", invalid="ignore"):
        grow = lcmax - lfold * (1.0 - np.clip(t, 0.0, None) / tmax)
        dt = np.clip(t - tmax, 0.0, None)
        fb = np.minimum(np.exp(lfb), FB_CAP)
        decline = lcmax + np.logaddexp(np.log1p(-fb) - np.exp(lalpha) * dt,
                                       np.log(fb) - np.exp(lbeta) * dt)
    return np.where(t < tmax, grow, decline)


def predict(params: MultiphasicParameters | np.ndarray, t: np.ndarray, *,
            log_scale_params: bool = False) -> np.ndarray:
    """``C(t)`` (numpy). ``params`` is a :class:`MultiphasicParameters` or, with
    ``log_scale_params=True``, an array ``(..., 6)`` of log parameters."""
    if not isinstance(params, MultiphasicParameters) and not log_scale_params:
        arr = np.asarray(params, dtype=float)
        if np.any(arr <= 0):
            raise invalid("params", "non-positive entry", "all > 0 (natural scale)")
        params = np.log(arr)
    return np.exp(log_predict(params, t))


def log_predict_jax(log_params: Any, t: Any, smooth: float = 0.0) -> Any:
    """``log C(t)`` in JAX (jit/vmap/grad-friendly); same broadcasting as :func:`log_predict`.

    For ``t >= 0`` and ``foldx > 1`` the model is ``min(expansion line, contraction curve)`` on
    the log scale (the contraction curve continued before Tmax lies above Cmax, the expansion
    line after Tmax too). ``smooth = 0`` gives the exact model, whose kink at Tmax
    makes the likelihood only piecewise smooth in Tmax; ``smooth > 0`` replaces the minimum by
    the soft minimum ``-smooth * log(exp(-a/smooth) + exp(-b/smooth))`` (at most
    ``smooth * ln 2`` below the exact value, at t = Tmax), which the fits use so that Newton steps
    and the Laplace approximation see a smooth objective.
    """
    import jax.numpy as jnp

    lfold, ltmax, lcmax, lalpha, lfb, lbeta = (log_params[..., i] for i in range(6))
    tmax = jnp.exp(ltmax)
    tt = jnp.clip(t, 0.0, None)
    grow = lcmax - lfold * (1.0 - tt / tmax)
    dt = tt - tmax
    lfb = jnp.minimum(lfb, np.log(FB_CAP))
    decline = lcmax + jnp.logaddexp(jnp.log1p(-jnp.exp(lfb)) - jnp.exp(lalpha) * dt,
                                    lfb - jnp.exp(lbeta) * dt)
    if smooth > 0:
        return -smooth * jnp.logaddexp(-grow / smooth, -decline / smooth)
    return jnp.where(tt < tmax, grow, decline)


def typical_auc(params: MultiphasicParameters, t_end: float = 28.0, step: float = 0.1) -> float:
    """AUC from 0 to ``t_end`` of the model curve by linear trapezoids on a ``step`` grid."""
    grid = np.linspace(0.0, t_end, int(round(t_end / step)) + 1)
    return float(np.trapezoid(predict(params, grid), grid))


def sample_individuals(model: PopulationModel, n: int, rng: np.random.Generator,
                       shift: np.ndarray | None = None) -> np.ndarray:
    """Log parameters ``(n, 6)`` drawn from ``model`` (log-normal IIV, diagonal omega).

    ``shift`` ``(n, 6)`` adds subject-specific covariate effects on the log scale.
    """
    if n < 1:
        raise invalid("n", n, "an integer >= 1")
    mu = model.typical.as_log_array()
    eta = rng.standard_normal((n, len(PARAMETERS))) * np.sqrt(model.omega2_array())
    return mu + eta + (0.0 if shift is None else np.asarray(shift, dtype=float))


def simulate_observations(log_params: np.ndarray, times: np.ndarray, sigma: float,
                          lloq: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Observed levels with log-normal residual error; returns ``(value, blq)`` of shape
    ``(n, m)``: ``value`` is NaN where the level is below ``lloq`` (``blq`` True)."""
    lp = np.asarray(log_params, dtype=float)[:, None, :]
    logc = log_predict(lp, np.asarray(times, dtype=float)[None, :])
    y = np.exp(logc + sigma * rng.standard_normal(logc.shape))
    blq = y < lloq
    return np.where(blq, np.nan, y), blq


def parameters_frame(log_params: np.ndarray, ids: Sequence[str] | None = None) -> Any:
    """A DataFrame with one row per subject and a column per parameter (natural scale)."""
    import pandas as pd

    df = pd.DataFrame(np.exp(np.asarray(log_params, dtype=float)), columns=list(PARAMETERS))
    if ids is not None:
        df.insert(0, "USUBJID", list(ids))
    return df


SCHEDULE_DAYS: tuple[float, ...] = (0, 1, 4, 7, 10, 14, 21, 28, 60, 90, 180, 365)
"""A realistic CAR-T kinetics sampling schedule (study days) used for simulated data sets."""


def simulate_adpc(n: int, seed: int, *, model: PopulationModel = STEIN_2019,
                  times: Sequence[float] = SCHEDULE_DAYS, lloq: float = 50.0,
                  doses: Sequence[float] = (5e5, 1e6, 2e6), cmax_per_log_dose: float = 0.0,
                  diseases: Sequence[str] = ("T-ALL", "AML"), analyte: str = "CARTQPCR") -> Any:
    """An ADPC-shaped data set simulated from ``model`` (seeded; same seed, same data).

    Each patient gets a dose (cells/kg, drawn from ``doses``), a baseline % CD7+ blasts (uniform
    5-95), a disease (drawn from ``diseases``); ``log Cmax`` shifts by ``cmax_per_log_dose *
    log(dose / median(doses))`` (0 = no dose effect, as Stein 2019 found). Samples at ``times``
    get the log-normal residual; levels below ``lloq`` are reported BLQ (AVAL NaN, BLQFL Y).
    Columns: USUBJID, PARAMCD, TIME, AVAL, BLQFL, LLOQ, dose_level (index 1..), dose_cells_per_kg,
    baseline_cd7_blast_pct, disease.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    level = rng.integers(0, len(doses), size=n)
    dose = np.asarray(doses, dtype=float)[level]
    blast = rng.uniform(5.0, 95.0, size=n)
    disease = np.asarray(diseases, dtype=object)[rng.integers(0, len(diseases), size=n)]
    shift = np.zeros((n, len(PARAMETERS)))
    shift[:, PARAMETERS.index("Cmax")] = cmax_per_log_dose * np.log(dose / np.median(doses))
    log_params = sample_individuals(model, n, rng, shift)
    t = np.asarray(times, dtype=float)
    value, blq = simulate_observations(log_params, t, model.sigma, lloq, rng)
    ids = [f"SIM-{k + 1:04d}" for k in range(n)]
    frame = pd.DataFrame({
        "USUBJID": np.repeat(ids, len(t)), "PARAMCD": analyte, "TIME": np.tile(t, n),
        "AVAL": value.ravel(), "BLQFL": np.where(blq.ravel(), "Y", "N"), "LLOQ": float(lloq),
        "dose_level": np.repeat(level + 1.0, len(t)), "dose_cells_per_kg": np.repeat(dose, len(t)),
        "baseline_cd7_blast_pct": np.repeat(blast, len(t)), "disease": np.repeat(disease, len(t)),
    })
    frame.attrs["true_log_params"] = log_params
    return frame
