"""Marginal likelihood of a fitted population model by importance sampling; information criteria.

The objective function value (OFV) of a nonlinear mixed-effects fit is ``-2 log L(theta; y)``
with ``L(theta; y) = prod_i p(y_i; theta)`` and ``p(y_i; theta) = int p(y_i | phi) p(phi; theta)
dphi``, which has no closed form. It is estimated after the fit by importance sampling, as the
Monolix "log-likelihood estimation" task does (Monolix documentation, *Tasks > Log-likelihood
estimation*, importance sampling; Kuhn & Lavielle, Comput Stat Data Anal 2005;49:1020-1038, and
saemix ``llis.saemix``, Comets, Lavenu & Lavielle, J Stat Softw 2017;80(3)): for every subject,
``M`` independent draws ``phi^(m)`` from a proposal ``q_i`` close to the conditional
distribution ``p(phi | y_i; theta)`` -- a multivariate Student t with ``df`` degrees of freedom
(5 by default, as Monolix) centred on the subject's conditional mean with its conditional
covariance as scale matrix, both taken from the MCMC draws at the estimate -- and

``p_hat(y_i) = (1/M) sum_m p(y_i | phi^(m)) p(phi^(m); theta) / q_i(phi^(m))``,

an unbiased estimate of ``p(y_i; theta)`` whose variance falls as ``1/M``. ``p(y_i | phi)`` is the
likelihood the fit maximised (:func:`celltrial.kinetics.likelihood.log_likelihood_rows`: normal
density of ``log Y`` for quantified samples, ``P(Y < LLOQ)`` for BLQ ones, M3), so the OFV is
the fit's own objective. The Jacobian ``-sum log y`` of the quantified samples is a constant of
the data and is left out (as in ``likelihood.py``): OFVs compare models fitted to the same
samples (the same data set, analyte and exclusions), which is what covariate selection needs.
The Monte-Carlo SE of the OFV is ``2 sqrt(sum_i Var(p_hat_i)/p_hat_i^2)`` (delta method on the
log), with ``Var(p_hat_i)`` the empirical variance of the weights over ``M``.

Information criteria (Monolix definitions): ``AIC = OFV + 2 P``; ``BIC = OFV + P log N`` with
``N`` the number of **subjects** (not of observations); ``BICc = OFV + P_R log N + P_F log n_tot``
(Delattre, Lavielle & Poursat, Electron J Stat 2014;8:456-475) with ``P_R`` the parameters tied
to the random effects (typical values and subject-level covariate effects of parameters with
between-subject variability, and the Omega entries), ``P_F`` the others (here the residual SD),
``n_tot`` the number of samples (quantified and BLQ).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, logsumexp

from celltrial.kinetics.likelihood import log_likelihood_rows
from celltrial.kinetics.multiphasic import log_predict

_LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class MarginalLikelihood:
    """Importance-sampling estimate of ``-2 log L``: total, Monte-Carlo SE, per subject."""

    ofv: float
    ofv_se: float
    subject_ofv: np.ndarray
    """``-2 log p_hat(y_i)`` per subject (rows of the observations)."""
    subject_ess: np.ndarray
    """Kish effective sample size of each subject's weights (``M`` would be a perfect proposal)."""
    n_draws: int
    df: float


def _mvt_logpdf(x: np.ndarray, mean: np.ndarray, chol: np.ndarray, df: float) -> np.ndarray:
    """Multivariate Student t log density, ``x`` ``(n, M, d)``, ``mean`` ``(n, d)``, ``chol``
    ``(n, d, d)`` the Cholesky factor of the scale matrix."""
    d = x.shape[-1]
    dev = x - mean[:, None, :]
    sol = np.einsum("nij,nmj->nmi", np.linalg.inv(chol), dev)
    delta = np.sum(sol * sol, axis=-1)
    log_det = 2.0 * np.sum(np.log(np.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    return (gammaln((df + d) / 2) - gammaln(df / 2) - 0.5 * d * np.log(df * np.pi)
            - 0.5 * log_det[:, None] - 0.5 * (df + d) * np.log1p(delta / df))


def _mvn_logpdf(x: np.ndarray, mean: np.ndarray, precision: np.ndarray,
                log_det: float) -> np.ndarray:
    dev = x - mean[:, None, :]
    quad = np.einsum("nmi,ij,nmj->nm", dev, precision, dev)
    return -0.5 * (x.shape[-1] * _LOG_2PI + log_det + quad)


def importance_sampling(t: np.ndarray, z: np.ndarray, blq: np.ndarray, mask: np.ndarray,
                        mu: np.ndarray, omega: np.ndarray, sigma: float,
                        cond_mean: np.ndarray, cond_cov: np.ndarray, *, n_draws: int = 5000,
                        df: float = 5.0, seed: int = 0, chunk: int = 1000,
                        predict: Callable[[np.ndarray, np.ndarray], np.ndarray] = log_predict,
                        ) -> MarginalLikelihood:
    """``-2 log L`` of the population model at ``(mu, omega, sigma)`` by importance sampling.

    ``t, z, blq, mask``: the padded samples ``(n, m)`` (``z`` = log level, log LLOQ when BLQ);
    ``mu`` ``(n, 6)`` the subjects' typical log parameters (covariates applied); ``omega``
    ``(6, 6)``; ``cond_mean`` ``(n, 6)`` and ``cond_cov`` ``(n, 6, 6)`` the conditional means and
    covariances (the proposal); ``df`` the t proposal's degrees of freedom; ``seed`` fixes the
    draws. ``predict(phi, t)``: the structural model on the log scale, broadcasting ``phi``
    ``(n, M, 1, d)`` against ``t`` ``(n, 1, m)`` (default the multiphasic model; the tests pass a
    linear model whose marginal likelihood has a closed form). Memory: ``n * chunk * m`` floats
    at a time.
    """
    n, d = mu.shape
    rng = np.random.default_rng(seed)
    ridge = 1e-6 * np.eye(d)
    chol = np.linalg.cholesky(np.asarray(cond_cov, float) + ridge)
    precision = np.linalg.inv(omega)
    _, log_det_omega = np.linalg.slogdet(omega)
    log_w = np.empty((n, n_draws))
    for start in range(0, n_draws, chunk):
        size = min(chunk, n_draws - start)
        normal = rng.standard_normal((n, size, d))
        scale = np.sqrt(rng.chisquare(df, size=(n, size)) / df)
        phi = cond_mean[:, None, :] + np.einsum("nij,nmj->nmi", chol, normal) / scale[..., None]
        log_pred = predict(phi[:, :, None, :], t[:, None, :])
        ll = log_likelihood_rows(z[:, None, :], log_pred, blq[:, None, :], sigma,
                                 mask[:, None, :])
        log_w[:, start:start + size] = (ll + _mvn_logpdf(phi, mu, precision, log_det_omega)
                                        - _mvt_logpdf(phi, cond_mean, chol, df))
    log_w = np.where(np.isfinite(log_w), log_w, -np.inf)
    log_p = logsumexp(log_w, axis=1) - np.log(n_draws)
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    mean_w = w.mean(axis=1)
    rel_var = w.var(axis=1, ddof=1) / (n_draws * mean_w ** 2)
    ess = w.sum(axis=1) ** 2 / np.sum(w * w, axis=1)
    return MarginalLikelihood(ofv=float(-2.0 * log_p.sum()),
                              ofv_se=float(2.0 * np.sqrt(rel_var.sum())),
                              subject_ofv=-2.0 * log_p, subject_ess=ess, n_draws=n_draws, df=df)


@dataclass(frozen=True)
class InformationCriteria:
    """OFV-based criteria (Monolix definitions; module docstring)."""

    ofv: float
    ofv_se: float
    n_parameters: int
    n_random_parameters: int
    n_subjects: int
    n_observations: int

    @property
    def aic(self) -> float:
        return self.ofv + 2.0 * self.n_parameters

    @property
    def bic(self) -> float:
        """``OFV + P log(N subjects)`` (Monolix's BIC)."""
        return self.ofv + self.n_parameters * float(np.log(self.n_subjects))

    @property
    def bicc(self) -> float:
        """``OFV + P_R log(N subjects) + P_F log(n samples)`` (Delattre et al. 2014)."""
        fixed = self.n_parameters - self.n_random_parameters
        return (self.ofv + self.n_random_parameters * float(np.log(self.n_subjects))
                + fixed * float(np.log(self.n_observations)))
