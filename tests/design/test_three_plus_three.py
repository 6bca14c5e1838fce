"""3+3 (CLINICAL_REFERENCE 7.1): decisions, and exact operating characteristics by
enumeration against a 200,000-trial Monte Carlo (within 3 standard errors)."""

import numpy as np
import pytest

from celltrial.design import EscalationData, ThreePlusThree, exact_operating_characteristics
from celltrial.design.simulate import simulate


def data(*cohorts):
    doses, dlt = [], []
    for dose, y in cohorts:
        doses += [dose] * 3
        dlt += [1] * y + [0] * (3 - y)
    return EscalationData(3, tuple(doses), tuple(dlt))


@pytest.mark.parametrize(("cohorts", "action", "dose", "selected"), [
    ((), "stay", 1, None),
    (((1, 0),), "escalate", 2, None),
    (((1, 1),), "stay", 1, None),                 # 1/3: 3 more
    (((1, 1), (1, 0)), "escalate", 2, 1),         # 1/6
    (((1, 1), (1, 1)), "stop", None, None),       # 2/6 at dose 1: none
    (((1, 0), (2, 2)), "stop", None, 1),          # 2/3: previous dose
    (((1, 0), (2, 0), (3, 0)), "stop", None, 3),  # 0/3 at the top dose: recommend it
    (((1, 0), (2, 0), (3, 1), (3, 0)), "stop", None, 3),
])
def test_rule(cohorts, action, dose, selected):
    design = ThreePlusThree(3)
    d = data(*cohorts)
    decision = design.next_dose(d)
    assert (decision.action, decision.dose) == (action, dose), decision.reason
    if action == "stop":
        assert design.select(d).dose == selected


def test_exact_small_case_by_hand():
    # one dose, p = 0.5: pass = P(0/3) + P(1/3) P(0/3) = 1/8 + 3/8 * 1/8 = 11/64
    oc = exact_operating_characteristics(ThreePlusThree(1), [0.5])
    assert oc.selection_pct[0] == pytest.approx(100 * 11 / 64)
    assert oc.stop_pct == pytest.approx(100 * 53 / 64)
    assert oc.mean_patients[0] == pytest.approx(3 + 3 * 3 / 8)


@pytest.mark.parametrize("p_true", [
    (0.05, 0.12, 0.30, 0.45, 0.60), (0.30, 0.42, 0.52, 0.62, 0.72), (0.01, 0.02, 0.05, 0.1, 0.2),
])
def test_exact_oc_equals_200000_trial_monte_carlo(p_true):
    design = ThreePlusThree(5)
    exact = exact_operating_characteristics(design, p_true)
    assert sum(exact.selection_pct) + exact.stop_pct == pytest.approx(100)
    m = 200_000
    mc = simulate(design, p_true, m, seed=11)
    for e, s in zip(exact.selection_pct + (exact.stop_pct,), mc.selection_pct + (mc.stop_pct,),
                    strict=True):
        se = 100 * np.sqrt(max(e / 100 * (1 - e / 100), 1e-12) / m)
        assert abs(s - e) <= 3 * se + 1e-9, (s, e, se)
    # mean patients per dose: each dose has 0, 3 or 6 patients, SE from the exact variance bound
    for e, s in zip(exact.mean_patients, mc.mean_patients, strict=True):
        assert abs(s - e) <= 3 * 6 / 2 / np.sqrt(m) + 1e-9


def test_python_loop_reproduces_the_rule():
    res = simulate(ThreePlusThree(3), (0.1, 0.3, 0.5), 3000, seed=2, backend="python")
    exact = exact_operating_characteristics(ThreePlusThree(3), (0.1, 0.3, 0.5))
    for e, s in zip(exact.selection_pct, res.selection_pct, strict=True):
        assert abs(s - e) <= 4 * 100 * np.sqrt(max(e / 100 * (1 - e / 100), 1e-4) / 3000)
