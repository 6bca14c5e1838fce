"""Population (NLME) fit of the multiphasic CAR-T model by SAEM with the M3 likelihood.

Model (Stein et al. 2019 [K1], CLINICAL_REFERENCE.md 5.1): for patient ``i`` the six log
parameters are ``phi_i = log p_i = mu + X_i C + eta_i`` with ``eta_i ~ N(0, Omega)``; the
observations are ``log Y = log C(t; p_i) + eps``, ``eps ~ N(0, sigma^2)``; below-LLOQ samples enter
as ``P(Y < LLOQ)`` (M3, Beal 2001; :mod:`celltrial.kinetics.likelihood`). Covariates act
log-linearly on the typical values (by default on Cmax: ``log Cmax ~ log dose + blasts + disease``);
see :data:`COVARIATE_SPECS`. ``Omega`` is diagonal (default), full, or block-diagonal
(``omega=[("Tmax", "Cmax"), ...]``: covariances within each block, the other parameters
independent).

Method (``method="saem"``): stochastic approximation EM (Delyon, Lavielle & Moulines, Ann Stat
1999;27:94-128; Kuhn & Lavielle, Comput Stat Data Anal 2005;49:1020-1038; the estimator of
Monolix, which Stein 2019 used). Each iteration draws every patient's ``phi_i`` by
Metropolis-Hastings (independence proposals from the population distribution; independence
proposals from a Student t (5 df) fitted to the patient's own recent draws, which mixes across the
strongly correlated persistence parameters FB/beta and between the modes of Tmax; full-vector and
one-parameter random walks with adaptive steps; several chains per patient when there are few
patients), updates the stochastic approximations of the sufficient statistics ``E[phi_i]`` and
``E[phi_i phi_i']`` (step 1 during the exploration phase, then ``1/k``) and maximises: typical
values and covariate effects by generalised least squares (ordinary least squares when Omega is
diagonal), ``Omega`` in closed form restricted to its structure (with simulated annealing of the
variances during exploration so they do not collapse early), ``sigma`` in closed form from the
stochastic approximation of the sum of squared log residuals, every BLQ sample imputed from its
truncated normal given the current draw (Samson, Lavielle & Mentre 2007), whose fixed point is
the maximum of the M3 likelihood.

Objective function: after the fit, ``OFV = -2 log L`` by importance sampling around each
patient's conditional mean and covariance (:mod:`celltrial.kinetics.marginal`; the Monolix
"log-likelihood estimation" task), with its Monte-Carlo SE, and ``AIC``, ``BIC`` (``log`` of the
number of subjects, as Monolix) and ``BICc``; nested covariate models are compared by the drop in
OFV (likelihood-ratio test: 3.84 for one parameter at 5%).

Uncertainty: the observed Fisher information by Louis' missing-information principle (Louis,
JRSS-B 1982;44:226-233), ``I = -sum_i E[d2 log p(y_i, phi_i)] - sum_i Cov[d log p(y_i, phi_i)]``
with the expectations over the conditional distribution of ``phi_i`` at the estimate (Monte-Carlo
by MCMC draws, the stochastic approximation of Kuhn & Lavielle 2005 / Monolix's "stochastic
approximation" standard errors) and closed-form complete-data derivatives (Omega entries on the
linear scale, then mapped to the estimation scale). SAEM's estimate is itself a Monte-Carlo
quantity; its stochastic-approximation error is estimated by batch means over the smoothing
phase (the M-step applied to the statistics of each of ``mc_batches`` consecutive batches) and
**added** to the inverse information: ``Cov = I^-1 + V_MC``. Why this and not a bootstrap: it
costs one extra MCMC run instead of 100-1000 refits and is what Monolix and saemix report;
coverage over 20 simulated data sets is measured by ``benchmarks/bench_popfit_coverage.py``
(benchmarks/RESULTS.md, "Population fit: standard errors and coverage"). 90% Wald intervals on
the estimation scale (log for typical values, variances and sigma; linear for covariate effects
and covariances; Fisher z for correlations). Individual estimates are the conditional means
(and SDs) of ``phi_i`` over the final draws.

Why SAEM: the model's kink at Tmax and the multimodal individual posteriors (Tmax between
different samples) make gradient-based Laplace/FOCE objectives rough; SAEM needs no gradient, is
the reference method for this model, and in vectorised numpy (no jit compile) fits 100 patients
in a few seconds on 2 CPU cores. Limits: a stochastic estimate (the seed fixes it; the MC part of
the SE says how much another seed would move it); Wald intervals on variances are approximate
with 20-40 patients; the OFV compares models fitted to the same samples only (module
:mod:`~celltrial.kinetics.marginal`). See docs/kinetics-multiphasic.md for the recovery figures.
"""

from __future__ import annotations

import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from celltrial.errors import invalid
from celltrial.kinetics.individual import Observations, read_observations
from celltrial.kinetics.likelihood import log_likelihood_rows
from celltrial.kinetics.marginal import (
    InformationCriteria,
    MarginalLikelihood,
    importance_sampling,
)
from celltrial.kinetics.multiphasic import (
    PARAMETER_INFO,
    PARAMETERS,
    MultiphasicParameters,
    PopulationModel,
    log_predict,
)

Z90 = 1.6448536269514722
"""Standard-normal 95th percentile: 90% two-sided Wald intervals."""

Method = Literal["saem"]

OmegaSpec = Literal["diagonal", "full"] | Sequence[Sequence[str]]
"""``"diagonal"``, ``"full"``, or blocks of parameter names (each block a full covariance; the
parameters in no block have a variance only)."""


@dataclass(frozen=True)
class SAEMSettings:
    """SAEM tuning (Monolix-like defaults): iterations of the exploration phase (step 1) and the
    smoothing phase (step 1/k), MH moves per iteration, chains, draws kept for the estimates.

    ``t_moves``: independence moves from a Student t (``t_df`` df) fitted to the patient's recent
    draws (weight ``proposal_weight`` per iteration in exploration, then ``1/k``).
    ``is_draws``: importance-sampling draws per subject for the OFV (0: no OFV), ``is_df`` the t
    proposal's df. ``mc_batches``: batches of the smoothing phase for the stochastic-approximation
    error of the estimate; ``mc_error_in_se``: add it to the SEs (Louis information otherwise).
    """

    explore: int = 250
    smooth: int = 200
    independence_moves: int = 2
    t_moves: int = 2
    random_walk_moves: int = 2
    min_chains_total: int = 60
    final_draws: int = 200
    annealing: float = 0.93
    omega2_start: float = 1.0
    sigma_start: float = 0.5
    t_df: float = 5.0
    proposal_weight: float = 0.05
    is_draws: int = 5000
    is_df: float = 5.0
    mc_batches: int = 10
    mc_error_in_se: bool = True


@dataclass(frozen=True)
class CovariateSpec:
    """How a covariate enters ``log`` of a typical value (definitions as data).

    ``kind``: ``"log"`` -> ``log(x / median)``; ``"linear"`` -> ``(x - median) / scale``;
    ``"categorical"`` -> one indicator per level other than the most frequent (reference).
    ``columns``: ADPC columns tried in order (first present wins).
    """

    name: str
    columns: tuple[str, ...]
    kind: Literal["log", "linear", "categorical"]
    scale: float
    description: str


COVARIATE_SPECS: dict[str, CovariateSpec] = {
    "dose_level": CovariateSpec(
        "dose_level", ("dose_cells_per_kg", "TRTDOSE", "dose_level", "TRT01AN"), "log", 1.0,
        "dose given: log(dose / median dose); cells/kg (dose_cells_per_kg/TRTDOSE) when present, "
        "else the dose-level number"),
    "baseline_cd7_blast_pct": CovariateSpec(
        "baseline_cd7_blast_pct", ("baseline_cd7_blast_pct", "BCD7BLST"), "linear", 10.0,
        "baseline % CD7+ blasts: per 10 percentage points above the median"),
    "disease": CovariateSpec(
        "disease", ("disease", "DISEASE"), "categorical", 1.0,
        "disease type vs the most frequent one"),
}
"""Known covariates (ADPC columns of ``celltrial.derive.build_adpc``). Any other named column is
used as it is: numeric -> linear per unit above the median; text -> categorical."""


@dataclass(frozen=True)
class Estimate:
    """A point estimate, its SE on the estimation scale and a 90% interval (natural scale)."""

    value: float
    se: float
    ci90_low: float
    ci90_high: float
    scale: Literal["log", "linear"]

    @property
    def rse_pct(self) -> float:
        """Relative SE in % (for log-scale estimates, SE of the log x 100)."""
        if self.scale == "log":
            return 100.0 * self.se
        return 100.0 * self.se / abs(self.value) if self.value else float("nan")


def _log_estimate(log_value: float, se: float) -> Estimate:
    return Estimate(float(np.exp(log_value)), float(se), float(np.exp(log_value - Z90 * se)),
                    float(np.exp(log_value + Z90 * se)), "log")


def _linear_estimate(value: float, se: float) -> Estimate:
    return Estimate(float(value), float(se), float(value - Z90 * se), float(value + Z90 * se),
                    "linear")


@dataclass(frozen=True)
class CovariateDesign:
    """Per-subject covariate matrix and what each column means."""

    X: np.ndarray
    terms: tuple[str, ...]
    notes: tuple[str, ...]


def covariate_design(adpc: pd.DataFrame, ids: Sequence[str],
                     covariates: Sequence[str]) -> CovariateDesign:
    """Build the subject-level covariate matrix (one value per subject: its first non-missing).

    Named covariates must exist (an absent column is an error); a covariate without variation
    across the fitted subjects is left out with a note (not estimable); missing values are set to
    the median (numeric) or the reference level (categorical) with a note.
    """
    cols: list[np.ndarray] = []
    terms: list[str] = []
    notes: list[str] = []
    by_subject = adpc.assign(USUBJID=adpc["USUBJID"].astype(str)).groupby("USUBJID", sort=True)
    for name in covariates:
        spec = COVARIATE_SPECS.get(name)
        candidates = spec.columns if spec else (name,)
        column = next((c for c in candidates if c in adpc.columns), None)
        if column is None:
            raise invalid("adpc columns", sorted(map(str, adpc.columns)),
                          f"including covariate `{name}` (one of {list(candidates)})")
        first = by_subject[column].agg(lambda s: s.dropna().iloc[0] if s.notna().any() else None)
        values = first.reindex(list(ids))
        numeric = pd.to_numeric(values, errors="coerce")
        kind = spec.kind if spec else ("linear" if numeric.notna().sum() == values.notna().sum()
                                       else "categorical")
        n_missing = int(values.isna().sum())
        if kind == "categorical":
            labels = values.astype(object).where(values.notna(), None)
            counts = labels.dropna().astype(str).value_counts()
            if len(counts) < 2:
                notes.append(f"covariate {name} ({column}) left out: one level only")
                continue
            reference = str(counts.index[0])
            if n_missing:
                notes.append(f"covariate {name}: {n_missing} missing set to {reference}")
            filled = labels.fillna(reference).astype(str)
            for level in sorted(counts.index[1:]):
                cols.append((filled == level).to_numpy(float))
                terms.append(f"{name}={level} (vs {reference})")
            continue
        if numeric.notna().sum() < 2 or numeric.dropna().nunique() < 2:
            notes.append(f"covariate {name} ({column}) left out: no variation")
            continue
        median = float(numeric.median())
        if n_missing:
            notes.append(f"covariate {name}: {n_missing} missing set to the median {median:g}")
        x = numeric.fillna(median).to_numpy(float)
        if kind == "log":
            if np.any(x <= 0):
                raise invalid(f"covariate {name} ({column})", float(x[x <= 0][0]),
                              "> 0 (enters as log(x / median))")
            cols.append(np.log(x / median))
            terms.append(f"log({name}/{median:g})")
        else:
            scale = spec.scale if spec else 1.0
            cols.append((x - median) / scale)
            terms.append(f"({name}-{median:g})/{scale:g}")
    X = np.column_stack(cols) if cols else np.zeros((len(ids), 0))
    return CovariateDesign(X, tuple(terms), tuple(notes))


def omega_structure(spec: OmegaSpec) -> np.ndarray:
    """The free entries of Omega as a symmetric boolean ``(6, 6)`` mask (diagonal always free)."""
    if isinstance(spec, str):
        if spec == "diagonal":
            return np.eye(6, dtype=bool)
        if spec == "full":
            return np.ones((6, 6), dtype=bool)
        raise invalid("omega", spec, "'diagonal', 'full' or blocks of parameter names, e.g. "
                      "[('Tmax', 'Cmax')]")
    mask = np.eye(6, dtype=bool)
    seen: set[str] = set()
    for block in spec:
        names = [block] if isinstance(block, str) else list(block)
        unknown = [b for b in names if b not in PARAMETERS]
        if unknown:
            raise invalid("omega block", names, f"names from {list(PARAMETERS)}")
        twice = [b for b in names if b in seen]
        if twice or len(set(names)) != len(names):
            raise invalid("omega block", names, "blocks that do not share a parameter")
        seen |= set(names)
        idx = [PARAMETERS.index(b) for b in names]
        mask[np.ix_(idx, idx)] = True
    return mask


def _pairs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Free off-diagonal entries ``(p, q)``, ``p < q``, in row order."""
    return [(p, q) for p in range(6) for q in range(p + 1, 6) if mask[p, q]]


# --------------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True)
class PopulationFit:
    """Result of :func:`fit_population` (frozen; arrays in :data:`PARAMETERS` order).

    ``typical``: typical values (covariates at their reference: median / reference level) with
    SE of the log and 90% intervals; ``omega``: BSV variances on the log scale;
    ``omega_covariance`` / ``omega_correlation``: the estimated off-diagonal entries of Omega
    (keys ``"Tmax,Cmax"``; empty for a diagonal Omega); ``omega_matrix``: Omega ``(6, 6)``;
    ``sigma``: residual SD on the log scale; ``covariate_effects``: coefficient of each covariate
    term on the log of a typical value; ``individual``: one row per USUBJID with the conditional
    mean parameters, ``eta_<p>``, ``se_log_<p>``, ``n_samples``, ``n_blq``; ``uninformed``: the
    estimates the data do not inform (observed information <= 0), held at their value when the
    SEs were computed.

    ``ofv``: ``-2 log L`` by importance sampling (``objective`` is the same number), ``ofv_se``
    its Monte-Carlo SE; ``aic``, ``bic`` (``log`` N subjects), ``bicc``; ``n_parameters``.
    ``se_method`` says how the SEs were obtained; ``mc_covariance`` is the estimated
    stochastic-approximation covariance of the estimate (estimation scale) included in them.
    """

    typical: dict[str, Estimate]
    omega: dict[str, Estimate]
    sigma: Estimate
    covariate_effects: dict[str, Estimate]
    individual: pd.DataFrame
    objective: float
    method: str
    seed: int
    analyte: str
    unit: str
    n_subjects: int
    n_samples: int
    n_blq: int
    converged: bool
    message: str
    elapsed_s: float
    notes: tuple[str, ...]
    covariance_ok: bool
    observations: Observations = field(repr=False)
    covariates: CovariateDesign = field(repr=False)
    log_mu_individual: np.ndarray = field(repr=False)
    eta: np.ndarray = field(repr=False)
    theta: np.ndarray = field(repr=False)
    covariance: np.ndarray = field(repr=False)
    uninformed: tuple[str, ...] = ()
    omega_covariance: dict[str, Estimate] = field(default_factory=dict)
    omega_correlation: dict[str, Estimate] = field(default_factory=dict)
    omega_matrix: np.ndarray = field(default_factory=lambda: np.eye(6), repr=False)
    omega_structure: str = "diagonal"
    ofv: float = float("nan")
    ofv_se: float = float("nan")
    criteria: InformationCriteria | None = field(default=None, repr=False)
    marginal: MarginalLikelihood | None = field(default=None, repr=False)
    se_method: str = ""
    mc_covariance: np.ndarray | None = field(default=None, repr=False)
    parameter_names: tuple[str, ...] = field(default=(), repr=False)

    @property
    def n_parameters(self) -> int:
        """Estimated population parameters (typical values, covariate effects, Omega entries,
        sigma): the ``P`` of AIC and BIC."""
        return len(self.theta)

    @property
    def aic(self) -> float:
        return self.criteria.aic if self.criteria else float("nan")

    @property
    def bic(self) -> float:
        """``OFV + P log(number of subjects)`` (Monolix's BIC)."""
        return self.criteria.bic if self.criteria else float("nan")

    @property
    def bicc(self) -> float:
        """``OFV + P_R log(N subjects) + P_F log(n samples)`` (Delattre et al. 2014)."""
        return self.criteria.bicc if self.criteria else float("nan")

    @property
    def typical_params(self) -> MultiphasicParameters:
        return MultiphasicParameters(**{p: self.typical[p].value for p in PARAMETERS})

    def as_prior(self) -> PopulationModel:
        """The fitted population as a :class:`PopulationModel` (for individual fits, simulation).

        ``PopulationModel.omega2`` holds the variances; a non-diagonal Omega travels in
        ``extra["omega_matrix"]`` (the prior covariance of
        :func:`celltrial.kinetics.individual.fit_observations`)."""
        extra = ({} if self.omega_structure == "diagonal"
                 else {"omega_matrix": np.array(self.omega_matrix)})
        return PopulationModel(self.typical_params, {p: self.omega[p].value for p in PARAMETERS},
                               self.sigma.value, source=f"population fit ({self.method})",
                               unit=self.unit, extra=extra)

    def parameter_table(self) -> pd.DataFrame:
        """One row per estimate: parameter, estimate, uncertainty (RSE and 90% CI), unit, note,
        plus numeric ``se``, ``ci90_low``, ``ci90_high``, ``scale``. Off-diagonal Omega entries
        appear as ``omega_<p>,<q>`` (covariance) and ``corr_<p>,<q>`` (correlation)."""
        units = {i.name: i.unit for i in PARAMETER_INFO} | {"Cmax": self.unit}
        desc = {i.name: i.description for i in PARAMETER_INFO}
        rows = []

        def add(name: str, e: Estimate, unit: str, note: str) -> None:
            if np.isfinite(e.se):
                unc = f"RSE {e.rse_pct:.0f}%; 90% CI {e.ci90_low:.4g} to {e.ci90_high:.4g}"
            elif name in self.uninformed:
                unc = "not estimated (not informed by the data; see notes)"
            else:
                unc = "not estimated (covariance step failed)"
            rows.append({"parameter": name, "estimate": e.value, "uncertainty": unc, "unit": unit,
                         "note": note, "se": e.se, "ci90_low": e.ci90_low,
                         "ci90_high": e.ci90_high, "scale": e.scale})

        for p in PARAMETERS:
            add(p, self.typical[p], units[p], f"typical value: {desc[p]}")
        for term, e in self.covariate_effects.items():
            add(term, e, "log-scale coefficient", "covariate effect on the log typical value")
        for p in PARAMETERS:
            cv = 100 * np.sqrt(self.omega[p].value)
            add(f"omega2_{p}", self.omega[p], "variance (log scale)",
                f"between-subject variability of {p}; CV ~ {cv:.0f}%")
        for pair, e in self.omega_covariance.items():
            add(f"omega_{pair}", e, "covariance (log scale)", f"BSV covariance of {pair}")
        for pair, e in self.omega_correlation.items():
            add(f"corr_{pair}", e, "correlation", f"BSV correlation of {pair} (derived)")
        add("sigma", self.sigma, "SD (log scale)", "residual error, additive on log scale")
        return pd.DataFrame(rows)

    def summary(self) -> str:
        """A plain-text report: data, objective function and criteria, estimates, notes."""
        lines = [
            f"Population fit ({self.method.upper()}, seed {self.seed}): {self.analyte} "
            f"[{self.unit}], {self.n_subjects} subjects, {self.n_samples} samples "
            f"({self.n_blq} BLQ, M3); Omega {self.omega_structure}",
            f"{self.message}; {self.elapsed_s:.1f} s",
        ]
        if np.isfinite(self.ofv):
            lines.append(
                f"OFV (-2LL, importance sampling) {self.ofv:.2f} (MC SE {self.ofv_se:.2f}); "
                f"AIC {self.aic:.2f}; BIC {self.bic:.2f} (log {self.n_subjects} subjects); "
                f"BICc {self.bicc:.2f}; {self.n_parameters} parameters")
        else:
            lines.append("OFV not computed (settings.is_draws = 0)")
        lines.append(f"Standard errors: {self.se_method}")
        table = self.parameter_table()[["parameter", "estimate", "uncertainty", "unit"]]
        lines.append(table.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# --------------------------------------------------------------------------------------------
# Fit


def _start(obs: Observations) -> np.ndarray:
    """Data-driven start for the log typical values (median peak and its time; Stein 2019 shape
    for foldx/alpha/beta; FB from late levels over the peak)."""
    quant = obs.mask & ~obs.blq
    z = np.where(quant, obs.z, -np.inf)
    has = np.isfinite(z.max(axis=1))
    peak = z.max(axis=1)[has]
    tpeak = obs.t[np.arange(obs.n_subjects), z.argmax(axis=1)][has]
    lcmax = float(np.median(peak)) if len(peak) else float(np.median(obs.z[obs.mask]))
    tmax = float(np.clip(np.median(tpeak), 3.0, 40.0)) if len(tpeak) else 10.0
    late = quant & (obs.t >= 60)
    if late.any() and len(peak):
        ratio = [np.median(obs.z[k][late[k]]) - z.max(axis=1)[k]
                 for k in range(obs.n_subjects) if late[k].any() and has[k]]
        lfb = float(np.clip(np.median(ratio), np.log(1e-4), np.log(0.5))) if ratio else np.log(0.01)
    else:
        lfb = float(np.log(0.01))
    return np.array([np.log(1000.0), np.log(tmax), lcmax, np.log(0.15), lfb, np.log(0.005)])


def fit_population(adpc: pd.DataFrame, *,
                   covariates: Sequence[str] = ("dose_level", "baseline_cd7_blast_pct", "disease"),
                   analyte: str = "CARTQPCR", seed: int = 0, method: Method = "saem",
                   covariate_parameters: Sequence[str] = ("Cmax",),
                   omega: OmegaSpec = "diagonal",
                   settings: SAEMSettings = SAEMSettings()) -> PopulationFit:
    """Fit the Stein 2019 multiphasic model to the ADPC samples of ``analyte`` (NLME, SAEM).

    ``adpc`` columns (as ``celltrial.derive.build_adpc`` builds them; extra columns ignored):
    ``USUBJID``; ``TIME`` or ``ARELTM`` (study day from the first infusion, float); ``AVAL``
    (level, NaN when BLQ); ``BLQFL`` (``Y``/``N``); ``LLOQ``; ``PARAMCD`` (``CARTQPCR`` copies/ug
    gDNA, ``CARTPCT`` % CAR+ of CD3+, ``CARTABS`` cells/uL); optional ``PCSPEC`` (blood only);
    and the covariate columns: ``dose_level`` (uses ``dose_cells_per_kg``/``TRTDOSE`` when
    present, else ``dose_level``/``TRT01AN``), ``baseline_cd7_blast_pct`` (or ``BCD7BLST``),
    ``disease`` (or ``DISEASE``), or any other named column. A missing required or named column
    raises :class:`~celltrial.errors.InvalidValue` naming it.

    ``covariate_parameters``: which typical values the covariates act on (log-linear), default
    Cmax (``log Cmax ~ log dose + blasts + disease``). ``omega``: ``"diagonal"`` (default),
    ``"full"`` or blocks such as ``[("Tmax", "Cmax")]``. ``seed``: the Monte-Carlo seed (same
    seed, same data: same fit). ``method``: ``"saem"`` (module docstring: method, reasons,
    limits). The result carries the OFV (``fit.ofv``), AIC/BIC and ``fit.summary()``.

    >>> from celltrial.kinetics.multiphasic import simulate_adpc
    >>> fit = fit_population(simulate_adpc(30, seed=1), covariates=())
    >>> bool(15000 < fit.typical["Cmax"].value < 40000)
    True
    """
    if method != "saem":
        raise invalid("method", method, "'saem'")
    unknown = [p for p in covariate_parameters if p not in PARAMETERS]
    if unknown:
        raise invalid("covariate_parameters", unknown, f"names from {list(PARAMETERS)}")
    mask = omega_structure(omega)
    structure = omega if isinstance(omega, str) else "blocks " + "; ".join(
        ",".join([b] if isinstance(b, str) else b) for b in omega)
    started = _time.perf_counter()
    obs = read_observations(adpc, analyte)
    if obs.n_subjects < 2:
        raise invalid("adpc", f"{obs.n_subjects} subject", "to hold at least 2 subjects")
    design = covariate_design(adpc, obs.ids, covariates)
    targets = tuple(PARAMETERS.index(p) for p in covariate_parameters)
    rng = np.random.default_rng(seed)
    run = _SAEM(obs, design.X, targets, mask, settings, rng)
    run.run()
    draws = run.final_draws()
    info_lin, complete_lin = run.louis_information(draws)
    info = run.to_estimation_scale(info_lin)
    complete = run.to_estimation_scale(complete_lin)
    pairs = run.pairs
    names = [n for p, name in enumerate(PARAMETERS) for n in
             [name] + ([f"{name} ~ {term}" for term in design.terms] if p in targets else [])]
    names += [f"omega2_{p}" for p in PARAMETERS]
    names += [f"omega_{PARAMETERS[p]},{PARAMETERS[q]}" for p, q in pairs] + ["sigma"]
    cov, dropped = _covariance(info)
    cov_ok = dropped == ()
    # SAEM's complete data also hold the imputed BLQ levels: sigma's complete-data information
    # (log sigma scale) is 2 per sample, quantified or BLQ (d2/du2 of -n u - SSR e^-2u / 2 at
    # SSR = n sigma^2), not the M3 curvature of the Louis complete data above.
    complete_saem = np.array(complete)
    complete_saem[-1, -1] = 2.0 * obs.n_samples
    mc_cov = (_saem_mc_covariance(run.mc_covariance(), cov, complete_saem)
              if settings.mc_batches >= 2 else None)
    se_method = ("observed Fisher information by Louis' formula over MCMC draws at the "
                 f"estimate ({len(draws)} per subject)")
    if mc_cov is not None and settings.mc_error_in_se:
        cov = cov + mc_cov
        se_method += (" plus the stochastic-approximation (Monte-Carlo) covariance of the SAEM "
                      f"estimate by batch means ({settings.mc_batches} batches)")
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))

    typical: dict[str, Estimate] = {}
    effects: dict[str, Estimate] = {}
    coef = run.coef
    for p, name in enumerate(PARAMETERS):
        k = run.offsets[p]
        typical[name] = _log_estimate(coef[p][0], se[k])
        if p in targets:
            for j, term in enumerate(design.terms):
                effects[f"{name} ~ {term}"] = _linear_estimate(coef[p][1 + j], se[k + 1 + j])
    n_lin = int(run.offsets[-1])
    omega_est = {name: _log_estimate(np.log(run.omega[p, p]), se[n_lin + p])
                 for p, name in enumerate(PARAMETERS)}
    omega_cov: dict[str, Estimate] = {}
    omega_corr: dict[str, Estimate] = {}
    for j, (p, q) in enumerate(pairs):
        key = f"{PARAMETERS[p]},{PARAMETERS[q]}"
        k = n_lin + 6 + j
        omega_cov[key] = _linear_estimate(run.omega[p, q], se[k])
        omega_corr[key] = _correlation_estimate(run.omega, cov, p, q, n_lin, k)
    sigma = _log_estimate(np.log(run.sigma), se[-1])
    mu_i = run.mu_individual()
    phi_mean, phi_sd = draws.mean(axis=0), draws.std(axis=0)
    individual = _individual_frame(obs, mu_i, phi_mean - mu_i, phi_sd)
    uninformed = tuple(names[k] for k in dropped or ())
    if cov_ok:
        failure: tuple[str, ...] = ()
    elif dropped is None:
        failure = ("covariance step failed (information matrix not positive definite): SEs not "
                   "reported; try fewer covariates or check the data",)
    else:
        failure = ("covariance step: the data carry no information on "
                   f"{', '.join(uninformed)} (observed information <= 0): no SE "
                   f"for {'it' if len(uninformed) == 1 else 'them'}; the other SEs are "
                   "conditional on the estimate",)
    marginal = None
    criteria = None
    if settings.is_draws > 0:
        dev = draws - phi_mean[None]
        cond_cov = np.einsum("dni,dnj->nij", dev, dev) / max(len(draws) - 1, 1)
        marginal = importance_sampling(
            obs.t, obs.z, obs.blq, obs.mask, mu_i, run.omega, run.sigma, phi_mean, cond_cov,
            n_draws=settings.is_draws, df=settings.is_df, seed=int(rng.integers(2**31)))
        criteria = InformationCriteria(marginal.ofv, marginal.ofv_se, len(names),
                                       len(names) - 1, obs.n_subjects, obs.n_samples)
    notes = obs.notes + design.notes + failure
    theta = run.theta_est(run.beta, run.omega, np.log(run.sigma))
    ofv = marginal.ofv if marginal else float("nan")
    return PopulationFit(
        typical=typical, omega=omega_est, sigma=sigma, covariate_effects=effects,
        individual=individual, objective=ofv, method=method, seed=seed,
        analyte=analyte, unit=obs.unit, n_subjects=obs.n_subjects, n_samples=obs.n_samples,
        n_blq=obs.n_blq, converged=run.acceptance_ok(),
        message=f"SAEM {settings.explore}+{settings.smooth} iterations, {run.chains} chain(s); "
                f"MH acceptance {run.acceptance:.2f}",
        elapsed_s=_time.perf_counter() - started, notes=notes, covariance_ok=cov_ok,
        observations=obs, covariates=design, log_mu_individual=mu_i, eta=phi_mean - mu_i,
        theta=theta, covariance=cov, uninformed=uninformed, omega_covariance=omega_cov,
        omega_correlation=omega_corr, omega_matrix=np.array(run.omega),
        omega_structure=structure, ofv=ofv,
        ofv_se=marginal.ofv_se if marginal else float("nan"), criteria=criteria,
        marginal=marginal, se_method=se_method, mc_covariance=mc_cov,
        parameter_names=tuple(names))


def _saem_mc_covariance(naive: np.ndarray, cov: np.ndarray, complete: np.ndarray) -> np.ndarray:
    """Monte-Carlo covariance of the SAEM estimate from the batch-means covariance ``naive`` of
    the M-step applied to averaged statistics.

    SAEM feeds its estimate back into the simulation: linearised at the fixed point, the
    averaged statistics' noise ``e`` moves the estimate by ``(I - DM)^-1 M' e`` where ``DM`` is
    the EM rate matrix ``I_complete^-1 I_missing`` (Dempster, Laird & Rubin 1977; Delyon,
    Lavielle & Moulines 1999, Thm 7), so ``(I - DM)^-1 = I_obs^-1 I_complete`` and the covariance
    is ``C I_complete V_naive I_complete C`` with ``C = I_obs^-1``: parameters with much missing
    information (variances of poorly observed phases) carry most of the Monte-Carlo error.
    Held (uninformed) parameters keep NaN."""
    held = ~np.isfinite(np.diag(cov))
    c = np.where(np.isfinite(cov), cov, 0.0)
    out = c @ complete @ naive @ complete @ c
    out = 0.5 * (out + out.T)
    out[held, :] = np.nan
    out[:, held] = np.nan
    return out


def _correlation_estimate(omega: np.ndarray, cov: np.ndarray, p: int, q: int, n_lin: int,
                          k: int) -> Estimate:
    """Correlation of Omega entries ``p, q`` with a delta-method SE (from the covariance of
    ``omega_pq`` and ``log omega_pp``, ``log omega_qq``) and a Fisher-z 90% interval."""
    rho = float(omega[p, q] / np.sqrt(omega[p, p] * omega[q, q]))
    idx = [k, n_lin + p, n_lin + q]
    grad = np.array([1.0 / np.sqrt(omega[p, p] * omega[q, q]), -rho / 2, -rho / 2])
    sub = cov[np.ix_(idx, idx)]
    se = float(np.sqrt(max(grad @ sub @ grad, 0.0))) if np.all(np.isfinite(sub)) else float("nan")
    zr = np.arctanh(np.clip(rho, -0.999999, 0.999999))
    se_z = se / max(1.0 - rho * rho, 1e-6)
    return Estimate(rho, se, float(np.tanh(zr - Z90 * se_z)), float(np.tanh(zr + Z90 * se_z)),
                    "linear")


class _SAEM:
    """SAEM state (mutable, private to :func:`fit_population`).

    ``beta`` stacks the coefficients of the six log typical values (intercept, then covariate
    effects for the targeted parameters); ``D`` ``(n, 6, q)`` is the per-subject design so that
    ``mu_i = D_i beta``.
    """

    def __init__(self, obs: Observations, X: np.ndarray, targets: tuple[int, ...],
                 mask: np.ndarray, settings: SAEMSettings, rng: np.random.Generator) -> None:
        self.obs, self.settings, self.rng = obs, settings, rng
        n = obs.n_subjects
        self.chains = max(1, int(np.ceil(settings.min_chains_total / n)))
        designs = [np.column_stack([np.ones(n), X]) if p in targets else np.ones((n, 1))
                   for p in range(6)]
        self.offsets = np.cumsum([0] + [d.shape[1] for d in designs])
        self.D = np.zeros((n, 6, int(self.offsets[-1])))
        for p, d in enumerate(designs):
            self.D[:, p, self.offsets[p]:self.offsets[p + 1]] = d
        self.mask = mask
        self.pairs = _pairs(mask)
        start = _start(obs)
        self.beta = np.zeros(int(self.offsets[-1]))
        self.beta[self.offsets[:-1]] = start
        self.omega = np.eye(6) * settings.omega2_start
        self._refresh()
        self.sigma = settings.sigma_start
        # data tiled over chains: arrays (chains * n, m)
        tile = (self.chains, 1)
        self.t, self.z = np.tile(obs.t, tile), np.tile(obs.z, tile)
        self.blq, self.mask_obs = np.tile(obs.blq, tile), np.tile(obs.mask, tile)
        self.phi = np.tile(self.mu_individual(), tile)
        self.step = np.full(self.phi.shape, 0.3)
        self.s1 = np.zeros((n, 6))
        self.s2 = np.zeros((n, 6, 6))
        self.s_ssr = settings.sigma_start ** 2 * obs.n_samples
        self.prop_mean = self.mu_individual()
        self.prop_cov = np.tile(self.omega, (n, 1, 1))
        self._refresh_proposal()
        self.history: list[tuple[np.ndarray, np.ndarray, float]] = []   # smoothing phase
        self.accepted = 0.0
        self.proposed = 0.0

    # -- helpers ---------------------------------------------------------------------------

    @property
    def coef(self) -> list[np.ndarray]:
        return [self.beta[self.offsets[p]:self.offsets[p + 1]] for p in range(6)]

    def _refresh(self) -> None:
        self.omega_chol = np.linalg.cholesky(self.omega)
        self.precision = np.linalg.inv(self.omega)

    def _refresh_proposal(self) -> None:
        ridge = 1e-4 * np.eye(6)
        self.prop_chol = np.linalg.cholesky(self.prop_cov + ridge)
        self.prop_chol_inv = np.linalg.inv(self.prop_chol)

    @property
    def acceptance(self) -> float:
        return self.accepted / max(self.proposed, 1.0)

    def acceptance_ok(self) -> bool:
        return 0.05 < self.acceptance < 0.95

    def mu_individual(self, beta: np.ndarray | None = None) -> np.ndarray:
        return np.einsum("npq,q->np", self.D, self.beta if beta is None else beta)

    def loglik(self, phi: np.ndarray, sigma: float | None = None) -> np.ndarray:
        """Data log-likelihood per (chain, subject) row."""
        return log_likelihood_rows(self.z, log_predict(phi[:, None, :], self.t), self.blq,
                                   self.sigma if sigma is None else sigma, self.mask_obs)

    def _prior(self, phi: np.ndarray, mu: np.ndarray) -> np.ndarray:
        r = phi - mu
        return -0.5 * np.einsum("ri,ij,rj->r", r, self.precision, r)

    # -- MCMC ------------------------------------------------------------------------------

    def _accept(self, prop: np.ndarray, log_ratio: np.ndarray) -> np.ndarray:
        ok = np.log(self.rng.uniform(size=len(log_ratio))) < log_ratio
        self.phi[ok] = prop[ok]
        return ok

    def mcmc(self, ll: np.ndarray) -> np.ndarray:
        """One round of MH moves on ``self.phi``; returns the updated log-likelihood."""
        rng, s = self.rng, self.settings
        rows = len(ll)
        mu = np.tile(self.mu_individual(), (self.chains, 1))
        sd = np.sqrt(np.diag(self.omega))
        for _ in range(s.independence_moves):          # proposals from the population
            prop = mu + rng.standard_normal(mu.shape) @ self.omega_chol.T
            ll_new = self.loglik(prop)
            ok = self._accept(prop, ll_new - ll)
            ll[ok] = ll_new[ok]
        prior = self._prior(self.phi, mu)
        if s.t_moves:                                   # t fitted to the subject's own draws
            m = np.tile(self.prop_mean, (self.chains, 1))
            chol = np.tile(self.prop_chol, (self.chains, 1, 1))
            chol_inv = np.tile(self.prop_chol_inv, (self.chains, 1, 1))
            df = s.t_df

            def log_q(x: np.ndarray) -> np.ndarray:
                sol = np.einsum("rij,rj->ri", chol_inv, x - m)
                return -0.5 * (df + 6) * np.log1p(np.sum(sol * sol, axis=1) / df)

            lq = log_q(self.phi)
            for _ in range(s.t_moves):
                scale = np.sqrt(rng.chisquare(df, size=rows) / df)
                prop = m + np.einsum("rij,rj->ri", chol, rng.standard_normal((rows, 6))) \
                    / scale[:, None]
                ll_new, prior_new, lq_new = self.loglik(prop), self._prior(prop, mu), log_q(prop)
                ok = self._accept(prop, ll_new + prior_new - lq_new - ll - prior + lq)
                ll[ok], prior[ok], lq[ok] = ll_new[ok], prior_new[ok], lq_new[ok]
        for _ in range(s.random_walk_moves):           # full-vector random walk
            prop = self.phi + self.step.mean(axis=1, keepdims=True) * sd * 0.5 \
                * rng.standard_normal(mu.shape)
            ll_new, prior_new = self.loglik(prop), self._prior(prop, mu)
            ok = self._accept(prop, ll_new + prior_new - ll - prior)
            ll[ok], prior[ok] = ll_new[ok], prior_new[ok]
        for p in range(6):                             # one parameter at a time, adaptive step
            prop = self.phi.copy()
            prop[:, p] += self.step[:, p] * sd[p] * rng.standard_normal(rows)
            ll_new, prior_new = self.loglik(prop), self._prior(prop, mu)
            ok = self._accept(prop, ll_new + prior_new - ll - prior)
            ll[ok], prior[ok] = ll_new[ok], prior_new[ok]
            self.step[:, p] *= np.where(ok, 1.1, 0.95)   # aims at about 1/3 acceptance
            self.accepted += ok.sum()
            self.proposed += len(ok)
        np.clip(self.step, 0.01, 5.0, out=self.step)
        return ll

    def _adapt_proposal(self, phi: np.ndarray, k: int) -> None:
        """Update each subject's t-proposal moments with this iteration's draws."""
        s = self.settings
        if k < s.explore:
            w = max(s.proposal_weight, 1.0 / (k + 1))
        else:
            w = 1.0 / (k - s.explore + 1.0 / s.proposal_weight)
        self.prop_mean = self.prop_mean + w * (phi.mean(axis=0) - self.prop_mean)
        dev = phi - self.prop_mean[None]
        outer = np.einsum("cni,cnj->nij", dev, dev) / len(phi)
        self.prop_cov = self.prop_cov + w * (outer - self.prop_cov)
        self._refresh_proposal()

    # -- SAEM ------------------------------------------------------------------------------

    def run(self) -> None:
        s, n = self.settings, self.obs.n_subjects
        ll = self.loglik(self.phi)
        total = s.explore + s.smooth
        for k in range(total):
            ll = self.mcmc(ll)
            smoothing = k >= s.explore
            gamma = 1.0 / (k - s.explore + 2) if smoothing else 1.0
            phi = self.phi.reshape(self.chains, n, 6)
            stat1 = phi.mean(axis=0)
            stat2 = np.einsum("cni,cnj->nij", phi, phi) / self.chains
            self.s1 += gamma * (stat1 - self.s1)
            self.s2 += gamma * (stat2 - self.s2)
            ssr = self._residual_statistic()
            self.s_ssr += gamma * (ssr - self.s_ssr)
            self._adapt_proposal(phi, k)
            self._m_step(annealing=not smoothing)
            if smoothing:
                self.history.append((stat1, stat2, ssr))
            ll = self.loglik(self.phi)

    def maximise(self, s1: np.ndarray, s2: np.ndarray,
                 omega: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """M-step for ``beta`` (GLS with ``omega``) and Omega (restricted to its structure),
        alternated a few times when Omega is not diagonal (the two depend on each other)."""
        precision = np.linalg.inv(omega)
        rounds = 1 if not self.pairs else 4
        D = self.D
        for _ in range(rounds):
            A = np.einsum("npq,pr,nrs->qs", D, precision, D)
            b = np.einsum("npq,pr,nr->q", D, precision, s1)
            beta = np.linalg.solve(A, b)
            mu = np.einsum("npq,q->np", D, beta)
            C = np.mean(s2 - s1[:, :, None] * mu[:, None, :] - mu[:, :, None] * s1[:, None, :]
                        + mu[:, :, None] * mu[:, None, :], axis=0)
            C = np.where(self.mask, 0.5 * (C + C.T), 0.0)
            C[np.diag_indices(6)] = np.clip(np.diag(C), 1e-4, None)
            values, vectors = np.linalg.eigh(C)
            if values.min() < 1e-6:                     # keep Omega positive definite
                C = np.where(self.mask, (vectors * np.clip(values, 1e-6, None)) @ vectors.T, 0.0)
            omega = C
            precision = np.linalg.inv(omega)
        return beta, omega

    def _residual_statistic(self) -> float:
        """Sum of squared log residuals over the samples, per chain, with every BLQ sample
        imputed from its conditional distribution given the current draw: the truncated normal
        ``N(log C, sigma^2)`` below ``log LLOQ`` (SAEM for left-censored data, Samson, Lavielle &
        Mentre, Comput Stat Data Anal 2007;51:1562-1574; Monolix does the same). The augmented
        complete data are then an exponential family in sigma, so the M-step is closed form and
        the fixed point is the maximum of the M3 likelihood."""
        from scipy.special import log_ndtr, ndtri_exp

        log_pred = log_predict(self.phi[:, None, :], self.t)
        r = (self.z - log_pred) / self.sigma
        log_u = log_ndtr(r) + np.log(self.rng.uniform(size=r.shape))
        r_blq = ndtri_exp(np.minimum(log_u, -1e-300))
        sq = np.where(self.blq, r_blq * r_blq * self.sigma ** 2, (self.z - log_pred) ** 2)
        return float(np.where(self.mask_obs, sq, 0.0).sum()) / self.chains

    def _m_step(self, annealing: bool) -> None:
        beta, omega = self.maximise(self.s1, self.s2, self.omega)
        if annealing:
            old, new = np.diag(self.omega), np.diag(omega)
            scale = np.sqrt(np.maximum(new, self.settings.annealing * old) / new)
            omega = omega * scale[:, None] * scale[None, :]
        self.beta, self.omega = beta, omega
        self._refresh()
        self.sigma = float(np.sqrt(self.s_ssr / self.obs.n_samples))

    def theta_est(self, beta: np.ndarray, omega: np.ndarray, log_sigma: float) -> np.ndarray:
        """Estimation-scale vector: coefficients, log variances, covariances, log sigma."""
        return np.concatenate([beta, np.log(np.diag(omega)),
                               [omega[p, q] for p, q in self.pairs], [log_sigma]])

    def mc_covariance(self) -> np.ndarray:
        """Stochastic-approximation covariance of the estimate (estimation scale) by batch
        means: the smoothing phase's per-iteration statistics are cut into ``mc_batches``
        consecutive batches, the M-step is applied to each batch's mean statistics, and the
        covariance of the batch estimates over the number of batches estimates the covariance
        of the M-step of SAEM's average statistics for fixed parameters (the feedback through
        the simulation is added by :func:`_saem_mc_covariance`)."""
        batches = min(self.settings.mc_batches, len(self.history))
        size = len(self.history) // batches
        thetas = []
        for b in range(batches):
            part = self.history[b * size:(b + 1) * size]
            s1 = np.mean([h[0] for h in part], axis=0)
            s2 = np.mean([h[1] for h in part], axis=0)
            log_sigma = 0.5 * float(np.log(np.mean([h[2] for h in part]) / self.obs.n_samples))
            beta, omega = self.maximise(s1, s2, self.omega)
            thetas.append(self.theta_est(beta, omega, log_sigma))
        return np.atleast_2d(np.cov(np.array(thetas), rowvar=False)) / batches

    def final_draws(self) -> np.ndarray:
        """Posterior draws at the estimate: ``(draws * chains, n, 6)`` (proposals frozen)."""
        n = self.obs.n_subjects
        self.accepted = self.proposed = 0.0
        ll = self.loglik(self.phi)
        out = []
        for _ in range(self.settings.final_draws):
            ll = self.mcmc(ll)
            out.append(self.phi.reshape(self.chains, n, 6).copy())
        return np.concatenate(out, axis=0)

    # -- Louis' formula ----------------------------------------------------------------------

    def _entries(self) -> np.ndarray:
        """``dOmega/dtheta_k`` for the free Omega entries (variances, then covariances)."""
        entries = [(p, p) for p in range(6)] + self.pairs
        E = np.zeros((len(entries), 6, 6))
        for k, (p, q) in enumerate(entries):
            E[k, p, q] = E[k, q, p] = 1.0
        return E

    def complete_derivatives(self, draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Complete-data scores ``(draws, n, size)`` and Hessians averaged over the draws
        ``(n, size, size)`` in the linear parameters ``(beta, Omega entries, log sigma)``.

        With ``r = phi - D beta``, ``P = Omega^-1``, ``a = P r``, ``E_k = dOmega/dtheta_k``:
        ``d/dbeta = D'a``; ``d/dtheta_k = -tr(P E_k)/2 + a'E_k a/2``; ``d2/dbeta2 = -D'PD``;
        ``d2/dbeta dtheta_k = -D'P E_k a``; ``d2/dtheta_k dtheta_l = tr(P E_k P E_l)/2 -
        a'E_k P E_l a``; sigma (``u = log sigma``): quantified ``-1 + r^2`` and ``-2 r^2``, BLQ
        ``-r lambda`` and ``r lambda - r^2 lambda (r + lambda)`` (``r`` standardised residual,
        ``lambda = phi(r)/Phi(r)``); no cross terms between sigma and the rest.
        """
        from scipy.special import log_ndtr

        n_draws, n, _ = draws.shape
        q = self.D.shape[2]
        E = self._entries()
        K = len(E)
        size = q + K + 1
        P = self.precision
        a = (draws - self.mu_individual()[None]) @ P                 # (d, n, 6)
        score = np.zeros((n_draws, n, size))
        score[..., :q] = np.einsum("npq,dnp->dnq", self.D, a)
        U = np.einsum("kij,dnj->dnki", E, a)                          # E_k a
        score[..., q:q + K] = (-0.5 * np.einsum("ij,kji->k", P, E)[None, None]
                               + 0.5 * np.einsum("dnki,dni->dnk", U, a))
        V = U @ P                                                    # P E_k a
        hess = np.zeros((n, size, size))
        hess[:, :q, :q] = -np.einsum("npq,pr,nrs->nqs", self.D, P, self.D)
        cross = -np.einsum("npq,dnkp->nqk", self.D, V) / n_draws
        hess[:, :q, q:q + K] = cross
        hess[:, q:q + K, :q] = np.swapaxes(cross, 1, 2)
        trace = np.einsum("ab,kbc,cd,lda->kl", P, E, P, E)
        hess[:, q:q + K, q:q + K] = (0.5 * trace[None]
                                     - np.einsum("dnki,dnli->nkl", V, U) / n_draws)
        obs = self.obs
        flat = draws.reshape(-1, 6)
        t, z = np.tile(obs.t, (n_draws, 1)), np.tile(obs.z, (n_draws, 1))
        blq, mask = np.tile(obs.blq, (n_draws, 1)), np.tile(obs.mask, (n_draws, 1))
        r = (z - log_predict(flat[:, None, :], t)) / self.sigma
        lam = np.exp(-0.5 * r * r - 0.5 * np.log(2 * np.pi) - log_ndtr(r))
        d1 = np.where(blq, -r * lam, -1.0 + r * r)
        d2 = np.where(blq, r * lam - r * r * lam * (r + lam), -2.0 * r * r)
        d1 = np.where(mask, d1, 0.0).sum(axis=1).reshape(n_draws, n)
        d2 = np.where(mask, d2, 0.0).sum(axis=1).reshape(n_draws, n)
        score[..., -1] = d1
        hess[:, -1, -1] = d2.mean(axis=0)
        return score, hess

    def louis_information(self, draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Observed information by Louis' formula, ``sum_i (-E[H_i] - Cov[s_i])`` over the
        conditional draws, and the complete-data information ``-sum_i E[H_i]``, in the linear
        parameters of :meth:`complete_derivatives`."""
        score, hess = self.complete_derivatives(draws)
        n_draws = len(draws)
        mean_score = score.mean(axis=0)
        cov_score = (np.einsum("dni,dnj->nij", score, score) / n_draws
                     - mean_score[:, :, None] * mean_score[:, None, :])
        complete = -(hess.sum(axis=0))
        complete = 0.5 * (complete + complete.T)
        info = complete - cov_score.sum(axis=0)
        return 0.5 * (info + info.T), complete

    def to_estimation_scale(self, info: np.ndarray) -> np.ndarray:
        """Information in ``(beta, log omega^2, covariances, log sigma)``: the variances'
        rows and columns times ``omega^2`` (``d omega^2 / d log omega^2``; at the maximum the
        score is zero, so this is the whole change of variables)."""
        q = self.D.shape[2]
        jac = np.ones(len(info))
        jac[q:q + 6] = np.diag(self.omega)
        return info * jac[:, None] * jac[None, :]


def _covariance(info: np.ndarray, max_dropped: int = 3
                ) -> tuple[np.ndarray, tuple[int, ...] | None]:
    """Inverse of the observed information; when it is not positive definite, the parameters
    the data do not inform (the largest component of the most negative eigenvector, one at a
    time, at most ``max_dropped``) are held at their estimate and the rest inverted (conditional
    SEs). Returns the covariance (NaN rows and columns for the held parameters) and the held
    indices (``()`` when none, None when even that fails: all NaN)."""
    size = len(info)
    keep = list(range(size))
    for _ in range(max_dropped + 1):
        sub = info[np.ix_(keep, keep)]
        try:
            np.linalg.cholesky(sub)
        except np.linalg.LinAlgError:
            _, v = np.linalg.eigh(sub)
            keep.pop(int(np.argmax(np.abs(v[:, 0]))))
            continue
        cov = np.full((size, size), np.nan)
        cov[np.ix_(keep, keep)] = np.linalg.inv(sub)
        return cov, tuple(k for k in range(size) if k not in keep)
    return np.full((size, size), np.nan), None


def _individual_frame(obs: Observations, mu_i: np.ndarray, eta: np.ndarray,
                      sd: np.ndarray) -> pd.DataFrame:
    rows = []
    for k, sid in enumerate(obs.ids):
        row: dict[str, Any] = {"USUBJID": sid}
        row |= {p: float(np.exp(mu_i[k, j] + eta[k, j])) for j, p in enumerate(PARAMETERS)}
        row |= {f"eta_{p}": float(eta[k, j]) for j, p in enumerate(PARAMETERS)}
        row |= {f"se_log_{p}": float(sd[k, j]) for j, p in enumerate(PARAMETERS)}
        row |= {"n_samples": int(obs.mask[k].sum()), "n_blq": int((obs.blq[k] & obs.mask[k]).sum())}
        rows.append(row)
    return pd.DataFrame(rows)


def true_values_table(model: PopulationModel) -> Mapping[str, float]:
    """Typical values, omega^2 and sigma of ``model`` keyed like the rows of
    :meth:`PopulationFit.parameter_table` (for recovery checks)."""
    out = {p: getattr(model.typical, p) for p in PARAMETERS}
    out |= {f"omega2_{p}": model.omega2[p] for p in PARAMETERS}
    return out | {"sigma": model.sigma}
