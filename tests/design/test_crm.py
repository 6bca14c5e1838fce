"""CRM (power model, dfcrm rules): estimates, skeleton calibration and operating
characteristics against the R package dfcrm 0.2-2.1 (fixtures/dfcrm_reference.json, made by
fixtures/dfcrm_reference.R), integration accuracy, and the coherence / no-skipping rules on
hand-worked cases."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate

from celltrial.design import CRM, EscalationData
from celltrial.design.crm import getprior
from celltrial.design.simulate import simulate
from celltrial.errors import CelltrialError

REF = json.loads((Path(__file__).parent / "fixtures" / "dfcrm_reference.json").read_text())
R_REL_TOL = np.finfo(float).eps ** 0.25  # R integrate()'s default rel.tol, used by dfcrm crm()
# dfcrm's values carry integrate()'s error (rel.tol ~1.2e-4 on each integral); ours are exact
# to 1e-9 (test_quadrature_equals_adaptive_quadrature), so this bounds |ours - dfcrm|.
DFCRM_TOL = 1e-5
EXACT_TOL = 1e-9
OC_Z = 4.0  # Monte Carlo comparisons: |ours - dfcrm| <= 4 standard errors of the difference


def _case(name):
    c = REF["crm"][name]
    crm = CRM(skeleton=tuple(c["skeleton"]), target=c["target"], prior_sd=c["scale"])
    data = EscalationData(len(c["skeleton"]), tuple(int(v) for v in c["level"]),
                          tuple(int(v) for v in c["tox"]))
    return c, crm, data


def _integrand(crm, data, k=0):
    sk = np.asarray(crm.skeleton)
    n, y = data.n(), data.y()

    def f(a):
        e = math.exp(a) * np.log(sk)
        return a ** k * math.exp(float(np.sum(y * e + (n - y) * np.log(-np.expm1(e))))
                                 - 0.5 * (a / crm.prior_sd) ** 2)
    return f


def _exact(crm, data):
    """Posterior mean/variance of beta, P(p_1 > target) and E(p_d) by adaptive quadrature,
    split at the posterior mode and at the cut-point."""
    grid = np.linspace(-12, 12, 2401)
    f0 = _integrand(crm, data)
    mode = float(grid[int(np.argmax([f0(a) for a in grid]))])
    cut = crm.cut_point
    pts = sorted({-12.0, mode, cut, 12.0})
    kw = {"epsabs": 0, "epsrel": 1e-13, "limit": 500}

    def q(f, lo=-12.0, hi=12.0):
        edges = [lo] + [p for p in pts if lo < p < hi] + [hi]
        return sum(integrate.quad(f, a, b, **kw)[0] for a, b in zip(edges, edges[1:]))

    z = q(f0)
    mean = q(_integrand(crm, data, 1)) / z
    var = q(_integrand(crm, data, 2)) / z - mean ** 2
    tail = q(f0, -12.0, cut) / z
    mean_p = [q(lambda a, s=s: s ** math.exp(a) * f0(a)) / z for s in crm.skeleton]
    return mean, var, tail, np.array(mean_p)


def _dfcrm_quadpack(c):
    """dfcrm crm(method="bayes")'s three integrals (denominator over the real line, the
    numerators over [-10, 10]) with R's integrate() settings (QUADPACK qagi/qags,
    rel.tol = eps^0.25, abs.tol = 0, 100 subdivisions)."""
    sk = np.asarray(c["skeleton"])
    x = sk[np.asarray(c["level"], dtype=int) - 1]
    y = np.asarray(c["tox"], dtype=float)
    s = c["scale"]

    def h(a, k):
        a = np.float64(a)
        p = x ** np.exp(a)
        return float(a ** k * np.exp(-a * a / 2 / s / s) * np.prod(p ** y * (1 - p) ** (1 - y)))

    kw = {"epsabs": 0, "epsrel": R_REL_TOL, "limit": 100}
    den = integrate.quad(h, -np.inf, np.inf, args=(0,), **kw)[0]
    est = integrate.quad(h, -10, 10, args=(1,), **kw)[0] / den
    e2 = integrate.quad(h, -10, 10, args=(2,), **kw)[0] / den
    return est, e2 - est ** 2


# ---- estimates against dfcrm crm() ----------------------------------------------------------

@pytest.mark.parametrize("name", sorted(REF["crm"]))
def test_fit_equals_dfcrm(name):
    c, crm, data = _case(name)
    fit = crm.fit(data, conf_level=REF["conf_level"])
    assert fit.estimate == pytest.approx(c["estimate"], abs=DFCRM_TOL)
    assert fit.post_var == pytest.approx(c["post_var"], abs=DFCRM_TOL)
    for ours, theirs in ((fit.ptox, "ptox"), (fit.ptox_lower, "ptoxL"),
                         (fit.ptox_upper, "ptoxU")):
        np.testing.assert_allclose(ours, c[theirs], rtol=0, atol=DFCRM_TOL)
    assert fit.mtd == c["mtd"]


@pytest.mark.parametrize("name", sorted(REF["crm"]))
def test_dfcrm_values_are_its_integrals_at_r_tolerance(name):
    """The remaining differences are dfcrm's integration error: QUADPACK with R's settings
    reproduces dfcrm's numbers to 1e-10, and our values equal the exact integrals."""
    c, crm, data = _case(name)
    with np.errstate(all="ignore"):
        est, var = _dfcrm_quadpack(c)
    assert est == pytest.approx(c["estimate"], abs=1e-10)
    assert var == pytest.approx(c["post_var"], abs=1e-10)
    mean, var_exact, _, _ = _exact(crm, data)
    fit = crm.fit(data)
    assert fit.estimate == pytest.approx(mean, abs=EXACT_TOL)
    assert fit.post_var == pytest.approx(var_exact, abs=EXACT_TOL)


DATA_SETS = [
    (CRM(), EscalationData(5, (1, 1, 1, 2, 2, 2, 3, 3, 3), (0, 0, 0, 0, 1, 0, 1, 1, 0))),
    (CRM(), EscalationData(5, (1,) * 6, (1, 1, 1, 1, 0, 1))),
    (CRM(), EscalationData(5, (1,) * 3, (1, 0, 0))),
    (CRM(), EscalationData(5, (1,) * 3 + (2,) * 3 + (3,) * 24, (0,) * 6 + (0, 1, 0) * 8)),
    (CRM(target=0.2, skeleton=(0.3, 0.4, 0.5)), EscalationData(3, (1, 1, 1), (0, 0, 1))),
    (CRM(prior_sd=2.0, n_cohorts=20), EscalationData(5, (2,) * 60, (0, 0, 1) * 20)),
]


@pytest.mark.parametrize("crm,data", DATA_SETS)
def test_quadrature_equals_adaptive_quadrature(crm, data):
    mean, var, tail, mean_p = _exact(crm, data)
    fit = crm.fit(data)
    assert fit.estimate == pytest.approx(mean, abs=EXACT_TOL)
    assert fit.post_var == pytest.approx(var, abs=EXACT_TOL)
    assert fit.p_dose1_too_toxic == pytest.approx(tail, abs=EXACT_TOL)
    np.testing.assert_allclose(fit.posterior_mean_p, mean_p, rtol=0, atol=EXACT_TOL)
    np.testing.assert_allclose(fit.ptox, np.asarray(crm.skeleton) ** math.exp(mean), rtol=0,
                               atol=EXACT_TOL)


# ---- skeleton calibration against dfcrm getprior() -----------------------------------------

@pytest.mark.parametrize("g", REF["getprior"], ids=lambda g: f"{g['halfwidth']}-{g['target']}-"
                         f"{g['nu']}-{g['nlevel']}")
def test_getprior_equals_dfcrm(g):
    ours = getprior(g["halfwidth"], g["target"], int(g["nu"]), int(g["nlevel"]))
    np.testing.assert_allclose(ours, g["skeleton"], rtol=0, atol=1e-8)


def test_getprior_indifference_intervals():
    """Hand check: at the beta where dose k's estimate is target - halfwidth, dose k+1's is
    target + halfwidth (both at distance halfwidth: the switch point), and s_nu = target."""
    t, hw = 0.25, 0.05
    sk = getprior(hw, t, 3, 5)
    assert sk[2] == t
    for k in range(4):
        b = math.log(math.log(t - hw) / math.log(sk[k]))
        assert sk[k + 1] ** math.exp(b) == pytest.approx(t + hw, abs=1e-12)


@pytest.mark.parametrize("args", [(0.3, 0.3, 1, 5), (0.05, 0.3, 6, 5), (0.05, 0.3, 0, 5),
                                  (0.0, 0.3, 2, 5), (0.05, 1.2, 2, 5)])
def test_getprior_rejects_bad_input(args):
    with pytest.raises(CelltrialError):
        getprior(*args)


# ---- rules ---------------------------------------------------------------------------------

def test_coherence_no_escalation_after_a_dlt_in_the_last_cohort():
    """0/3 at dose 1, 0/3 at dose 2, 1/3 at dose 3: the model (and dfcrm crm()) recommends
    dose 4 (plug-in 0.340 is closest to 0.3), but the last cohort had a DLT: stay at 3."""
    data = EscalationData(5, (1, 1, 1, 2, 2, 2, 3, 3, 3), (0, 0, 0, 0, 0, 0, 1, 0, 0))
    crm = CRM()
    fit = crm.fit(data)
    assert fit.mtd == 4 == REF["crm"]["coherence_1of3_at_3"]["mtd"]
    assert fit.ptox[3] == pytest.approx(0.3397, abs=1e-4)
    decision = crm.next_dose(data)
    assert decision.dose == 3 and decision.action == "stay"
    assert "coherence" in decision.reason
    # the next cohort at dose 3 without a DLT lifts the restriction
    assert crm.next_dose(data.add(3, [0, 0, 0])).dose == 4


def test_no_skipping_counts_from_the_current_dose():
    """2/3 at dose 3 sends the trial back to dose 2; after 0/3 and 0/3 there the model
    recommends dose 4, but the next dose is at most current + 1 = 3 (counting from the
    highest dose tried would allow 4)."""
    crm = CRM()
    data = EscalationData(5, (1, 1, 1, 2, 2, 2, 3, 3, 3), (0, 0, 0, 0, 0, 0, 1, 1, 0))
    assert crm.next_dose(data).dose == 3
    data = data.add(2, [0, 0, 0]).add(2, [0, 0, 0])
    assert crm.fit(data).mtd == 4
    decision = crm.next_dose(data)
    assert decision.dose == 3 and decision.action == "escalate"
    assert "no skipping" in decision.reason


def test_no_dose_skipping_from_the_start():
    decision = CRM().next_dose(EscalationData(5, (1, 1, 1), (0, 0, 0)))
    assert decision.dose == 2 and decision.action == "escalate"


@pytest.mark.parametrize("p", [(0.05, 0.12, 0.30, 0.45, 0.60), (0.02, 0.04, 0.06, 0.08, 0.5),
                               (0.25, 0.35, 0.5, 0.6, 0.7)])
def test_never_escalates_after_a_dlt_and_never_skips(p):
    crm = CRM(stop_probability=1.0)
    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(60):
        data = EscalationData(5)
        decision = crm.next_dose(data)
        while decision.action != "stop":
            assert decision.dose is not None
            data = data.add(decision.dose, [int(u < p[decision.dose - 1]) for u in rng.random(3)])
            decision = crm.next_dose(data)
            if decision.dose is not None:
                assert decision.dose <= data.current_dose + 1
                if any(data.dlt[-3:]):
                    assert decision.dose <= data.current_dose
                    checked += 1
    assert checked > 20


def test_safety_stop_when_dose_1_is_too_toxic():
    crm = CRM()
    data = EscalationData(5, (1,) * 6, (1, 1, 1, 1, 0, 1))
    decision = crm.next_dose(data)
    assert decision.action == "stop" and "safety stop" in decision.reason
    assert crm.select(data).dose is None
    assert crm.fit(data).p_dose1_too_toxic > 0.9
    # stop_probability = 1 disables the stop (dfcrm has none)
    assert CRM(stop_probability=1.0).next_dose(data).dose == 1
    assert CRM(stop_probability=1.0).select(data).dose == 1


def test_selection_is_dfcrm_mtd_and_may_be_restricted_to_doses_given():
    c, crm, data = _case("none_0of12_to_4")  # 0/3 at doses 1-4: dfcrm's MTD is dose 5
    sel = crm.select(data)
    assert sel.dose == c["mtd"] == 5 and "not been given" in sel.reason
    np.testing.assert_allclose(sel.estimates, c["ptox"], rtol=0, atol=DFCRM_TOL)
    assert CRM(select_tried_only=True).select(data).dose == 4


def test_posterior_mean_option():
    data = EscalationData(5, (1, 1, 1, 2, 2, 2, 3, 3, 3), (0, 0, 0, 0, 1, 0, 1, 1, 0))
    pm = CRM(estimate="posterior_mean")
    fit = pm.fit(data)
    sel = pm.select(data)
    np.testing.assert_allclose(sel.estimates, fit.posterior_mean_p)
    assert not np.allclose(fit.posterior_mean_p, fit.ptox, atol=1e-3)
    assert "posterior mean" in pm.next_dose(data).reason
    with pytest.raises(CelltrialError):
        CRM(estimate="mode")


# ---- operating characteristics -------------------------------------------------------------

def _batched(crm, p, batches, size, seed):
    """Per-batch results: means and between-batch standard errors of the pooled mean."""
    res = [simulate(crm, p, size, seed=seed + i) for i in range(batches)]
    out = {}
    for key in ("selection_pct", "mean_patients", "mean_dlts"):
        v = np.array([getattr(r, key) for r in res])
        out[key] = (v.mean(axis=0), v.std(axis=0, ddof=1) * math.sqrt(size))  # per-trial SD
    return out, batches * size


@pytest.mark.parametrize("name", sorted(REF["crmsim"]))
def test_operating_characteristics_equal_dfcrm_crmsim(name):
    """Selection %, patients and DLTs per dose equal dfcrm crmsim(restrict=TRUE) within
    OC_Z standard errors; the safety stop is disabled (crmsim has none). The per-trial SD of
    patients/DLTs is estimated from 20 independent batches of ours and used for both."""
    s = REF["crmsim"][name]
    crm = CRM(skeleton=tuple(s["skeleton"]), target=s["target"], cohort_size=int(s["mcohort"]),
              n_cohorts=int(s["n"]) // int(s["mcohort"]), start_dose=int(s["x0"]),
              stop_probability=1.0)
    ours, m = _batched(crm, s["p_true"], 20, 1000, seed=100)
    r_n = REF["nsim"]
    sel, _ = ours["selection_pct"]
    pooled = np.clip((sel * m + np.asarray(s["selection_pct"]) * r_n) / (m + r_n) / 100,
                     1 / r_n, None)
    se = 100 * np.sqrt(pooled * (1 - pooled) * (1 / m + 1 / r_n))
    assert np.all(np.abs(sel - s["selection_pct"]) <= OC_Z * se), (sel, s["selection_pct"])
    for key in ("mean_patients", "mean_dlts"):
        mean, sd = ours[key]
        se = np.maximum(sd, 0.05) * math.sqrt(1 / m + 1 / r_n)
        assert np.all(np.abs(mean - s[key]) <= OC_Z * se), (key, mean, s[key])


def test_clear_scenario_selects_the_target_dose():
    res = simulate(CRM(), (0.02, 0.05, 0.30, 0.60, 0.75), 4000, seed=5)
    assert int(np.argmax(res.selection_pct)) == 2
    assert res.selection_pct[2] > 60
    toxic = simulate(CRM(), (0.6, 0.7, 0.8, 0.85, 0.9), 2000, seed=5)
    assert toxic.stop_pct > 80


@pytest.mark.parametrize("crm", [
    CRM(n_cohorts=6),
    CRM(skeleton=getprior(0.05, 0.25, 3, 5), target=0.25, n_cohorts=8, start_dose=2,
        stop_probability=1.0),
    CRM(n_cohorts=6, estimate="posterior_mean", select_tried_only=True),
], ids=["default", "start_2_no_stop", "posterior_mean"])
def test_lockstep_equals_per_trial_loop_within_monte_carlo_error(crm):
    p = (0.05, 0.12, 0.30, 0.45, 0.60)
    fast = simulate(crm, p, 8000, seed=1)
    slow = simulate(crm, p, 1500, seed=2, backend="python")
    assert fast.backend == "numpy" and slow.backend == "python"
    for a, b in zip(fast.selection_pct + (fast.stop_pct,), slow.selection_pct + (slow.stop_pct,),
                    strict=True):
        se = 100 * np.sqrt(max(a / 100 * (1 - a / 100), 1e-3) * (1 / 8000 + 1 / 1500))
        assert abs(a - b) <= 4 * se
    for a, b in zip(fast.mean_patients, slow.mean_patients, strict=True):
        sd = math.sqrt(max(a * (crm.max_n - a), 1.0))  # Bhatia-Davis bound on the SD
        assert abs(a - b) <= 4 * sd * math.sqrt(1 / 8000 + 1 / 1500)
