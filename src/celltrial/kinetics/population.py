"""Population (NLME) fit of the multiphasic CAR-T model by SAEM with the M3 likelihood.

Model (Stein et al. 2019 [K1], CLINICAL_REFERENCE.md 5.1): for patient ``i`` the six log
parameters are ``phi_i = log p_i = mu + X_i C + eta_i`` with ``eta_i ~ N(0, diag(omega^2))``; the
observations are ``log Y = log C(t; p_i) + eps``, ``eps ~ N(0, sigma^2)``; below-LLOQ samples enter
as ``P(Y < LLOQ)`` (M3, Beal 2001; :mod:`celltrial.kinetics.likelihood`). Covariates act
log-linearly on the typical values (by default on Cmax: ``log Cmax ~ log dose + blasts + disease``);
see :data:`COVARIATE_SPECS`.

Method (``method="saem"``): stochastic approximation EM (Delyon, Lavielle & Moulines, Ann Stat
1999; Kuhn & Lavielle 2005; the estimator of Monolix, which Stein 2019 used). Each iteration draws
every patient's ``phi_i`` by Metropolis-Hastings (independence proposals from the population
distribution, then full and one-parameter random walks with adaptive steps; several chains per
patient when there are few patients), updates the stochastic approximations of the sufficient
statistics (step 1 during the exploration phase, then ``1/k``) and maximises: typical values and
covariate effects by least squares, ``omega^2`` in closed form (with simulated annealing during
exploration so they do not collapse early), ``sigma`` by a 1-D maximisation of the M3 likelihood.
Uncertainty: the observed Fisher information by Louis' formula (Louis, JRSS-B 1982) from
posterior draws at the estimate (closed-form complete-data derivatives), giving SEs and 90% Wald
intervals on the estimation scale (log for typical values, omega^2 and sigma; linear for
covariate effects). Individual estimates are the conditional means (and SDs) of ``phi_i`` over
the final draws. Why SAEM: the model's kink at Tmax and the multimodal individual posteriors
(Tmax between different samples) make gradient-based Laplace/FOCE objectives rough; SAEM needs
no gradient, is the reference method for this model, and in vectorised numpy (no jit compile)
fits 100 patients in a few seconds on 2 CPU cores. Limits: a stochastic estimate (the seed
fixes it; repeat with other seeds to see the Monte-Carlo error); Wald intervals on omega^2 are
approximate with 20-40 patients; diagonal Omega only; no likelihood value for model comparison
(``objective`` is the mean complete-data ``-log`` likelihood at the end, for diagnostics only).
See docs/kinetics-multiphasic.md for the recovery figures.
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
from celltrial.kinetics.likelihood import log_likelihood_terms
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


@dataclass(frozen=True)
class SAEMSettings:
    """SAEM tuning (Monolix-like defaults): iterations of the exploration phase (step 1) and the
    smoothing phase (step 1/k), MH moves per iteration, chains, draws kept for the estimates."""

    explore: int = 250
    smooth: int = 150
    independence_moves: int = 2
    random_walk_moves: int = 2
    min_chains_total: int = 60
    final_draws: int = 150
    annealing: float = 0.93
    omega2_start: float = 1.0
    sigma_start: float = 0.5


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


# --------------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True)
class PopulationFit:
    """Result of :func:`fit_population` (frozen; arrays in :data:`PARAMETERS` order).

    ``typical``: typical values (covariates at their reference: median / reference level) with
    SE of the log and 90% intervals; ``omega``: BSV variances on the log scale; ``sigma``: residual
    SD on the log scale; ``covariate_effects``: coefficient of each covariate term on the log of a
    typical value; ``individual``: one row per USUBJID with the EBE parameters, ``eta_<p>``,
    ``se_log_<p>``, ``n_samples``, ``n_blq``; ``uninformed``: the estimates the data do not
    inform (observed information <= 0), held at their value when the SEs were computed.
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

    @property
    def typical_params(self) -> MultiphasicParameters:
        return MultiphasicParameters(**{p: self.typical[p].value for p in PARAMETERS})

    def as_prior(self) -> PopulationModel:
        """The fitted population as a :class:`PopulationModel` (for individual fits, simulation)."""
        return PopulationModel(self.typical_params, {p: self.omega[p].value for p in PARAMETERS},
                               self.sigma.value, source=f"population fit ({self.method})",
                               unit=self.unit)

    def parameter_table(self) -> pd.DataFrame:
        """One row per estimate: parameter, estimate, uncertainty (RSE and 90% CI), unit, note,
        plus numeric ``se``, ``ci90_low``, ``ci90_high``, ``scale``."""
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
        add("sigma", self.sigma, "SD (log scale)", "residual error, additive on log scale")
        return pd.DataFrame(rows)


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
    Cmax (``log Cmax ~ log dose + blasts + disease``). ``seed``: the Monte-Carlo seed (same seed,
    same data: same fit). ``method``: ``"saem"`` (module docstring: method, reasons, limits).

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
    started = _time.perf_counter()
    obs = read_observations(adpc, analyte)
    if obs.n_subjects < 2:
        raise invalid("adpc", f"{obs.n_subjects} subject", "to hold at least 2 subjects")
    design = covariate_design(adpc, obs.ids, covariates)
    targets = tuple(PARAMETERS.index(p) for p in covariate_parameters)
    rng = np.random.default_rng(seed)
    run = _SAEM(obs, design.X, targets, settings, rng)
    run.run()
    draws = run.final_draws()
    info, cov_ok = run.louis_information(draws)
    names = [n for p, name in enumerate(PARAMETERS) for n in
             [name] + ([f"{name} ~ {term}" for term in design.terms] if p in targets else [])]
    names += [f"omega2_{p}" for p in PARAMETERS] + ["sigma"]
    cov, dropped = _covariance(info)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))

    typical: dict[str, Estimate] = {}
    effects: dict[str, Estimate] = {}
    for p, name in enumerate(PARAMETERS):
        k = run.offsets[p]
        typical[name] = _log_estimate(run.coef[p][0], se[k])
        if p in targets:
            for j, term in enumerate(design.terms):
                effects[f"{name} ~ {term}"] = _linear_estimate(run.coef[p][1 + j], se[k + 1 + j])
    n_lin = run.offsets[-1]
    omega = {name: _log_estimate(np.log(run.omega2[p]), se[n_lin + p])
             for p, name in enumerate(PARAMETERS)}
    sigma = _log_estimate(np.log(run.sigma), se[n_lin + 6])
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
    notes = obs.notes + design.notes + failure
    theta = np.concatenate([np.concatenate(run.coef), np.log(run.omega2), [np.log(run.sigma)]])
    return PopulationFit(
        typical=typical, omega=omega, sigma=sigma, covariate_effects=effects,
        individual=individual, objective=run.complete_objective(draws), method=method, seed=seed,
        analyte=analyte, unit=obs.unit, n_subjects=obs.n_subjects, n_samples=obs.n_samples,
        n_blq=obs.n_blq, converged=run.acceptance_ok(),
        message=f"SAEM {settings.explore}+{settings.smooth} iterations, {run.chains} chain(s); "
                f"MH acceptance {run.acceptance:.2f}",
        elapsed_s=_time.perf_counter() - started, notes=notes, covariance_ok=cov_ok,
        observations=obs, covariates=design, log_mu_individual=mu_i, eta=phi_mean - mu_i,
        theta=theta, covariance=cov, uninformed=uninformed)


class _SAEM:
    """SAEM state (mutable, private to :func:`fit_population`)."""

    def __init__(self, obs: Observations, X: np.ndarray, targets: tuple[int, ...],
                 settings: SAEMSettings, rng: np.random.Generator) -> None:
        self.obs, self.settings, self.rng = obs, settings, rng
        n = obs.n_subjects
        self.chains = max(1, int(np.ceil(settings.min_chains_total / n)))
        self.designs = [np.column_stack([np.ones(n), X]) if p in targets else np.ones((n, 1))
                        for p in range(6)]
        self.offsets = np.cumsum([0] + [d.shape[1] for d in self.designs])
        start = _start(obs)
        self.coef = [np.r_[start[p], np.zeros(d.shape[1] - 1)] for p, d in enumerate(self.designs)]
        self.omega2 = np.full(6, settings.omega2_start)
        self.sigma = settings.sigma_start
        # data tiled over chains: arrays (chains * n, m)
        tile = (self.chains, 1)
        self.t, self.z = np.tile(obs.t, tile), np.tile(obs.z, tile)
        self.blq, self.mask = np.tile(obs.blq, tile), np.tile(obs.mask, tile)
        self.phi = np.tile(self.mu_individual(), tile)
        self.step = np.full(self.phi.shape, 0.3)
        self.s1 = np.zeros((n, 6))
        self.s2 = np.zeros((n, 6))
        self.accepted = 0.0
        self.proposed = 0.0

    @property
    def acceptance(self) -> float:
        return self.accepted / max(self.proposed, 1.0)

    def acceptance_ok(self) -> bool:
        return 0.05 < self.acceptance < 0.95

    def mu_individual(self) -> np.ndarray:
        return np.column_stack([d @ c for d, c in zip(self.designs, self.coef, strict=True)])

    def loglik(self, phi: np.ndarray, sigma: float | None = None) -> np.ndarray:
        """Data log-likelihood per (chain, subject) row."""
        terms = log_likelihood_terms(self.z, log_predict(phi[:, None, :], self.t), self.blq,
                                     self.sigma if sigma is None else sigma)
        return np.where(self.mask, terms, 0.0).sum(axis=1)

    def _prior(self, phi: np.ndarray, mu: np.ndarray) -> np.ndarray:
        return -0.5 * np.sum((phi - mu) ** 2 / self.omega2, axis=1)

    def mcmc(self, ll: np.ndarray) -> np.ndarray:
        """One round of MH moves on ``self.phi``; returns the updated log-likelihood."""
        rng, s = self.rng, self.settings
        mu = np.tile(self.mu_individual(), (self.chains, 1))
        sd = np.sqrt(self.omega2)
        for _ in range(s.independence_moves):          # proposals from the population
            prop = mu + sd * rng.standard_normal(mu.shape)
            ll_new = self.loglik(prop)
            ok = np.log(rng.uniform(size=len(ll))) < ll_new - ll
            self.phi[ok], ll[ok] = prop[ok], ll_new[ok]
        prior = self._prior(self.phi, mu)
        for _ in range(s.random_walk_moves):           # full-vector random walk
            prop = self.phi + self.step.mean(axis=1, keepdims=True) * sd * 0.5 \
                * rng.standard_normal(mu.shape)
            ll_new, prior_new = self.loglik(prop), self._prior(prop, mu)
            ok = np.log(rng.uniform(size=len(ll))) < ll_new + prior_new - ll - prior
            self.phi[ok], ll[ok], prior[ok] = prop[ok], ll_new[ok], prior_new[ok]
        for p in range(6):                             # one parameter at a time, adaptive step
            prop = self.phi.copy()
            prop[:, p] += self.step[:, p] * sd[p] * rng.standard_normal(len(ll))
            ll_new, prior_new = self.loglik(prop), self._prior(prop, mu)
            ok = np.log(rng.uniform(size=len(ll))) < ll_new + prior_new - ll - prior
            self.phi[ok], ll[ok], prior[ok] = prop[ok], ll_new[ok], prior_new[ok]
            self.step[:, p] *= np.where(ok, 1.1, 0.95)   # aims at about 1/3 acceptance
            self.accepted += ok.sum()
            self.proposed += len(ok)
        np.clip(self.step, 0.01, 5.0, out=self.step)
        return ll

    def run(self) -> None:
        s, n = self.settings, self.obs.n_subjects
        ll = self.loglik(self.phi)
        total = s.explore + s.smooth
        for k in range(total):
            ll = self.mcmc(ll)
            gamma = 1.0 if k < s.explore else 1.0 / (k - s.explore + 2)
            phi = self.phi.reshape(self.chains, n, 6)
            self.s1 += gamma * (phi.mean(axis=0) - self.s1)
            self.s2 += gamma * ((phi ** 2).mean(axis=0) - self.s2)
            self._m_step(annealing=k < s.explore, gamma=gamma)
            ll = self.loglik(self.phi)
        if k == total - 1:
            self.accepted = self.proposed = 0.0

    def _m_step(self, annealing: bool, gamma: float) -> None:
        from scipy.optimize import minimize_scalar

        new_omega2 = np.empty(6)
        for p, d in enumerate(self.designs):
            self.coef[p] = np.linalg.lstsq(d, self.s1[:, p], rcond=None)[0]
            m = d @ self.coef[p]
            new_omega2[p] = np.mean(self.s2[:, p] - 2 * self.s1[:, p] * m + m * m)
        new_omega2 = np.clip(new_omega2, 1e-4, None)
        if annealing:
            new_omega2 = np.maximum(new_omega2, self.settings.annealing * self.omega2)
        self.omega2 = new_omega2
        log_pred = log_predict(self.phi[:, None, :], self.t)

        def neg(log_sigma: float) -> float:
            terms = log_likelihood_terms(self.z, log_pred, self.blq, np.exp(log_sigma))
            return -float(np.where(self.mask, terms, 0.0).sum())

        best = minimize_scalar(neg, bounds=(np.log(0.01), np.log(5.0)), method="bounded",
                               options={"xatol": 1e-4}).x
        self.sigma = float(np.exp(np.log(self.sigma) + gamma * (best - np.log(self.sigma))))

    def final_draws(self) -> np.ndarray:
        """Posterior draws at the estimate: ``(draws * chains, n, 6)``."""
        n = self.obs.n_subjects
        self.accepted = self.proposed = 0.0
        ll = self.loglik(self.phi)
        out = []
        for _ in range(self.settings.final_draws):
            ll = self.mcmc(ll)
            out.append(self.phi.reshape(self.chains, n, 6).copy())
        return np.concatenate(out, axis=0)

    def louis_information(self, draws: np.ndarray) -> tuple[np.ndarray, bool]:
        """Observed information by Louis' formula: ``sum_i (-E[H_i] - Cov[s_i])`` over draws,
        parameters ``(coef blocks, log omega^2, log sigma)``."""
        n_draws, n, _ = draws.shape
        n_lin = int(self.offsets[-1])
        size = n_lin + 7
        mu = self.mu_individual()
        score = np.zeros((n_draws, n, size))
        hess = np.zeros((n, size, size))
        for p, d in enumerate(self.designs):
            sl = slice(int(self.offsets[p]), int(self.offsets[p + 1]))
            r = draws[:, :, p] - mu[None, :, p]                      # (draws, n)
            w = self.omega2[p]
            score[:, :, sl] = d[None, :, :] * (r / w)[..., None]
            score[:, :, n_lin + p] = -0.5 + 0.5 * r * r / w
            hess[:, sl, sl] += -(d[:, :, None] * d[:, None, :]) / w
            hess[:, n_lin + p, n_lin + p] += np.mean(-0.5 * r * r / w, axis=0)
            cross = np.mean(-r / w, axis=0)[:, None] * d             # (n, q)
            hess[:, sl, n_lin + p] += cross
            hess[:, n_lin + p, sl] += cross
        # residual SD: u = log sigma
        obs = self.obs
        flat = draws.reshape(-1, 6)
        t, z = np.tile(obs.t, (n_draws, 1)), np.tile(obs.z, (n_draws, 1))
        blq, mask = np.tile(obs.blq, (n_draws, 1)), np.tile(obs.mask, (n_draws, 1))
        r = (z - log_predict(flat[:, None, :], t)) / self.sigma
        from scipy.special import log_ndtr

        lam = np.exp(-0.5 * r * r - 0.5 * np.log(2 * np.pi) - log_ndtr(r))
        d1 = np.where(blq, -r * lam, -1.0 + r * r)
        d2 = np.where(blq, r * lam - r * r * lam * (r + lam), -2.0 * r * r)
        d1 = np.where(mask, d1, 0.0).sum(axis=1).reshape(n_draws, n)
        d2 = np.where(mask, d2, 0.0).sum(axis=1).reshape(n_draws, n)
        score[:, :, -1] = d1
        hess[:, -1, -1] += d2.mean(axis=0)
        mean_score = score.mean(axis=0)
        cov_score = (np.einsum("dni,dnj->nij", score, score) / n_draws
                     - mean_score[:, :, None] * mean_score[:, None, :])
        info = -(hess.sum(axis=0)) - cov_score.sum(axis=0)
        info = 0.5 * (info + info.T)
        try:
            np.linalg.cholesky(info)
        except np.linalg.LinAlgError:
            return info, False
        return info, True

    def complete_objective(self, draws: np.ndarray) -> float:
        """Mean complete-data ``-log`` likelihood over the final draws (diagnostic only)."""
        mu = self.mu_individual()
        prior = 0.5 * np.sum((draws - mu) ** 2 / self.omega2 + np.log(self.omega2), axis=(1, 2))
        lls = [self.loglik(np.tile(d, (self.chains, 1))).sum() / self.chains
               for d in draws[:: max(1, len(draws) // 20)]]
        return float(np.mean(prior) - np.mean(lls))


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
