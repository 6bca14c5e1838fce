"""Population fit (SAEM, M3): parameter recovery on simulated Stein 2019 data and the contract."""

import numpy as np
import pytest

from celltrial.errors import InvalidValue
from celltrial.kinetics.multiphasic import STEIN_2019, simulate_adpc
from celltrial.kinetics.population import fit_population

DOSE_EFFECT = 0.5   # true log Cmax per log dose

# stated tolerances for one data set of 40 patients (realistic schedule, LLOQ 50 copies/ug):
# parameter, truth, allowed ratio estimate/truth (log-scale parameters)
RATIO_TOLERANCE = [
    ("Cmax", 24000.0, 1.5),
    ("Tmax", 9.3, 1.3),
    ("alpha", 0.16, 1.5),
    ("foldx", 3900.0, 2.5),
    ("FB", 0.0079, 2.0),
    ("beta", 0.0032, 2.0),
]
OMEGA_TOLERANCE = [("Cmax", 0.65, 2.5), ("Tmax", 0.38, 2.5), ("alpha", 0.91, 2.5),
                   ("foldx", 2.4, 2.5)]


@pytest.fixture(scope="module")
def data():
    return simulate_adpc(40, seed=2024, cmax_per_log_dose=DOSE_EFFECT)


@pytest.fixture(scope="module")
def fit(data):
    return fit_population(data, seed=0)


@pytest.mark.parametrize(("name", "truth", "ratio"), RATIO_TOLERANCE)
def test_typical_values_recovered(fit, name, truth, ratio):
    assert 1 / ratio < fit.typical[name].value / truth < ratio


@pytest.mark.parametrize(("name", "truth", "ratio"), OMEGA_TOLERANCE)
def test_between_subject_variability_recovered(fit, name, truth, ratio):
    assert 1 / ratio < fit.omega[name].value / truth < ratio


def test_residual_sd_recovered(fit):
    assert fit.sigma.value == pytest.approx(STEIN_2019.sigma, rel=0.15)


def test_dose_effect_recovered_and_covered(fit):
    effect = fit.covariate_effects["Cmax ~ log(dose_level/1e+06)"]
    assert abs(effect.value - DOSE_EFFECT) < 0.35
    assert effect.ci90_low < DOSE_EFFECT < effect.ci90_high
    assert effect.se > 0


def test_typical_cmax_interval_covers_truth(fit):
    e = fit.typical["Cmax"]
    assert e.ci90_low < 24000 < e.ci90_high


def test_individual_estimates_per_subject(fit, data):
    ind = fit.individual
    assert list(ind["USUBJID"]) == sorted(data["USUBJID"].unique())
    truth = np.exp(data.attrs["true_log_params"][:, 2])
    # individual Cmax estimates track the true ones (the peak falls between samples, so Cmax
    # trades off with Tmax)
    assert np.corrcoef(np.log(ind["Cmax"]), np.log(truth))[0, 1] > 0.6


def test_parameter_table_has_uncertainty_and_units(fit):
    table = fit.parameter_table()
    assert {"parameter", "estimate", "uncertainty", "unit", "note"} <= set(table.columns)
    row = table.set_index("parameter").loc["Cmax"]
    assert row["unit"] == "copies/ug gDNA" and "90% CI" in row["uncertainty"]
    assert fit.covariance_ok and fit.n_subjects == 40 and fit.n_blq > 0


def test_blast_and_disease_effects_reported(fit):
    terms = " ".join(fit.covariate_effects)
    assert "baseline_cd7_blast_pct" in terms and "disease=" in terms


def test_same_seed_same_fit(data, fit):
    again = fit_population(data, seed=0)
    assert again.typical["Cmax"].value == fit.typical["Cmax"].value


def test_single_level_covariate_left_out_with_note(data):
    one = data.assign(disease="T-ALL")
    small = one[one["USUBJID"].isin(sorted(one["USUBJID"].unique())[:12])]
    fit = fit_population(small, covariates=("disease",))
    assert fit.covariate_effects == {} and any("one level" in n for n in fit.notes)


def test_missing_covariate_column_is_named(data):
    with pytest.raises(InvalidValue, match="including covariate `disease`"):
        fit_population(data.drop(columns=["disease"]))


def test_missing_required_column_is_named(data):
    with pytest.raises(InvalidValue, match="Invalid `adpc columns`: .*including `AVAL`"):
        fit_population(data.drop(columns=["AVAL"]))


def test_unknown_method_refused(data):
    with pytest.raises(InvalidValue, match="Invalid `method`"):
        fit_population(data, method="nuts")


def test_diagnostics_written(fit, data, tmp_path):
    from celltrial.kinetics import diagnostics

    paths = diagnostics.save_all(fit, data, tmp_path)
    names = {p.name for p in paths}
    assert {"ck_individual_fits.png", "ck_goodness_of_fit.png", "ck_vpc.png"} <= names
    assert all(p.stat().st_size > 1000 for p in paths)
    vpc = diagnostics.vpc_table(fit, n_sim=100)
    # the observed median lies inside the simulated 90% band at most sample times
    inside = (vpc["obs_p50"] >= vpc["sim_p50_lo"]) & (vpc["obs_p50"] <= vpc["sim_p50_hi"])
    assert inside.mean() >= 0.75


def test_covariance_holds_an_uninformed_parameter_and_inverts_the_rest():
    """Information [[4, 0, 0], [0, 1, 0], [0, 0, -0.5]]: the third parameter is not informed;
    the others get SEs 1/2 and 1 (the inverse of their block)."""
    from celltrial.kinetics.population import _covariance

    cov, held = _covariance(np.diag([4.0, 1.0, -0.5]))
    assert held == (2,)
    assert np.sqrt(np.diag(cov)[:2]).tolist() == [0.5, 1.0]
    assert np.isnan(cov[2]).all() and np.isnan(cov[:, 2]).all()
    cov, held = _covariance(np.array([[2.0, 1.0], [1.0, 2.0]]))
    assert held == () and np.allclose(cov, np.linalg.inv([[2.0, 1.0], [1.0, 2.0]]))


def test_fit_to_a_virtual_study_reports_what_the_data_do_not_inform():
    """Virtual CD7 CAR-T patients (mechanistic model) persist on a flat plateau: the terminal
    slope beta is not informed; the fit says so and still gives SEs for Cmax and Tmax."""
    from celltrial.derive import derive_datasets
    from celltrial.conduct import simulate_study
    from celltrial.protocols import load

    protocol = load("cd7-aml-mll")
    adpc = derive_datasets(simulate_study(protocol, 40, seed=1, data_cut="2026-12-01"),
                           protocol)["adpc"]
    fit = fit_population(adpc, seed=0)
    assert fit.n_subjects >= 9      # cohorts of the 3+3 escalation, at most 20
    assert np.isfinite(fit.typical["Cmax"].se) and np.isfinite(fit.typical["Tmax"].se)
    if not fit.covariance_ok:
        note = next(n for n in fit.notes if n.startswith("covariance step"))
        table = fit.parameter_table()
        held = table[table["se"].isna()]["parameter"].tolist()
        assert held and all(name in note for name in held)


# ---------------------------------------------------------------------------------------------
# Objective function value (importance sampling), criteria, Omega structures

STRONG_DOSE_EFFECT = 1.0   # true log Cmax per log dose in the covariate-selection data


@pytest.fixture(scope="module")
def covariate_fits():
    """One data set (40 patients) with a true dose effect on Cmax and a null covariate (a
    weight drawn independently of everything): fits without covariate, with the true one, with
    the null one."""
    data = simulate_adpc(40, seed=77, cmax_per_log_dose=STRONG_DOSE_EFFECT)
    ids = data["USUBJID"].unique()
    weight = dict(zip(ids, np.random.default_rng(5).normal(70.0, 12.0, len(ids)), strict=True))
    data = data.assign(weight_kg=data["USUBJID"].map(weight))
    return {name: fit_population(data, covariates=cov, seed=1)
            for name, cov in (("base", ()), ("dose", ("dose_level",)),
                              ("null", ("weight_kg",)))}


def test_ofv_improves_when_the_true_covariate_is_added(covariate_fits):
    base, dose = covariate_fits["base"], covariate_fits["dose"]
    drop = base.ofv - dose.ofv
    mc_se = np.hypot(base.ofv_se, dose.ofv_se)
    assert 0 < mc_se < 1.0
    assert drop > 3.84 and drop > 10 * mc_se          # LRT at 5%, far outside the MC error
    assert base.aic - dose.aic > 2                    # AIC prefers the true covariate
    assert base.bic > dose.bic
    assert dose.n_parameters == base.n_parameters + 1
    assert dose.aic == pytest.approx(dose.ofv + 2 * dose.n_parameters)
    assert dose.bic == pytest.approx(dose.ofv + dose.n_parameters * np.log(40))


def test_ofv_does_not_improve_materially_for_a_null_covariate(covariate_fits):
    base, null = covariate_fits["base"], covariate_fits["null"]
    drop = base.ofv - null.ofv
    mc_se = np.hypot(base.ofv_se, null.ofv_se)
    # nested model: the OFV may only fall, by a chi-square(1) amount (< 3.84 with 95%
    # probability); -1 allows for SAEM's own Monte-Carlo error of the maximum
    assert -1.0 - 3 * mc_se < drop < 3.84 + 3 * mc_se
    assert null.aic > base.aic - 3 * mc_se            # AIC does not prefer the null covariate
    (effect,) = null.covariate_effects.values()
    assert effect.ci90_low < 0 < effect.ci90_high     # no effect found


def test_summary_prints_ofv_and_criteria(covariate_fits):
    fit = covariate_fits["dose"]
    text = fit.summary()
    assert f"OFV (-2LL, importance sampling) {fit.ofv:.2f} (MC SE {fit.ofv_se:.2f})" in text
    assert f"AIC {fit.aic:.2f}" in text and f"BIC {fit.bic:.2f}" in text
    assert "Standard errors: observed Fisher information by Louis' formula" in text
    assert str(fit) == text


CORR_TRUE = 0.6   # true correlation of the Tmax and Cmax random effects


@pytest.fixture(scope="module")
def correlated_data():
    """100 patients from Stein 2019 with eta_Tmax and eta_Cmax correlated (rho 0.6)."""
    import pandas as pd

    from celltrial.kinetics.multiphasic import PARAMETERS, SCHEDULE_DAYS, simulate_observations

    rng = np.random.default_rng(31)
    omega = np.diag(STEIN_2019.omega2_array())
    i, j = PARAMETERS.index("Tmax"), PARAMETERS.index("Cmax")
    omega[i, j] = omega[j, i] = CORR_TRUE * np.sqrt(omega[i, i] * omega[j, j])
    n = 100
    phi = STEIN_2019.typical.as_log_array() + rng.multivariate_normal(np.zeros(6), omega, n)
    t = np.array(SCHEDULE_DAYS, dtype=float)
    value, blq = simulate_observations(phi, t, STEIN_2019.sigma, 50.0, rng)
    frame = pd.DataFrame({"USUBJID": np.repeat([f"C{k:03d}" for k in range(n)], len(t)),
                         "PARAMCD": "CARTQPCR", "TIME": np.tile(t, n), "AVAL": value.ravel(),
                         "BLQFL": np.where(blq.ravel(), "Y", "N"), "LLOQ": 50.0})
    frame.attrs["sample_corr"] = float(np.corrcoef(phi[:, i], phi[:, j])[0, 1])   # 0.726
    return frame


@pytest.fixture(scope="module")
def omega_fits(correlated_data):
    return {omega if isinstance(omega, str) else "block":
            fit_population(correlated_data, covariates=(), seed=2, omega=omega)
            for omega in ("diagonal", [("Tmax", "Cmax")])}


def test_block_omega_recovers_the_true_correlation(omega_fits, correlated_data):
    """The estimate is checked against the correlation the simulated random effects really have
    (0.726 for this seed; SD of a sample correlation of 100 pairs at rho 0.6: about 0.065) and
    against the population value 0.6."""
    block = omega_fits["block"]
    rho = block.omega_correlation["Tmax,Cmax"]
    realised = correlated_data.attrs["sample_corr"]
    assert abs(rho.value - realised) < 0.1
    assert abs(rho.value - CORR_TRUE) < 0.2
    assert rho.ci90_low < realised < rho.ci90_high
    assert 0.02 < rho.se < 0.15
    assert set(block.omega_correlation) == {"Tmax,Cmax"}
    assert block.omega_matrix[1, 2] == pytest.approx(block.omega_covariance["Tmax,Cmax"].value)
    assert "corr_Tmax,Cmax" in set(block.parameter_table()["parameter"])
    assert block.as_prior().extra["omega_matrix"].shape == (6, 6)


def test_ofv_prefers_the_true_block_omega(omega_fits):
    diag, block = omega_fits["diagonal"], omega_fits["block"]
    assert block.n_parameters == diag.n_parameters + 1
    assert diag.ofv - block.ofv > 3.84 + 3 * np.hypot(diag.ofv_se, block.ofv_se)
    assert block.aic < diag.aic and block.bic < diag.bic


def test_full_omega_fits_every_covariance(correlated_data):
    full = fit_population(correlated_data.head(12 * 60), covariates=(), seed=3, omega="full")
    assert len(full.omega_correlation) == 15
    assert np.all(np.linalg.eigvalsh(full.omega_matrix) > 0)
    assert np.isfinite(full.ofv)
    assert all(-1 < e.value < 1 for e in full.omega_correlation.values())


def test_unknown_omega_structure_refused(data):
    with pytest.raises(InvalidValue, match="Invalid `omega`"):
        fit_population(data, omega="banded")
    with pytest.raises(InvalidValue, match="Invalid `omega block`"):
        fit_population(data, omega=[("Tmax", "Cmax"), ("Cmax", "alpha")])
