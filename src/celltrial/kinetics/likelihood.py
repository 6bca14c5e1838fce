"""Likelihood of CAR-T levels with a log-normal residual and below-LLOQ samples (M3 method).

Residual model (Stein 2019 [K1]: "constant error model in log scale"):
``log Y = log C(t) + eps``, ``eps ~ N(0, sigma^2)``.

Below-LLOQ samples are neither dropped nor imputed (not LLOQ/2): each enters the likelihood as the
probability of being below the limit, ``P(Y < LLOQ) = Phi((log LLOQ - log C(t)) / sigma)`` —
the M3 method of Beal SL, "Ways to fit a PK model with some data below the quantification
limit", J Pharmacokinet Pharmacodyn 2001;28:481-504. Quantified samples contribute the normal
density of ``log Y`` (the Jacobian ``1/Y`` is a constant of the data and is left out, so
objective values compare between models fitted to the same data only).

Each function takes ``z``: ``log Y`` for a quantified sample and ``log LLOQ`` for a BLQ one, and
``blq`` (True where the sample is below LLOQ); ``mask`` (False for padding) zeroes a term.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import log_ndtr

_HALF_LOG_2PI = 0.5 * float(np.log(2.0 * np.pi))


def log_likelihood_terms(z: np.ndarray, log_pred: np.ndarray, blq: np.ndarray,
                         sigma: float | np.ndarray) -> np.ndarray:
    """Per-sample log-likelihood (numpy): normal log-density of ``log Y`` or ``log Phi``."""
    r = (np.asarray(z, dtype=float) - np.asarray(log_pred, dtype=float)) / sigma
    dens = -_HALF_LOG_2PI - np.log(sigma) - 0.5 * r * r
    return np.where(np.asarray(blq, dtype=bool), log_ndtr(r), dens)


def log_likelihood(z: np.ndarray, log_pred: np.ndarray, blq: np.ndarray,
                   sigma: float | np.ndarray, mask: np.ndarray | None = None) -> float:
    """Total log-likelihood (numpy) over the samples where ``mask`` is True."""
    terms = log_likelihood_terms(z, log_pred, blq, sigma)
    if mask is not None:
        terms = np.where(np.asarray(mask, dtype=bool), terms, 0.0)
    return float(np.sum(terms))


def log_likelihood_rows(z: np.ndarray, log_pred: np.ndarray, blq: np.ndarray,
                        sigma: float | np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Log-likelihood per row (numpy): the sum over the last axis of the M3 terms where ``mask``.

    The one definition the population fit's MCMC, its M-step for sigma and the importance-sampling
    objective (:mod:`celltrial.kinetics.marginal`) share, so the OFV is the likelihood the fit
    maximised (quantified samples: normal density of ``log Y``; BLQ: ``log Phi``).
    """
    terms = log_likelihood_terms(z, log_pred, blq, sigma)
    return np.where(np.asarray(mask, dtype=bool), terms, 0.0).sum(axis=-1)


def log_likelihood_terms_jax(z: Any, log_pred: Any, blq: Any, sigma: Any) -> Any:
    """Per-sample log-likelihood in JAX (same definition as :func:`log_likelihood_terms`)."""
    import jax.numpy as jnp
    from jax.scipy.stats import norm

    r = (z - log_pred) / sigma
    dens = -_HALF_LOG_2PI - jnp.log(sigma) - 0.5 * r * r
    # both branches are evaluated; r is finite, so log_ndtr and its gradient stay finite
    return jnp.where(blq, norm.logcdf(r), dens)


def log_likelihood_jax(z: Any, log_pred: Any, blq: Any, sigma: Any, mask: Any) -> Any:
    """Total log-likelihood in JAX over ``mask``."""
    import jax.numpy as jnp

    return jnp.sum(jnp.where(mask, log_likelihood_terms_jax(z, log_pred, blq, sigma), 0.0))
