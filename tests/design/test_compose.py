"""Stopping-rule wrappers compose with any design."""

from celltrial.design import BOIN, CRM, EscalationData, ThreePlusThree, simulate
from celltrial.design.compose import StopAtN, StopWhenTooToxic


def test_stop_at_n_wraps_any_design():
    data = EscalationData(5, (1,) * 6, (0,) * 6)
    for base in (BOIN(), CRM(), ThreePlusThree(5)):
        wrapped = StopAtN(base, 6)
        assert wrapped.next_dose(data).action == "stop"
        assert wrapped.next_dose(EscalationData(5)).dose == 1
        assert wrapped.max_n == 6


def test_safety_stop_on_3_plus_3_and_simulation():
    wrapped = StopWhenTooToxic(StopAtN(BOIN(), 12), target=0.3, probability=0.9)
    data = EscalationData(5, (1,) * 3, (1, 1, 0))
    assert BOIN().next_dose(data).action == "stay"      # 2/3: BOIN alone stays at dose 1
    decision = wrapped.next_dose(data)                   # P(p > 0.3 | 2/3) = 0.916 > 0.9
    assert decision.action == "stop" and "0.916" in decision.reason
    assert wrapped.select(data).dose is None
    res = simulate(wrapped, (0.05, 0.12, 0.30, 0.45, 0.60), 300, seed=1)
    assert res.backend == "numpy->python" and sum(res.mean_patients) <= 12
