"""Stein 2019 multiphasic model: published typical-patient figures (CLINICAL_REFERENCE.md 5.1)."""

import numpy as np
import pytest

from celltrial.errors import InvalidValue
from celltrial.kinetics.likelihood import log_likelihood, log_likelihood_terms
from celltrial.kinetics.multiphasic import (
    STEIN_2019,
    MultiphasicParameters,
    log_predict,
    log_predict_jax,
    predict,
    simulate_adpc,
    typical_auc,
)

TYPICAL = STEIN_2019.typical
GRID = np.linspace(0.0, 28.0, 281)   # 0.1-day grid


def test_typical_patient_cmax_24000_at_day_9_3():
    c = predict(TYPICAL, GRID)
    assert c.max() == pytest.approx(24000.0, rel=1e-9)
    assert GRID[c.argmax()] == pytest.approx(9.3)


def test_typical_patient_auc_0_28_about_172000_within_half_percent():
    # published 172,000 copies*day/ug (rounded); linear trapezoids on the 0.1-day grid
    assert typical_auc(TYPICAL) == pytest.approx(172000.0, rel=0.005)


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("R0 (copies/ug)", TYPICAL.R0, 6.15),
    ("rho (1/day)", TYPICAL.rho, 0.889),
    ("doubling time (day)", np.log(2) / TYPICAL.rho, 0.78),
    ("initial-decline half-life (day)", np.log(2) / TYPICAL.alpha, 4.3),
    ("terminal half-life (day)", np.log(2) / TYPICAL.beta, 217.0),
])
def test_derived_checks(name, value, expected):
    assert value == pytest.approx(expected, rel=0.01), name


def test_closed_form_after_tmax():
    t = np.array([10.0, 28.0, 100.0, 365.0])
    dt = t - 9.3
    expected = 24000 * ((1 - 0.0079) * np.exp(-0.16 * dt) + 0.0079 * np.exp(-0.0032 * dt))
    np.testing.assert_allclose(predict(TYPICAL, t), expected, rtol=1e-12)


def test_expansion_is_exponential_from_r0():
    t = np.array([0.0, 1.0, 5.0])
    np.testing.assert_allclose(predict(TYPICAL, t), TYPICAL.R0 * np.exp(TYPICAL.rho * t),
                               rtol=1e-12)


def test_jax_matches_numpy_and_smoothing_is_bounded():
    import jax

    rng = np.random.default_rng(3)
    lp = TYPICAL.as_log_array() + rng.normal(0, 0.5, (50, 1, 6))
    t = np.array([0.0, 1, 4, 7, 10, 14, 21, 28, 60, 90, 180, 365])
    with jax.enable_x64(True):
        exact = np.asarray(log_predict_jax(lp, t))
        smooth = np.asarray(log_predict_jax(lp, t, 0.05))
    np.testing.assert_allclose(exact, log_predict(lp, t), rtol=1e-12, atol=1e-12)
    assert np.all(smooth <= exact + 1e-12)
    assert np.all(exact - smooth <= 0.05 * np.log(2) + 1e-12)


def test_vectorised_over_patients():
    base = TYPICAL.as_log_array()
    lp = np.stack([base, base + np.log(2) * (np.arange(6) == 2)])
    c = np.exp(log_predict(lp[:, None, :], GRID[None, :]))
    np.testing.assert_allclose(c[1], 2 * c[0], rtol=1e-12)   # Cmax doubled: whole curve doubles


def test_parameters_must_be_positive():
    with pytest.raises(InvalidValue,
                       match="Invalid `Tmax`: got `0.0`, must be a finite number > 0"):
        MultiphasicParameters(3900, 0.0, 24000, 0.16, 0.0079, 0.0032)


def test_m3_likelihood_censored_sample_is_probability_below_lloq():
    from scipy.stats import norm

    z, lp, sigma = np.log([50.0, 200.0]), np.log([100.0, 100.0]), 0.56
    terms = log_likelihood_terms(z, lp, np.array([True, False]), sigma)
    assert terms[0] == pytest.approx(np.log(norm.cdf((np.log(50) - np.log(100)) / sigma)))
    assert terms[1] == pytest.approx(norm.logpdf(np.log(200), np.log(100), sigma))
    assert log_likelihood(z, lp, np.array([True, False]), sigma, np.array([True, False])) \
        == pytest.approx(terms[0])


def test_simulated_adpc_is_seeded_and_censored_at_lloq():
    a, b = simulate_adpc(10, seed=5), simulate_adpc(10, seed=5)
    assert a.equals(b)
    blq = a["BLQFL"] == "Y"
    assert a.loc[blq, "AVAL"].isna().all() and (a.loc[~blq, "AVAL"] >= 50).all()
