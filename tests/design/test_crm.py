"""CRM (power model, normal prior on log a, grid posterior): integration accuracy and
behaviour on clear cases."""

import numpy as np
import pytest
from scipy import integrate, stats

from celltrial.design import CRM, EscalationData
from celltrial.design.simulate import simulate


def test_grid_posterior_equals_adaptive_quadrature():
    crm = CRM()
    data = EscalationData(5, (1, 1, 1, 2, 2, 2, 3, 3, 3), (0, 0, 0, 0, 1, 0, 1, 1, 0))
    mean, p_low = crm.posterior(data)
    sk = np.array(crm.skeleton)
    n, y = data.n(), data.y()

    def lik(t):
        p = sk ** np.exp(t)
        return np.prod(p ** y * (1 - p) ** (n - y)) * stats.norm.pdf(t, 0, crm.prior_sd)

    z = integrate.quad(lik, -10, 10, limit=200)[0]
    for d in range(5):
        ref = integrate.quad(lambda t, d=d: sk[d] ** np.exp(t) * lik(t), -10, 10, limit=200)[0] / z
        assert mean[d] == pytest.approx(ref, abs=1e-4)
    # P(p_1 > target) = P(theta < log(log target / log s_1))
    cut = np.log(np.log(crm.target) / np.log(sk[0]))
    ref_tail = integrate.quad(lik, -10, cut, limit=200)[0] / z
    assert p_low == pytest.approx(ref_tail, abs=2e-3)


def test_no_dose_skipping():
    crm = CRM()
    data = EscalationData(5, (1, 1, 1), (0, 0, 0))
    decision = crm.next_dose(data)
    assert decision.dose == 2 and decision.action == "escalate"


def test_safety_stop_when_dose_1_is_too_toxic():
    crm = CRM()
    decision = crm.next_dose(EscalationData(5, (1,) * 6, (1, 1, 1, 1, 0, 1)))
    assert decision.action == "stop" and "safety stop" in decision.reason
    assert crm.select(EscalationData(5, (1,) * 6, (1, 1, 1, 1, 0, 1))).dose is None


def test_clear_scenario_selects_the_target_dose():
    res = simulate(CRM(), (0.02, 0.05, 0.30, 0.60, 0.75), 4000, seed=5)
    assert int(np.argmax(res.selection_pct)) == 2
    assert res.selection_pct[2] > 60
    toxic = simulate(CRM(), (0.6, 0.7, 0.8, 0.85, 0.9), 2000, seed=5)
    assert toxic.stop_pct > 80


def test_lockstep_equals_per_trial_loop_within_monte_carlo_error():
    p = (0.05, 0.12, 0.30, 0.45, 0.60)
    fast = simulate(CRM(n_cohorts=6), p, 8000, seed=1)
    slow = simulate(CRM(n_cohorts=6), p, 1500, seed=2, backend="python")
    for a, b in zip(fast.selection_pct, slow.selection_pct, strict=True):
        se = 100 * np.sqrt(max(a / 100 * (1 - a / 100), 1e-3) * (1 / 8000 + 1 / 1500))
        assert abs(a - b) <= 4 * se
